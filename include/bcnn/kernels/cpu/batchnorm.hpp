#pragma once
// Batch normalisation over every axis but the last (Keras BatchNormalization,
// axis=-1): x (N, H, W, C) is normalised per channel, x (N, F) per feature.
// With m = numel / C values per channel:
//   training:  mean = sum(x) / m, var = sum((x - mean)^2) / m   (biased)
//              y = gamma * (x - mean) / sqrt(var + epsilon) + beta
//              moving = moving * momentum + batch * (1 - momentum)
//   inference: the same y with the moving mean and variance.
// Keras detail: for 4-D inputs Keras runs the fused kernel, whose
// moving-variance update uses the UNBIASED batch variance var * m / (m - 1);
// for other ranks it uses the biased var. The training forward takes this as
// the explicit argument `unbiased_moving_variance`; layers pass
// keras_unbiased_moving_variance(x.rank()) to match Keras.
// x, y, dy, dx may be channel-slice views (y may be x, dx may be dy);
// gamma, beta and the statistics (C) must be contiguous.
// Sums run in double over a fixed split of the rows, combined in order: the
// result does not depend on the thread count. Passes over x: training
// forward two (statistics, then y), backward two (sums, then dx).

#include <algorithm>
#include <cmath>
#include <vector>

#include "bcnn/kernels/cpu/column_sums.hpp"
#include "bcnn/kernels/cpu/elementwise.hpp"

namespace bcnn {
namespace cpu {

constexpr double kBatchNormMomentum = 0.99;  // Keras default
constexpr double kBatchNormEpsilon = 1e-3;   // Keras default (Keras' DenseNet uses 1.001e-5)

// Keras uses the unbiased batch variance for the moving variance of 4-D inputs only.
inline bool keras_unbiased_moving_variance(int input_rank) { return input_rank == 4; }

// A per-channel affine map y = scale * x + shift (C values each), in double:
// batch normalisation with given statistics.
struct ChannelAffine {
    std::vector<double> scale, shift;
};

namespace detail {

// Rows are split into at most kBatchNormMaxChunks chunks of at least
// kBatchNormMinChunkElements values each (fewer when the tensor is small), whatever the thread count, so
// sums are reproducible everywhere.
constexpr Index kBatchNormMaxChunks = 64;
constexpr Index kBatchNormMinChunkElements = Index(1) << 14;

// Sums over the rows in double: accumulate(first, last, partial) adds the
// `width` contributions of rows [first, last) into partial[0, width). Each
// row reads row_values values (width unless given), which sets the chunks.
// Chunks are summed in a fixed order.
template <typename Accumulate>
std::vector<double> sum_over_rows(Index rows, Index width, Accumulate accumulate, Index row_values = 0) {
    const Index values = rows * (row_values > 0 ? row_values : width);
    const Index chunks = std::max<Index>(1, std::min({kBatchNormMaxChunks, rows, values / kBatchNormMinChunkElements}));
    ChunkPartials<double> partials(chunks, width);
    parallel_chunks(rows, static_cast<int>(chunks), [&](int chunk, Index first, Index last) {
        accumulate(first, last, partials.chunk(chunk));
    });
    std::vector<double> total(static_cast<std::size_t>(width));
    partials.add_in_order(chunks, total.data());
    return total;
}

// Per-channel vector (C) as doubles.
template <typename T>
std::vector<double> channel_values(const Tensor<T>& t) {
    return std::vector<double>(t.data(), t.data() + t.numel());
}

// 1 / sqrt(moving_variance + epsilon) per channel, in double.
template <typename T>
std::vector<double> moving_inverse_std(const Tensor<T>& moving_variance, double epsilon) {
    std::vector<double> inv_std = channel_values(moving_variance);
    for (double& value : inv_std) value = 1.0 / std::sqrt(value + epsilon);
    return inv_std;
}

// Checks that x (..., C) is a CPU tensor of rank >= 2; returns C.
template <typename T>
Index checked_channels(const Tensor<T>& x, const char* op) {
    BCNN_CHECK(x.defined(), op << ": input is an empty tensor");
    x.require_cpu(op);
    BCNN_CHECK(x.rank() >= 2, op << ": input must have a batch axis and a channel axis, got shape " << x.shape());
    return x.dim(-1);
}

// A per-channel parameter or statistic: shape (C), contiguous.
template <typename T>
void require_channel_vector(const Tensor<T>& t, Index channels, const char* op, const char* name) {
    require_shape(t, Shape{channels}, op, name);
    require_contiguous(t, op, name);
}

// Per channel, the sums of x - origin and of its square over rows
// [first, last) of x, added into sum[0, C) and sum[C, 2C). Shifting by one of
// the values (the first row) keeps the variance sum(d^2)/m - (sum(d)/m)^2
// accurate in one pass: the terms no longer cancel when the mean is large.
template <typename T>
void accumulate_shifted_moments(const RowMatrix<T>& xm, Index first, Index last, const double* __restrict origin,
                                double* __restrict sum) {
    const Index channels = xm.cols;
    double* __restrict sum_sq = sum + channels;
    for (Index r = first; r < last; ++r) {
        const T* __restrict in = xm.row(r);
        for (Index c = 0; c < channels; ++c) {
            const double d = in[c] - origin[c];
            sum[c] += d;
            sum_sq[c] += d * d;
        }
    }
}

// Per channel, sum(dy) and sum(dy * (x - mean)) over rows [first, last),
// added into sum[0, C) and sum[C, 2C).
template <typename T>
void accumulate_gradient_sums(const RowMatrix<T>& xm, const RowMatrix<T>& dym, Index first, Index last,
                              const double* __restrict mean, double* __restrict sum) {
    const Index channels = xm.cols;
    double* __restrict sum_dot = sum + channels;
    for (Index r = first; r < last; ++r) {
        const T *__restrict in = xm.row(r), *__restrict grad = dym.row(r);
        for (Index c = 0; c < channels; ++c) {
            sum[c] += grad[c];
            sum_dot[c] += grad[c] * (in[c] - mean[c]);
        }
    }
}

// x * scale + shift for one vector of channels, scale and shift from the
// vector's first channel on: the one rounding (simd::fma) of every
// normalising kernel.
template <typename T>
simd::Vec<T> scale_shift_vector(const simd::Vec<T>& x, const T* scale, const T* shift, int lanes) {
    return simd::fma<T>(x, load_lanes(scale, lanes), load_lanes(shift, lanes));
}

// A ChannelAffine in T, applied to one vector of channels at a time: every
// kernel that normalises (here, batchnorm_max_pool.hpp) rounds alike.
template <typename T>
struct ChannelAffineOf {
    std::vector<T> scale, shift;

    explicit ChannelAffineOf(const ChannelAffine& affine)
        : scale(affine.scale.begin(), affine.scale.end()), shift(affine.shift.begin(), affine.shift.end()) {}

    // x * scale + shift for channels [c, c + lanes).
    simd::Vec<T> apply(const simd::Vec<T>& x, Index c, int lanes) const {
        return scale_shift_vector(x, scale.data() + c, shift.data() + c, lanes);
    }
};

// y = x * scale + shift per channel (x, y of one shape; y may be x), one
// vector of channels at a time.
template <typename T>
void scale_shift_channels(const Tensor<T>& x, const ChannelAffine& affine, Tensor<T>& y, const char* op) {
    const ChannelAffineOf<T> map(affine);
    for_each_row(
        op, y,
        [&](Index, T* out, const T* in, Index channels) {
            for (Index c = 0; c < channels; c += simd::width<T>) {
                const int lanes = lanes_at<T>(c, channels);
                store_lanes(out + c, map.apply(load_lanes(in + c, lanes), c, lanes), lanes);
            }
        },
        x);
}

// dx = a * dy + b * x + d per channel: the input gradient's coefficients
// (C each), from the sums of the output gradient.
template <typename T>
struct BatchNormGradientCoefficients {
    std::vector<T> a, b, d;
};

// Checks the outputs of a backward pass over x (..., C): dx x's shape, the
// gamma and beta gradients (C), each optional.
template <typename T>
void require_batchnorm_gradients(const Tensor<T>& x, OptionalOutput<T> dx, OptionalOutput<T> d_gamma,
                                 OptionalOutput<T> d_beta, const char* op) {
    const Index channels = x.dim(-1);
    if (dx) require_shape(*dx, x.shape(), op, "input gradient");
    if (d_gamma) require_channel_vector(*d_gamma, channels, op, "gamma gradient");
    if (d_beta) require_channel_vector(*d_beta, channels, op, "beta gradient");
}

// Whether a backward pass needs the sums of the output gradient: the
// gradient flows through batch statistics, or gamma's and beta's are wanted.
inline bool batchnorm_needs_gradient_sums(bool batch_statistics, const void* d_gamma, const void* d_beta) {
    return batch_statistics || d_gamma || d_beta;
}

// From sums[c] = sum(dy) and sums[C + c] = sum(dy * (x - mean)) over the m
// values of each channel (empty when not needed): d_beta, d_gamma (each
// optional), and the input gradient's coefficients. With
// xhat = (x - mean) * inv_std, training (batch_statistics):
//   dx = gamma * inv_std / m * (m * dy - sum(dy) - xhat * sum(dy * xhat))
// so a = gamma * inv_std, b = -gamma * inv_std^2 * sum(dy * xhat) / m,
// d = -gamma * inv_std * sum(dy) / m - b * mean. Inference: dx = gamma * inv_std * dy.
template <typename T>
BatchNormGradientCoefficients<T> batchnorm_gradient_coefficients(const Tensor<T>& gamma,
                                                                 const std::vector<double>& mean,
                                                                 const std::vector<double>& inv_std,
                                                                 std::vector<double> sums, Index m,
                                                                 bool batch_statistics, OptionalOutput<T> d_gamma,
                                                                 OptionalOutput<T> d_beta) {
    const Index channels = static_cast<Index>(mean.size());
    if (!sums.empty())
        for (Index c = 0; c < channels; ++c) sums[channels + c] *= inv_std[c];  // sum(dy * xhat)
    for (Index c = 0; c < channels; ++c) {
        if (d_beta) d_beta->data()[c] = static_cast<T>(sums[c]);
        if (d_gamma) d_gamma->data()[c] = static_cast<T>(sums[channels + c]);
    }
    BatchNormGradientCoefficients<T> k{std::vector<T>(channels), std::vector<T>(channels, T(0)),
                                       std::vector<T>(channels, T(0))};
    for (Index c = 0; c < channels; ++c) {
        const double g = gamma.data()[c] * inv_std[c];
        k.a[c] = static_cast<T>(g);
        if (batch_statistics) {
            const double slope = -g * inv_std[c] * sums[channels + c] / m;
            k.b[c] = static_cast<T>(slope);
            k.d[c] = static_cast<T>(-g * sums[c] / m - slope * mean[c]);
        }
    }
    return k;
}

// a * dy + b * x + d for one vector of channels: the one rounding
// (simd::fma) of every batch-normalisation input gradient.
template <typename T>
simd::Vec<T> batchnorm_input_gradient(const simd::Vec<T>& a, const simd::Vec<T>& b, const simd::Vec<T>& d,
                                      const simd::Vec<T>& dy, const simd::Vec<T>& x) {
    return simd::fma<T>(a, dy, simd::fma<T>(b, x, d));
}

// The backward pass given the mean and inverse std used in the forward pass.
// batch_statistics: they were computed from x (training), so the gradient
// flows through them; otherwise they are constants (inference, frozen BN).
template <typename T>
void batchnorm_backward(const char* op, const Tensor<T>& x, const Tensor<T>& gamma, const std::vector<double>& mean,
                        const std::vector<double>& inv_std, const Tensor<T>& dy, bool batch_statistics,
                        OptionalOutput<T> dx, OptionalOutput<T> d_gamma, OptionalOutput<T> d_beta) {
    const Index channels = x.dim(-1), m = channels == 0 ? 0 : x.numel() / channels;
    require_shape(dy, x.shape(), op, "output gradient");
    require_batchnorm_gradients(x, dx, d_gamma, d_beta, op);
    const RowMatrix<T> xm = x.as_rows(op), dym = dy.as_rows(op);
    std::vector<double> sums;
    if (batchnorm_needs_gradient_sums(batch_statistics, d_gamma, d_beta))
        sums = sum_over_rows(m, 2 * channels, [&](Index first, Index last, double* partial) {
            accumulate_gradient_sums(xm, dym, first, last, mean.data(), partial);
        });
    const BatchNormGradientCoefficients<T> k =
        batchnorm_gradient_coefficients(gamma, mean, inv_std, std::move(sums), m, batch_statistics, d_gamma, d_beta);
    if (!dx) return;
    for_each_row(
        op, *dx,
        [&](Index, T* out, const T* in, const T* grad, Index cols) {
            for (Index c = 0; c < cols; c += simd::width<T>) {
                const int lanes = lanes_at<T>(c, cols);
                store_lanes(out + c,
                            batchnorm_input_gradient<T>(load_lanes(&k.a[c], lanes), load_lanes(&k.b[c], lanes),
                                                     load_lanes(&k.d[c], lanes), load_lanes(grad + c, lanes),
                                                     load_lanes(in + c, lanes)),
                            lanes);
            }
        },
        x, dy);
}

// The mean and inverse std a backward pass uses (C each, in double).
struct BackwardStatistics {
    std::vector<double> mean, inv_std;
};

// Training mode's, checked: the forward's saved_mean and saved_inv_std (C),
// for x (..., C) and gamma (C).
template <typename T>
BackwardStatistics training_backward_statistics(const Tensor<T>& x, const Tensor<T>& gamma,
                                                const Tensor<T>& saved_mean, const Tensor<T>& saved_inv_std,
                                                const char* op) {
    const Index channels = checked_channels(x, op);
    require_channel_vector(gamma, channels, op, "gamma");
    require_channel_vector(saved_mean, channels, op, "saved mean");
    require_channel_vector(saved_inv_std, channels, op, "saved inverse std");
    BCNN_CHECK(x.numel() > 0, op << ": input of shape " << x.shape() << " is empty");
    return {channel_values(saved_mean), channel_values(saved_inv_std)};
}

// Inference mode's (a frozen BatchNorm), checked: the moving mean and
// 1 / sqrt(moving_variance + epsilon), for x (..., C) and gamma (C).
template <typename T>
BackwardStatistics inference_backward_statistics(const Tensor<T>& x, const Tensor<T>& gamma,
                                                 const Tensor<T>& moving_mean, const Tensor<T>& moving_variance,
                                                 double epsilon, const char* op) {
    const Index channels = checked_channels(x, op);
    BCNN_CHECK(epsilon > 0, op << ": epsilon " << epsilon << " must be positive");
    require_channel_vector(gamma, channels, op, "gamma");
    require_channel_vector(moving_mean, channels, op, "moving mean");
    require_channel_vector(moving_variance, channels, op, "moving variance");
    return {channel_values(moving_mean), moving_inverse_std(moving_variance, epsilon)};
}

}  // namespace detail

// Inference mode as an affine map per channel, y = scale * x + shift:
// scale = gamma / sqrt(moving_variance + epsilon), shift = beta - moving_mean * scale.
// gamma, beta, moving_mean, moving_variance (C) -> scale, shift (C), in double.
template <typename T>
ChannelAffine batchnorm_inference_affine(const Tensor<T>& gamma, const Tensor<T>& beta, const Tensor<T>& moving_mean,
                                         const Tensor<T>& moving_variance, double epsilon, Index channels,
                                         const char* op) {
    BCNN_CHECK(epsilon > 0, op << ": epsilon " << epsilon << " must be positive");
    detail::require_channel_vector(gamma, channels, op, "gamma");
    detail::require_channel_vector(beta, channels, op, "beta");
    detail::require_channel_vector(moving_mean, channels, op, "moving mean");
    detail::require_channel_vector(moving_variance, channels, op, "moving variance");
    ChannelAffine affine{std::vector<double>(channels), std::vector<double>(channels)};
    for (Index c = 0; c < channels; ++c) {
        affine.scale[c] = gamma.data()[c] / std::sqrt(static_cast<double>(moving_variance.data()[c]) + epsilon);
        affine.shift[c] = beta.data()[c] - moving_mean.data()[c] * affine.scale[c];
    }
    return affine;
}

// Training mode's statistics: from x (..., C), the batch mean and variance
// (in double, one pass); saved_mean, saved_inv_std (C) = the mean and
// 1 / sqrt(var + epsilon) for the backward pass; moving_mean and
// moving_variance (C) updated in place. Returns the affine map y = scale * x + shift
// that normalises x: scale = gamma * inv_std, shift = beta - mean * scale.
template <typename T>
ChannelAffine batchnorm_training_affine(const Tensor<T>& x, const Tensor<T>& gamma, const Tensor<T>& beta,
                                        double momentum, double epsilon, bool unbiased_moving_variance,
                                        Tensor<T>& moving_mean, Tensor<T>& moving_variance, Tensor<T>& saved_mean,
                                        Tensor<T>& saved_inv_std, const char* op) {
    const Index channels = detail::checked_channels(x, op), m = channels == 0 ? 0 : x.numel() / channels;
    BCNN_CHECK(m >= 1, op << ": input of shape " << x.shape() << " has no values to take statistics over");
    BCNN_CHECK(momentum >= 0 && momentum <= 1, op << ": momentum " << momentum << " is outside [0, 1]");
    BCNN_CHECK(epsilon > 0, op << ": epsilon " << epsilon << " must be positive");
    detail::require_channel_vector(gamma, channels, op, "gamma");
    detail::require_channel_vector(beta, channels, op, "beta");
    detail::require_channel_vector(moving_mean, channels, op, "moving mean");
    detail::require_channel_vector(moving_variance, channels, op, "moving variance");
    detail::require_channel_vector(saved_mean, channels, op, "saved mean");
    detail::require_channel_vector(saved_inv_std, channels, op, "saved inverse std");
    const RowMatrix<T> xm = x.as_rows(op);

    // One pass over x for both statistics, in double around a shift (the
    // first row): accurate in float too.
    const std::vector<double> origin(xm.row(0), xm.row(0) + channels);
    const std::vector<double> sums =
        detail::sum_over_rows(m, 2 * channels, [&](Index first, Index last, double* partial) {
            detail::accumulate_shifted_moments(xm, first, last, origin.data(), partial);
        });
    std::vector<double> mean(channels), variance(channels);
    for (Index c = 0; c < channels; ++c) {
        const double mean_shift = sums[c] / static_cast<double>(m);
        mean[c] = origin[c] + mean_shift;
        variance[c] = std::max(0.0, sums[channels + c] / static_cast<double>(m) - mean_shift * mean_shift);
    }

    // Bessel's correction for the moving variance (m = 1 has none: Keras then keeps var).
    const double moving_correction = unbiased_moving_variance && m > 1 ? double(m) / double(m - 1) : 1.0;
    ChannelAffine affine{std::vector<double>(channels), std::vector<double>(channels)};
    for (Index c = 0; c < channels; ++c) {
        const double inv_std = 1.0 / std::sqrt(variance[c] + epsilon);
        affine.scale[c] = gamma.data()[c] * inv_std;
        affine.shift[c] = beta.data()[c] - mean[c] * affine.scale[c];
        saved_mean.data()[c] = static_cast<T>(mean[c]);
        saved_inv_std.data()[c] = static_cast<T>(inv_std);
        T& mm = moving_mean.data()[c];
        T& mv = moving_variance.data()[c];
        mm = static_cast<T>(mm * momentum + mean[c] * (1 - momentum));
        mv = static_cast<T>(mv * momentum + variance[c] * moving_correction * (1 - momentum));
    }
    return affine;
}

// Training mode. x (..., C), gamma, beta (C) -> y (same as x), saved_mean,
// saved_inv_std (C) = batch mean and 1 / sqrt(batch var + epsilon) for the
// backward pass; moving_mean, moving_variance (C) are updated in place.
template <typename T>
void batchnorm_forward_training(const Tensor<T>& x, const Tensor<T>& gamma, const Tensor<T>& beta, double momentum,
                                double epsilon, bool unbiased_moving_variance, Tensor<T>& moving_mean,
                                Tensor<T>& moving_variance, Tensor<T>& y, Tensor<T>& saved_mean,
                                Tensor<T>& saved_inv_std) {
    const char* op = "batchnorm_forward_training";
    detail::checked_channels(x, op);
    detail::require_shape(y, x.shape(), op, "output");
    const ChannelAffine affine = batchnorm_training_affine(x, gamma, beta, momentum, epsilon, unbiased_moving_variance,
                                                           moving_mean, moving_variance, saved_mean, saved_inv_std, op);
    detail::scale_shift_channels(x, affine, y, op);
}

// Inference mode. x (..., C), gamma, beta, moving_mean, moving_variance (C) -> y (same as x)
template <typename T>
void batchnorm_forward_inference(const Tensor<T>& x, const Tensor<T>& gamma, const Tensor<T>& beta,
                                 const Tensor<T>& moving_mean, const Tensor<T>& moving_variance, double epsilon,
                                 Tensor<T>& y) {
    const char* op = "batchnorm_forward_inference";
    const Index channels = detail::checked_channels(x, op);
    const ChannelAffine affine =
        batchnorm_inference_affine(gamma, beta, moving_mean, moving_variance, epsilon, channels, op);
    detail::require_shape(y, x.shape(), op, "output");
    detail::scale_shift_channels(x, affine, y, op);
}

// Training-mode backward: the gradient flows through the batch statistics.
// x, dy (..., C), gamma, saved_mean, saved_inv_std (C) -> dx (..., C),
// d_gamma, d_beta (C); each output may be nullptr when not wanted.
template <typename T>
void batchnorm_backward_training(const Tensor<T>& x, const Tensor<T>& gamma, const Tensor<T>& saved_mean,
                                 const Tensor<T>& saved_inv_std, const Tensor<T>& dy, OptionalOutput<T> dx,
                                 OptionalOutput<T> d_gamma, OptionalOutput<T> d_beta) {
    const char* op = "batchnorm_backward_training";
    const detail::BackwardStatistics s = detail::training_backward_statistics(x, gamma, saved_mean, saved_inv_std, op);
    detail::batchnorm_backward(op, x, gamma, s.mean, s.inv_std, dy, true, dx, d_gamma, d_beta);
}

// Inference-mode backward (frozen BatchNorm): the moving statistics are constants.
// x, dy (..., C), gamma, moving_mean, moving_variance (C) -> dx (..., C),
// d_gamma, d_beta (C); each output may be nullptr when not wanted.
template <typename T>
void batchnorm_backward_inference(const Tensor<T>& x, const Tensor<T>& gamma, const Tensor<T>& moving_mean,
                                  const Tensor<T>& moving_variance, double epsilon, const Tensor<T>& dy,
                                  OptionalOutput<T> dx, OptionalOutput<T> d_gamma, OptionalOutput<T> d_beta) {
    const char* op = "batchnorm_backward_inference";
    const detail::BackwardStatistics s =
        detail::inference_backward_statistics(x, gamma, moving_mean, moving_variance, epsilon, op);
    detail::batchnorm_backward(op, x, gamma, s.mean, s.inv_std, dy, false, dx, d_gamma, d_beta);
}

}  // namespace cpu
}  // namespace bcnn

// cuda::batchnorm_* (declared in include/bcnn/backend/cuda/batchnorm.hpp),
// the CPU kernels' semantics, with cuDNN's CUDNN_BATCHNORM_SPATIAL calls:
// per-channel statistics over every axis but the last. cuDNN sees a 4-D x as
// the NHWC tensor (N, H, W, C) and any other rank as (rows, 1, 1, C); the
// per-channel vectors as 1 x C x 1 x 1.
//
// Moving statistics. cuDNN's running average is running * (1 - factor) +
// batch * factor, and it averages the UNBIASED batch variance
// (sum / (m - 1)). Keras averages the unbiased variance for 4-D inputs and
// the biased one (sum / m) otherwise, and with a single value per channel
// (m = 1, where cuDNN's m / (m - 1) is 0 / 0) it averages 0. So cuDNN runs
// with factor 1 into zeroed scratch, which then holds the batch mean and the
// unbiased batch variance exactly as cuDNN computed them, and a small kernel
// (batchnorm_kernels.cu) applies the CPU's formula in double:
//   moving = moving * momentum + batch * (1 - momentum),
// the variance term scaled by 1 (unbiased), (m - 1) / m (biased) or 0 (m = 1).
// The saved statistics come straight from cuDNN: the batch mean and
// 1 / sqrt(biased variance + epsilon), as cpu::batchnorm_forward_training saves.
//
// Backward, training: cudnnBatchNormalizationBackward given the saved mean and
// inverse std, which it uses instead of recomputing; it always writes dx,
// d_gamma and d_beta, so the unwanted ones go to scratch. Its epsilon argument
// is read only when it recomputes the statistics, which it never does here:
// it gets cpu::kBatchNormEpsilon (the CPU signature has none).
// Backward, inference (frozen BN): no cuDNN call exists; d_beta = sum(dy) and
// d_gamma = sum(dy * xhat) are deterministic column sums in double
// (reduce_kernels.cu), dx = gamma * inv_std * dy one kernel, the CPU's
// arithmetic.
//
// Views and aliasing: as in conv2d.cpp, channel slices are packed into scratch
// and outputs computed packed and copied into slices. An output sharing
// storage with an input cuDNN reads (y = x in place, dx = dy) is computed in
// scratch too: cuDNN does not promise in-place batch norm.
//
// Folding (fold_batchnorm): cpu::fold_batchnorm's checks and messages with
// device tensors, then one kernel (batchnorm_kernels.cu) with its arithmetic.

#include "bcnn/backend/cuda/batchnorm.hpp"

#include <initializer_list>
#include <sstream>
#include <type_traits>

#include "argument_checks.hpp"
#include "batchnorm_kernels.hpp"
#include "bcnn/kernels/cpu/batchnorm.hpp"
#include "nhwc_staging.hpp"
#include "reduce_kernels.hpp"
#include "stream.hpp"

namespace bcnn {
namespace cuda {

namespace {

// Checks that x (..., C) is a device tensor of rank >= 2; returns C.
template <typename T>
Index checked_channels(const Tensor<T>& x, const char* op) {
    detail::require_device(x, op, "input");
    BCNN_CHECK(x.rank() >= 2, op << ": input must have a batch axis and a channel axis, got shape " << x.shape());
    return x.dim(-1);
}

// A per-channel parameter or statistic: shape (C), contiguous, on the device.
template <typename T>
void require_channel_vector(const Tensor<T>& t, Index channels, const char* op, const char* name) {
    detail::require_shape(t, Shape{channels}, op, name);
    detail::require_contiguous(t, op, name);
}

void require_epsilon(double epsilon, const char* op) {
    BCNN_CHECK(epsilon > 0 && epsilon >= CUDNN_BN_MIN_EPSILON,
               op << ": epsilon " << epsilon << " must be positive and at least cuDNN's CUDNN_BN_MIN_EPSILON ("
                  << CUDNN_BN_MIN_EPSILON << ")");
}

// x, y, dy or dx as cuDNN sees it: (N, H, W, C) for 4-D tensors, else (rows, 1, 1, C).
template <typename T>
detail::TensorLayout batchnorm_layout(const Tensor<T>& t, const char* what) {
    if (t.rank() == 4) return detail::layout_of(t, what);
    const RowMatrix<T> m = t.as_rows(what);
    return detail::strided_nhwc(m.rows, 1, 1, m.cols, 1, 1, m.ld);
}

// One batch norm call: the layout of x (and so of y, dy, dx), descriptors, staging.
template <typename T>
class BatchNorm {
public:
    BatchNorm(const Tensor<T>& x, const char* op)
        : staging_(detail::cudnn_context(), describe(op, x)),
          layout_(batchnorm_layout(x, "cuda::batchnorm input")),
          packed_(detail::packed_nhwc(layout_.n, layout_.h, layout_.w, layout_.c)),
          desc_(detail::cudnn_data_type<T>(), packed_, where()),
          channel_desc_(detail::cudnn_data_type<T>(), detail::packed_nhwc(1, 1, 1, layout_.c), where()) {}

    const std::string& where() const { return staging_.where(); }
    cudnnHandle_t handle() const { return staging_.handle(); }
    cudnnTensorDescriptor_t desc() const { return desc_.get(); }
    cudnnTensorDescriptor_t channel_desc() const { return channel_desc_.get(); }

    // An input (x or dy) as cuDNN reads it: itself when packed, else a packed copy in `slot`.
    const T* input(const Tensor<T>& t, detail::Scratch slot) const {
        if (t.is_contiguous()) return t.data();
        T* staged = staging_.scratch(slot, packed_);
        staging_.copy(batchnorm_layout(t, "cuda::batchnorm input"), t.data(), packed_, staged);
        return staged;
    }

    // Where cuDNN writes an output (y or dx): itself when packed and sharing
    // no storage with `inputs`, else scratch `slot` (see finish_output).
    T* output(Tensor<T>& out, std::initializer_list<const Tensor<T>*> inputs, detail::Scratch slot) const {
        bool direct = out.is_contiguous();
        for (const Tensor<T>* in : inputs) direct = direct && in->storage() != out.storage();
        return direct ? out.data() : scratch(slot);
    }
    // Scratch `slot` with room for one tensor of x's extents.
    T* scratch(detail::Scratch slot) const { return staging_.scratch(slot, packed_); }
    void finish_output(const T* computed, Tensor<T>& out) const {
        if (computed != out.data())
            staging_.copy(packed_, computed, batchnorm_layout(out, "cuda::batchnorm output"), out.data());
    }

    // 2 * C elements of scratch (two per-channel vectors), zeroed.
    T* channel_pair() const {
        const detail::TensorLayout pair = detail::packed_nhwc(1, 1, 1, 2 * layout_.c);
        T* data = staging_.scratch(detail::Scratch::statistics, pair);
        BCNN_CUDA_CHECK(cudaMemsetAsync(data, 0, detail::bytes_of<T>(2 * layout_.c), detail::context_stream()), where());
        return data;
    }

private:
    static std::string describe(const char* op, const Tensor<T>& x) {
        std::ostringstream out;
        out << op << " on input " << x.shape() << " (" << (std::is_same<T, float>::value ? "float" : "double") << ")";
        return out.str();
    }

    detail::Staging<T> staging_;
    detail::TensorLayout layout_, packed_;
    detail::TensorDescriptor desc_, channel_desc_;
};

// x (..., C), gamma, beta (C) -> y, saved_mean, saved_inv_std (C); moving statistics updated
template <typename T>
void batchnorm_forward_training_on_device(const Tensor<T>& x, const Tensor<T>& gamma, const Tensor<T>& beta,
                                          double momentum, double epsilon, bool unbiased_moving_variance,
                                          Tensor<T>& moving_mean, Tensor<T>& moving_variance, Tensor<T>& y,
                                          Tensor<T>& saved_mean, Tensor<T>& saved_inv_std) {
    const char* op = "cuda::batchnorm_forward_training";
    const Index channels = checked_channels(x, op), m = channels == 0 ? 0 : x.numel() / channels;
    BCNN_CHECK(m >= 1, op << ": input of shape " << x.shape() << " has no values to take statistics over");
    BCNN_CHECK(momentum >= 0 && momentum <= 1, op << ": momentum " << momentum << " is outside [0, 1]");
    require_epsilon(epsilon, op);
    require_channel_vector(gamma, channels, op, "gamma");
    require_channel_vector(beta, channels, op, "beta");
    require_channel_vector(moving_mean, channels, op, "moving mean");
    require_channel_vector(moving_variance, channels, op, "moving variance");
    require_channel_vector(saved_mean, channels, op, "saved mean");
    require_channel_vector(saved_inv_std, channels, op, "saved inverse std");
    detail::require_shape(y, x.shape(), op, "output");

    const BatchNorm<T> bn(x, op);
    const T* x_data = bn.input(x, detail::Scratch::input);
    T* y_data = bn.output(y, {&x}, detail::Scratch::output);
    T* batch = bn.channel_pair();  // batch mean, unbiased batch variance
    BCNN_CUDA_CHECK(cudnnBatchNormalizationForwardTraining(
                        bn.handle(), CUDNN_BATCHNORM_SPATIAL, detail::one<T>(), detail::zero<T>(), bn.desc(), x_data,
                        bn.desc(), y_data, bn.channel_desc(), gamma.data(), beta.data(), 1.0, batch, batch + channels,
                        epsilon, saved_mean.data(), saved_inv_std.data()),
                    bn.where());
    const double variance_factor = m == 1 ? 0.0 : unbiased_moving_variance ? 1.0 : double(m - 1) / double(m);
    BCNN_CUDA_CHECK(kernels::update_moving_statistics(moving_mean.data(), moving_variance.data(), batch,
                                                      batch + channels, channels, momentum, variance_factor),
                    bn.where() << ", moving statistics");
    bn.finish_output(y_data, y);
}

// x (..., C), gamma, beta, moving_mean, moving_variance (C) -> y
template <typename T>
void batchnorm_forward_inference_on_device(const Tensor<T>& x, const Tensor<T>& gamma, const Tensor<T>& beta,
                                           const Tensor<T>& moving_mean, const Tensor<T>& moving_variance,
                                           double epsilon, Tensor<T>& y) {
    const char* op = "cuda::batchnorm_forward_inference";
    const Index channels = checked_channels(x, op);
    require_epsilon(epsilon, op);
    require_channel_vector(gamma, channels, op, "gamma");
    require_channel_vector(beta, channels, op, "beta");
    require_channel_vector(moving_mean, channels, op, "moving mean");
    require_channel_vector(moving_variance, channels, op, "moving variance");
    detail::require_shape(y, x.shape(), op, "output");
    if (x.numel() == 0) return;

    const BatchNorm<T> bn(x, op);
    const T* x_data = bn.input(x, detail::Scratch::input);
    T* y_data = bn.output(y, {&x}, detail::Scratch::output);
    BCNN_CUDA_CHECK(cudnnBatchNormalizationForwardInference(
                        bn.handle(), CUDNN_BATCHNORM_SPATIAL, detail::one<T>(), detail::zero<T>(), bn.desc(), x_data,
                        bn.desc(), y_data, bn.channel_desc(), gamma.data(), beta.data(), moving_mean.data(),
                        moving_variance.data(), epsilon),
                    bn.where());
    bn.finish_output(y_data, y);
}

// x, dy (..., C), gamma, saved_mean, saved_inv_std (C) -> dx, d_gamma, d_beta, each optional
template <typename T>
void batchnorm_backward_training_on_device(const Tensor<T>& x, const Tensor<T>& gamma, const Tensor<T>& saved_mean,
                                           const Tensor<T>& saved_inv_std, const Tensor<T>& dy, Tensor<T>* dx,
                                           Tensor<T>* d_gamma, Tensor<T>* d_beta) {
    const char* op = "cuda::batchnorm_backward_training";
    const Index channels = checked_channels(x, op);
    require_channel_vector(gamma, channels, op, "gamma");
    require_channel_vector(saved_mean, channels, op, "saved mean");
    require_channel_vector(saved_inv_std, channels, op, "saved inverse std");
    BCNN_CHECK(x.numel() > 0, op << ": input of shape " << x.shape() << " is empty");
    detail::require_shape(dy, x.shape(), op, "output gradient");
    if (dx) detail::require_shape(*dx, x.shape(), op, "input gradient");
    if (d_gamma) require_channel_vector(*d_gamma, channels, op, "gamma gradient");
    if (d_beta) require_channel_vector(*d_beta, channels, op, "beta gradient");
    if (!dx && !d_gamma && !d_beta) return;

    const BatchNorm<T> bn(x, op);
    const T* x_data = bn.input(x, detail::Scratch::input);
    const T* dy_data = bn.input(dy, detail::Scratch::output_gradient);
    T* dx_data = dx ? bn.output(*dx, {&x, &dy}, detail::Scratch::input_gradient)
                    : bn.scratch(detail::Scratch::input_gradient);
    T* unwanted = bn.channel_pair();
    BCNN_CUDA_CHECK(cudnnBatchNormalizationBackward(
                        bn.handle(), CUDNN_BATCHNORM_SPATIAL, detail::one<T>(), detail::zero<T>(), detail::one<T>(),
                        detail::zero<T>(), bn.desc(), x_data, bn.desc(), dy_data, bn.desc(), dx_data,
                        bn.channel_desc(), gamma.data(), d_gamma ? d_gamma->data() : unwanted,
                        d_beta ? d_beta->data() : unwanted + channels, cpu::kBatchNormEpsilon, saved_mean.data(),
                        saved_inv_std.data()),
                    bn.where());
    if (dx) bn.finish_output(dx_data, *dx);
}

// x, dy (..., C), gamma, moving_mean, moving_variance (C) -> dx, d_gamma, d_beta, each optional
template <typename T>
void batchnorm_backward_inference_on_device(const Tensor<T>& x, const Tensor<T>& gamma, const Tensor<T>& moving_mean,
                                            const Tensor<T>& moving_variance, double epsilon, const Tensor<T>& dy,
                                            Tensor<T>* dx, Tensor<T>* d_gamma, Tensor<T>* d_beta) {
    const char* op = "cuda::batchnorm_backward_inference";
    const Index channels = checked_channels(x, op);
    require_epsilon(epsilon, op);
    require_channel_vector(gamma, channels, op, "gamma");
    require_channel_vector(moving_mean, channels, op, "moving mean");
    require_channel_vector(moving_variance, channels, op, "moving variance");
    detail::require_shape(dy, x.shape(), op, "output gradient");
    if (dx) detail::require_shape(*dx, x.shape(), op, "input gradient");
    if (d_gamma) require_channel_vector(*d_gamma, channels, op, "gamma gradient");
    if (d_beta) require_channel_vector(*d_beta, channels, op, "beta gradient");

    std::ostringstream where;
    where << op << " on input " << x.shape();
    const RowMatrix<T> xm = x.as_rows("cuda::batchnorm_backward_inference input");
    const RowMatrix<T> dym = dy.as_rows("cuda::batchnorm_backward_inference output gradient");
    if (d_gamma || d_beta) {
        double* partials = static_cast<double*>(detail::cudnn_context().scratch(
            detail::Scratch::workspace, sizeof(double) * kernels::column_sums_partials(dym.rows, channels, 1),
            where.str()));
        // Before dx: dx may be dy.
        if (d_beta)
            BCNN_CUDA_CHECK(kernels::column_sums(dym, 1, 1.0, d_beta->data(), channels, partials),
                            where.str() << ", beta gradient");
        if (d_gamma)
            BCNN_CUDA_CHECK(kernels::normalized_product_sums(dym, xm, moving_mean.data(), moving_variance.data(),
                                                             epsilon, d_gamma->data(), partials),
                            where.str() << ", gamma gradient");
    }
    if (dx)
        BCNN_CUDA_CHECK(kernels::frozen_batchnorm_input_gradient(
                            dym, gamma.data(), moving_variance.data(), epsilon,
                            dx->as_rows("cuda::batchnorm_backward_inference input gradient")),
                        where.str() << ", input gradient");
}

// weights (..., K), bias (K) or nullptr, gamma, beta, moving_mean, moving_variance (K)
// -> folded_weights (same shape as weights), folded_bias (K)
template <typename T>
void fold_batchnorm_on_device(const Tensor<T>& weights, const Tensor<T>* bias, const Tensor<T>& gamma,
                              const Tensor<T>& beta, const Tensor<T>& moving_mean, const Tensor<T>& moving_variance,
                              double epsilon, Tensor<T>& folded_weights, Tensor<T>& folded_bias) {
    const char* op = "cuda::fold_batchnorm";
    detail::require_device(weights, op, "weights");
    BCNN_CHECK(weights.rank() >= 1 && weights.numel() > 0,
               op << ": weights of shape " << weights.shape() << " have no output axis or are empty");
    detail::require_contiguous(weights, op, "weights");
    const Index channels = weights.dim(-1);
    BCNN_CHECK(epsilon > 0, op << ": epsilon " << epsilon << " must be positive");
    require_channel_vector(gamma, channels, op, "gamma");
    require_channel_vector(beta, channels, op, "beta");
    require_channel_vector(moving_mean, channels, op, "moving mean");
    require_channel_vector(moving_variance, channels, op, "moving variance");
    if (bias) require_channel_vector(*bias, channels, op, "bias");
    detail::require_shape(folded_weights, weights.shape(), op, "folded weights");
    detail::require_contiguous(folded_weights, op, "folded weights");
    require_channel_vector(folded_bias, channels, op, "folded bias");

    std::ostringstream where;
    where << op << " of weights " << weights.shape() << " (" << (std::is_same<T, float>::value ? "float" : "double")
          << ")";
    BCNN_CUDA_CHECK(kernels::fold_batchnorm(weights.data(), bias ? bias->data() : nullptr, gamma.data(), beta.data(),
                                            moving_mean.data(), moving_variance.data(), epsilon, weights.numel(),
                                            channels, folded_weights.data(), folded_bias.data()),
                    where.str());
}

}  // namespace

void batchnorm_forward_training(const Tensor<float>& x, const Tensor<float>& gamma, const Tensor<float>& beta,
                                double momentum, double epsilon, bool unbiased_moving_variance,
                                Tensor<float>& moving_mean, Tensor<float>& moving_variance, Tensor<float>& y,
                                Tensor<float>& saved_mean, Tensor<float>& saved_inv_std) {
    batchnorm_forward_training_on_device(x, gamma, beta, momentum, epsilon, unbiased_moving_variance, moving_mean,
                                         moving_variance, y, saved_mean, saved_inv_std);
}
void batchnorm_forward_training(const Tensor<double>& x, const Tensor<double>& gamma, const Tensor<double>& beta,
                                double momentum, double epsilon, bool unbiased_moving_variance,
                                Tensor<double>& moving_mean, Tensor<double>& moving_variance, Tensor<double>& y,
                                Tensor<double>& saved_mean, Tensor<double>& saved_inv_std) {
    batchnorm_forward_training_on_device(x, gamma, beta, momentum, epsilon, unbiased_moving_variance, moving_mean,
                                         moving_variance, y, saved_mean, saved_inv_std);
}
void batchnorm_forward_inference(const Tensor<float>& x, const Tensor<float>& gamma, const Tensor<float>& beta,
                                 const Tensor<float>& moving_mean, const Tensor<float>& moving_variance,
                                 double epsilon, Tensor<float>& y) {
    batchnorm_forward_inference_on_device(x, gamma, beta, moving_mean, moving_variance, epsilon, y);
}
void batchnorm_forward_inference(const Tensor<double>& x, const Tensor<double>& gamma, const Tensor<double>& beta,
                                 const Tensor<double>& moving_mean, const Tensor<double>& moving_variance,
                                 double epsilon, Tensor<double>& y) {
    batchnorm_forward_inference_on_device(x, gamma, beta, moving_mean, moving_variance, epsilon, y);
}
void batchnorm_backward_training(const Tensor<float>& x, const Tensor<float>& gamma, const Tensor<float>& saved_mean,
                                 const Tensor<float>& saved_inv_std, const Tensor<float>& dy, Tensor<float>* dx,
                                 Tensor<float>* d_gamma, Tensor<float>* d_beta) {
    batchnorm_backward_training_on_device(x, gamma, saved_mean, saved_inv_std, dy, dx, d_gamma, d_beta);
}
void batchnorm_backward_training(const Tensor<double>& x, const Tensor<double>& gamma,
                                 const Tensor<double>& saved_mean, const Tensor<double>& saved_inv_std,
                                 const Tensor<double>& dy, Tensor<double>* dx, Tensor<double>* d_gamma,
                                 Tensor<double>* d_beta) {
    batchnorm_backward_training_on_device(x, gamma, saved_mean, saved_inv_std, dy, dx, d_gamma, d_beta);
}
void batchnorm_backward_inference(const Tensor<float>& x, const Tensor<float>& gamma,
                                  const Tensor<float>& moving_mean, const Tensor<float>& moving_variance,
                                  double epsilon, const Tensor<float>& dy, Tensor<float>* dx, Tensor<float>* d_gamma,
                                  Tensor<float>* d_beta) {
    batchnorm_backward_inference_on_device(x, gamma, moving_mean, moving_variance, epsilon, dy, dx, d_gamma, d_beta);
}
void batchnorm_backward_inference(const Tensor<double>& x, const Tensor<double>& gamma,
                                  const Tensor<double>& moving_mean, const Tensor<double>& moving_variance,
                                  double epsilon, const Tensor<double>& dy, Tensor<double>* dx,
                                  Tensor<double>* d_gamma, Tensor<double>* d_beta) {
    batchnorm_backward_inference_on_device(x, gamma, moving_mean, moving_variance, epsilon, dy, dx, d_gamma, d_beta);
}
void fold_batchnorm(const Tensor<float>& weights, const Tensor<float>* bias, const Tensor<float>& gamma,
                    const Tensor<float>& beta, const Tensor<float>& moving_mean,
                    const Tensor<float>& moving_variance, double epsilon, Tensor<float>& folded_weights,
                    Tensor<float>& folded_bias) {
    fold_batchnorm_on_device(weights, bias, gamma, beta, moving_mean, moving_variance, epsilon, folded_weights,
                             folded_bias);
}
void fold_batchnorm(const Tensor<double>& weights, const Tensor<double>* bias, const Tensor<double>& gamma,
                    const Tensor<double>& beta, const Tensor<double>& moving_mean,
                    const Tensor<double>& moving_variance, double epsilon, Tensor<double>& folded_weights,
                    Tensor<double>& folded_bias) {
    fold_batchnorm_on_device(weights, bias, gamma, beta, moving_mean, moving_variance, epsilon, folded_weights,
                             folded_bias);
}

}  // namespace cuda
}  // namespace bcnn

#pragma once
// Batch normalisation followed by max pooling over windows that do not
// overlap (Keras BatchNormalization then MaxPooling2D with strides >= pool
// size: the custom CNN's four blocks), without writing the normalised
// tensor out:
//   forward:  x (N, H, W, C)  ->  pooled (N, OH, OW, C) = max_pool(batchnorm(x))
//   backward: x, dy (N, OH, OW, C)  ->  dx (N, H, W, C), d_gamma, d_beta (C)
// Exactly what batchnorm.hpp then pool2d.hpp compute, in the same float
// operations: the normalised value y = x * scale + shift
// (scale_shift_vector) is recomputed wherever it is needed, and the
// pooling's gradient (dy at each window's first maximum of y, zero
// elsewhere) is never written out:
//   - the gradient sums of batch normalisation, sum(dy') and
//     sum(dy' * (x - mean)) over every pixel, where dy' is the pooling's
//     input gradient, are sums over the windows' maxima only;
//   - dx = a * dy' + b * x + d is written in one pass, dy' taken from dy at
//     the maxima and 0 elsewhere (pixels outside every window too).
// The separate layers write and read back the normalised tensor and the
// pooling's input gradient, both x's size. Measured against them (2x2/2
// pools, batch 32, 2 threads, medians of 15 interleaved runs on the shared
// 2-core Zen 3): forward 0.62-0.74x the time for the custom CNN's blocks
// (32 @75 to 256 @9), backward 0.74-0.82x for 32 @75 and 64 @37, about the
// same (0.98-1.05x) for 128 @18 and 256 @9, where the tensors stay in cache.
// The sums run in double over a fixed split of the output rows, as
// batchnorm.hpp's over its rows: results depend only on the shapes, not on
// the thread count (they differ from the separate layers' in the order of
// the additions only).
// x and dx may be channel-slice views; gamma, beta and the statistics (C)
// must be contiguous.

#include <algorithm>
#include <vector>

#include "bcnn/kernels/cpu/batchnorm.hpp"
#include "bcnn/kernels/cpu/pool2d.hpp"

namespace bcnn {
namespace cpu {

// Whether batchnorm_max_pool_* takes this window: windows that do not overlap.
inline bool batchnorm_max_pool_applies(const Window2D& window) { return detail::pool_windows_disjoint(window); }

namespace detail {

// Checks x (N, H, W, C) and the window; returns the window's geometry.
template <typename T>
WindowGeometry checked_batchnorm_max_pool_geometry(const Tensor<T>& x, const Window2D& window, const char* op) {
    checked_channels(x, op);
    require_rank(x, 4, op, "input");
    BCNN_CHECK(batchnorm_max_pool_applies(window),
               op << ": takes windows that do not overlap (strides >= pool size), got " << window);
    return pool_geometry(x.shape(), window, op);
}

// Checks x, the window and the forward's output, before anything is computed or updated.
template <typename T>
void check_batchnorm_max_pool_forward(const Tensor<T>& x, const Window2D& window, const Tensor<T>& pooled,
                                      const char* op) {
    checked_batchnorm_max_pool_geometry(x, window, op);
    require_shape(pooled, pool2d_output_shape(x.shape(), window), op, "output");
}

// pooled (N, OH, OW, C) = the maximum of each window of y = affine(x), by
// max_pool2d_forward's traversal and rule (for_each_pool_window, window_max_of).
template <typename T>
void batchnorm_max_pool(const Tensor<T>& x, const ChannelAffine& affine, const Window2D& window, Tensor<T>& pooled,
                        const char* op) {
    const ChannelAffineOf<T> map(affine);
    const Index channels = x.dim(3);
    const auto reduce = [&](T* out, const PoolCover& cover, const auto& input_row) {
        for (Index c = 0; c < channels; c += simd::width<T>) {
            const int lanes = lanes_at<T>(c, channels);
            store_lanes(out + c, window_max_of<T>(cover, [&](Index ih, Index iw) {
                            return map.apply(load_lanes(input_row(ih, iw) + c, lanes), c, lanes);
                        }),
                        lanes);
        }
    };
    for_each_pool_window(x, window, pooled, op, reduce);
}

// One image of x as the backward reads it, and the affine map's values.
// Held by value and copied into the loops: simd::store writes through
// memcpy, which may alias anything, so values read through a reference (or
// from memory) are read again after every store; the loops below load what
// they reuse into locals first.
template <typename T>
struct BatchNormPoolImage {
    const T* first;  // the image's first pixel
    Index ld, in_w;
    const T *scale, *shift;

    const T* pixel(Index ih, Index iw) const { return first + (ih * in_w + iw) * ld; }
};

template <typename T>
BatchNormPoolImage<T> batchnorm_pool_image(const RowMatrix<T>& xm, const ChannelAffineOf<T>& map, Index first_pixel,
                                           Index in_w) {
    return {xm.row(first_pixel), xm.ld, in_w, map.scale.data(), map.shift.data()};
}

// For channels [c, c + lanes) of a window: the position of the first
// maximum of y = x * scale + shift (first_max_position_of).
template <typename T>
simd::Lanes<T> batchnorm_pool_first_max(const BatchNormPoolImage<T> image, const PoolCover& cover, Index c, int lanes) {
    const T *scale = image.scale + c, *shift = image.shift + c;
    return first_max_position_of<T>(cover, [=](Index ih, Index iw) {
        return scale_shift_vector(load_lanes(image.pixel(ih, iw) + c, lanes), scale, shift, lanes);
    });
}

// The batch-normalisation gradient sums over the windows of output rows
// [first, last): sum[c] += dy, sum[C + c] += dy * (x - mean) at each
// window's maximum. `at_max` is scratch for one output row (OW x C).
template <typename T>
void accumulate_pooled_gradient_sums(const RowMatrix<T>& xm, const RowMatrix<T>& dym, const ChannelAffineOf<T>& map,
                                     const WindowGeometry& g, const Window2D& window, Index first, Index last,
                                     const double* mean, T* at_max, double* sum) {
    const Index channels = xm.cols;
    for (Index image_row = first; image_row < last; ++image_row) {
        const Index n = image_row / g.out_h, oh = image_row % g.out_h;
        const BatchNormPoolImage<T> image = batchnorm_pool_image(xm, map, n * g.in_h * g.in_w, g.in_w);
        for (Index ow = 0; ow < g.out_w; ++ow) {
            const PoolCover cover = pool_cover(g, window, oh, ow);
            for (Index c = 0; c < channels; c += simd::width<T>) {
                const int lanes = lanes_at<T>(c, channels);
                const simd::Lanes<T> position = batchnorm_pool_first_max(image, cover, c, lanes);
                simd::Vec<T> value = {};
                simd::Lanes<T> current = {};
                for (Index ih = cover.h_begin; ih < cover.h_end; ++ih)
                    for (Index iw = cover.w_begin; iw < cover.w_end; ++iw) {
                        value = position == current ? load_lanes(image.pixel(ih, iw) + c, lanes) : value;
                        current += 1;
                    }
                store_lanes(at_max + ow * channels + c, value, lanes);
            }
        }
        const RowMatrix<T> maxima{at_max, g.out_w, channels, channels};
        const RowMatrix<T> row_grad{dym.row(image_row * g.out_w), g.out_w, channels, dym.ld};
        accumulate_gradient_sums(maxima, row_grad, 0, g.out_w, mean, sum);
    }
}

// dx = a * dy' + b * x + d (batchnorm_input_gradient) over one image's input
// pixels that output row oh owns (visit_disjoint_pool_row), dy' being the
// window's dy (row_grad, OW x C) at its first maximum of y and 0 elsewhere.
// dx_first: the image's first pixel of dx, pixels dx_ld apart.
template <typename T>
void batchnorm_max_pool_input_gradient_row(const BatchNormPoolImage<T> image, T* dx_first, Index dx_ld,
                                           const T* row_grad, const BatchNormGradientCoefficients<T>& k,
                                           const WindowGeometry& g, const Window2D& window, Index oh) {
    const Index channels = static_cast<Index>(k.a.size()), in_w = g.in_w;
    const T *a = k.a.data(), *b = k.b.data(), *d = k.d.data();
    visit_disjoint_pool_row(
        g, window, oh,
        [=](Index h_begin, Index h_end, Index w_begin, Index w_end) {
            for (Index c = 0; c < channels; c += simd::width<T>) {
                const int lanes = lanes_at<T>(c, channels);
                const simd::Vec<T> a_c = load_lanes(a + c, lanes), b_c = load_lanes(b + c, lanes),
                                   d_c = load_lanes(d + c, lanes), zero = {};
                for (Index ih = h_begin; ih < h_end; ++ih)
                    for (Index iw = w_begin; iw < w_end; ++iw)
                        store_lanes(dx_first + (ih * in_w + iw) * dx_ld + c,
                                    batchnorm_input_gradient<T>(a_c, b_c, d_c, zero,
                                                             load_lanes(image.pixel(ih, iw) + c, lanes)),
                                    lanes);
            }
        },
        [=](Index ow, const PoolCover& cover) {
            const T* grad = row_grad + ow * channels;
            for (Index c = 0; c < channels; c += simd::width<T>) {
                const int lanes = lanes_at<T>(c, channels);
                const simd::Lanes<T> position = batchnorm_pool_first_max(image, cover, c, lanes);
                const simd::Vec<T> window_grad = load_lanes(grad + c, lanes), zero = {};
                const simd::Vec<T> a_c = load_lanes(a + c, lanes), b_c = load_lanes(b + c, lanes),
                                   d_c = load_lanes(d + c, lanes);
                simd::Lanes<T> current = {};
                for (Index ih = cover.h_begin; ih < cover.h_end; ++ih)
                    for (Index iw = cover.w_begin; iw < cover.w_end; ++iw) {
                        const simd::Vec<T> share = position == current ? window_grad : zero;
                        store_lanes(dx_first + (ih * in_w + iw) * dx_ld + c,
                                    batchnorm_input_gradient<T>(a_c, b_c, d_c, share,
                                                             load_lanes(image.pixel(ih, iw) + c, lanes)),
                                    lanes);
                        current += 1;
                    }
            }
        });
}

// The backward given the forward's statistics (batchnorm_backward's arguments).
template <typename T>
void batchnorm_max_pool_backward(const char* op, const Tensor<T>& x, const Tensor<T>& gamma,
                                 const std::vector<double>& mean, const std::vector<double>& inv_std,
                                 const ChannelAffine& affine, const Window2D& window, const Tensor<T>& dy,
                                 bool batch_statistics, OptionalOutput<T> dx, OptionalOutput<T> d_gamma,
                                 OptionalOutput<T> d_beta) {
    const WindowGeometry g = checked_batchnorm_max_pool_geometry(x, window, op);
    require_shape(dy, pool2d_output_shape(x.shape(), window), op, "output gradient");
    require_batchnorm_gradients(x, dx, d_gamma, d_beta, op);
    const Index channels = x.dim(3), m = x.numel() / std::max<Index>(channels, 1);
    const Index out_rows = x.dim(0) * g.out_h;
    const ChannelAffineOf<T> map(affine);
    const RowMatrix<T> xm = x.as_rows(op), dym = dy.as_rows(op);
    std::vector<double> sums;
    if (batchnorm_needs_gradient_sums(batch_statistics, d_gamma, d_beta))
        sums = sum_over_rows(out_rows, 2 * channels, [&](Index first, Index last, double* partial) {
            std::vector<T> at_max(static_cast<std::size_t>(g.out_w * channels));
            accumulate_pooled_gradient_sums(xm, dym, map, g, window, first, last, mean.data(), at_max.data(),
                                            partial);
        }, window.kernel_h * g.in_w * channels);
    const BatchNormGradientCoefficients<T> k =
        batchnorm_gradient_coefficients(gamma, mean, inv_std, std::move(sums), m, batch_statistics, d_gamma, d_beta);
    if (!dx || dx->numel() == 0) return;
    const RowMatrix<T> dxm = dx->as_rows(op);
    const Index pixels = g.in_h * g.in_w;
    parallel_for(0, out_rows, [&](Index image_row) {
        const Index n = image_row / g.out_h;
        batchnorm_max_pool_input_gradient_row(batchnorm_pool_image(xm, map, n * pixels, g.in_w), dxm.row(n * pixels),
                                              dxm.ld, dym.row(image_row * g.out_w), k, g, window,
                                              image_row % g.out_h);
    });
}

}  // namespace detail

// x (N, H, W, C) -> pooled (N, OH, OW, C), training mode: batchnorm_forward_training
// (the same statistics, moving statistics and saved_mean, saved_inv_std),
// then max_pool2d_forward with `window`, which must not overlap. Returns
// the normalising map, which the backward takes.
template <typename T>
ChannelAffine batchnorm_max_pool_forward_training(const Tensor<T>& x, const Tensor<T>& gamma, const Tensor<T>& beta,
                                                  double momentum, double epsilon, bool unbiased_moving_variance,
                                                  Tensor<T>& moving_mean, Tensor<T>& moving_variance,
                                                  const Window2D& window, Tensor<T>& pooled, Tensor<T>& saved_mean,
                                                  Tensor<T>& saved_inv_std) {
    const char* op = "batchnorm_max_pool_forward_training";
    detail::check_batchnorm_max_pool_forward(x, window, pooled, op);
    const ChannelAffine affine = batchnorm_training_affine(x, gamma, beta, momentum, epsilon, unbiased_moving_variance,
                                                           moving_mean, moving_variance, saved_mean, saved_inv_std, op);
    detail::batchnorm_max_pool(x, affine, window, pooled, op);
    return affine;
}

// Inference mode: batchnorm_forward_inference then max_pool2d_forward.
// Returns the normalising map, which the backward takes.
template <typename T>
ChannelAffine batchnorm_max_pool_forward_inference(const Tensor<T>& x, const Tensor<T>& gamma, const Tensor<T>& beta,
                                                   const Tensor<T>& moving_mean, const Tensor<T>& moving_variance,
                                                   double epsilon, const Window2D& window, Tensor<T>& pooled) {
    const char* op = "batchnorm_max_pool_forward_inference";
    detail::check_batchnorm_max_pool_forward(x, window, pooled, op);
    const ChannelAffine affine =
        batchnorm_inference_affine(gamma, beta, moving_mean, moving_variance, epsilon, x.dim(3), op);
    detail::batchnorm_max_pool(x, affine, window, pooled, op);
    return affine;
}

// Training-mode backward: x (N, H, W, C), dy (N, OH, OW, C), gamma,
// saved_mean, saved_inv_std (C), and the forward's map -> dx (N, H, W, C),
// d_gamma, d_beta (C), each optional: max_pool2d_backward then
// batchnorm_backward_training.
template <typename T>
void batchnorm_max_pool_backward_training(const Tensor<T>& x, const Tensor<T>& gamma, const Tensor<T>& saved_mean,
                                          const Tensor<T>& saved_inv_std, const ChannelAffine& affine,
                                          const Window2D& window, const Tensor<T>& dy, OptionalOutput<T> dx,
                                          OptionalOutput<T> d_gamma, OptionalOutput<T> d_beta) {
    const char* op = "batchnorm_max_pool_backward_training";
    const detail::BackwardStatistics s = detail::training_backward_statistics(x, gamma, saved_mean, saved_inv_std, op);
    detail::batchnorm_max_pool_backward(op, x, gamma, s.mean, s.inv_std, affine, window, dy, true, dx, d_gamma, d_beta);
}

// Inference-mode backward (frozen BatchNorm): the moving statistics are
// constants; max_pool2d_backward then batchnorm_backward_inference.
template <typename T>
void batchnorm_max_pool_backward_inference(const Tensor<T>& x, const Tensor<T>& gamma, const Tensor<T>& moving_mean,
                                           const Tensor<T>& moving_variance, double epsilon,
                                           const ChannelAffine& affine, const Window2D& window, const Tensor<T>& dy,
                                           OptionalOutput<T> dx, OptionalOutput<T> d_gamma,
                                           OptionalOutput<T> d_beta) {
    const char* op = "batchnorm_max_pool_backward_inference";
    const detail::BackwardStatistics s =
        detail::inference_backward_statistics(x, gamma, moving_mean, moving_variance, epsilon, op);
    detail::batchnorm_max_pool_backward(op, x, gamma, s.mean, s.inv_std, affine, window, dy, false, dx, d_gamma,
                                        d_beta);
}

}  // namespace cpu
}  // namespace bcnn

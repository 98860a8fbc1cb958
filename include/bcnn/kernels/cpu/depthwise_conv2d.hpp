#pragma once
// Depthwise 2-D convolution, Keras DepthwiseConv2D layout.
//   x (N, H, W, C), weights (KH, KW, C, M), bias (C*M) or nullptr  ->  y (N, OH, OW, C*M)
//   y[n, oh, ow, c*M + m] = bias[c*M + m]
//       + sum_{kh, kw} x[n, oh*sh - pad_top + kh, ow*sw - pad_left + kw, c] * weights[kh, kw, c, m]
// M is the depth multiplier. Direct loops whose innermost loop runs over the
// channels, which are contiguous in NHWC, so the compiler vectorises them.

#include <algorithm>
#include <vector>

#include "bcnn/core/parallel.hpp"
#include "bcnn/kernels/cpu/checks.hpp"
#include "bcnn/kernels/cpu/window.hpp"

namespace bcnn {
namespace cpu {
namespace detail {

// Extents of one depthwise convolution, checked.
struct DepthwiseDims {
    Index batch = 0, channels = 0, multiplier = 0, kernel_h = 0, kernel_w = 0;
    Index stride_h = 1, stride_w = 1;
    WindowGeometry geometry;
    Index channels_out() const { return channels * multiplier; }
    Shape output_shape() const { return Shape{batch, geometry.out_h, geometry.out_w, channels_out()}; }
};

inline DepthwiseDims depthwise_dims(const Shape& x, const Shape& weights, const ConvParams& params, const char* op) {
    BCNN_CHECK(x.rank() == 4, op << ": input must be NHWC (rank 4), got shape " << x);
    BCNN_CHECK(weights.rank() == 4, op << ": depthwise weights must be (kh, kw, channels, multiplier), got shape "
                                       << weights);
    BCNN_CHECK(weights[2] == x[3], op << ": input " << x << " does not match depthwise weights " << weights
                                      << " (expected (kh, kw, " << x[3] << ", multiplier))");
    BCNN_CHECK(weights[3] >= 1, op << ": depthwise weights " << weights << " have a depth multiplier below 1");
    DepthwiseDims d;
    d.batch = x[0];
    d.channels = x[3];
    d.multiplier = weights[3];
    d.kernel_h = weights[0];
    d.kernel_w = weights[1];
    d.stride_h = params.stride_h;
    d.stride_w = params.stride_w;
    d.geometry = window_geometry(x[1], x[2], conv_window(d.kernel_h, d.kernel_w, params), op);
    return d;
}

template <typename T>
DepthwiseDims checked_depthwise_dims(const Tensor<T>& x, const Tensor<T>& weights, const ConvParams& params,
                                     const char* op) {
    require_rank(x, 4, op, "input");
    require_rank(weights, 4, op, "depthwise weights");
    require_contiguous(weights, op, "depthwise weights");
    return depthwise_dims(x.shape(), weights.shape(), params, op);
}

// out[c*M + m] += in[c] * w[c*M + m] for one pixel (also the weight gradient:
// w_grad[c*M + m] += in[c] * out_grad[c*M + m]).
template <typename T>
void depthwise_accumulate(T* out, const T* in, const T* w, Index channels, Index multiplier) {
    if (multiplier == 1) {
        for (Index c = 0; c < channels; ++c) out[c] += in[c] * w[c];
        return;
    }
    for (Index c = 0; c < channels; ++c)
        for (Index m = 0; m < multiplier; ++m) out[c * multiplier + m] += in[c] * w[c * multiplier + m];
}

// in_grad[c] += sum_m out_grad[c*M + m] * w[c*M + m] for one pixel.
template <typename T>
void depthwise_accumulate_input_grad(T* in_grad, const T* out_grad, const T* w, Index channels, Index multiplier) {
    if (multiplier == 1) {
        for (Index c = 0; c < channels; ++c) in_grad[c] += out_grad[c] * w[c];
        return;
    }
    for (Index c = 0; c < channels; ++c) {
        T sum = T(0);
        for (Index m = 0; m < multiplier; ++m) sum += out_grad[c * multiplier + m] * w[c * multiplier + m];
        in_grad[c] += sum;
    }
}

}  // namespace detail

// x (N, H, W, C), weights (KH, KW, C, M)  ->  (N, OH, OW, C*M)
inline Shape depthwise_conv2d_output_shape(const Shape& x, const Shape& weights, const ConvParams& params) {
    return detail::depthwise_dims(x, weights, params, "depthwise_conv2d").output_shape();
}

// x (N, H, W, C), weights (KH, KW, C, M), bias (C*M) or nullptr  ->  y (N, OH, OW, C*M)
template <typename T>
void depthwise_conv2d_forward(const Tensor<T>& x, const Tensor<T>& weights, OptionalInput<T> bias,
                              const ConvParams& params, Tensor<T>& y) {
    const char* op = "depthwise_conv2d_forward";
    const detail::DepthwiseDims d = detail::checked_depthwise_dims(x, weights, params, op);
    const WindowGeometry& g = d.geometry;
    const Index channels_out = d.channels_out();
    if (bias) {
        detail::require_shape(*bias, Shape{channels_out}, op, "bias");
        detail::require_contiguous(*bias, op, "bias");
    }
    detail::require_shape(y, d.output_shape(), op, "output");
    if (y.numel() == 0) return;
    const RowMatrix<T> xm = x.as_rows("depthwise_conv2d_forward input");
    const RowMatrix<T> ym = y.as_rows("depthwise_conv2d_forward output");
    const T* w = weights.data();
    const T* b = bias ? bias->data() : nullptr;
    parallel_for(0, d.batch * g.out_h, [&](Index image_row) {
        const Index n = image_row / g.out_h, oh = image_row % g.out_h;
        const Index top = oh * d.stride_h - g.pad_top;
        const Index kh_begin = std::max<Index>(0, -top), kh_end = std::min(d.kernel_h, g.in_h - top);
        for (Index ow = 0; ow < g.out_w; ++ow) {
            const Index left = ow * d.stride_w - g.pad_left;
            const Index kw_begin = std::max<Index>(0, -left), kw_end = std::min(d.kernel_w, g.in_w - left);
            T* out = ym.row(image_row * g.out_w + ow);
            for (Index j = 0; j < channels_out; ++j) out[j] = b ? b[j] : T(0);
            for (Index kh = kh_begin; kh < kh_end; ++kh)
                for (Index kw = kw_begin; kw < kw_end; ++kw) {
                    const T* in = xm.row((n * g.in_h + top + kh) * g.in_w + left + kw);
                    detail::depthwise_accumulate(out, in, w + (kh * d.kernel_w + kw) * channels_out, d.channels,
                                                 d.multiplier);
                }
        }
    });
}

// dy (N, OH, OW, C*M)  ->  dx (N, H, W, C), d_weights (KH, KW, C, M), d_bias (C*M);
// any may be nullptr when not needed. Weight and bias gradients are summed
// per chunk of output rows, then the chunks in order (deterministic).
template <typename T>
void depthwise_conv2d_backward(const Tensor<T>& x, const Tensor<T>& weights, const Tensor<T>& dy,
                               const ConvParams& params, OptionalOutput<T> dx, OptionalOutput<T> d_weights,
                               OptionalOutput<T> d_bias) {
    const char* op = "depthwise_conv2d_backward";
    const detail::DepthwiseDims d = detail::checked_depthwise_dims(x, weights, params, op);
    const WindowGeometry& g = d.geometry;
    const Index channels_out = d.channels_out();
    detail::require_shape(dy, d.output_shape(), op, "output gradient");
    if (dx) detail::require_shape(*dx, x.shape(), op, "input gradient");
    if (d_weights) {
        detail::require_shape(*d_weights, weights.shape(), op, "depthwise weights gradient");
        detail::require_contiguous(*d_weights, op, "depthwise weights gradient");
    }
    if (d_bias) {
        detail::require_shape(*d_bias, Shape{channels_out}, op, "bias gradient");
        detail::require_contiguous(*d_bias, op, "bias gradient");
    }
    const RowMatrix<T> xm = x.as_rows("depthwise_conv2d_backward input");
    const RowMatrix<T> dym = dy.as_rows("depthwise_conv2d_backward output gradient");
    const T* w = weights.data();

    if (dx && dx->numel() > 0) {
        // Gather: each input pixel sums over the output pixels whose window covers it.
        const RowMatrix<T> dxm = dx->as_rows("depthwise_conv2d_backward input gradient");
        parallel_for(0, d.batch * g.in_h, [&](Index image_row) {
            const Index n = image_row / g.in_h, ih = image_row % g.in_h;
            for (Index iw = 0; iw < g.in_w; ++iw) {
                T* in_grad = dxm.row(image_row * g.in_w + iw);
                std::fill(in_grad, in_grad + d.channels, T(0));
                for (Index kh = 0; kh < d.kernel_h; ++kh) {
                    const Index oh_scaled = ih + g.pad_top - kh;
                    if (oh_scaled < 0 || oh_scaled % d.stride_h != 0 || oh_scaled / d.stride_h >= g.out_h) continue;
                    for (Index kw = 0; kw < d.kernel_w; ++kw) {
                        const Index ow_scaled = iw + g.pad_left - kw;
                        if (ow_scaled < 0 || ow_scaled % d.stride_w != 0 || ow_scaled / d.stride_w >= g.out_w)
                            continue;
                        const T* out_grad =
                            dym.row((n * g.out_h + oh_scaled / d.stride_h) * g.out_w + ow_scaled / d.stride_w);
                        detail::depthwise_accumulate_input_grad(in_grad, out_grad,
                                                                w + (kh * d.kernel_w + kw) * channels_out,
                                                                d.channels, d.multiplier);
                    }
                }
            }
        });
    }

    if (!d_weights && !d_bias) return;
    const Index weight_count = d.kernel_h * d.kernel_w * channels_out;
    const int parts = num_threads();
    // Per part: the weight gradient partial, then the bias gradient partial.
    std::vector<std::vector<T>> partials(parts, std::vector<T>(weight_count + channels_out, T(0)));
    parallel_chunks(d.batch * g.out_h, parts, [&](int part, Index first, Index last) {
        T* w_grad = partials[part].data();
        T* b_grad = w_grad + weight_count;
        for (Index image_row = first; image_row < last; ++image_row) {
            const Index n = image_row / g.out_h, oh = image_row % g.out_h;
            const Index top = oh * d.stride_h - g.pad_top;
            const Index kh_begin = std::max<Index>(0, -top), kh_end = std::min(d.kernel_h, g.in_h - top);
            for (Index ow = 0; ow < g.out_w; ++ow) {
                const Index left = ow * d.stride_w - g.pad_left;
                const Index kw_begin = std::max<Index>(0, -left), kw_end = std::min(d.kernel_w, g.in_w - left);
                const T* out_grad = dym.row(image_row * g.out_w + ow);
                for (Index j = 0; j < channels_out; ++j) b_grad[j] += out_grad[j];
                if (!d_weights) continue;
                for (Index kh = kh_begin; kh < kh_end; ++kh)
                    for (Index kw = kw_begin; kw < kw_end; ++kw) {
                        const T* in = xm.row((n * g.in_h + top + kh) * g.in_w + left + kw);
                        detail::depthwise_accumulate(w_grad + (kh * d.kernel_w + kw) * channels_out, in,
                                                                 out_grad, d.channels, d.multiplier);
                    }
            }
        }
    });
    if (d_weights) {
        T* out = d_weights->data();
        std::fill(out, out + weight_count, T(0));
        for (const std::vector<T>& partial : partials)
            for (Index i = 0; i < weight_count; ++i) out[i] += partial[i];
    }
    if (d_bias) {
        T* out = d_bias->data();
        std::fill(out, out + channels_out, T(0));
        for (const std::vector<T>& partial : partials)
            for (Index j = 0; j < channels_out; ++j) out[j] += partial[weight_count + j];
    }
}

}  // namespace cpu
}  // namespace bcnn

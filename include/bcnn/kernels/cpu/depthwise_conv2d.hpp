#pragma once
// Depthwise 2-D convolution, Keras DepthwiseConv2D layout.
//   x (N, H, W, C), weights (KH, KW, C, M), bias (C*M) or nullptr  ->  y (N, OH, OW, C*M)
//   y[n, oh, ow, c*M + m] = bias[c*M + m]
//       + sum_{kh, kw} x[n, oh*sh - pad_top + kh, ow*sw - pad_left + kw, c] * weights[kh, kw, c, m]
// M is the depth multiplier.
//
// Multiplier 1 with fewer than 256 channels (depthwise_blocked_pays) is
// register blocked with simd::Vec<T> over the channels, which are
// contiguous in NHWC (the weights gradient of 3x3 kernels at stride 1 along
// the width, any channel count: depthwise_3x3.hpp):
//   forward: every output row (n, oh) is one parallel work item; groups of
//     CV = 4, 2 or 1 channel vectors x 8 / CV neighbouring output pixels are
//     accumulated in registers over all the taps (kernel rows in the padding
//     skipped for the whole row); the pixels whose window overhangs the left
//     or right edge go one by one with the kernel columns clipped. Channel
//     tails use load_part/store_part.
//   input gradient, stride 1: the same kernel run over dy with the flipped
//     kernel and padding (KH-1-pad_top, KW-1-pad_left).
//   weights gradient: for each output row and vector of channels, the sums
//     over the row's interior pixels for 3 kernel rows x 3 columns (3-wide
//     kernels; single taps otherwise) and the bias gradient are kept in
//     registers, then added to the chunk's own partial sums; edge pixels
//     are added tap by tap. Chunks of output rows are added in chunk order,
//     so the result depends only on the thread count.
// Otherwise (multipliers above 1, 256 channels or more, the input gradient
// for strides above 1) direct loops whose innermost loop runs over the
// channels, which the compiler vectorises.

#include <algorithm>
#include <type_traits>
#include <vector>

#include "bcnn/core/parallel.hpp"
#include "bcnn/kernels/cpu/column_sums.hpp"
#include "bcnn/kernels/cpu/depthwise_3x3.hpp"
#include "bcnn/kernels/cpu/depthwise_common.hpp"

namespace bcnn {
namespace cpu {
namespace detail {

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

// The output columns [begin, end) whose windows lie inside the input width.
struct InteriorColumns {
    Index begin = 0, end = 0;
};

inline InteriorColumns interior_columns(const DepthwiseDims& d) {
    const WindowGeometry& g = d.geometry;
    InteriorColumns cols;
    cols.begin = std::min(g.out_w, (g.pad_left + d.stride_w - 1) / d.stride_w);
    const Index last_start = g.in_w - d.kernel_w + g.pad_left;  // largest ow * stride_w that fits
    cols.end = last_start < 0 ? cols.begin : std::clamp(last_start / d.stride_w + 1, cols.begin, g.out_w);
    return cols;
}

// P output pixels x CV vectors of channels (multiplier 1; CV > 1 only for whole vectors):
//   out[p * out_step] = bias + sum_{i < rows, j < cols}
//       in[i * in_row + j * in_col + p * in_step] * w[i * w_row + j * w_col]
// in and w point at the first tap that lies inside the image; bias may be nullptr (zeros).
template <typename T, int P, int CV, bool Full>
void depthwise_pixels(const T* in, Index in_row, Index in_col, Index in_step, const T* w, Index w_row, Index w_col,
                      Index rows, Index cols, const T* bias, T* out, Index out_step, int lanes) {
    using V = simd::Vec<T>;
    constexpr int width = simd::width<T>;
    V acc[P][CV];
#pragma GCC unroll 16
    for (int v = 0; v < CV; ++v) {
        const V start = bias ? depthwise_load<T, Full>(bias + v * width, lanes) : V{};
#pragma GCC unroll 16
        for (int p = 0; p < P; ++p) acc[p][v] = start;
    }
    for (Index i = 0; i < rows; ++i) {
        const T* in_i = in + i * in_row;
        const T* w_i = w + i * w_row;
        for (Index j = 0; j < cols; ++j) {
            const T* src = in_i + j * in_col;
#pragma GCC unroll 16
            for (int v = 0; v < CV; ++v) {
                const V wv = depthwise_load<T, Full>(w_i + j * w_col + v * width, lanes);
#pragma GCC unroll 16
                for (int p = 0; p < P; ++p)
                    acc[p][v] += depthwise_load<T, Full>(src + p * in_step + v * width, lanes) * wv;
            }
        }
    }
#pragma GCC unroll 16
    for (int p = 0; p < P; ++p)
#pragma GCC unroll 16
        for (int v = 0; v < CV; ++v) depthwise_store<T, Full>(out + p * out_step + v * width, acc[p][v], lanes);
}

// Output row `image_row` (n * OH + oh) of a multiplier-1 depthwise
// convolution src -> dst with d's geometry: weights (KH, KW, C), bias (C) or
// nullptr. Channels go in groups of CV vectors, 8 / CV pixels at a time.
template <typename T, int CV>
void depthwise_row_blocked(const DepthwiseDims& d, const InteriorColumns& interior, const RowMatrix<T>& src, const T* w,
                           const T* bias, const RowMatrix<T>& dst, Index image_row) {
    constexpr int P = 8 / CV;
    const WindowGeometry& g = d.geometry;
    const Index n = image_row / g.out_h, oh = image_row % g.out_h;
    const Index top = oh * d.stride_h - g.pad_top;
    const Index kh_begin = std::max<Index>(0, -top), kh_end = std::min(d.kernel_h, g.in_h - top);
    const Index rows = std::max<Index>(0, kh_end - kh_begin);
    const Index in_col = src.ld, in_row = g.in_w * src.ld, in_step = d.stride_w * src.ld;
    const Index w_col = d.channels, w_row = d.kernel_w * d.channels;
    // Input pixel (top + kh_begin, 0) and the weights of kernel row kh_begin.
    const T* in_first = src.data + ((n * g.in_h + (rows > 0 ? top + kh_begin : 0)) * g.in_w) * src.ld;
    const T* w_first = w + (rows > 0 ? kh_begin : 0) * w_row;
    T* out_first = dst.row(image_row * g.out_w);

    // `pixels` pixels from ow, kernel columns [kw_begin, kw_begin + cols).
    auto block = [&](auto pixels, Index ow, Index kw_begin, Index cols) {
        const T* in = in_first + (ow * d.stride_w - g.pad_left + kw_begin) * in_col;
        const T* wt = w_first + kw_begin * w_col;
        T* out = out_first + ow * dst.ld;
        for_channel_vectors<T, CV>(d.channels, [&](auto full, auto vectors, Index c, int lanes) {
            depthwise_pixels<T, decltype(pixels)::value, decltype(vectors)::value, decltype(full)::value>(
                in + c, in_row, in_col, in_step, wt + c, w_row, w_col, rows, cols, bias ? bias + c : nullptr, out + c,
                dst.ld, lanes);
        });
    };
    // A pixel whose window overhangs the left or right edge: columns clipped to the image.
    auto edge_pixel = [&](Index ow) {
        const Index left = ow * d.stride_w - g.pad_left;
        const Index kw_begin = std::max<Index>(0, -left), kw_end = std::min(d.kernel_w, g.in_w - left);
        if (kw_end > kw_begin)
            block(std::integral_constant<int, 1>(), ow, kw_begin, kw_end - kw_begin);
        else
            block(std::integral_constant<int, 1>(), ow, -left, 0);  // no column inside: bias only
    };

    for (Index ow = 0; ow < interior.begin; ++ow) edge_pixel(ow);
    Index ow = interior.begin;
    for (; ow + P <= interior.end; ow += P) block(std::integral_constant<int, P>(), ow, 0, d.kernel_w);
    for (; ow < interior.end; ++ow) block(std::integral_constant<int, 1>(), ow, 0, d.kernel_w);
    for (ow = interior.end; ow < g.out_w; ++ow) edge_pixel(ow);
}

// When the register-blocked multiplier-1 kernels beat the channel-innermost
// loops. Measured single-threaded (CPU time, shared 2-core Zen 3, float,
// batch 32, 3x3 'same'), blocked / loops speed-ups, fwd, bwd_data, bwd_weights:
//   C=16 @75 3.2 5.2 3.9   C=32 @75 2.2 2.4 2.2   C=32 @37 2.2 1.9 3.0
//   C=64 @37 1.5 1.8 1.0   C=64 @18 2.0 2.1 3.2   C=128 @18 1.1 1.2 0.9-1.3
//   C=128 @9 1.3 1.6 2.1   C=256 @9 0.6-0.7 0.5-1.0 0.6-0.8
// hence fewer than 256 channels (a pixel's channels then span at most 8
// cache lines of floats).
inline bool depthwise_blocked_pays(const DepthwiseDims& d) { return d.multiplier == 1 && d.channels < 256; }

// Multiplier-1 depthwise convolution src -> dst over d's geometry, one
// output row per work item (depthwise_row_blocked_any: one output row).
// Channel groups of CV = 4 vectors (32 floats) x
// 2 pixels where the channels allow, else 2 vectors x 4 pixels or 1 x 8:
// with the wide groups, the loads run along whole cache lines of one pixel.
// Measured single-threaded, float, dw3x3_128_18 (batch 32, 5.3 MB per
// tensor, out of cache), CPU seconds for 300 calls: CV=4 x 2 pixels 0.45,
// 8 x 1 0.48, 2 x 4 0.93, 1 x 8 1.0, the channel-innermost loops 0.50;
// in L2 (batch 1): 0.25, 0.24, 0.22, -, 0.37.
template <typename T>
void depthwise_row_blocked_any(const DepthwiseDims& d, const InteriorColumns& interior, const RowMatrix<T>& src,
                               const T* w, const T* bias, const RowMatrix<T>& dst, Index image_row) {
    const Index vectors = d.channels / simd::width<T>;
    if (vectors >= 4)
        depthwise_row_blocked<T, 4>(d, interior, src, w, bias, dst, image_row);
    else if (vectors >= 2)
        depthwise_row_blocked<T, 2>(d, interior, src, w, bias, dst, image_row);
    else
        depthwise_row_blocked<T, 1>(d, interior, src, w, bias, dst, image_row);
}

template <typename T>
void depthwise_blocked(const DepthwiseDims& d, const RowMatrix<T>& src, const T* w, const T* bias,
                       const RowMatrix<T>& dst) {
    const InteriorColumns interior = interior_columns(d);
    parallel_for(0, d.batch * d.geometry.out_h, [&](Index image_row) {
        depthwise_row_blocked_any(d, interior, src, w, bias, dst, image_row);
    });
}

// The input gradient of a stride-1, multiplier-1 depthwise convolution is
// the depthwise convolution of dy with the kernel flipped in both axes and
// padding (KH-1-pad_top, KW-1-pad_left): its geometry maps dy to dx.
inline DepthwiseDims depthwise_input_gradient_dims(const DepthwiseDims& d) {
    DepthwiseDims t = d;
    t.geometry.in_h = d.geometry.out_h;
    t.geometry.in_w = d.geometry.out_w;
    t.geometry.out_h = d.geometry.in_h;
    t.geometry.out_w = d.geometry.in_w;
    t.geometry.pad_top = d.kernel_h - 1 - d.geometry.pad_top;
    t.geometry.pad_left = d.kernel_w - 1 - d.geometry.pad_left;
    return t;
}

// weights (KH, KW, C, 1) -> flipped[kh, kw, c] = weights[KH-1-kh, KW-1-kw, c].
template <typename T>
std::vector<T> depthwise_flipped_weights(const DepthwiseDims& d, const T* w) {
    std::vector<T> flipped(static_cast<std::size_t>(d.kernel_h * d.kernel_w * d.channels));
    for (Index kh = 0; kh < d.kernel_h; ++kh)
        for (Index kw = 0; kw < d.kernel_w; ++kw)
            std::copy_n(w + ((d.kernel_h - 1 - kh) * d.kernel_w + d.kernel_w - 1 - kw) * d.channels, d.channels,
                        flipped.data() + (kh * d.kernel_w + kw) * d.channels);
    return flipped;
}

// Weights gradient of one vector of channels over `pixels` interior pixels
// of one output row, for kernel rows [0, R) x columns [0, K) counted from
// `in` / `w_grad`: w_grad[r * w_row + k * w_col] += sum_p in[r * in_row + k * in_col + p * in_step] * dy[p * dy_step],
// and b_grad += sum_p dy[p * dy_step] when WithBias.
template <typename T, int R, int K, bool Full, bool WithBias>
void depthwise_weight_taps(const T* in, Index in_row, Index in_col, Index in_step, const T* dy, Index dy_step,
                           Index pixels, T* w_grad, Index w_row, Index w_col, T* b_grad, int lanes) {
    using V = simd::Vec<T>;
    V acc[R][K];
    V bias_acc{};
#pragma GCC unroll 16
    for (int r = 0; r < R; ++r)
#pragma GCC unroll 16
        for (int k = 0; k < K; ++k) acc[r][k] = V{};
    for (Index p = 0; p < pixels; ++p) {
        const V g = depthwise_load<T, Full>(dy + p * dy_step, lanes);
        if constexpr (WithBias) bias_acc += g;
        const T* src = in + p * in_step;
#pragma GCC unroll 16
        for (int r = 0; r < R; ++r)
#pragma GCC unroll 16
            for (int k = 0; k < K; ++k) acc[r][k] += depthwise_load<T, Full>(src + r * in_row + k * in_col, lanes) * g;
    }
#pragma GCC unroll 16
    for (int r = 0; r < R; ++r)
#pragma GCC unroll 16
        for (int k = 0; k < K; ++k) {
            T* out = w_grad + r * w_row + k * w_col;
            depthwise_store<T, Full>(out, depthwise_load<T, Full>(out, lanes) + acc[r][k], lanes);
        }
    if constexpr (WithBias) depthwise_store<T, Full>(b_grad, depthwise_load<T, Full>(b_grad, lanes) + bias_acc, lanes);
}

// Adds output row `image_row`'s contribution to the multiplier-1 weights
// gradient w_grad (KH, KW, C) and, when b_grad is not nullptr, the bias gradient (C).
template <typename T>
void depthwise_weight_gradient_row(const DepthwiseDims& d, const InteriorColumns& interior, const RowMatrix<T>& x,
                                   const RowMatrix<T>& dy, Index image_row, T* w_grad, T* b_grad) {
    const WindowGeometry& g = d.geometry;
    const Index channels = d.channels;
    const Index n = image_row / g.out_h, oh = image_row % g.out_h;
    const Index top = oh * d.stride_h - g.pad_top;
    const Index kh_begin = std::max<Index>(0, -top), kh_end = std::min(d.kernel_h, g.in_h - top);
    const Index in_col = x.ld, in_row = g.in_w * x.ld, in_step = d.stride_w * x.ld;
    const Index w_col = channels, w_row = d.kernel_w * channels;
    const T* dy_row = dy.row(image_row * g.out_w);

    // Interior pixels: taps in register blocks of 3 x 3 (3-wide kernels) or one by one.
    const Index pixels = interior.end - interior.begin;
    if (pixels > 0) {
        const T* in_first =
            x.data + ((n * g.in_h + top + kh_begin) * g.in_w + interior.begin * d.stride_w - g.pad_left) * x.ld;
        const T* dy_first = dy_row + interior.begin * dy.ld;
        for_channel_vectors<T>(channels, [&](auto full, auto, Index c, int lanes) {
            constexpr bool Full = decltype(full)::value;
            bool bias_pending = b_grad != nullptr;
            auto taps = [&](auto rows_c, auto cols_c, Index kh, Index kw) {
                constexpr int R = decltype(rows_c)::value, K = decltype(cols_c)::value;
                const T* in = in_first + (kh - kh_begin) * in_row + kw * in_col + c;
                T* wg = w_grad + kh * w_row + kw * w_col + c;
                if (bias_pending)
                    depthwise_weight_taps<T, R, K, Full, true>(in, in_row, in_col, in_step, dy_first + c, dy.ld, pixels,
                                                               wg, w_row, w_col, b_grad + c, lanes);
                else
                    depthwise_weight_taps<T, R, K, Full, false>(in, in_row, in_col, in_step, dy_first + c, dy.ld,
                                                                pixels, wg, w_row, w_col, nullptr, lanes);
                bias_pending = false;
            };
            using One = std::integral_constant<int, 1>;
            using Two = std::integral_constant<int, 2>;
            using Three = std::integral_constant<int, 3>;
            for (Index kh = kh_begin; kh < kh_end;) {
                if (d.kernel_w == 3) {
                    const Index rest = kh_end - kh;
                    if (rest >= 3)
                        taps(Three(), Three(), kh, 0);
                    else if (rest == 2)
                        taps(Two(), Three(), kh, 0);
                    else
                        taps(One(), Three(), kh, 0);
                    kh += std::min<Index>(rest, 3);
                } else {
                    for (Index kw = 0; kw < d.kernel_w; ++kw) taps(One(), One(), kh, kw);
                    ++kh;
                }
            }
            if (bias_pending)  // no kernel row inside the image
                for (Index p = 0; p < pixels; ++p)
                    for (int l = 0; l < lanes; ++l) b_grad[c + l] += dy_first[p * dy.ld + c + l];
        });
    }

    // Edge pixels: each tap inside the image, one at a time.
    auto edge_pixel = [&](Index ow) {
        const Index left = ow * d.stride_w - g.pad_left;
        const Index kw_begin = std::max<Index>(0, -left), kw_end = std::min(d.kernel_w, g.in_w - left);
        const T* out_grad = dy_row + ow * dy.ld;
        if (b_grad)
            for (Index c = 0; c < channels; ++c) b_grad[c] += out_grad[c];
        for (Index kh = kh_begin; kh < kh_end; ++kh)
            for (Index kw = kw_begin; kw < kw_end; ++kw) {
                const T* in = x.row((n * g.in_h + top + kh) * g.in_w + left + kw);
                T* wg = w_grad + kh * w_row + kw * w_col;
                for (Index c = 0; c < channels; ++c) wg[c] += in[c] * out_grad[c];
            }
    };
    for (Index ow = 0; ow < interior.begin; ++ow) edge_pixel(ow);
    for (Index ow = interior.end; ow < g.out_w; ++ow) edge_pixel(ow);
}

// Adds output rows [first, last) (n * OH + oh) of a multiplier-1 depthwise
// convolution to w_grad (KH, KW, C) and, when b_grad is not nullptr, b_grad (C).
template <typename T>
void depthwise_weight_gradient_rows(const DepthwiseDims& d, const RowMatrix<T>& x, const RowMatrix<T>& dy,
                                    Index first, Index last, T* w_grad, T* b_grad) {
    if (depthwise_3x3_weight_gradient_applies(d)) {  // the 3x3 separable convolutions' case
        depthwise_3x3_weight_gradient_rows(d, x, dy, first, last, w_grad, b_grad);
        return;
    }
    const InteriorColumns interior = interior_columns(d);
    for (Index image_row = first; image_row < last; ++image_row)
        depthwise_weight_gradient_row(d, interior, x, dy, image_row, w_grad, b_grad);
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
    if (detail::depthwise_blocked_pays(d)) {
        detail::depthwise_blocked(d, xm, w, b, ym);
        return;
    }
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
        // Blocked, stride 1: a convolution of dy (see depthwise_input_gradient_dims). Otherwise a gather:
        // each input pixel sums over the output pixels whose window covers it.
        const RowMatrix<T> dxm = dx->as_rows("depthwise_conv2d_backward input gradient");
        if (detail::depthwise_blocked_pays(d) && d.stride_h == 1 && d.stride_w == 1) {
            const std::vector<T> flipped = detail::depthwise_flipped_weights(d, w);
            detail::depthwise_blocked<T>(detail::depthwise_input_gradient_dims(d), dym, flipped.data(), nullptr, dxm);
        } else {
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
                            detail::depthwise_accumulate_input_grad(
                                in_grad, out_grad, w + (kh * d.kernel_w + kw) * channels_out, d.channels, d.multiplier);
                        }
                    }
                }
            });
        }
    }

    if (!d_weights && !d_bias) return;
    const Index weight_count = d.kernel_h * d.kernel_w * channels_out;
    const int parts = static_cast<int>(std::clamp<Index>(d.batch * g.out_h, 1, chunks_per_team()));
    // Per part: the weight gradient partial, then the bias gradient partial.
    detail::ChunkPartials<T> partials(parts, weight_count + channels_out);
    parallel_chunks(d.batch * g.out_h, parts, [&](int part, Index first, Index last) {
        T* w_grad = partials.chunk(part);
        T* b_grad = w_grad + weight_count;
        if ((detail::depthwise_3x3_weight_gradient_applies(d) || detail::depthwise_blocked_pays(d)) && d_weights) {
            detail::depthwise_weight_gradient_rows(d, xm, dym, first, last, w_grad, d_bias ? b_grad : nullptr);
            return;
        }
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
    std::vector<T> totals(static_cast<std::size_t>(weight_count + channels_out));
    partials.add_in_order(parts, totals.data());
    if (d_weights) std::copy_n(totals.data(), weight_count, d_weights->data());
    if (d_bias) std::copy_n(totals.data() + weight_count, channels_out, d_bias->data());
}

}  // namespace cpu
}  // namespace bcnn

#pragma once
// Weights gradient of a multiplier-1 depthwise convolution with a 3x3
// kernel at stride 1 along the width (any stride along the height), chosen
// by depthwise_conv2d.hpp for any channel count (the custom CNN's separable
// convolutions are 3x3, stride 1, 'same'). Register blocked with
// simd::Vec<T> over one vector of channels (contiguous in NHWC) at a time,
// the last vector partial: for a tile of output rows of one image, the
// 3 x 3 weight sums and the bias sum of one vector of channels stay in
// registers while the input columns stream past: column q of input row r
// feeds the taps (r, k) with dy[q + pad_left - k], k = 0, 1, 2, three dy
// vectors kept in registers (4 loads for 9 FMAs); the tile's sums are then
// added to the thread's partial sums.

#include <algorithm>
#include <vector>

#include "bcnn/core/row_matrix.hpp"
#include "bcnn/kernels/cpu/depthwise_common.hpp"

namespace bcnn {
namespace cpu {
namespace detail {

// Whether depthwise_3x3_weight_gradient_rows handles d: multiplier 1, 3x3
// kernel, stride 1 along the width. Measured against the kernels it
// replaced (depthwise_weight_gradient_row, and the loops at 256 channels):
// see depthwise_3x3_tile_rows; every channel count gained.
inline bool depthwise_3x3_weight_gradient_applies(const DepthwiseDims& d) {
    return d.multiplier == 1 && d.kernel_h == 3 && d.kernel_w == 3 && d.stride_w == 1;
}

// Output rows [oh_begin, oh_end) of image n, one vector of channels
// (channels [c, c + lanes)), 3x3 kernel: adds to w_grad (3, 3, C) the sums
//   w_grad[r, k, c] += sum x[n, oh * stride_h - pad_top + r, q, c] * dy[n, oh, q + pad_left - k, c]
// over the input columns q and, when WithBias, b_grad[c] += sum dy[n, oh, p, c].
// Input rows outside the image read `zeros` (C zeros, column step 0). dy
// columns outside [0, OW) count as zeros: with at most 2 columns of padding
// on either side (3-wide, stride 1), the columns pad_left - 2 .. in_w + pad_left - 1
// cover every output column once, which also gives the bias sum.
template <typename T, bool Full, bool WithBias>
void depthwise_3x3_weight_gradient_vector(const DepthwiseDims& d, const RowMatrix<T>& x, const RowMatrix<T>& dy,
                                          const T* zeros, Index n, Index oh_begin, Index oh_end, Index c, int lanes,
                                          T* w_grad, T* b_grad) {
    using V = simd::Vec<T>;
    const WindowGeometry& g = d.geometry;
    V acc[3][3];
#pragma GCC unroll 3
    for (int r = 0; r < 3; ++r)
#pragma GCC unroll 3
        for (int k = 0; k < 3; ++k) acc[r][k] = V{};
    V bias_acc{};
    // Output columns whose dy is read unchecked by the streaming loop: q + pad_left < OW.
    const Index q_inside = std::clamp<Index>(g.out_w - g.pad_left, 0, g.in_w);
    for (Index oh = oh_begin; oh < oh_end; ++oh) {
        const T* in[3];
        Index in_col[3];
#pragma GCC unroll 3
        for (int r = 0; r < 3; ++r) {
            const Index ih = oh * d.stride_h - g.pad_top + r;
            const bool inside = ih >= 0 && ih < g.in_h;
            in[r] = inside ? x.row((n * g.in_h + ih) * g.in_w) + c : zeros + c;
            in_col[r] = inside ? x.ld : 0;
        }
        const T* dy_row = dy.row((n * g.out_h + oh) * g.out_w) + c;
        auto dy_at = [&](Index p) {
            return p >= 0 && p < g.out_w ? depthwise_load<T, Full>(dy_row + p * dy.ld, lanes) : V{};
        };
        V d_prev = dy_at(g.pad_left - 2), d_cur = dy_at(g.pad_left - 1);
        if constexpr (WithBias) bias_acc += d_prev + d_cur;
        auto column = [&](Index q, const V& d_next) {
#pragma GCC unroll 3
            for (int r = 0; r < 3; ++r) {
                const V v = depthwise_load<T, Full>(in[r] + q * in_col[r], lanes);
                acc[r][0] += v * d_next;
                acc[r][1] += v * d_cur;
                acc[r][2] += v * d_prev;
            }
            d_prev = d_cur;
            d_cur = d_next;
        };
        Index q = 0;
        for (; q < q_inside; ++q) {
            const V d_next = depthwise_load<T, Full>(dy_row + (q + g.pad_left) * dy.ld, lanes);
            if constexpr (WithBias) bias_acc += d_next;
            column(q, d_next);
        }
        for (; q < g.in_w; ++q) column(q, V{});
    }
#pragma GCC unroll 3
    for (int r = 0; r < 3; ++r)
#pragma GCC unroll 3
        for (int k = 0; k < 3; ++k) {
            T* out = w_grad + (r * 3 + k) * d.channels + c;
            depthwise_store<T, Full>(out, depthwise_load<T, Full>(out, lanes) + acc[r][k], lanes);
        }
    if constexpr (WithBias)
        depthwise_store<T, Full>(b_grad + c, depthwise_load<T, Full>(b_grad + c, lanes) + bias_acc, lanes);
}

// Output rows per tile of the weights gradient: a tile's input and dy rows
// (about (rows + 1) * (W_in + W_out) * C values) stay near 128 KB, a quarter
// of the L2 cache, while every vector of channels sweeps them. Measured
// (single thread, CPU time, batch 4, best of 3 on the shared 2-core Zen 3,
// GFLOP/s for budgets 1 row / 32 KB / 128 KB / whole images, and the kernels
// this replaced): dw3x3_16_75 54 42 58 47 (38), 32_37 45 35 41 40 (30),
// 64_18 27 35 46 37 (28), 64_37 41 35 41 35 (32), 128_18 24 34 37 34 (26),
// 128_9 27 33 29 31 (21), 256_9 23 24 25 28 (19).
inline Index depthwise_3x3_tile_rows(const DepthwiseDims& d, std::size_t value_bytes) {
    const std::size_t row_bytes =
        static_cast<std::size_t>(d.geometry.in_w + d.geometry.out_w) * static_cast<std::size_t>(d.channels) * value_bytes;
    const Index rows = static_cast<Index>((std::size_t(128) << 10) / std::max<std::size_t>(row_bytes, 1)) - 1;
    return std::clamp<Index>(rows, 1, d.geometry.out_h);
}

// Adds output rows [first, last) (n * OH + oh) to w_grad (3, 3, C) and,
// when b_grad is not nullptr, b_grad (C): tiles of rows of one image, each
// swept by every vector of channels in turn.
template <typename T>
void depthwise_3x3_weight_gradient_rows(const DepthwiseDims& d, const RowMatrix<T>& x, const RowMatrix<T>& dy,
                                        Index first, Index last, T* w_grad, T* b_grad) {
    const WindowGeometry& g = d.geometry;
    const std::vector<T> zeros(static_cast<std::size_t>(d.channels), T(0));
    const Index tile = depthwise_3x3_tile_rows(d, sizeof(T));
    for (Index image_row = first; image_row < last;) {
        const Index n = image_row / g.out_h, oh = image_row % g.out_h;
        const Index oh_end = std::min({g.out_h, oh + tile, oh + (last - image_row)});
        for_channel_vectors<T>(d.channels, [&](auto full, auto, Index c, int lanes) {
            constexpr bool Full = decltype(full)::value;
            if (b_grad)
                depthwise_3x3_weight_gradient_vector<T, Full, true>(d, x, dy, zeros.data(), n, oh, oh_end, c, lanes,
                                                                    w_grad, b_grad);
            else
                depthwise_3x3_weight_gradient_vector<T, Full, false>(d, x, dy, zeros.data(), n, oh, oh_end, c, lanes,
                                                                     w_grad, nullptr);
        });
        image_row += oh_end - oh;
    }
}

}  // namespace detail
}  // namespace cpu
}  // namespace bcnn

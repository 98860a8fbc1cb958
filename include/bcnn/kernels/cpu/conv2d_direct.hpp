#pragma once
// Direct 2-D convolution (no im2col) for layers with few input channels,
// where conv2d.hpp's im2col + GEMM spends its time copying patches (9x the
// input for a 3x3 kernel) into a GEMM too shallow (KH * KW * C) to run at speed.
//   forward:          x (N, H, W, C), weights (KH, KW, C, K), bias (K) or nullptr  ->  y (N, OH, OW, K)
//   weights gradient: x (N, H, W, C), dy (N, OH, OW, K)  ->  d_weights (KH, KW, C, K)
// Same semantics as conv2d.hpp (Keras padding from window.hpp, any stride,
// dilation 1, x = 0 outside the image); x, y and dy may be channel slices,
// weights, bias and d_weights are contiguous. Float and double.
//
// The filters are cut into blocks of 32, 16 or 8 lanes (the last padded
// with zero filters). Forward: the weights are repacked per block as
// (KH, KW, C, lanes); every output row (n, oh) is one parallel work item; for
// each block, P neighbouring output pixels x lanes filters are accumulated in
// a fixed-size array the compiler keeps in vector registers (8 to 12 ymm for
// float, checked in the -O2 -march=native assembly: vfmadd231ps on ymm, no
// spills in the inner loop), each input value broadcast against a vector of
// weights. Kernel rows in the padding are skipped for the whole row; pixels
// whose window overhangs the left or right edge go one by one with the
// kernel columns clipped. Weights gradient: for each output row, tap and
// group of CB channels, CB x lanes sums over the row's pixels are kept in
// registers (the pixels whose tap lands inside the image), then added to the
// thread's own (KH*KW*C, lanes) partial sums; chunks of output rows are
// added in chunk order, so the result depends only on the thread count.

#include <algorithm>
#include <type_traits>
#include <vector>

#include "bcnn/core/parallel.hpp"
#include "bcnn/core/row_matrix.hpp"
#include "bcnn/kernels/cpu/bias_activation.hpp"
#include "bcnn/kernels/cpu/conv2d_dims.hpp"

// GCC 12 at -O3 (the release flags) compiles these kernels into code ten
// times slower than at -O2 (measured on 3x3 3->16 @150, batch 32: 195 vs
// 2,150 images/s), so this file asks for -O2: there the accumulators stay in
// ymm registers.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC push_options
#pragma GCC optimize("O2")
#endif

namespace bcnn {
namespace cpu {
namespace detail {

// When the direct convolution beats conv2d.hpp (im2col + GEMM, or Winograd
// for 3x3 stride 1 with C, K >= 16). Measured on a shared 2-core AMD Zen 3
// (AVX2), float, batch 32, as speedups over conv2d.hpp: single-thread CPU
// time / 2-thread wall time (medians; wall times varied up to 2x between runs).
// Forward:
//   3x3 1->16 @150 4.1 / 2.6    3->8 @150  3.6 / 3.0    3->16 @150 3.1 / 2.0
//   3x3 4->16 @150 1.9 / 2.0    8->8 @150  3.2 / 2.7    8->16 @150 1.9 / 1.6
//   3x3 8->32 @75  1.2 / 1.0    3->64 @150 2.1 / 1.5    3->96 @150 1.5 / 1.1
//   3x3/2 3->32    1.8 / 2.0    5x5 3->32  1.7 / 1.6    7x7/2 3->64 @156 'valid' 1.2 / 0.8
//   3x3 12->16     1.3 / 1.7    16->16 @150 1.0 / 0.7-1.9 (Winograd)   16->32 @75 1.2 / 0.9-1.0
//   3x3 32->32 @75 0.8 / 0.7    32->64 @75 0.5 / 0.6-1.1
// hence C <= 8, 8 <= K <= 96 (K < 8 was not measured), kernels up to 5x5
// (the 7x7 stem is a wash).
// A 1x1 stride-1 convolution is a plain GEMM already.
inline bool direct_pays(const Conv2DDims& d) {
    return d.channels <= 8 && d.filters >= 8 && d.filters <= 96 && d.window.kernel_h * d.window.kernel_w <= 25 &&
           !d.pointwise();
}

// Weights gradient, same machine and units:
//   3x3 1->16 2.8 / 3.6   3->8 2.2 / 2.6    3->16 1.7 / 2.2   4->16 1.7 / 2.3   8->8 3.6 / 4.3
//   3x3 8->16 1.4 / 1.9   12->16 1.3 / 1.5  16->16 2.0 / 1.6  5x5 16->16 @75 1.8 / 2.6
//   3x3/2 3->32 1.4 / 2.0 5x5 3->32 1.1 / 1.2   3x3 8->32 @75 0.8 / 1.3   16->32 @75 0.8 / 1.0
//   3x3 3->64 1.0 / 1.0   3->96 0.9 / 0.9   7x7/2 3->64 0.6 / 0.8   32->32 @75 0.7 / 0.9
// hence K <= 16 with C <= 16, or K <= 32 with C <= 4; K < 8 was not measured.
inline bool direct_pays_weights_gradient(const Conv2DDims& d) {
    const bool narrow = d.filters <= 16 ? d.channels <= 16 : d.filters <= 32 && d.channels <= 4;
    return narrow && d.filters >= 8 && !d.pointwise();
}

// Output pixels computed together for a block of `lanes` filters: 8 to 12
// accumulators of 8 floats.
template <int lanes>
constexpr int direct_block_pixels() {
    return lanes >= 32 ? 3 : lanes >= 16 ? 4 : 8;
}

// Threads worth starting: one per kGemmMinWorkPerThread multiply-adds
// (gemm.hpp's threshold), at most one per output row. Tiny convolutions
// (gradient checks) stay on one thread.
inline int direct_threads(const Conv2DDims& d) {
    const double work = static_cast<double>(d.pixels()) * static_cast<double>(d.patch() * d.filters);
    const Index wanted = static_cast<Index>(work / kGemmMinWorkPerThread);
    return static_cast<int>(std::clamp<Index>(std::min(wanted, d.batch * d.geometry.out_h), 1, num_threads()));
}

// A block of `lanes` filters, [first, first + width) (width <= lanes; the
// rest are zero padding), and where its values start in buffers that hold
// `patch` rows of `lanes` values per block, block after block (offset) or
// one row of `lanes` per block (bias_offset).
struct DirectFilterBlock {
    Index first, width, lanes, offset, bias_offset;
};

// The filters cut into blocks of 32, then 16, then 8 lanes (the last padded).
inline std::vector<DirectFilterBlock> direct_filter_blocks(const Conv2DDims& d) {
    std::vector<DirectFilterBlock> blocks;
    Index offset = 0, bias_offset = 0;
    for (Index first = 0; first < d.filters;) {
        const Index rest = d.filters - first;
        const Index lanes = rest >= 32 ? 32 : rest >= 16 ? 16 : 8;
        blocks.push_back(DirectFilterBlock{first, std::min(rest, lanes), lanes, offset, bias_offset});
        first += lanes;
        offset += d.patch() * lanes;
        bias_offset += lanes;
    }
    return blocks;
}

// Calls body(std::integral_constant<int, lanes>()) for a block of `lanes` filters.
template <typename Body>
void with_direct_lanes(Index lanes, Body&& body) {
    if (lanes == 32)
        body(std::integral_constant<int, 32>());
    else if (lanes == 16)
        body(std::integral_constant<int, 16>());
    else
        body(std::integral_constant<int, 8>());
}

// The weights (KH, KW, C, K) and bias (K, or nullptr: zeros) repacked per
// filter block: (KH, KW, C, lanes) and (lanes), zero past the block's width.
template <typename T>
struct DirectWeights {
    std::vector<DirectFilterBlock> blocks;
    std::vector<T> weights, bias;
};

template <typename T>
DirectWeights<T> direct_pack_weights(const Conv2DDims& d, const T* weights, const T* bias) {
    DirectWeights<T> p;
    p.blocks = direct_filter_blocks(d);
    const Index lanes_total = p.blocks.back().bias_offset + p.blocks.back().lanes;
    p.weights.assign(static_cast<std::size_t>(d.patch() * lanes_total), T(0));
    p.bias.assign(static_cast<std::size_t>(lanes_total), T(0));
    for (const DirectFilterBlock& b : p.blocks) {
        for (Index r = 0; r < d.patch(); ++r)
            std::copy_n(weights + r * d.filters + b.first, b.width, p.weights.data() + b.offset + r * b.lanes);
        if (bias) std::copy_n(bias + b.first, b.width, p.bias.data() + b.bias_offset);
    }
    return p;
}

// Taps [kh_begin, kh_end) x [kw_begin, kw_end) of a window that lie inside the image.
struct DirectTaps {
    Index kh_begin, kh_end, kw_begin, kw_end;
};

// acc[p][k] = sum over the taps and c of x(pixel p, tap, c) * w(tap, c, k)
// for P output pixels of one output row. x: pixel 0's input at its first
// tap (taps.kh_begin, taps.kw_begin); pixel p's is pixel_step values further
// on, the next kernel column's ld, the next kernel row's row_step.
// w: the filter block's packed (KH, KW, C, lanes) weights.
template <typename T, int lanes, int P>
void direct_accumulate(const T* x, Index ld, Index pixel_step, Index row_step, const DirectTaps& taps,
                       Index kernel_w, Index channels, const T* w, T (&acc)[P][lanes]) {
    for (int p = 0; p < P; ++p)
        for (int k = 0; k < lanes; ++k) acc[p][k] = T(0);
    for (Index kh = taps.kh_begin; kh < taps.kh_end; ++kh)
        for (Index kw = taps.kw_begin; kw < taps.kw_end; ++kw) {
            const T* xt = x + (kh - taps.kh_begin) * row_step + (kw - taps.kw_begin) * ld;
            const T* wt = w + (kh * kernel_w + kw) * channels * lanes;
            for (Index c = 0; c < channels; ++c) {
                const T* wc = wt + c * lanes;
#pragma GCC unroll 8
                for (int p = 0; p < P; ++p) {
                    const T v = xt[p * pixel_step + c];
#pragma GCC unroll 32
                    for (int k = 0; k < lanes; ++k) acc[p][k] += v * wc[k];
                }
            }
        }
}

// Output pixels y, y + ld_y, ... (`pixels` <= P of them), `width` filters:
// activation(acc + bias), bias holding `lanes` values.
template <typename T, int lanes, int P>
void direct_store(T (&acc)[P][lanes], int pixels, T* y, Index ld_y, Index width, const T* bias,
                  ActivationFn activation) {
    for (int p = 0; p < P; ++p)
        for (int k = 0; k < lanes; ++k) acc[p][k] += bias[k];
    if (activation == ActivationFn::relu)
        for (int p = 0; p < P; ++p)
            for (int k = 0; k < lanes; ++k) acc[p][k] = acc[p][k] < T(0) ? T(0) : acc[p][k];
    for (int p = 0; p < pixels; ++p) std::copy_n(acc[p], width, y + p * ld_y);
}

// Filter block i (lanes filters) of output row `out_row` (n * OH + oh).
// Kernel rows in the padding are skipped for the whole row; blocks of P
// pixels whose windows lie inside the width take all the kernel's columns,
// the pixels near the left and right edges go one by one with the columns
// clipped.
template <typename T, int lanes>
void direct_forward_row(const Conv2DDims& d, const DirectWeights<T>& weights, const DirectFilterBlock& block,
                        const RowMatrix<T>& x,
                        ActivationFn activation, const RowMatrix<T>& y, Index out_row) {
    constexpr int P = direct_block_pixels<lanes>();
    const WindowGeometry& g = d.geometry;
    const Index kernel_h = d.window.kernel_h, kernel_w = d.window.kernel_w, stride_w = d.window.stride_w;
    const Index n = out_row / g.out_h, top = out_row % g.out_h * d.window.stride_h - g.pad_top;
    const Index kh_begin = std::clamp<Index>(-top, 0, kernel_h);
    const Index kh_end = std::clamp<Index>(g.in_h - top, kh_begin, kernel_h);
    const Index first_row = n * g.in_h + top + kh_begin;  // image row of the first kernel row inside
    const Index row_step = g.in_w * x.ld, pixel_step = stride_w * x.ld;
    const T* w = weights.weights.data() + block.offset;
    const T* bias = weights.bias.data() + block.bias_offset;
    const Index width = block.width;
    T* y_row = y.row(out_row * g.out_w) + block.first;
    // Output columns [inner_begin, inner_end) have their whole window inside the width.
    const Index inner_begin = std::min<Index>(g.out_w, (g.pad_left + stride_w - 1) / stride_w);
    const Index last_left = g.in_w - kernel_w + g.pad_left;  // ow * SW <= last_left
    const Index inner_end = last_left < 0 ? inner_begin : std::clamp(last_left / stride_w + 1, inner_begin, g.out_w);
    const auto edge = [&](Index ow) {
        const Index left = ow * stride_w - g.pad_left;
        const Index kw_begin = std::clamp<Index>(-left, 0, kernel_w);
        const Index kw_end = std::clamp<Index>(g.in_w - left, kw_begin, kernel_w);
        T acc[1][lanes];
        direct_accumulate<T, lanes, 1>(x.row(first_row * g.in_w + std::min(left + kw_begin, g.in_w - 1)), x.ld,
                                       pixel_step, row_step, DirectTaps{kh_begin, kh_end, kw_begin, kw_end}, kernel_w,
                                       d.channels, w, acc);
        direct_store<T, lanes, 1>(acc, 1, y_row + ow * y.ld, y.ld, width, bias, activation);
    };
    for (Index ow = 0; ow < inner_begin; ++ow) edge(ow);
    const DirectTaps inner{kh_begin, kh_end, 0, kernel_w};
    T acc[P][lanes];
    Index ow = inner_begin;
    for (; ow + P <= inner_end; ow += P) {
        direct_accumulate<T, lanes, P>(x.row(first_row * g.in_w + ow * stride_w - g.pad_left), x.ld, pixel_step,
                                       row_step, inner, kernel_w, d.channels, w, acc);
        direct_store<T, lanes, P>(acc, P, y_row + ow * y.ld, y.ld, width, bias, activation);
    }
    for (; ow < g.out_w; ++ow) edge(ow);
}

// x (N, H, W, C), weights (KH, KW, C, K), bias (K) or nullptr  ->  y (N, OH, OW, K)
// y = activation(conv(x, weights) + bias); d from conv2d_dims; y is overwritten.
template <typename T>
void conv2d_direct_forward(const Conv2DDims& d, const RowMatrix<T>& x, const T* weights, const T* bias,
                           ActivationFn activation, const RowMatrix<T>& y) {
    if (d.pixels() == 0) return;
    const DirectWeights<T> packed = direct_pack_weights(d, weights, bias);
    parallel_chunks(d.batch * d.geometry.out_h, direct_threads(d), [&](int, Index first_row, Index last_row) {
        for (Index out_row = first_row; out_row < last_row; ++out_row)
            for (const DirectFilterBlock& block : packed.blocks)
                with_direct_lanes(block.lanes, [&](auto lanes) {
                    direct_forward_row<T, decltype(lanes)::value>(d, packed, block, x, activation, y, out_row);
                });
    });
}

// Channels whose weight gradients one pass accumulates together against a
// block of `lanes` filters: 8 accumulators of 8 floats, which leaves
// registers for the lanes / 8 vectors of dy.
template <int lanes>
constexpr int direct_gradient_channels() {
    return lanes >= 32 ? 2 : lanes >= 16 ? 4 : 8;
}

// acc[c][k] = sum over ow in [ow_begin, ow_end) of x(ow, c) * dy(ow, k) for
// CB channels and `lanes` filters. x: output pixel ow_begin's input at the
// first of the channels, the next pixel's pixel_step further on; dy: its
// gradient row (lanes values), the next pixel's dy_step further on.
template <typename T, int lanes, int CB>
void direct_gradient_accumulate(const T* x, Index pixel_step, const T* dy, Index dy_step, Index pixels,
                                T (&acc)[CB][lanes]) {
    for (int c = 0; c < CB; ++c)
        for (int k = 0; k < lanes; ++k) acc[c][k] = T(0);
    for (Index p = 0; p < pixels; ++p) {
        const T* xp = x + p * pixel_step;
        const T* g = dy + p * dy_step;
#pragma GCC unroll 8
        for (int c = 0; c < CB; ++c) {
            const T v = xp[c];
#pragma GCC unroll 32
            for (int k = 0; k < lanes; ++k) acc[c][k] += v * g[k];
        }
    }
}

// sum (patch rows of lanes, packed like DirectWeights) += the gradient
// terms of output row `out_row` for one filter block. dy_row: the row's
// output gradients, out_w rows of `lanes` values.
template <typename T, int lanes>
void direct_gradient_row(const Conv2DDims& d, const RowMatrix<T>& x, const T* dy_row, Index out_row, T* sum) {
    constexpr int CB = direct_gradient_channels<lanes>();
    const WindowGeometry& g = d.geometry;
    const Index kernel_h = d.window.kernel_h, kernel_w = d.window.kernel_w, stride_w = d.window.stride_w;
    const Index channels = d.channels;
    const Index n = out_row / g.out_h, top = out_row % g.out_h * d.window.stride_h - g.pad_top;
    const Index kh_begin = std::clamp<Index>(-top, 0, kernel_h);
    const Index kh_end = std::clamp<Index>(g.in_h - top, kh_begin, kernel_h);
    for (Index kh = kh_begin; kh < kh_end; ++kh)
        for (Index kw = 0; kw < kernel_w; ++kw) {
            // Output columns whose tap kw lands inside the width: iw = ow * SW - pad_left + kw in [0, W).
            const Index shift = g.pad_left - kw;  // ow * SW >= shift, ow * SW <= W - 1 + shift
            const Index ow_begin = std::clamp<Index>(shift <= 0 ? 0 : (shift + stride_w - 1) / stride_w, 0, g.out_w);
            const Index last = g.in_w - 1 + shift;
            const Index ow_end = last < 0 ? ow_begin : std::clamp(last / stride_w + 1, ow_begin, g.out_w);
            if (ow_end == ow_begin) continue;
            const T* x0 = x.row((n * g.in_h + top + kh) * g.in_w + ow_begin * stride_w - shift);
            const T* dy0 = dy_row + ow_begin * lanes;
            T* s = sum + (kh * kernel_w + kw) * channels * lanes;
            const auto add = [&](Index c, auto cb, auto& acc) {
                direct_gradient_accumulate<T, lanes, decltype(cb)::value>(x0 + c, stride_w * x.ld, dy0, lanes,
                                                                          ow_end - ow_begin, acc);
                for (int i = 0; i < decltype(cb)::value; ++i)
                    for (int k = 0; k < lanes; ++k) s[(c + i) * lanes + k] += acc[i][k];
            };
            Index c = 0;
            T acc[CB][lanes];
            for (; c + CB <= channels; c += CB) add(c, std::integral_constant<int, CB>(), acc);
            T one[1][lanes];
            for (; c < channels; ++c) add(c, std::integral_constant<int, 1>(), one);
        }
}

// x (N, H, W, C), dy (N, OH, OW, K)  ->  d_weights (KH, KW, C, K), overwritten:
// sum over output pixels of the input patch (outer product) dy. Chunks of
// output rows accumulate their own partial sums, added in chunk order: the
// result depends only on the thread count.
template <typename T>
void conv2d_direct_weights_gradient(const Conv2DDims& d, const RowMatrix<T>& x, const RowMatrix<T>& dy,
                                    T* d_weights) {
    const std::vector<DirectFilterBlock> blocks = direct_filter_blocks(d);
    const Index lanes_total = blocks.back().bias_offset + blocks.back().lanes;
    const Index size = d.patch() * lanes_total, rows = d.batch * d.geometry.out_h;
    const int parts = direct_threads(d);
    std::vector<T> partials(static_cast<std::size_t>(parts * size), T(0));
    parallel_chunks(rows, parts, [&](int part, Index first_row, Index last_row) {
        T* sum = partials.data() + part * size;
        std::vector<T> dy_row(static_cast<std::size_t>(d.geometry.out_w * 32));
        for (Index out_row = first_row; out_row < last_row; ++out_row)
            for (const DirectFilterBlock& block : blocks)
                with_direct_lanes(block.lanes, [&](auto lanes_constant) {
                    constexpr int lanes = decltype(lanes_constant)::value;
                    // out_w rows of lanes; lanes past the width hold stale values, whose sums are never read.
                    for (Index ow = 0; ow < d.geometry.out_w; ++ow)
                        std::copy_n(dy.row(out_row * d.geometry.out_w + ow) + block.first, block.width,
                                    dy_row.data() + ow * lanes);
                    direct_gradient_row<T, lanes>(d, x, dy_row.data(), out_row, sum + block.offset);
                });
    });
    for (const DirectFilterBlock& block : blocks)
        for (Index r = 0; r < d.patch(); ++r)
            for (Index k = 0; k < block.width; ++k) {
                T total = partials[static_cast<std::size_t>(block.offset + r * block.lanes + k)];
                for (int part = 1; part < parts; ++part)
                    total += partials[static_cast<std::size_t>(part * size + block.offset + r * block.lanes + k)];
                d_weights[r * d.filters + block.first + k] = total;
            }
}

}  // namespace detail
}  // namespace cpu
}  // namespace bcnn

#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC pop_options
#endif

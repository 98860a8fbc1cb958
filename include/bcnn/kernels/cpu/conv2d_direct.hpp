#pragma once
// Direct 2-D convolution (no im2col) for layers with few input channels,
// where conv2d.hpp's im2col + GEMM spends its time copying patches (9x the
// input for a 3x3 kernel) into a GEMM too shallow (KH * KW * C) to run at speed.
//   forward:          x (N, H, W, C), weights (KH, KW, C, K), bias (K) or nullptr  ->  y (N, OH, OW, K)
//   weights gradient: x (N, H, W, C), dy (N, OH, OW, K)  ->  d_weights (KH, KW, C, K)
//   input gradient:   dy (N, OH, OW, K), weights  ->  dx (N, H, W, C), as the forward
//                     with the kernel turned (stride 1, 'same', odd kernels only)
// The two gradients also take dy through a ReLU: given relu_output (the
// layer's output y = relu(conv + bias)), they read dy where y > 0 and 0
// elsewhere as they copy it, and the weights gradient sums the bias gradient
// on the way. The gradient before the ReLU is then never written whole: a
// (32, 150, 150, 16) layer saves the 3 passes of 46 MB of a separate
// relu_backward (conv2d.hpp, conv2d_relu_backward). Both gradients at once
// (conv2d_direct_relu_backward) read dy and the mask once, not twice.
// Same semantics as conv2d.hpp (Keras padding from window.hpp, any stride,
// dilation 1, x = 0 outside the image); x, y and dy may be channel slices,
// weights, bias and d_weights are contiguous. Float and double.
//
// Output rows (n, oh) are cut into chunks shared by the threads
// (direct_chunks); a chunk's rows are taken in groups of up to 8 of one
// image, whose input rows (the ones inside the image) are first copied into
// a zero-padded buffer, rows of pixels x C values: there, the window of output pixel ow at kernel row kh
// is the contiguous run of KW * C values starting at pixel ow * SW, so both
// kernels below are small GEMMs with no edge cases.
// The filters are cut into blocks of 2 vectors of simd::width<T> lanes (the
// last block 1 or 2 vectors, padded with zero filters).
// Forward: the weights are repacked per block as (KH, KW, C, lanes); P
// neighbouring output pixels x the block's vectors (12 accumulators: 6 x 2
// or 12 x 1) are summed in simd::Vec registers, each input value broadcast
// against the vectors of weights of its tap and channel.
// Weights gradient: for each output row and block, J patch values (kh, kw, c)
// x the block's vectors (again 12 accumulators; fewer for a patch's last
// group: with_group_size) are summed over the row's
// pixels, each input value broadcast against the vectors of dy, then
// added to the chunk's own (KH*KW*C, lanes) partial sums; chunks of output
// rows are added in chunk order, so the result depends only on the thread count.
// Large forward outputs are written with streaming stores (kDirectStreamBytes).
// The accumulators are arrays of simd::Vec indexed by compile-time constants
// only (partial blocks are stored through memory afterwards), so GCC 12 keeps
// them in registers at -O3 as at -O2 (checked in the -O3 -march=native
// assembly: 12 ymm accumulators, vbroadcastss + vfmadd231ps, no spills in the
// inner loops). The scalar kernels this replaces ran 10x slower at -O3 and
// needed #pragma GCC optimize("O2").

#include <algorithm>
#include <cstdint>
#include <type_traits>
#include <vector>

#include "bcnn/core/parallel.hpp"
#include "bcnn/core/row_matrix.hpp"
#include "bcnn/kernels/cpu/bias_activation.hpp"
#include "bcnn/kernels/cpu/column_sums.hpp"
#include "bcnn/kernels/cpu/conv2d_dims.hpp"
#include "bcnn/kernels/cpu/simd.hpp"

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
// hence C <= 8, 8 <= K <= 96 (K < 8 was not measured), kernels up to 5x5.
// After the simd::Vec rewrite (same machine, shared by 4 other jobs, so
// single-thread CPU time; images/s, direct vs im2col + GEMM, ranges of 3-4 runs):
//   3x3 3->16 @150 3,080-3,330 vs 720-1,060   3x3 3->64 @150 640-740 vs 320-480
//   7x7/2 3->64 @156 'valid' 750-775 vs 450-580 (1.3-1.7x; was 0.8)
// hence kernels up to 7x7.
// Wider inputs against Winograd (3x3 stride 1 'same', 2-thread wall time,
// GFLOP/s of the forward with bias and ReLU, direct vs conv2d.hpp, 3 runs,
// load ~1.5): 16->16 @150 118-123 vs 73-80, 16->32 @75 110-125 vs 90-98,
// 16->64 @75 102 vs 86, 24->24 @75 115 vs 95, 16->8 @75 78 vs 34; but
// 16->96 @37 95 vs 145 and 32->32 @75 81 vs 90 (single thread),
// hence also C <= 24 with K <= 64.
// A 1x1 stride-1 convolution is a plain GEMM already.
inline bool direct_pays(const Conv2DDims& d) {
    const bool narrow = d.channels <= 8 ? d.filters <= 96 : d.channels <= 24 && d.filters <= 64;
    return narrow && d.filters >= 8 && d.window.kernel_h * d.window.kernel_w <= 49 && !d.pointwise();
}

// The forward also pays on small maps with at most 64 filters, whatever the
// channels: Winograd's 4x4 tiles hang past a 9x9 map (81 of 144 outputs
// used), and im2col + GEMM has few rows there. Measured on the 2-core
// AVX-512 Xeon (batch 32, 2 threads, minima of 2 medians of 21; ms, direct
// against the choice above, Winograd or im2col + GEMM):
//   3x3 128->32 @9  0.88 vs 1.28    @10 1.11 vs 1.29   @5 0.30 vs 0.46   @4 0.23 vs 0.32
//   3x3 128->32 @3  0.22 vs 0.37    256->32 @9 1.84 vs 2.84   128->64 @9 1.83 vs 2.31
//   3x3 64->64 @9   1.23 vs 1.38    512->32 @4 1.15 vs 1.35   128->16 @9 0.51 vs 1.42
//   batch 1: 128->32 @9 0.074 vs 0.138, @4 0.021 vs 0.075
// but not where the tiles are mostly used or the map is tiny:
//   3x3 128->32 @7  0.98 vs 0.83 (49 of 64 used)   @18 2.87 vs 2.76 (324 of 400)   @2 0.14 vs 0.11
//   3x3 32->32 @9   0.22 vs 0.21    512->512 @9 120 vs 48   256->256 @9 25 vs 12
// hence at most 64 filters, 3x3 to 10x10 outputs (9 to 100), and at most
// 70% of the 4x4 tiles used unless the map is one tile (4x4). The input
// gradient (the turned problem) gained less and lost at 64->64 @9 (1.58 vs
// 1.39), so it keeps its own rule.
inline bool direct_pays_small_map(const Conv2DDims& d) {
    const Index out_h = d.geometry.out_h, out_w = d.geometry.out_w, outputs = out_h * out_w;
    const Index tile_outputs = (out_h + 3) / 4 * 4 * ((out_w + 3) / 4 * 4);
    const bool tiles_wasted = 10 * outputs <= 7 * tile_outputs || outputs <= 16;
    return d.filters >= 8 && d.filters <= 64 && outputs >= 9 && outputs <= 100 && tiles_wasted &&
           d.window.kernel_h * d.window.kernel_w <= 49 && !d.pointwise();
}

// Weights gradient, on the Zen 3 in the units of direct_pays:
//   3x3 1->16 2.8 / 3.6   3->8 2.2 / 2.6    3->16 1.7 / 2.2   4->16 1.7 / 2.3   8->8 3.6 / 4.3
//   3x3 8->16 1.4 / 1.9   12->16 1.3 / 1.5  16->16 2.0 / 1.6  5x5 16->16 @75 1.8 / 2.6
//   3x3/2 3->32 1.4 / 2.0 5x5 3->32 1.1 / 1.2   3x3 8->32 @75 0.8 / 1.3   16->32 @75 0.8 / 1.0
//   3x3 3->64 1.0 / 1.0   3->96 0.9 / 0.9   7x7/2 3->64 0.6 / 0.8   32->32 @75 0.7 / 0.9
// hence K <= 16 with C <= 16, or K <= 32 with C <= 4; K < 8 was not measured.
// After the simd::Vec rewrite (single-thread CPU time as above; GFLOP/s,
// direct vs im2col + GEMM):
//   3x3 3->16 @150 43-50 vs 13-15    3x3 3->64 @150 34-43 vs 23-31
//   7x7/2 3->64 @156 56-73 vs 38-54  3x3 16->16 @150 55-70 vs 24-36
// Then for wider layers, 3x3 stride 1 'same', 2-thread wall time at load
// ~1.5, GFLOP/s direct vs im2col + GEMM (2-3 runs):
//   16->16 @150 87-101 vs 42-48   16->32 @75 104-107 vs 77-79   24->24 @75 93-96 vs 60
//   32->32 @75 113-115 vs 82-84   8->64 @75 103 vs 82-85        32->64 @75 94 vs 81
//   64->64 @37 91 vs 83           64->128 @37 101 vs 87         16->96 @37 88 vs 83
//   3->128 @75 56 vs 48           but 128->128 @18 90 vs 97
// hence C <= 64 with K <= 128.
inline bool direct_pays_weights_gradient(const Conv2DDims& d) {
    return d.channels <= 64 && d.filters >= 8 && d.filters <= 128 && !d.pointwise();
}

// Accumulators of simd::width<T> lanes each kernel keeps in registers: 12
// of the 16 vector registers of AVX2 or SSE2, leaving room for the vectors
// of weights (or dy) and the broadcast input value. Also with AVX-512's 32:
// with 24 the 16 general registers no longer held the pixels' addresses or
// the patch offsets, and (minima of 6 interleaved runs, batch 32, 2 threads)
// the forward of 3->64 @150 took 19.4 ms against 18.4, of 3->16 5.5 against
// 4.8, the weights gradient of 3->16 9.1 against 7.3. (Narrow Winograd's
// weights gradient, whose offsets are consecutive, takes 24.)
constexpr int kDirectAccumulators = 12;
// Vectors of filters in a full filter block.
constexpr int kDirectBlockVectors = 2;

// Chunks of output rows to share among the threads: one per
// kGemmMinWorkPerThread multiply-adds (gemm.hpp's threshold), at most one per
// output row and chunks_per_team(). Tiny convolutions (gradient checks) stay
// in one chunk, on one thread.
inline int direct_chunks(const Conv2DDims& d) {
    const double work = static_cast<double>(d.pixels()) * static_cast<double>(d.patch() * d.filters);
    const Index wanted = static_cast<Index>(work / kGemmMinWorkPerThread);
    return static_cast<int>(std::clamp<Index>(std::min(wanted, d.batch * d.geometry.out_h), 1, chunks_per_team()));
}

// A block of `lanes` filters (1 or 2 vectors), [first, first + width)
// (width <= lanes; the rest are zero padding), and where its values start in
// buffers that hold `patch` rows of `lanes` values per block, block after
// block (offset), or one row of `lanes` per block (bias_offset).
struct DirectFilterBlock {
    Index first, width, lanes, offset, bias_offset;
};

// The filters cut into blocks of kDirectBlockVectors vectors of T, the last
// one or two vectors (padded).
template <typename T>
std::vector<DirectFilterBlock> direct_filter_blocks(const Conv2DDims& d) {
    constexpr Index vector = simd::width<T>;
    std::vector<DirectFilterBlock> blocks;
    Index offset = 0, bias_offset = 0;
    for (Index first = 0; first < d.filters;) {
        const Index rest = d.filters - first;
        const Index lanes = std::min<Index>((rest + vector - 1) / vector, kDirectBlockVectors) * vector;
        blocks.push_back(DirectFilterBlock{first, std::min(rest, lanes), lanes, offset, bias_offset});
        first += lanes;
        offset += d.patch() * lanes;
        bias_offset += lanes;
    }
    return blocks;
}

// Calls body(std::integral_constant<int, vectors>()) for a block of `lanes` filters of T.
template <typename T, typename Body>
void with_direct_vectors(Index lanes, Body&& body) {
    static_assert(kDirectBlockVectors == 2, "one case per block size");
    if (lanes == 2 * simd::width<T>)
        body(std::integral_constant<int, 2>());
    else
        body(std::integral_constant<int, 1>());
}

// to[i] = from[i] where relu_output[i] > 0, else 0 (NaN outputs too), i < count.
template <typename T>
void relu_mask_copy(const T* from, const T* relu_output, Index count, T* to) {
    constexpr Index L = simd::width<T>;
    Index i = 0;
    for (; i + L <= count; i += L)
        simd::store(to + i, simd::load(relu_output + i) > T(0) ? simd::load(from + i) : simd::Vec<T>{});
    for (; i < count; ++i) to[i] = relu_output[i] > T(0) ? from[i] : T(0);
}

// Output rows are computed in groups of up to kDirectGroupRows consecutive
// rows of one image, whose input rows are copied once per group: a 3x3
// stride-1 row group of 8 copies 10 image rows, where copying each output
// row's own 3 rows copied 24 (the copies were 4.4% of the custom CNN's
// training step on one thread, 2,400-value rows at 150x150x16).
constexpr Index kDirectGroupRows = 8;

// The input rows of a group of output rows, zero-padded: (group - 1) * SH +
// KH rows of `columns` pixels of C values; buffer pixel b holds image column
// b - pad_left, the columns outside the image stay zero. `columns` covers
// output pixels [0, max(OW, min_pixels)), so that a block of min_pixels
// pixels fits even in a narrower output.
template <typename T>
struct DirectInputRows {
    Index columns, row_step;
    std::vector<T> values;
    DirectInputRows(const Conv2DDims& d, Index min_pixels)
        : columns((std::max(d.geometry.out_w, min_pixels) - 1) * d.window.stride_w + d.window.kernel_w),
          row_step(columns * d.channels),
          values(static_cast<std::size_t>(((kDirectGroupRows - 1) * d.window.stride_h + d.window.kernel_h) *
                                          row_step),
                 T(0)) {}
};

// The kernel rows [kh_begin, kh_end) of output row out_row (n * OH + oh)
// that lie inside the image; image row (n * H + top + kh) is input row kh.
struct DirectRows {
    Index top, kh_begin, kh_end;
};

inline DirectRows direct_rows(const Conv2DDims& d, Index out_row) {
    const WindowGeometry& g = d.geometry;
    const Index n = out_row / g.out_h, top = out_row % g.out_h * d.window.stride_h - g.pad_top;
    const Index kh_begin = std::clamp<Index>(-top, 0, d.window.kernel_h);
    const Index kh_end = std::clamp<Index>(g.in_h - top, kh_begin, d.window.kernel_h);
    return DirectRows{n * g.in_h + top, kh_begin, kh_end};
}

// The end of the row group that starts at output row `first`, before `last`:
// at most kDirectGroupRows rows, all of one image.
inline Index direct_group_end(const Conv2DDims& d, Index first, Index last) {
    const Index image_end = (first / d.geometry.out_h + 1) * d.geometry.out_h;
    return std::min({last, first + kDirectGroupRows, image_end});
}

// Copies the image rows that output rows [first, end) (one group) read into
// the buffer; buffer row b holds image row direct_rows(d, first).top + b, so
// output row r's kernel row 0 is buffer row direct_rows(d, r).top - that top.
// With `relu_output` (x's shape), x is read where relu_output > 0 and 0 elsewhere.
template <typename T>
void direct_fill_group(const Conv2DDims& d, const RowMatrix<T>& x, Index first, Index end, DirectInputRows<T>& in,
                       const RowMatrix<T>* relu_output = nullptr) {
    const DirectRows top_rows = direct_rows(d, first), bottom_rows = direct_rows(d, end - 1);
    const Index channels = d.channels, in_w = d.geometry.in_w, pad_left = d.geometry.pad_left;
    const Index count = std::min(in_w, in.columns - pad_left);
    for (Index row = top_rows.top + top_rows.kh_begin; row < bottom_rows.top + bottom_rows.kh_end; ++row) {
        const T* src = x.row(row * in_w);
        T* dst = in.values.data() + (row - top_rows.top) * in.row_step + pad_left * channels;
        if (relu_output) {
            const T* mask = relu_output->row(row * in_w);
            for (Index iw = 0; iw < count; ++iw)
                relu_mask_copy(src + iw * x.ld, mask + iw * relu_output->ld, channels, dst + iw * channels);
        } else if (x.ld == channels) {
            std::copy_n(src, count * channels, dst);
        } else {
            for (Index iw = 0; iw < count; ++iw) std::copy_n(src + iw * x.ld, channels, dst + iw * channels);
        }
    }
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
    p.blocks = direct_filter_blocks<T>(d);
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

// P output pixels x V vectors of filters: y[p] = activation(bias + sum over
// `rows` kernel rows r and the row_length = KW * C values j of a window row
// of in[r * row_step + p * pixel_step + j] * w[r * w_row_step + j * V * width + lanes]).
// Stores pixels [0, pixels) and filters [0, filters) at y, y + ld_y, ...;
// a whole block with simd::stream where `stream` (y and ld_y then aligned).
template <typename T, int V, int P>
void direct_forward_pixels(const T* in, Index pixel_step, Index row_step, Index rows, Index row_length, const T* w,
                           Index w_row_step, const T* bias, ActivationFn activation, T* y, Index ld_y, int pixels,
                           Index filters, bool stream = false) {
    using simd::Vec;
    constexpr int L = simd::width<T>;
    Vec<T> acc[P][V];
#pragma GCC unroll 16
    for (int p = 0; p < P; ++p)
#pragma GCC unroll 2
        for (int v = 0; v < V; ++v) acc[p][v] = simd::load(bias + v * L);
    for (Index r = 0; r < rows; ++r) {
        const T* in_r = in + r * row_step;
        const T* w_r = w + r * w_row_step;
        for (Index j = 0; j < row_length; ++j) {
            Vec<T> wv[V];
#pragma GCC unroll 2
            for (int v = 0; v < V; ++v) wv[v] = simd::load(w_r + (j * V + v) * L);
#pragma GCC unroll 16
            for (int p = 0; p < P; ++p) {
                const Vec<T> xv = simd::broadcast(in_r[p * pixel_step + j]);
#pragma GCC unroll 2
                for (int v = 0; v < V; ++v) acc[p][v] += xv * wv[v];
            }
        }
    }
    if (activation == ActivationFn::relu) {
        const Vec<T> zero = {};
#pragma GCC unroll 16
        for (int p = 0; p < P; ++p)
#pragma GCC unroll 2
            for (int v = 0; v < V; ++v) acc[p][v] = acc[p][v] < zero ? zero : acc[p][v];  // keeps NaN
    }
    if (pixels == P && filters >= V * L) {
#pragma GCC unroll 16
        for (int p = 0; p < P; ++p)
#pragma GCC unroll 2
            for (int v = 0; v < V; ++v) {
                if (stream)
                    simd::stream(y + p * ld_y + v * L, acc[p][v]);
                else
                    simd::store(y + p * ld_y + v * L, acc[p][v]);
            }
        return;
    }
    // A partial block: through memory (constant indices keep acc in registers above).
    T part[P][V * L];
#pragma GCC unroll 16
    for (int p = 0; p < P; ++p)
#pragma GCC unroll 2
        for (int v = 0; v < V; ++v) simd::store(part[p] + v * L, acc[p][v]);
    for (int p = 0; p < pixels; ++p) std::copy_n(part[p], std::min<Index>(filters, V * L), y + p * ld_y);
}

// Output row `out_row` (n * OH + oh), every filter block, from its input rows
// in `in` (filled; kernel row 0 at buffer_row); whole blocks streamed where `stream`.
template <typename T>
void direct_forward_row(const Conv2DDims& d, const DirectWeights<T>& weights, const DirectRows& rows,
                        const DirectInputRows<T>& in, Index buffer_row, ActivationFn activation,
                        const RowMatrix<T>& y, Index out_row, bool stream = false) {
    const Index out_w = d.geometry.out_w, window_row = d.window.kernel_w * d.channels;
    const Index pixel_step = d.window.stride_w * d.channels;
    const T* in_first = in.values.data() + (buffer_row + rows.kh_begin) * in.row_step;
    for (const DirectFilterBlock& block : weights.blocks)
        with_direct_vectors<T>(block.lanes, [&](auto vectors) {
            constexpr int V = decltype(vectors)::value, P = kDirectAccumulators / V;
            const T* w = weights.weights.data() + block.offset + rows.kh_begin * window_row * block.lanes;
            const T* bias = weights.bias.data() + block.bias_offset;
            T* y_row = y.row(out_row * out_w) + block.first;
            // Blocks of P pixels; the last one ends at the last pixel (overlapping the one
            // before: same values) unless the row is narrower than P (the buffer is not).
            for (Index ow = 0; ow < out_w; ow += P) {
                const Index first = std::min(ow, std::max<Index>(out_w - P, 0));
                direct_forward_pixels<T, V, P>(in_first + first * pixel_step, pixel_step, in.row_step,
                                               rows.kh_end - rows.kh_begin, window_row, w, window_row * block.lanes,
                                               bias, activation, y_row + first * y.ld, y.ld,
                                               static_cast<int>(std::min<Index>(P, out_w - first)), block.width,
                                               stream);
            }
        });
}

// Outputs of at least this many bytes (4x the L2 caches of 2 cores of 2 MiB)
// are written with streaming stores (simd::stream), where y's rows are
// aligned to whole vectors. Measured with batch 32, 2 threads, AVX-512,
// medians of interleaved runs: the forward of 3x3 3->64 @150 (184 MB of
// output) 10.4-11.7 ms against 15.2-15.5; of 3->16 @150 (46 MB) 3.5-4.1 ms
// against 3.7-4.7; the custom CNN's training step, whose next layer reads
// that output, 121-143 ms against 124-144 (4 pairs, faster or equal in each).
constexpr double kDirectStreamBytes = 16.0 * (1 << 20);

template <typename T>
bool direct_streams_output(const Conv2DDims& d, const RowMatrix<T>& y) {
    constexpr std::size_t vector_bytes = simd::kVectorBytes;
    return static_cast<double>(d.pixels()) * static_cast<double>(d.filters * Index(sizeof(T))) >= kDirectStreamBytes &&
           reinterpret_cast<std::uintptr_t>(y.data) % vector_bytes == 0 &&
           static_cast<std::size_t>(y.ld) * sizeof(T) % vector_bytes == 0;
}

// x (N, H, W, C), weights (KH, KW, C, K), bias (K) or nullptr  ->  y (N, OH, OW, K)
// y = activation(conv(x, weights) + bias); d from conv2d_dims; y is overwritten.
// With relu_output (x's shape), x is read where relu_output > 0, else as 0.
template <typename T>
void conv2d_direct_forward(const Conv2DDims& d, const RowMatrix<T>& x, const T* weights, const T* bias,
                           ActivationFn activation, const RowMatrix<T>& y,
                           const RowMatrix<T>* relu_output = nullptr) {
    if (d.pixels() == 0) return;
    const DirectWeights<T> packed = direct_pack_weights(d, weights, bias);
    const bool stream = direct_streams_output(d, y);
    parallel_chunks(d.batch * d.geometry.out_h, direct_chunks(d), [&](int, Index first_row, Index last_row) {
        DirectInputRows<T> in(d, kDirectAccumulators);
        for (Index group = first_row; group < last_row;) {
            const Index end = direct_group_end(d, group, last_row), group_top = direct_rows(d, group).top;
            direct_fill_group(d, x, group, end, in, relu_output);
            for (Index out_row = group; out_row < end; ++out_row) {
                const DirectRows rows = direct_rows(d, out_row);
                direct_forward_row(d, packed, rows, in, rows.top - group_top, activation, y, out_row, stream);
            }
            group = end;
        }
        if (stream) simd::stream_fence();
    });
}

// The input gradient of a stride-1 'same' convolution with an odd kernel is
// such a convolution itself: dy (N, OH, OW, K) convolved with the kernel
// turned by 180 degrees and its channel axes swapped, (KH, KW, K, C), gives
// dx (N, H, W, C) (the padding (KH - 1) / 2 is the same on every side, and
// stays so when the kernel is turned). These are its extents.
inline Conv2DDims direct_input_gradient_dims(const Conv2DDims& d) {
    return conv2d_dims(d.output_shape(), Shape{d.window.kernel_h, d.window.kernel_w, d.filters, d.channels},
                       ConvParams{1, 1, Padding::same}, "conv2d_backward");
}

// When the input gradient runs as that direct convolution: stride 1, 'same',
// odd kernel, and direct_pays for the turned problem (K input channels, C
// filters). For 3x3 16->16 @150 it replaces Winograd's input gradient, as
// direct_pays replaces Winograd's forward there: 90-95 vs 61-68 GFLOP/s
// (2 threads, batch 32, 3 runs, load ~1).
inline bool direct_pays_input_gradient(const Conv2DDims& d) {
    const Window2D& w = d.window;
    return w.stride_h == 1 && w.stride_w == 1 && w.padding == Padding::same && w.kernel_h % 2 == 1 &&
           w.kernel_w % 2 == 1 && !d.pointwise() && direct_pays(direct_input_gradient_dims(d));
}

// The weights of that convolution: turned[KH-1-kh, KW-1-kw, k, c] = weights[kh, kw, c, k].
template <typename T>
std::vector<T> direct_turned_weights(const Conv2DDims& d, const T* weights) {
    const Index kernel_h = d.window.kernel_h, kernel_w = d.window.kernel_w, c_size = d.channels, k_size = d.filters;
    std::vector<T> turned(static_cast<std::size_t>(kernel_h * kernel_w * c_size * k_size));
    for (Index kh = 0; kh < kernel_h; ++kh)
        for (Index kw = 0; kw < kernel_w; ++kw) {
            const T* from = weights + (kh * kernel_w + kw) * c_size * k_size;
            T* to = turned.data() + ((kernel_h - 1 - kh) * kernel_w + (kernel_w - 1 - kw)) * k_size * c_size;
            for (Index c = 0; c < c_size; ++c)
                for (Index k = 0; k < k_size; ++k) to[k * c_size + c] = from[c * k_size + k];
        }
    return turned;
}

// dy (N, OH, OW, K), weights (KH, KW, C, K)  ->  dx (N, H, W, C), overwritten;
// for the layers direct_pays_input_gradient accepts. Through a ReLU
// (relu_output, dy's shape, or nullptr): dy is read where relu_output > 0.
template <typename T>
void conv2d_direct_input_gradient(const Conv2DDims& d, const RowMatrix<T>& dy, const T* weights,
                                  const RowMatrix<T>& dx, const RowMatrix<T>* relu_output = nullptr) {
    const std::vector<T> turned = direct_turned_weights(d, weights);
    conv2d_direct_forward(direct_input_gradient_dims(d), dy, turned.data(), static_cast<const T*>(nullptr),
                          ActivationFn::linear, dx, relu_output);
}

// Calls body(std::integral_constant<int, J>()) for the last group of `count`
// items of a kernel that takes at most Most at once (values of
// direct_gradient_values, vectors of pixels of conv2d_planar.hpp): J the
// fewest of Most and its 2/3, 1/2 and 1/4 that holds them (Most when count is
// larger). The last group of a 3x3x3 patch at 12 accumulators then computes
// 3 values instead of 12, and 16 channels at 24 take 16.
template <int Most, typename Body>
void with_group_size(Index count, Body&& body) {
    if (count <= Most / 4)
        body(std::integral_constant<int, std::max(1, Most / 4)>());
    else if (count <= Most / 2)
        body(std::integral_constant<int, Most / 2>());
    else if (count <= Most * 2 / 3)
        body(std::integral_constant<int, Most * 2 / 3>());
    else
        body(std::integral_constant<int, Most>());
}

// sum[j * sum_step + lanes] += sum over the `pixels` pixels p of
// in[p * pixel_step + offsets[j]] * dy[p * dy_step + lanes] for J values j
// (J accumulators of V vectors; lanes < V * width) of which the first
// `count` are stored. With Masked, dy is read where relu_output (same steps
// as dy) > 0, else as 0: two more loads and two selects per pixel beside the
// J * V multiply-adds.
template <typename T, int V, int J, bool Masked>
void direct_gradient_values(const T* in, const Index* offsets, Index pixel_step, const T* dy, const T* relu_output,
                            Index dy_step, Index pixels, int count, T* sum, Index sum_step) {
    using simd::Vec;
    constexpr int L = simd::width<T>;
    Vec<T> acc[J][V];
    Index offset[J];
#pragma GCC unroll 24
    for (int j = 0; j < J; ++j) {
        offset[j] = offsets[j];
#pragma GCC unroll 2
        for (int v = 0; v < V; ++v) acc[j][v] = Vec<T>{};
    }
    for (Index p = 0; p < pixels; ++p) {
        const T* in_p = in + p * pixel_step;
        Vec<T> g[V];
#pragma GCC unroll 2
        for (int v = 0; v < V; ++v) {
            g[v] = simd::load(dy + p * dy_step + v * L);
            if (Masked) g[v] = simd::load(relu_output + p * dy_step + v * L) > T(0) ? g[v] : Vec<T>{};
        }
#pragma GCC unroll 24
        for (int j = 0; j < J; ++j) {
            const Vec<T> xv = simd::broadcast(in_p[offset[j]]);
#pragma GCC unroll 2
            for (int v = 0; v < V; ++v) acc[j][v] += xv * g[v];
        }
    }
    if (count == J) {
#pragma GCC unroll 24
        for (int j = 0; j < J; ++j)
#pragma GCC unroll 2
            for (int v = 0; v < V; ++v) {
                T* s = sum + j * sum_step + v * L;
                simd::store(s, simd::load(s) + acc[j][v]);
            }
        return;
    }
    // Fewer values: through memory (constant indices keep acc in registers above).
    T part[J][V * L];
#pragma GCC unroll 24
    for (int j = 0; j < J; ++j)
#pragma GCC unroll 2
        for (int v = 0; v < V; ++v) simd::store(part[j] + v * L, acc[j][v]);
    for (int j = 0; j < count; ++j)
        for (int k = 0; k < V * L; ++k) sum[j * sum_step + k] += part[j][k];
}

// dy rows [first, first + count) (count <= OW) packed per filter block:
// count rows of `lanes` values at packed + bias_offset * OW, block after
// block; the lanes past a block's width are left as they are.
// Through a ReLU (relu_output, dy's shape): dy where relu_output > 0, else
// 0, and each packed row is also added to bias_sums (`lanes` per block at
// bias_offset).
template <typename T>
void direct_pack_dy_row(const std::vector<DirectFilterBlock>& blocks, const RowMatrix<T>& dy, Index first, Index count,
                        T* packed, const RowMatrix<T>* relu_output = nullptr, T* bias_sums = nullptr) {
    constexpr Index L = simd::width<T>;
    for (Index ow = 0; ow < count; ++ow) {
        const T* src = dy.row(first + ow);
        const T* mask = relu_output ? relu_output->row(first + ow) : nullptr;
        for (const DirectFilterBlock& block : blocks) {
            T* dst = packed + block.bias_offset * count + ow * block.lanes;
            if (block.width < block.lanes) {  // the last, partial block; its padding lanes stay 0
                for (Index k = 0; k < block.width; ++k) {
                    dst[k] = !mask || mask[block.first + k] > T(0) ? src[block.first + k] : T(0);
                    if (bias_sums) bias_sums[block.bias_offset + k] += dst[k];
                }
                continue;
            }
            for (Index k = 0; k < block.lanes; k += L) {
                simd::Vec<T> value = simd::load(src + block.first + k);
                if (mask) value = simd::load(mask + block.first + k) > T(0) ? value : simd::Vec<T>{};
                simd::store(dst + k, value);
                if (bias_sums) simd::store(bias_sums + block.bias_offset + k, simd::load(bias_sums + block.bias_offset + k) + value);
            }
        }
    }
}

// sums[k] += dy[r][k] where relu_output[r][k] > 0 over rows [first, first + count),
// k < dy.cols: a bias gradient through a ReLU, from rows of dy read in place.
template <typename T>
void direct_add_masked_rows(const RowMatrix<T>& dy, const RowMatrix<T>& relu_output, Index first, Index count,
                            T* sums) {
    constexpr Index L = simd::width<T>;
    Index k = 0;
    for (; k + L <= dy.cols; k += L) {
        simd::Vec<T> total = simd::load(sums + k);
        for (Index r = first; r < first + count; ++r)
            total += simd::load(relu_output.row(r) + k) > T(0) ? simd::load(dy.row(r) + k) : simd::Vec<T>{};
        simd::store(sums + k, total);
    }
    for (; k < dy.cols; ++k)
        for (Index r = first; r < first + count; ++r) sums[k] += relu_output.row(r)[k] > T(0) ? dy.row(r)[k] : T(0);
}

// Where one output row's dy of a filter block lies: `values` (the block's
// first filter of pixel 0), pixels `step` values apart; with `mask`
// (relu_output at the same places) it is read where the mask is > 0.
template <typename T>
struct DirectGradientDy {
    const T* values;
    const T* mask;
    Index step;
};

// Where patch value r (kh, kw, c) of output pixel 0 lies in a buffer of
// input rows `in` (kernel row 0 first), r < patch, then J - 1 copies of the
// last (read by a block of fewer values, not stored).
template <typename T>
std::vector<Index> direct_patch_offsets(const Conv2DDims& d, const DirectInputRows<T>& in) {
    const Index patch = d.patch(), window_row = d.window.kernel_w * d.channels;
    std::vector<Index> offsets(static_cast<std::size_t>(patch + kDirectAccumulators));
    for (Index r = 0; r < static_cast<Index>(offsets.size()); ++r) {
        const Index last = std::min(r, patch - 1);
        offsets[static_cast<std::size_t>(r)] = last / window_row * in.row_step + last % window_row;
    }
    return offsets;
}

// Adds one output row's products to the chunk's partial sums `sum` (per
// block, (KH*KW*C, lanes)): for each filter block, the patch values of the
// kernel rows inside the image (rows; in_rows: the buffer at kernel row 0),
// J at a time, against the row's dy of that block (dy_of_block(block), a
// DirectGradientDy<T>).
template <typename T, typename DyOfBlock>
void direct_gradient_row(const Conv2DDims& d, const std::vector<DirectFilterBlock>& blocks, const Index* offsets,
                         const DirectRows& rows, const T* in_rows, DyOfBlock dy_of_block, T* sum) {
    const Index window_row = d.window.kernel_w * d.channels, pixel_step = d.window.stride_w * d.channels;
    const Index out_w = d.geometry.out_w;
    for (const DirectFilterBlock& block : blocks) {
        const DirectGradientDy<T> dy = dy_of_block(block);
        with_direct_vectors<T>(block.lanes, [&](auto vectors) {
            constexpr int V = decltype(vectors)::value;
            const Index end = rows.kh_end * window_row;
            constexpr Index most = kDirectAccumulators / V;
            for (Index r = rows.kh_begin * window_row; r < end; r += most) {
                const int count = static_cast<int>(std::min<Index>(most, end - r));
                T* block_sum = sum + block.offset + r * block.lanes;
                with_group_size<most>(count, [&](auto values) {
                    constexpr int J = decltype(values)::value;
                    if (dy.mask)
                        direct_gradient_values<T, V, J, true>(in_rows, offsets + r, pixel_step, dy.values, dy.mask,
                                                              dy.step, out_w, count, block_sum, block.lanes);
                    else
                        direct_gradient_values<T, V, J, false>(in_rows, offsets + r, pixel_step, dy.values, nullptr,
                                                               dy.step, out_w, count, block_sum, block.lanes);
                });
            }
        });
    }
}

// Per-chunk partial sums of a direct weights gradient: per chunk, the weight
// sums (per block, (KH*KW*C, lanes)), then lanes_total bias sums.
template <typename T>
struct DirectGradientPartials {
    std::vector<DirectFilterBlock> blocks;
    Index lanes_total, size;  // size: the weight sums', patch * lanes_total
    int parts;
    ChunkPartials<T> partials;

    explicit DirectGradientPartials(const Conv2DDims& d)
        : blocks(direct_filter_blocks<T>(d)),
          lanes_total(blocks.back().bias_offset + blocks.back().lanes),
          size(d.patch() * lanes_total),
          parts(direct_chunks(d)),
          partials(parts, size + lanes_total) {}

    // d_weights (KH, KW, C, K) and, unless nullptr, d_bias (K) = the chunks'
    // sums added in chunk order.
    void store(const Conv2DDims& d, T* d_weights, T* d_bias) {
        const auto total = [&](Index i) {
            T sum = partials.chunk(0)[i];
            for (int part = 1; part < parts; ++part) sum += partials.chunk(part)[i];
            return sum;
        };
        for (const DirectFilterBlock& block : blocks)
            for (Index r = 0; r < d.patch(); ++r)
                for (Index k = 0; k < block.width; ++k)
                    d_weights[r * d.filters + block.first + k] = total(block.offset + r * block.lanes + k);
        if (d_bias)
            for (const DirectFilterBlock& block : blocks)
                for (Index k = 0; k < block.width; ++k) d_bias[block.first + k] = total(size + block.bias_offset + k);
    }
};

// x (N, H, W, C), dy (N, OH, OW, K)  ->  d_weights (KH, KW, C, K), overwritten:
// sum over output pixels of the input patch (outer product) dy. Chunks of
// output rows accumulate their own partial sums, added in chunk order: the
// result depends only on the thread count.
// Through a ReLU (relu_output, dy's shape, or nullptr): dy is read where
// relu_output > 0, else 0, and d_bias (K, or nullptr) is overwritten with its
// sum over the output pixels.
template <typename T>
void conv2d_direct_weights_gradient(const Conv2DDims& d, const RowMatrix<T>& x, const RowMatrix<T>& dy, T* d_weights,
                                    const RowMatrix<T>* relu_output = nullptr, T* d_bias = nullptr) {
    DirectGradientPartials<T> sums(d);
    const std::vector<DirectFilterBlock>& blocks = sums.blocks;
    const Index out_rows = d.batch * d.geometry.out_h, out_w = d.geometry.out_w;
    parallel_chunks(out_rows, sums.parts, [&](int part, Index first_row, Index last_row) {
        T* sum = sums.partials.chunk(part);
        DirectInputRows<T> in(d, 1);
        const std::vector<Index> offsets = direct_patch_offsets(d, in);
        // The row's dy per block, OW rows of `lanes` values (zero past the block's
        // width), block after block; read in place instead when one full block
        // is contiguous. (Packed in one sequential pass: read block by block,
        // rows of dy 256 bytes apart or more fall into few sets of the L1 cache.)
        const bool in_place = blocks.size() == 1 && blocks[0].width == blocks[0].lanes &&
                              dy.ld == blocks[0].lanes && (!relu_output || relu_output->ld == blocks[0].lanes);
        const bool masked_in_place = in_place && relu_output;
        std::vector<T> dy_packed(static_cast<std::size_t>(in_place ? 0 : out_w * sums.lanes_total), T(0));
        for (Index group = first_row; group < last_row;) {
            const Index group_end = direct_group_end(d, group, last_row), group_top = direct_rows(d, group).top;
            direct_fill_group(d, x, group, group_end, in);
            for (Index out_row = group; out_row < group_end; ++out_row) {
                const DirectRows rows = direct_rows(d, out_row);
                const T* in_rows = in.values.data() + (rows.top - group_top) * in.row_step;  // kernel row 0
                if (!in_place)
                    direct_pack_dy_row(blocks, dy, out_row * out_w, out_w, dy_packed.data(), relu_output,
                                       relu_output && d_bias ? sum + sums.size : nullptr);
                else if (masked_in_place && d_bias)
                    direct_add_masked_rows(dy, *relu_output, out_row * out_w, out_w, sum + sums.size);
                direct_gradient_row(d, blocks, offsets.data(), rows, in_rows, [&](const DirectFilterBlock& block) {
                    if (!in_place) return DirectGradientDy<T>{dy_packed.data() + block.bias_offset * out_w, nullptr,
                                                              block.lanes};
                    const T* mask = masked_in_place ? relu_output->row(out_row * out_w) + block.first : nullptr;
                    return DirectGradientDy<T>{dy.row(out_row * out_w) + block.first, mask, dy.ld};
                }, sum);
            }
            group = group_end;
        }
    });
    sums.store(d, d_weights, relu_output ? d_bias : nullptr);
}

// Whether conv2d_direct_relu_backward takes a layer: both direct gradients
// pay (direct_pays_weights_gradient, direct_pays_input_gradient) and the
// filters fill whole vectors (every filter block full, so a pixel's masked
// dy in the input gradient's buffer serves as the weights gradient's dy as
// it is).
template <typename T>
bool direct_relu_backward_applies(const Conv2DDims& d) {
    return direct_pays_weights_gradient(d) && direct_pays_input_gradient(d) && d.filters % simd::width<T> == 0;
}

// Both gradients of y = relu(conv(x, weights) + bias) from dy after the
// ReLU (relu_output: y) in one pass over dy, for the layers
// direct_relu_backward_applies takes: dx (N, H, W, C), d_weights (KH, KW, C,
// K) and, unless nullptr, d_bias (K), overwritten. Each group of rows
// copies its rows of dy through the mask once, into the input gradient's
// zero-padded buffer (conv2d_direct_input_gradient), and the weights
// gradient reads its dy rows from there (conv2d_direct_weights_gradient's
// products, without masking): dy and relu_output are read once instead of
// twice. Chunks of output rows as in the weights gradient.
template <typename T>
void conv2d_direct_relu_backward(const Conv2DDims& d, const RowMatrix<T>& x, const RowMatrix<T>& dy,
                                 const RowMatrix<T>& relu_output, const T* weights, const RowMatrix<T>& dx,
                                 T* d_weights, T* d_bias) {
    const Conv2DDims turned = direct_input_gradient_dims(d);
    const std::vector<T> turned_weights = direct_turned_weights(d, weights);
    const DirectWeights<T> packed = direct_pack_weights(turned, turned_weights.data(), static_cast<const T*>(nullptr));
    DirectGradientPartials<T> sums(d);
    const Index out_rows = d.batch * d.geometry.out_h, out_w = d.geometry.out_w, filters = d.filters;
    // Pixel 0 of a row of dy in the input gradient's buffer.
    const Index dy_column = turned.geometry.pad_left * filters;
    parallel_chunks(out_rows, sums.parts, [&](int part, Index first_row, Index last_row) {
        T* sum = sums.partials.chunk(part);
        DirectInputRows<T> in(d, 1);
        DirectInputRows<T> masked_dy(turned, kDirectAccumulators);
        const std::vector<Index> offsets = direct_patch_offsets(d, in);
        for (Index group = first_row; group < last_row;) {
            // Output rows of the convolution and rows of dx are the same rows ('same', stride 1).
            const Index group_end = direct_group_end(d, group, last_row);
            const Index x_top = direct_rows(d, group).top, dy_top = direct_rows(turned, group).top;
            direct_fill_group(d, x, group, group_end, in);
            direct_fill_group(turned, dy, group, group_end, masked_dy, &relu_output);
            for (Index row = group; row < group_end; ++row) {
                const DirectRows dx_rows = direct_rows(turned, row);
                direct_forward_row(turned, packed, dx_rows, masked_dy, dx_rows.top - dy_top, ActivationFn::linear,
                                   dx, row);
                // The row of dy, masked: out_w pixels of `filters` values.
                const RowMatrix<T> dy_row{masked_dy.values.data() + (row - dy_top) * masked_dy.row_step + dy_column,
                                          out_w, filters, filters};
                if (d_bias) accumulate_rows(dy_row, 0, out_w, sum + sums.size);
                const DirectRows rows = direct_rows(d, row);
                direct_gradient_row(d, sums.blocks, offsets.data(), rows,
                                    in.values.data() + (rows.top - x_top) * in.row_step,
                                    [&](const DirectFilterBlock& block) {
                                        return DirectGradientDy<T>{dy_row.data + block.first, nullptr, filters};
                                    },
                                    sum);
            }
            group = group_end;
        }
    });
    sums.store(d, d_weights, d_bias);
}

}  // namespace detail
}  // namespace cpu
}  // namespace bcnn

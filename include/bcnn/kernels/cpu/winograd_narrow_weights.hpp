#pragma once
// Narrow Winograd's weights gradient (winograd_narrow.hpp has the forward
// and the input gradient), and both gradients of a layer through its ReLU
// in one pass over the blocks of tiles.
// The weights gradient: the forward's Y = A^T (sum over c of U .* V) A per
// tile, run backwards (winograd.hpp's gradient transforms):
//   1. V[xi][t] of the tile's inputs, as the forward's step 1
//   2. Q[xi][t] = (A dy A^T)[xi], the tile's 4x4 output gradient (zero
//      outside the output; through a ReLU's mask where one is given)
//   3. S[xi] (C x K) += V[xi]^T (C x tiles) * Q[xi] (tiles x K), per chunk of
//      blocks: direct_gradient_values (conv2d_direct.hpp), 6 channels x 2
//      vectors of filters in registers
//   4. d_weights = G^T S G, S summed over the chunks in chunk order
// 36 products a tile and channel-filter pair against the direct weights
// gradient's 144.
// Measured at 16->16 @150 (batch 32, 2 threads): 0.64-0.81x the time of
// the direct weights gradient.

#include <algorithm>
#include <vector>

#include "bcnn/core/parallel.hpp"
#include "bcnn/kernels/cpu/column_sums.hpp"
#include "bcnn/kernels/cpu/conv2d_direct.hpp"
#include "bcnn/kernels/cpu/simd.hpp"
#include "bcnn/kernels/cpu/winograd.hpp"
#include "bcnn/kernels/cpu/winograd_narrow.hpp"

namespace bcnn {
namespace cpu {
namespace detail {

// Q = A dy A^T of one vector of filters: dy (i, j) at dy + i * row_step +
// j * col_step (4x4), read where mask (i, j) at mask + i * mask_row_step +
// j * mask_col_step > 0 with Masked; point xi to q + xi * q_step. bias_sum
// (one vector, or nullptr) += the 16 values read.
template <typename T, bool Masked>
void winograd_narrow_transform_gradient(const T* dy, Index row_step, Index col_step, const T* mask,
                                        Index mask_row_step, Index mask_col_step, T* q, Index q_step, T* bias_sum) {
    using simd::Vec;
    Vec<T> half[6][4];  // A dy: [row i][column j]
    Vec<T> sum{};
#pragma GCC unroll 4
    for (Index j = 0; j < 4; ++j) {
        Vec<T> d[4];
#pragma GCC unroll 4
        for (Index i = 0; i < 4; ++i) {
            d[i] = simd::load(dy + i * row_step + j * col_step);
            if (Masked)
                d[i] = simd::load(mask + i * mask_row_step + j * mask_col_step) > T(0) ? d[i] : Vec<T>{};
            sum += d[i];
        }
        winograd_gradient_values<T>(d[0], d[1], d[2], d[3], half[0][j], half[1][j], half[2][j], half[3][j],
                                    half[4][j], half[5][j]);
    }
    if (bias_sum) simd::store(bias_sum, simd::load(bias_sum) + sum);
#pragma GCC unroll 6
    for (Index i = 0; i < 6; ++i) {
        Vec<T> out[6];
        winograd_gradient_values<T>(half[i][0], half[i][1], half[i][2], half[i][3], out[0], out[1], out[2], out[3],
                                    out[4], out[5]);
#pragma GCC unroll 6
        for (Index j = 0; j < 6; ++j) simd::store(q + (i * 6 + j) * q_step, out[j]);
    }
}

// Step 2 for one tile: q[(xi * block + t) * K + k] = (A dy A^T)[xi] of the
// tile's 4x4 outputs at (top, left) of image n (zero outside the output;
// where mask is given, dy read where mask > 0); bias_sum (K, or nullptr) +=
// the values read. A tile that crosses the output's edge is first copied to
// `tile_dy` (16 * K).
template <typename T>
void winograd_narrow_gradient_tile(const WindowGeometry& g, const RowMatrix<T>& dy, const RowMatrix<T>* mask, Index n,
                                   Index top, Index left, Index block, Index t, T* tile_dy, T* bias_sum, T* q) {
    constexpr Index L = simd::width<T>;
    const Index filters = dy.cols, first_pixel = (n * g.out_h + top) * g.out_w + left;
    const T* d = dy.data + first_pixel * dy.ld;
    const T* m = mask ? mask->data + first_pixel * mask->ld : nullptr;
    Index row_step = g.out_w * dy.ld, col_step = dy.ld;
    if (top + 4 > g.out_h || left + 4 > g.out_w) {
        winograd_narrow_copy_window(dy, mask, g.out_h, g.out_w, n, top, left, 4, tile_dy);
        d = tile_dy;
        m = nullptr;
        row_step = 4 * filters;
        col_step = filters;
    }
    for (Index k = 0; k < filters; k += L) {
        T* const q_k = q + t * filters + k;
        T* const bias_k = bias_sum ? bias_sum + k : nullptr;
        if (m)
            winograd_narrow_transform_gradient<T, true>(d + k, row_step, col_step, m + k, g.out_w * mask->ld,
                                                        mask->ld, q_k, block * filters, bias_k);
        else
            winograd_narrow_transform_gradient<T, false>(d + k, row_step, col_step, nullptr, 0, 0, q_k,
                                                         block * filters, bias_k);
    }
}

// Accumulators of step 3's products: three quarters of the vector registers
// (12 of AVX2's 16, 24 of AVX-512's 32; the channels' offsets are consecutive,
// so unlike the direct weights gradient's they need no registers of their
// own). AVX-512, 16->16 @150 (minima of 6 interleaved runs, batch 32, 2
// threads): 16.2 ms against 19.9 with 12.
constexpr int kWinogradNarrowGradientAccumulators = simd::kVectorRegisters * 3 / 4;

// Step 3 for one block of `count` tiles: sums[xi] (C x K) += v[xi]^T q[xi].
// offsets: 0, 1, ..., C - 1, then copies of C - 1 (read by a group of
// fewer channels than its accumulators, not stored).
template <typename T>
void winograd_narrow_gradient_products(const T* v, const T* q, const std::vector<DirectFilterBlock>& blocks,
                                       const Index* offsets, Index channels, Index filters, Index block, Index count,
                                       T* sums) {
    for (Index xi = 0; xi < kWinogradPoints; ++xi)
        for (const DirectFilterBlock& filter_block : blocks)
            with_direct_vectors<T>(filter_block.lanes, [&](auto vectors) {
                constexpr int V = decltype(vectors)::value;
                constexpr Index most = kWinogradNarrowGradientAccumulators / V;
                for (Index c = 0; c < channels; c += most) {
                    const int values = static_cast<int>(std::min<Index>(most, channels - c));
                    with_group_size<most>(values, [&](auto group) {
                        direct_gradient_values<T, V, decltype(group)::value, false>(
                            v + xi * block * channels, offsets + c, channels,
                            q + xi * block * filters + filter_block.first, static_cast<const T*>(nullptr), filters,
                            count, values, sums + (xi * channels + c) * filters + filter_block.first, filters);
                    });
                }
            });
}

// Step 4: d_weights (3, 3, C, K) = G^T S G from s (36, C, K).
template <typename T>
void winograd_narrow_kernel_gradient(const T* s, Index channels, Index filters, T* d_weights) {
    const Index size = channels * filters;
    for (Index ck = 0; ck < size; ++ck) {
        T half[6][3];  // S G: [row i][kw]
        for (Index i = 0; i < 6; ++i) {
            const T* row = s + i * 6 * size + ck;
            winograd_kernel_gradient_values<T>(row[0], row[size], row[2 * size], row[3 * size], row[4 * size],
                                               row[5 * size], half[i][0], half[i][1], half[i][2]);
        }
        for (Index kw = 0; kw < 3; ++kw)
            winograd_kernel_gradient_values<T>(half[0][kw], half[1][kw], half[2][kw], half[3][kw], half[4][kw],
                                               half[5][kw], d_weights[kw * size + ck],
                                               d_weights[(3 + kw) * size + ck], d_weights[(6 + kw) * size + ck]);
    }
}

// One weights gradient: x (N, H, W, C), dy (N, OH, OW, K), through a ReLU
// when relu_output (dy's shape) is given; with_bias: also the sum of the
// (masked) dy. run_block adds one block of tiles to a chunk's sums: S
// (36, C, K), then the K bias sums.
template <typename T>
struct WinogradNarrowWeightsGradient {
    Conv2DDims d;
    const RowMatrix<T>& x;
    const RowMatrix<T>& dy;
    const RowMatrix<T>* relu_output;
    bool with_bias;
    WinogradNarrowTiles tiles;
    std::vector<DirectFilterBlock> blocks;
    std::vector<Index> offsets;  // 0, 1, ..., C - 1, then copies of C - 1
    Index size;                  // of S: 36 * C * K

    WinogradNarrowWeightsGradient(const Conv2DDims& dims, const RowMatrix<T>& input, const RowMatrix<T>& gradient,
                                  const RowMatrix<T>* mask, bool bias)
        : d(dims),
          x(input),
          dy(gradient),
          relu_output(mask),
          with_bias(bias),
          tiles(dims),
          blocks(direct_filter_blocks<T>(dims)),
          offsets(static_cast<std::size_t>(dims.channels + kWinogradNarrowGradientAccumulators)),
          size(kWinogradPoints * dims.channels * dims.filters) {
        for (Index j = 0; j < static_cast<Index>(offsets.size()); ++j)
            offsets[static_cast<std::size_t>(j)] = std::min(j, dims.channels - 1);
    }

    Index sums_size() const { return size + d.filters; }

    void run_block(Index b, const WinogradNarrowScratch<T>& scratch, T* sums) const {
        const WindowGeometry& g = d.geometry;
        constexpr Index block = kWinogradNarrowBlockTiles;
        const Index count = tiles.block_size(b);
        for (Index t = 0; t < count; ++t) {
            const WinogradTile tile = tiles(b * block + t);
            winograd_narrow_input_tile(g, x, static_cast<const RowMatrix<T>*>(nullptr), tile.n, tile.row - g.pad_top,
                                       tile.col - g.pad_left, block, t, scratch.window, scratch.v);
            winograd_narrow_gradient_tile(g, dy, relu_output, tile.n, tile.row, tile.col, block, t, scratch.tile,
                                          with_bias ? sums + size : nullptr, scratch.products);
        }
        winograd_narrow_gradient_products(scratch.v, scratch.products, blocks, offsets.data(), d.channels, d.filters,
                                          block, count, sums);
    }

    // d_weights (3, 3, C, K) = G^T S G and, with_bias, d_bias (K) from the
    // chunks' sums added in chunk order.
    void store(ChunkPartials<T>& partials, int parts, T* d_weights, T* d_bias) const {
        std::vector<T> totals(static_cast<std::size_t>(sums_size()));
        partials.add_in_order(parts, totals.data());
        winograd_narrow_kernel_gradient(totals.data(), d.channels, d.filters, d_weights);
        if (with_bias) std::copy_n(totals.data() + size, d.filters, d_bias);
    }
};

// x (N, H, W, C), dy (N, OH, OW, K)  ->  d_weights (3, 3, C, K), overwritten;
// winograd_narrow_applicable(d). Through a ReLU (relu_output, dy's shape, or
// nullptr): dy is read where relu_output > 0. d_bias (K, or nullptr) is
// overwritten with the sum of the dy read over the output pixels. Blocks of
// tiles are cut into chunks_per_team() chunks with partial sums each, added
// in chunk order: the result depends on the thread count only.
template <typename T>
void conv2d_winograd_narrow_weights_gradient(const Conv2DDims& d, const RowMatrix<T>& x, const RowMatrix<T>& dy,
                                             T* d_weights, const RowMatrix<T>* relu_output = nullptr,
                                             T* d_bias = nullptr) {
    require_winograd_narrow<T>(d, "conv2d_winograd_narrow_weights_gradient");
    const WinogradNarrowWeightsGradient<T> gradient(d, x, dy, relu_output, d_bias != nullptr);
    const int parts = static_cast<int>(std::clamp<Index>(gradient.tiles.blocks, 1, chunks_per_team()));
    ChunkPartials<T> partials(parts, gradient.sums_size());
    parallel_chunks(gradient.tiles.blocks, parts, [&](int part, Index first_block, Index last_block) {
        const WinogradNarrowScratch<T> scratch(d.channels, d.filters);
        for (Index b = first_block; b < last_block; ++b) gradient.run_block(b, scratch, partials.chunk(part));
    });
    gradient.store(partials, parts, d_weights, d_bias);
}

// Both gradients of conv(x, weights) + bias, or of relu(conv(x, weights) +
// bias) given its output relu_output (dy's shape, or nullptr: no ReLU), from
// the output gradient dy: d_weights (3, 3, C, K) and d_bias (K, or nullptr)
// as conv2d_winograd_narrow_weights_gradient, dx (N, H, W, C) as
// conv2d_winograd_narrow_input_gradient, each reading dy where relu_output
// > 0, with block b of both in turn: the dy the input gradient reads comes
// from cache after the weights gradient's, and d_bias is summed on the way.
template <typename T>
void conv2d_winograd_narrow_backward(const Conv2DDims& d, const RowMatrix<T>& x, const RowMatrix<T>& dy,
                                     const RowMatrix<T>* relu_output, const T* weights, const RowMatrix<T>& dx,
                                     T* d_weights, T* d_bias) {
    require_winograd_narrow<T>(d, "conv2d_winograd_narrow_backward");
    const WinogradNarrowWeightsGradient<T> gradient(d, x, dy, relu_output, d_bias != nullptr);
    const WinogradNarrowCorrelation<T> input_gradient =
        winograd_narrow_input_gradient_correlation(d, dy, weights, dx, relu_output);
    const Index blocks = std::max(gradient.tiles.blocks, input_gradient.tiles.blocks);
    const Index widest = std::max(d.channels, d.filters);
    const int parts = static_cast<int>(std::clamp<Index>(blocks, 1, chunks_per_team()));
    ChunkPartials<T> partials(parts, gradient.sums_size());
    parallel_chunks(blocks, parts, [&](int part, Index first_block, Index last_block) {
        const WinogradNarrowScratch<T> scratch(widest, widest);
        for (Index b = first_block; b < last_block; ++b) {
            if (b < gradient.tiles.blocks) gradient.run_block(b, scratch, partials.chunk(part));
            if (b < input_gradient.tiles.blocks) input_gradient.run_block(b, scratch);
        }
    });
    gradient.store(partials, parts, d_weights, d_bias);
}

}  // namespace detail
}  // namespace cpu
}  // namespace bcnn

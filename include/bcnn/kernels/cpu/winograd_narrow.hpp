#pragma once
// Winograd F(4x4, 3x3) for narrow 3x3 stride-1 layers: channels and filters
// whole vectors of T, at most kWinogradNarrowMaxValues of each (16->16 at
// 150x150, the custom CNN's conv2d_1). The same algorithm as winograd.hpp
// (its transforms, its transformed kernel U) organised for few channels,
// where winograd.hpp's path ran at a third of the direct kernels' speed
// (37 ms against 25 for 16->16 @150 at batch 32): its 36 GEMMs a block pack
// operands of 16 x 16 values, and its transforms loop over 16 values through
// tables of row pointers. Here a block of kWinogradNarrowBlockTiles tiles
// goes through the three steps while it is in cache, the transforms on
// whole vectors of channels:
//   1. V[xi][t] = (B^T d B)[xi], the tile's 6x6 inputs d (zero outside the
//      image; through a ReLU's mask where one is given)
//   2. M[xi] (tiles x K) = V[xi] (tiles x C) * U[xi] (C x K), for each of
//      the 36 points xi: direct_forward_pixels (conv2d_direct.hpp), 6 tiles
//      x 2 vectors of filters in registers, U's rows read in place
//   3. y = activation(A^T M A + bias), the parts inside the output
// Float results carry winograd.hpp's errors (3e-6 to 1.2e-5 of the output's
// scale). Blocks go to threads as they come free; every output pixel is
// written by one block, so results do not depend on timing.
//
// x, y, dy, dx and a ReLU's output may be channel slices of wider NHWC
// buffers; weights and bias must be contiguous.

#include <algorithm>
#include <vector>

#include "bcnn/core/parallel.hpp"
#include "bcnn/kernels/cpu/column_sums.hpp"
#include "bcnn/kernels/cpu/conv2d_direct.hpp"
#include "bcnn/kernels/cpu/simd.hpp"
#include "bcnn/kernels/cpu/winograd.hpp"

namespace bcnn {
namespace cpu {
namespace detail {

// Largest channel and filter counts the narrow path takes.
constexpr Index kWinogradNarrowMaxValues = 32;
// Tiles a block: V and M of a block of 24 tiles at 32 channels and filters
// are 108 KiB each.
constexpr Index kWinogradNarrowBlockTiles = 24;

// Whether the narrow path can compute a convolution of these dims with T.
template <typename T>
bool winograd_narrow_applicable(const Conv2DDims& d) {
    constexpr Index L = simd::width<T>;
    return winograd_applicable(d) && d.channels % L == 0 && d.filters % L == 0 &&
           d.channels <= kWinogradNarrowMaxValues && d.filters <= kWinogradNarrowMaxValues;
}

// U (36, C, K) rearranged for direct_forward_pixels: per point, the filter
// blocks of direct_filter_blocks, each (C, lanes).
template <typename T>
std::vector<T> winograd_narrow_kernel(const T* u, Index channels, const std::vector<DirectFilterBlock>& blocks,
                                      Index filters) {
    std::vector<T> blocked(static_cast<std::size_t>(kWinogradPoints * channels * filters));
    for (Index xi = 0; xi < kWinogradPoints; ++xi)
        for (const DirectFilterBlock& block : blocks)
            for (Index c = 0; c < channels; ++c)
                std::copy_n(u + (xi * channels + c) * filters + block.first, block.lanes,
                            blocked.data() + xi * channels * filters + channels * block.first + c * block.lanes);
    return blocked;
}

// Where a tile lies: image n, top-left output row and column.
struct WinogradTile {
    Index n, row, col;
};

// The 4x4 output tiles of d (n, th, tw; tw fastest) in blocks of
// kWinogradNarrowBlockTiles.
struct WinogradNarrowTiles {
    Index rows, cols, count, blocks;

    explicit WinogradNarrowTiles(const Conv2DDims& d)
        : rows((d.geometry.out_h + kWinogradOut - 1) / kWinogradOut),
          cols((d.geometry.out_w + kWinogradOut - 1) / kWinogradOut),
          count(d.batch * rows * cols),
          blocks((count + kWinogradNarrowBlockTiles - 1) / kWinogradNarrowBlockTiles) {}

    WinogradTile operator()(Index tile) const {
        const Index rest = tile / cols;
        return {rest / rows, rest % rows * kWinogradOut, tile % cols * kWinogradOut};
    }
    // Tiles of block b.
    Index block_size(Index b) const {
        return std::min(kWinogradNarrowBlockTiles, count - b * kWinogradNarrowBlockTiles);
    }
};

// The calling thread's buffers for one block, kept between calls: V
// (36 x block x C), the products M or Q (36 x block x K), and a tile's 6x6
// inputs (window) and 4x4 outputs or output gradient (tile) where it
// crosses the image's edge.
template <typename T>
struct WinogradNarrowScratch {
    T *v, *products, *window, *tile;

    WinogradNarrowScratch(Index channels, Index filters)
        : v(winograd_buffer<T, kTransformedInputs>(kWinogradPoints * kWinogradNarrowBlockTiles * channels)),
          products(winograd_buffer<T, kProducts>(kWinogradPoints * kWinogradNarrowBlockTiles * filters)),
          window(winograd_buffer<T, kHalfTransform>(kWinogradPoints * channels + 16 * filters)),
          tile(window + kWinogradPoints * channels) {}
};

// B^T d B of one vector of channels: d's value (r, s) at
// d + r * row_step + s * col_step; point xi = (i, j) to v + xi * v_step.
template <typename T>
void winograd_narrow_transform_input(const T* d, Index row_step, Index col_step, T* v, Index v_step) {
    using simd::Vec;
    Vec<T> half[6][6];  // B^T d: [row i][column s]
#pragma GCC unroll 6
    for (Index s = 0; s < 6; ++s) {
        const T* column = d + s * col_step;
        winograd_input_values<T>(simd::load(column), simd::load(column + row_step),
                                 simd::load(column + 2 * row_step), simd::load(column + 3 * row_step),
                                 simd::load(column + 4 * row_step), simd::load(column + 5 * row_step), half[0][s],
                                 half[1][s], half[2][s], half[3][s], half[4][s], half[5][s]);
    }
#pragma GCC unroll 6
    for (Index i = 0; i < 6; ++i) {
        Vec<T> out[6];
        winograd_input_values<T>(half[i][0], half[i][1], half[i][2], half[i][3], half[i][4], half[i][5], out[0],
                                 out[1], out[2], out[3], out[4], out[5]);
#pragma GCC unroll 6
        for (Index j = 0; j < 6; ++j) simd::store(v + (i * 6 + j) * v_step, out[j]);
    }
}

// Step 1 for one tile: v[(xi * block + t) * C + c] = (B^T d B)[xi] of the
// tile's 6x6 window at (top, left) of image n (zero outside; where mask is
// given, values read where mask > 0). A window that crosses the image's
// edge, or is read through a mask, is first copied to `window` (36 * C).
template <typename T>
void winograd_narrow_input_tile(const WindowGeometry& g, const RowMatrix<T>& in, const RowMatrix<T>* mask, Index n,
                                Index top, Index left, Index block, Index t, T* window, T* v) {
    constexpr Index L = simd::width<T>;
    const Index channels = in.cols;
    const T* d = in.data + ((n * g.in_h + top) * g.in_w + left) * in.ld;
    Index row_step = g.in_w * in.ld, col_step = in.ld;
    if (mask || top < 0 || left < 0 || top + 6 > g.in_h || left + 6 > g.in_w) {
        for (Index r = 0; r < 6; ++r)
            for (Index s = 0; s < 6; ++s) {
                T* to = window + (r * 6 + s) * channels;
                const Index h = top + r, w = left + s;
                if (h < 0 || h >= g.in_h || w < 0 || w >= g.in_w) {
                    std::fill_n(to, channels, T(0));
                    continue;
                }
                const Index pixel = (n * g.in_h + h) * g.in_w + w;
                if (mask)
                    relu_mask_copy(in.row(pixel), mask->row(pixel), channels, to);
                else
                    std::copy_n(in.row(pixel), channels, to);
            }
        d = window;
        row_step = 6 * channels;
        col_step = channels;
    }
    for (Index c = 0; c < channels; c += L)
        winograd_narrow_transform_input(d + c, row_step, col_step, v + t * channels + c, block * channels);
}

// activation(A^T M A + bias) of one vector of filters: M's point xi at
// m + xi * m_step; output (i, j) to y + i * row_step + j * col_step.
template <typename T, bool Relu>
void winograd_narrow_transform_output(const T* m, Index m_step, simd::Vec<T> bias, T* y, Index row_step,
                                      Index col_step) {
    using simd::Vec;
    Vec<T> half[4][6];  // A^T M: [row i][column s]
#pragma GCC unroll 6
    for (Index s = 0; s < 6; ++s) {
        const T* column = m + s * m_step;
        winograd_output_values<T>(simd::load(column), simd::load(column + 6 * m_step),
                                  simd::load(column + 12 * m_step), simd::load(column + 18 * m_step),
                                  simd::load(column + 24 * m_step), simd::load(column + 30 * m_step), half[0][s],
                                  half[1][s], half[2][s], half[3][s]);
    }
#pragma GCC unroll 4
    for (Index i = 0; i < 4; ++i) {
        Vec<T> out[4];
        winograd_output_values<T>(half[i][0], half[i][1], half[i][2], half[i][3], half[i][4], half[i][5], out[0],
                                  out[1], out[2], out[3]);
#pragma GCC unroll 4
        for (Index j = 0; j < 4; ++j) {
            Vec<T> value = out[j] + bias;
            if (Relu) value = value < Vec<T>{} ? Vec<T>{} : value;  // keeps NaN
            simd::store(y + i * row_step + j * col_step, value);
        }
    }
}

// Step 3 for one tile: the 4x4 outputs at (top, left) of image n inside
// the output = activation(A^T M A + bias) from m[(xi * block + t) * K + k].
// A tile that crosses the output's edge is computed into `tile_out`
// (16 * K), then its inside part copied.
template <typename T>
void winograd_narrow_output_tile(const WindowGeometry& g, const T* m, Index block, Index t, const T* bias,
                                 ActivationFn activation, Index n, Index top, Index left, T* tile_out,
                                 const RowMatrix<T>& out) {
    constexpr Index L = simd::width<T>;
    const Index filters = out.cols;
    const bool inside = top + 4 <= g.out_h && left + 4 <= g.out_w;
    T* const y = inside ? out.data + ((n * g.out_h + top) * g.out_w + left) * out.ld : tile_out;
    const Index row_step = inside ? g.out_w * out.ld : 4 * filters, col_step = inside ? out.ld : filters;
    for (Index k = 0; k < filters; k += L) {
        const simd::Vec<T> b = bias ? simd::load(bias + k) : simd::Vec<T>{};
        const T* m_k = m + t * filters + k;
        if (activation == ActivationFn::relu)
            winograd_narrow_transform_output<T, true>(m_k, block * filters, b, y + k, row_step, col_step);
        else
            winograd_narrow_transform_output<T, false>(m_k, block * filters, b, y + k, row_step, col_step);
    }
    if (inside) return;
    for (Index i = 0; i < 4 && top + i < g.out_h; ++i)
        for (Index j = 0; j < 4 && left + j < g.out_w; ++j)
            std::copy_n(tile_out + (i * 4 + j) * filters, filters,
                        out.row((n * g.out_h + top + i) * g.out_w + left + j));
}

// Step 2 for one block of `count` tiles: m[xi] = v[xi] * U[xi].
template <typename T>
void winograd_narrow_products(const T* v, const T* u_blocked, const std::vector<DirectFilterBlock>& blocks,
                              Index channels, Index filters, Index block, Index count, const T* zeros, T* m) {
    for (Index xi = 0; xi < kWinogradPoints; ++xi)
        for (const DirectFilterBlock& filter_block : blocks)
            with_direct_vectors<T>(filter_block.lanes, [&](auto vectors) {
                constexpr int V = decltype(vectors)::value, P = kDirectAccumulators / V;
                const T* u = u_blocked + xi * channels * filters + channels * filter_block.first;
                // P tiles at a time; the last group ends at the last tile (overlapping the
                // one before: same values) unless the block has fewer than P.
                for (Index t = 0; t < count; t += P) {
                    const Index first = count >= P ? std::min(t, count - P) : 0;
                    direct_forward_pixels<T, V, P>(v + (xi * block + first) * channels, channels, 0, 1, channels, u, 0,
                                                   zeros, ActivationFn::linear,
                                                   m + (xi * block + first) * filters + filter_block.first, filters,
                                                   static_cast<int>(std::min<Index>(P, count)), filter_block.width);
                }
            });
}

// out (N, OH, OW, K) = activation(bias + the 3x3 stride-1 correlation of
// in (N, H, W, C), read where mask > 0 when mask is given (zero outside;
// window shifted by pad_top / pad_left), with the kernel whose transform
// is u (36, C, K)); extents from d; bias may be nullptr.
template <typename T>
void winograd_narrow_correlate(const Conv2DDims& d, const RowMatrix<T>& in, const RowMatrix<T>* mask, const T* u,
                               const T* bias, ActivationFn activation, const RowMatrix<T>& out) {
    const WindowGeometry& g = d.geometry;
    const Index channels = d.channels, filters = d.filters;
    const WinogradNarrowTiles tiles(d);
    if (tiles.count == 0) return;
    const std::vector<DirectFilterBlock> blocks = direct_filter_blocks<T>(d);
    const std::vector<T> u_blocked = winograd_narrow_kernel(u, channels, blocks, filters);
    const std::vector<T> zeros(static_cast<std::size_t>(kDirectBlockVectors * simd::width<T>), T(0));
    constexpr Index block = kWinogradNarrowBlockTiles;
    parallel_chunks(tiles.blocks, chunks_per_team(), [&](int, Index first_block, Index last_block) {
        const WinogradNarrowScratch<T> scratch(channels, filters);
        for (Index b = first_block; b < last_block; ++b) {
            const Index count = tiles.block_size(b);
            for (Index t = 0; t < count; ++t) {
                const WinogradTile tile = tiles(b * block + t);
                winograd_narrow_input_tile(g, in, mask, tile.n, tile.row - g.pad_top, tile.col - g.pad_left, block,
                                           t, scratch.window, scratch.v);
            }
            winograd_narrow_products(scratch.v, u_blocked.data(), blocks, channels, filters, block, count,
                                     zeros.data(), scratch.products);
            for (Index t = 0; t < count; ++t) {
                const WinogradTile tile = tiles(b * block + t);
                winograd_narrow_output_tile(g, scratch.products, block, t, bias, activation, tile.n, tile.row,
                                            tile.col, scratch.tile, out);
            }
        }
    });
}

// x (N, H, W, C), weights (3, 3, C, K), bias (K) or nullptr  ->  y (N, OH, OW, K)
// y = activation(conv(x, weights) + bias), overwritten; winograd_narrow_applicable(d).
template <typename T>
void conv2d_winograd_narrow_forward(const Conv2DDims& d, const RowMatrix<T>& x, const T* weights, const T* bias,
                                    const RowMatrix<T>& y, ActivationFn activation = ActivationFn::linear) {
    BCNN_CHECK(winograd_narrow_applicable<T>(d), "conv2d_winograd_narrow_forward: needs a 3x3 stride-1 kernel and "
                                                 "channels and filters whole vectors up to "
                                                     << kWinogradNarrowMaxValues << ", got " << d.window << ", "
                                                     << d.channels << " -> " << d.filters);
    winograd_narrow_correlate(d, x, static_cast<const RowMatrix<T>*>(nullptr),
                              winograd_kernel_transform(weights, d.channels, d.filters), bias, activation, y);
}

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
        for (Index i = 0; i < 4; ++i)
            for (Index j = 0; j < 4; ++j) {
                T* to = tile_dy + (i * 4 + j) * filters;
                if (top + i >= g.out_h || left + j >= g.out_w) {
                    std::fill_n(to, filters, T(0));
                    continue;
                }
                const Index pixel = first_pixel + i * g.out_w + j;
                if (mask)
                    relu_mask_copy(dy.row(pixel), mask->row(pixel), filters, to);
                else
                    std::copy_n(dy.row(pixel), filters, to);
            }
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

// Step 3 for one block of `count` tiles: sums[xi] (C x K) += v[xi]^T q[xi].
// offsets: 0, 1, ..., C - 1, then copies of C - 1 (read by a group of
// fewer than J channels, not stored).
template <typename T>
void winograd_narrow_gradient_products(const T* v, const T* q, const std::vector<DirectFilterBlock>& blocks,
                                       const Index* offsets, Index channels, Index filters, Index block, Index count,
                                       T* sums) {
    for (Index xi = 0; xi < kWinogradPoints; ++xi)
        for (const DirectFilterBlock& filter_block : blocks)
            with_direct_vectors<T>(filter_block.lanes, [&](auto vectors) {
                constexpr int V = decltype(vectors)::value, J = kDirectAccumulators / V;
                for (Index c = 0; c < channels; c += J)
                    direct_gradient_values<T, V, false>(
                        v + xi * block * channels, offsets + c, channels, q + xi * block * filters + filter_block.first,
                        static_cast<const T*>(nullptr), filters, count,
                        static_cast<int>(std::min<Index>(J, channels - c)),
                        sums + (xi * channels + c) * filters + filter_block.first, filters);
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

// x (N, H, W, C), dy (N, OH, OW, K)  ->  d_weights (3, 3, C, K), overwritten;
// winograd_narrow_applicable(d). Through a ReLU (relu_output, dy's shape, or
// nullptr): dy is read where relu_output > 0, and d_bias (K, or nullptr) is
// overwritten with its sum over the output pixels. Blocks of tiles are cut
// into chunks_per_team() chunks with partial sums each, added in chunk
// order: the result depends on the thread count only.
template <typename T>
void conv2d_winograd_narrow_weights_gradient(const Conv2DDims& d, const RowMatrix<T>& x, const RowMatrix<T>& dy,
                                             T* d_weights, const RowMatrix<T>* relu_output = nullptr,
                                             T* d_bias = nullptr) {
    BCNN_CHECK(winograd_narrow_applicable<T>(d), "conv2d_winograd_narrow_weights_gradient: needs a 3x3 stride-1 "
                                                 "kernel and channels and filters whole vectors up to "
                                                     << kWinogradNarrowMaxValues << ", got " << d.window << ", "
                                                     << d.channels << " -> " << d.filters);
    const WindowGeometry& g = d.geometry;
    const Index channels = d.channels, filters = d.filters, size = kWinogradPoints * channels * filters;
    const WinogradNarrowTiles tiles(d);
    const std::vector<DirectFilterBlock> blocks = direct_filter_blocks<T>(d);
    std::vector<Index> offsets(static_cast<std::size_t>(channels + kDirectAccumulators));
    for (Index j = 0; j < static_cast<Index>(offsets.size()); ++j)
        offsets[static_cast<std::size_t>(j)] = std::min(j, channels - 1);
    constexpr Index block = kWinogradNarrowBlockTiles;
    const int parts = static_cast<int>(std::clamp<Index>(tiles.blocks, 1, chunks_per_team()));
    const bool bias = relu_output && d_bias;
    ChunkPartials<T> partials(parts, size + filters);  // per chunk: S (36, C, K), then the bias sums
    parallel_chunks(tiles.blocks, parts, [&](int part, Index first_block, Index last_block) {
        T* const sums = partials.chunk(part);
        const WinogradNarrowScratch<T> scratch(channels, filters);
        for (Index b = first_block; b < last_block; ++b) {
            const Index count = tiles.block_size(b);
            for (Index t = 0; t < count; ++t) {
                const WinogradTile tile = tiles(b * block + t);
                winograd_narrow_input_tile(g, x, static_cast<const RowMatrix<T>*>(nullptr), tile.n,
                                           tile.row - g.pad_top, tile.col - g.pad_left, block, t, scratch.window,
                                           scratch.v);
                winograd_narrow_gradient_tile(g, dy, relu_output, tile.n, tile.row, tile.col, block, t, scratch.tile,
                                              bias ? sums + size : nullptr, scratch.products);
            }
            winograd_narrow_gradient_products(scratch.v, scratch.products, blocks, offsets.data(), channels, filters,
                                              block, count, sums);
        }
    });
    std::vector<T> totals(static_cast<std::size_t>(size + filters));
    partials.add_in_order(parts, totals.data());
    winograd_narrow_kernel_gradient(totals.data(), channels, filters, d_weights);
    if (bias) std::copy_n(totals.data() + size, filters, d_bias);
}

// dy (N, OH, OW, K), weights (3, 3, C, K)  ->  dx (N, H, W, C), overwritten:
// the correlation of dy with the rotated kernel (winograd.hpp). Through a
// ReLU (relu_output, dy's shape, or nullptr): dy is read where relu_output > 0.
template <typename T>
void conv2d_winograd_narrow_input_gradient(const Conv2DDims& d, const RowMatrix<T>& dy, const T* weights,
                                           const RowMatrix<T>& dx, const RowMatrix<T>* relu_output = nullptr) {
    BCNN_CHECK(winograd_narrow_applicable<T>(d), "conv2d_winograd_narrow_input_gradient: needs a 3x3 stride-1 "
                                                 "kernel and channels and filters whole vectors up to "
                                                     << kWinogradNarrowMaxValues << ", got " << d.window << ", "
                                                     << d.channels << " -> " << d.filters);
    Conv2DDims turned = d;
    turned.channels = d.filters;
    turned.filters = d.channels;
    turned.geometry = winograd_input_gradient_geometry(d.geometry);
    winograd_narrow_correlate(turned, dy, relu_output, winograd_input_gradient_kernel(d, weights),
                              static_cast<const T*>(nullptr), ActivationFn::linear, dx);
}

}  // namespace detail
}  // namespace cpu
}  // namespace bcnn

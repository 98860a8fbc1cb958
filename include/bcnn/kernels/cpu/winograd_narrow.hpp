#pragma once
// Winograd F(4x4, 3x3) for narrow 3x3 stride-1 layers: channels and filters
// whole vectors of T, at most kWinogradNarrowMaxValues of each (16->16 at
// 150x150, the custom CNN's conv2d_1): the forward and the input gradient
// (the weights gradient: winograd_narrow_weights.hpp). The same algorithm
// as winograd.hpp (its transforms, its transformed kernel U) organised for
// few channels, where winograd.hpp's path ran at a third of the direct
// kernels' speed (37 ms against 25 for 16->16 @150 at batch 32): its 36
// GEMMs a block pack operands of 16 x 16 values, and its transforms loop
// over 16 values through tables of row pointers. Here a block of
// kWinogradNarrowBlockTiles tiles goes through the three steps while it is
// in cache, the transforms on whole vectors of channels:
//   1. V[xi][t] = (B^T d B)[xi], the tile's 6x6 inputs d (zero outside the
//      image; through a ReLU's mask where one is given)
//   2. M[xi] (tiles x K) = V[xi] (tiles x C) * U[xi] (C x K), for each of
//      the 36 points xi: direct_forward_pixels (conv2d_direct.hpp), 6 tiles
//      x 2 vectors of filters in registers, U's rows read in place
//   3. y = activation(A^T M A + bias), the parts inside the output (or,
//      for conv2d_max_pool.hpp, its 2x2 max pooling and where each
//      window's maximum lies, from the tile in cache, y not written)
// Float results carry winograd.hpp's errors (3e-6 to 1.2e-5 of the output's
// scale). Blocks go to threads as they come free; every output pixel is
// written by one block, so results do not depend on timing.
//
// x, y, dy, dx and a ReLU's output may be channel slices of wider NHWC
// buffers; weights and bias must be contiguous.

#include <algorithm>
#include <cstdint>
#include <vector>

#include "bcnn/core/parallel.hpp"
#include "bcnn/kernels/cpu/conv2d_direct.hpp"
#include "bcnn/kernels/cpu/pool2d.hpp"
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

// Refuses, naming op, a convolution the narrow path does not take.
template <typename T>
void require_winograd_narrow(const Conv2DDims& d, const char* op) {
    BCNN_CHECK(winograd_narrow_applicable<T>(d), op << ": needs a 3x3 stride-1 kernel and channels and filters "
                                                       "whole vectors up to "
                                                    << kWinogradNarrowMaxValues << ", got " << d.window << ", "
                                                    << d.channels << " -> " << d.filters);
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

// Copies the size x size window at (top, left) of image n of `in`
// (height x width pixels of in.cols values) to `to`, pixel after pixel:
// through the ReLU mask where one is given (relu_mask_copy), zero outside
// the image.
template <typename T>
void winograd_narrow_copy_window(const RowMatrix<T>& in, const RowMatrix<T>* mask, Index height, Index width, Index n,
                                 Index top, Index left, Index size, T* to) {
    const Index channels = in.cols;
    for (Index r = 0; r < size; ++r)
        for (Index s = 0; s < size; ++s, to += channels) {
            const Index h = top + r, w = left + s;
            if (h < 0 || h >= height || w < 0 || w >= width) {
                std::fill_n(to, channels, T(0));
                continue;
            }
            const Index pixel = (n * height + h) * width + w;
            if (mask)
                relu_mask_copy(in.row(pixel), mask->row(pixel), channels, to);
            else
                std::copy_n(in.row(pixel), channels, to);
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
    const bool in_place = !mask && top >= 0 && left >= 0 && top + 6 <= g.in_h && left + 6 <= g.in_w;
    const T* d = window;
    Index row_step = 6 * channels, col_step = channels;
    if (in_place) {
        d = in.data + ((n * g.in_h + top) * g.in_w + left) * in.ld;
        row_step = g.in_w * in.ld;
        col_step = in.ld;
    } else {
        winograd_narrow_copy_window(in, mask, g.in_h, g.in_w, n, top, left, 6, window);
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

// activation(A^T M A + bias) of tile t's 4x4 outputs from m[(xi * block +
// t) * K + k], every filter: output (i, j) to y + i * row_step + j * col_step.
template <typename T>
void winograd_narrow_transform_tile(const T* m, Index block, Index t, Index filters, const T* bias,
                                    ActivationFn activation, T* y, Index row_step, Index col_step) {
    constexpr Index L = simd::width<T>;
    for (Index k = 0; k < filters; k += L) {
        const simd::Vec<T> b = bias ? simd::load(bias + k) : simd::Vec<T>{};
        const T* m_k = m + t * filters + k;
        if (activation == ActivationFn::relu)
            winograd_narrow_transform_output<T, true>(m_k, block * filters, b, y + k, row_step, col_step);
        else
            winograd_narrow_transform_output<T, false>(m_k, block * filters, b, y + k, row_step, col_step);
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
    const Index filters = out.cols;
    const bool inside = top + 4 <= g.out_h && left + 4 <= g.out_w;
    T* const y = inside ? out.data + ((n * g.out_h + top) * g.out_w + left) * out.ld : tile_out;
    const Index row_step = inside ? g.out_w * out.ld : 4 * filters, col_step = inside ? out.ld : filters;
    winograd_narrow_transform_tile(m, block, t, filters, bias, activation, y, row_step, col_step);
    if (inside) return;
    for (Index i = 0; i < 4 && top + i < g.out_h; ++i)
        for (Index j = 0; j < 4 && left + j < g.out_w; ++j)
            std::copy_n(tile_out + (i * 4 + j) * filters, filters,
                        out.row((n * g.out_h + top + i) * g.out_w + left + j));
}

// Where a ReLU correlation pooled 2x2 (stride 2, 'valid') as it goes
// writes, instead of its output (N, OH, OW, K): pooled (N, OH / 2, OW / 2,
// K), and per window and filter the byte of relu_pool_position (pool2d.hpp)
// in positions (pooled's shape, contiguous).
template <typename T>
struct WinogradNarrowPooling {
    RowMatrix<T> pooled;
    std::uint8_t* positions;
};

// Step 3 with the pooling, for one tile at (top, left) of image n (both
// even): relu(A^T M A + bias) into tile_out (16 * K), then the 2x2 windows
// of the tile that lie inside the pooled output: their maxima (as
// max_pool2d_forward computes them) and positions.
template <typename T>
void winograd_narrow_pool_tile(const WindowGeometry& g, const T* m, Index block, Index t, const T* bias, Index n,
                               Index top, Index left, T* tile_out, const WinogradNarrowPooling<T>& pooling) {
    constexpr Index L = simd::width<T>;
    const Index filters = pooling.pooled.cols, pooled_h = g.out_h / 2, pooled_w = g.out_w / 2;
    winograd_narrow_transform_tile(m, block, t, filters, bias, ActivationFn::relu, tile_out, 4 * filters, filters);
    for (Index i = top / 2; i < std::min(top / 2 + 2, pooled_h); ++i)
        for (Index j = left / 2; j < std::min(left / 2 + 2, pooled_w); ++j) {
            const Index window = (n * pooled_h + i) * pooled_w + j;
            const PoolCover cover{2 * i - top, 2 * i - top + 2, 2 * j - left, 2 * j - left + 2};  // in the tile
            for (Index k = 0; k < filters; k += L) {
                const WindowMax<T> best = window_first_max_of<T>(
                    cover, [&](Index h, Index w) { return simd::load(tile_out + (h * 4 + w) * filters + k); });
                simd::store(pooling.pooled.row(window) + k, best.value);
                store_pool_positions<T>(pooling.positions + window * filters + k, relu_pool_position(best), L);
            }
        }
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

// One correlation out (N, OH, OW, K) = activation(bias + the 3x3 stride-1
// correlation of in (N, H, W, C), read where mask > 0 when mask is given
// (zero outside; window shifted by pad_top / pad_left), with the kernel
// whose transform is u (36, C, K)); extents from d; bias may be nullptr.
// With pooling set (a ReLU correlation): its pooled output and positions
// instead of out (WinogradNarrowPooling), tile by tile.
// run_block computes the outputs of one block of tiles.
template <typename T>
struct WinogradNarrowCorrelation {
    Conv2DDims d;
    const RowMatrix<T>& in;
    const RowMatrix<T>* mask;
    const T* bias;
    ActivationFn activation;
    RowMatrix<T> out;
    const WinogradNarrowPooling<T>* pooling = nullptr;
    WinogradNarrowTiles tiles;
    std::vector<DirectFilterBlock> blocks;
    std::vector<T> u_blocked, zeros;

    WinogradNarrowCorrelation(const Conv2DDims& dims, const RowMatrix<T>& input, const RowMatrix<T>* input_mask,
                              const T* u, const T* bias_values, ActivationFn activation_fn,
                              const RowMatrix<T>& output)
        : d(dims),
          in(input),
          mask(input_mask),
          bias(bias_values),
          activation(activation_fn),
          out(output),
          tiles(dims),
          blocks(direct_filter_blocks<T>(dims)),
          u_blocked(winograd_narrow_kernel(u, dims.channels, blocks, dims.filters)),
          zeros(static_cast<std::size_t>(kDirectBlockVectors * simd::width<T>), T(0)) {}

    void run_block(Index b, const WinogradNarrowScratch<T>& scratch) const {
        const WindowGeometry& g = d.geometry;
        constexpr Index block = kWinogradNarrowBlockTiles;
        const Index count = tiles.block_size(b);
        for (Index t = 0; t < count; ++t) {
            const WinogradTile tile = tiles(b * block + t);
            winograd_narrow_input_tile(g, in, mask, tile.n, tile.row - g.pad_top, tile.col - g.pad_left, block, t,
                                       scratch.window, scratch.v);
        }
        winograd_narrow_products(scratch.v, u_blocked.data(), blocks, d.channels, d.filters, block, count,
                                 zeros.data(), scratch.products);
        for (Index t = 0; t < count; ++t) {
            const WinogradTile tile = tiles(b * block + t);
            if (pooling)
                winograd_narrow_pool_tile(g, scratch.products, block, t, bias, tile.n, tile.row, tile.col,
                                          scratch.tile, *pooling);
            else
                winograd_narrow_output_tile(g, scratch.products, block, t, bias, activation, tile.n, tile.row,
                                            tile.col, scratch.tile, out);
        }
    }
};

// Runs a correlation's blocks across the threads.
template <typename T>
void winograd_narrow_correlate(const WinogradNarrowCorrelation<T>& correlation) {
    parallel_chunks(correlation.tiles.blocks, chunks_per_team(), [&](int, Index first_block, Index last_block) {
        const WinogradNarrowScratch<T> scratch(correlation.d.channels, correlation.d.filters);
        for (Index b = first_block; b < last_block; ++b) correlation.run_block(b, scratch);
    });
}

// x (N, H, W, C), weights (3, 3, C, K), bias (K) or nullptr  ->  y (N, OH, OW, K)
// y = activation(conv(x, weights) + bias), overwritten; winograd_narrow_applicable(d).
template <typename T>
void conv2d_winograd_narrow_forward(const Conv2DDims& d, const RowMatrix<T>& x, const T* weights, const T* bias,
                                    const RowMatrix<T>& y, ActivationFn activation = ActivationFn::linear) {
    require_winograd_narrow<T>(d, "conv2d_winograd_narrow_forward");
    winograd_narrow_correlate(WinogradNarrowCorrelation<T>(d, x, static_cast<const RowMatrix<T>*>(nullptr),
                                                           winograd_kernel_transform(weights, d.channels, d.filters),
                                                           bias, activation, y));
}

// The 2x2/2 'valid' max pooling of relu(conv(x, weights) + bias), tile by
// tile, without writing the convolution's output: pooling's pooled output
// and positions, overwritten (conv2d_max_pool.hpp); winograd_narrow_applicable(d).
template <typename T>
void conv2d_winograd_narrow_relu_max_pool_forward(const Conv2DDims& d, const RowMatrix<T>& x, const T* weights,
                                                  const T* bias, const WinogradNarrowPooling<T>& pooling) {
    require_winograd_narrow<T>(d, "conv2d_winograd_narrow_relu_max_pool_forward");
    WinogradNarrowCorrelation<T> correlation(d, x, static_cast<const RowMatrix<T>*>(nullptr),
                                             winograd_kernel_transform(weights, d.channels, d.filters), bias,
                                             ActivationFn::relu, RowMatrix<T>{});
    correlation.pooling = &pooling;
    winograd_narrow_correlate(correlation);
}

// The input gradient dx = the correlation of dy (read where relu_output > 0
// when given) with the rotated kernel (winograd.hpp), as a correlation of
// K channels into C.
template <typename T>
WinogradNarrowCorrelation<T> winograd_narrow_input_gradient_correlation(const Conv2DDims& d, const RowMatrix<T>& dy,
                                                                        const T* weights, const RowMatrix<T>& dx,
                                                                        const RowMatrix<T>* relu_output) {
    Conv2DDims turned = d;
    turned.channels = d.filters;
    turned.filters = d.channels;
    turned.geometry = winograd_input_gradient_geometry(d.geometry);
    return WinogradNarrowCorrelation<T>(turned, dy, relu_output, winograd_input_gradient_kernel(d, weights),
                                        static_cast<const T*>(nullptr), ActivationFn::linear, dx);
}

// dy (N, OH, OW, K), weights (3, 3, C, K)  ->  dx (N, H, W, C), overwritten.
// Through a ReLU (relu_output, dy's shape, or nullptr): dy is read where
// relu_output > 0.
template <typename T>
void conv2d_winograd_narrow_input_gradient(const Conv2DDims& d, const RowMatrix<T>& dy, const T* weights,
                                           const RowMatrix<T>& dx, const RowMatrix<T>* relu_output = nullptr) {
    require_winograd_narrow<T>(d, "conv2d_winograd_narrow_input_gradient");
    winograd_narrow_correlate(winograd_narrow_input_gradient_correlation(d, dy, weights, dx, relu_output));
}

}  // namespace detail
}  // namespace cpu
}  // namespace bcnn

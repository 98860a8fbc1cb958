#pragma once
// The input gradient of a convolution with few input channels (C < 8: the
// RGB first layer of a network), vectorised over pixels instead of channels.
//   dy (N, OH, OW, K), weights (KH, KW, C, K)  ->  dx (N, H, W, C)
// for stride 1, 'same' and odd kernels, where the input gradient is the
// forward convolution of dy with the kernel turned (conv2d_direct.hpp,
// direct_input_gradient_dims / direct_turned_weights): K input channels, C
// filters. The direct forward vectorises over filters, so C = 3 would fill 3
// of a vector's lanes; im2col + GEMM + col2im (conv2d.hpp) ran 3x3 3->16 @150
// at ~25 GFLOP/s (batch 32, 2 threads, AVX-512: 23-35 ms; here 7-8.5 ms, of
// which the transpose, bound by reading dy from memory, is 2-2.6).
// Here each row of dy that a group of output rows reads is first transposed
// into K planes of pixels (zero-padded left and right), so the window of
// output pixels [ow, ow + L) at kernel column kw and channel k is the
// contiguous run of plane k at ow + kw. G filters x P vectors of output
// pixels (21 accumulators with AVX-512: 3 x 7 for C = 3) are summed in simd::Vec
// registers, each turned weight broadcast against the P vectors of a plane.
// The sums go to G planes of the row, then to dx's interleaved channels.
// Through a ReLU (relu_output: the layer's output, dy's shape) dy is read
// where relu_output > 0, else 0, as it is transposed.
// Output rows are shared by the threads as in conv2d_direct.hpp (chunks of
// rows, groups of up to kDirectGroupRows rows of one image); every dx value
// is one thread's fixed sum, so results do not depend on the thread count.

#include <algorithm>
#include <type_traits>
#include <vector>

#include "bcnn/core/parallel.hpp"
#include "bcnn/core/row_matrix.hpp"
#include "bcnn/kernels/cpu/conv2d_dims.hpp"
#include "bcnn/kernels/cpu/conv2d_direct.hpp"
#include "bcnn/kernels/cpu/simd.hpp"

namespace bcnn {
namespace cpu {
namespace detail {

// The most input channels (filters of the turned convolution) whose input
// gradient runs here; from 8 on, direct_pays_input_gradient may take it.
constexpr Index kPlanarMaxChannels = 7;
// Filters summed at once: at most 4, so that a group keeps 3 or more vectors of pixels.
constexpr Index kPlanarMaxGroup = 4;

// When the input gradient runs here: stride 1, 'same', an odd kernel, fewer
// than 8 input channels, not 1x1 (a plain GEMM already).
inline bool planar_pays_input_gradient(const Conv2DDims& d) {
    const Window2D& w = d.window;
    return w.stride_h == 1 && w.stride_w == 1 && w.padding == Padding::same && w.kernel_h % 2 == 1 &&
           w.kernel_w % 2 == 1 && !d.pointwise() && d.channels <= kPlanarMaxChannels;
}

// The input rows of a group of output rows as planes: (group - 1) + KH rows
// of K planes of `columns` values; plane column b holds input column
// b - pad_left, zero outside the input. `columns` covers a block of up to
// `block_vectors` vectors of output pixels that starts at the row's last vector.
template <typename T>
struct PlanarInputRows {
    Index columns, row_step;
    std::vector<T> values;
    PlanarInputRows(const Conv2DDims& t, Index block_vectors)
        : columns(((t.geometry.out_w + simd::width<T> - 1) / simd::width<T> + block_vectors - 1) * simd::width<T> +
                  t.window.kernel_w - 1),
          row_step(columns * t.channels),
          values(static_cast<std::size_t>((kDirectGroupRows - 1 + t.window.kernel_h) * row_step), T(0)) {}
};

// planes[k * columns + iw] = from[iw * ld + k], k < channels, iw < count; with
// a mask (mask_ld apart, from's shape), 0 where mask <= 0. Blocks of L pixels
// x L channels are transposed in registers where the channels are whole vectors.
template <typename T>
void planar_transpose_row(const T* from, Index ld, const T* mask, Index mask_ld, Index channels, Index count,
                          T* planes, Index columns) {
    using simd::Vec;
    constexpr Index L = simd::width<T>;
    Index iw = 0;
    if (channels % L == 0)
        for (; iw + L <= count; iw += L)
            for (Index k = 0; k < channels; k += L) {
                Vec<T> block[L];
#pragma GCC unroll 16
                for (Index p = 0; p < L; ++p) {
                    block[p] = simd::load(from + (iw + p) * ld + k);
                    if (mask) block[p] = simd::load(mask + (iw + p) * mask_ld + k) > T(0) ? block[p] : Vec<T>{};
                }
                simd::transpose<T>(block);
#pragma GCC unroll 16
                for (Index j = 0; j < L; ++j) simd::store(planes + (k + j) * columns + iw, block[j]);
            }
    for (; iw < count; ++iw)
        for (Index k = 0; k < channels; ++k)
            planes[k * columns + iw] = !mask || mask[iw * mask_ld + k] > T(0) ? from[iw * ld + k] : T(0);
}

// Transposes the input rows that output rows [first, end) (one group) read
// into planes; buffer row b holds input row direct_rows(t, first).top + b.
template <typename T>
void planar_fill_group(const Conv2DDims& t, const RowMatrix<T>& in, Index first, Index end, PlanarInputRows<T>& rows,
                       const RowMatrix<T>* relu_output) {
    const DirectRows top_rows = direct_rows(t, first), bottom_rows = direct_rows(t, end - 1);
    const Index in_w = t.geometry.in_w;
    for (Index row = top_rows.top + top_rows.kh_begin; row < bottom_rows.top + bottom_rows.kh_end; ++row)
        planar_transpose_row(in.row(row * in_w), in.ld, relu_output ? relu_output->row(row * in_w) : nullptr,
                             relu_output ? relu_output->ld : 0, t.channels, in_w,
                             rows.values.data() + (row - top_rows.top) * rows.row_step + t.geometry.pad_left,
                             rows.columns);
}

// G filters x P vectors of output pixels: out[g * out_step + pixel] = sum over
// `rows` kernel rows r, the KW kernel columns kw and the K channels k of
// in[r * row_step + k * plane_step + kw + pixel] * w[((r * KW + kw) * K + k) * filters + g].
template <typename T, int G, int P>
void planar_forward_pixels(const T* in, Index plane_step, Index row_step, Index rows, Index kernel_w, Index channels,
                           const T* w, Index filters, T* out, Index out_step) {
    using simd::Vec;
    constexpr int L = simd::width<T>;
    Vec<T> acc[G][P] = {};
    for (Index r = 0; r < rows; ++r)
        for (Index kw = 0; kw < kernel_w; ++kw) {
            const T* in_tap = in + r * row_step + kw;
            const T* w_tap = w + (r * kernel_w + kw) * channels * filters;
            for (Index k = 0; k < channels; ++k) {
                Vec<T> pixels[P];
#pragma GCC unroll 12
                for (int p = 0; p < P; ++p) {
                    pixels[p] = simd::load(in_tap + k * plane_step + p * L);
                    simd::hold<T>(pixels[p]);
                }
#pragma GCC unroll 4
                for (int g = 0; g < G; ++g) {
                    const Vec<T> weight = simd::broadcast(w_tap[k * filters + g]);
#pragma GCC unroll 12
                    for (int p = 0; p < P; ++p) acc[g][p] += weight * pixels[p];
                }
            }
        }
#pragma GCC unroll 4
    for (int g = 0; g < G; ++g)
#pragma GCC unroll 12
        for (int p = 0; p < P; ++p) simd::store(out + g * out_step + p * L, acc[g][p]);
}

// Calls body(std::integral_constant<int, G>()) for a group of `count` filters (1 to kPlanarMaxGroup).
template <typename Body>
void with_planar_group(Index count, Body&& body) {
    static_assert(kPlanarMaxGroup == 4, "one case per group size");
    switch (count) {
        case 1: body(std::integral_constant<int, 1>()); break;
        case 2: body(std::integral_constant<int, 2>()); break;
        case 3: body(std::integral_constant<int, 3>()); break;
        default: body(std::integral_constant<int, 4>()); break;
    }
}

// The filters split into groups of at most kPlanarMaxGroup, as even as can be (7: 4 + 3).
inline Index planar_group_size(Index filters) {
    const Index groups = (filters + kPlanarMaxGroup - 1) / kPlanarMaxGroup;
    return (filters + groups - 1) / groups;
}

// The vectors of pixels summed at once for groups of G filters: G x P
// accumulators, P vectors of pixels and a broadcast weight in the vector
// registers (3 filters: 7 x 3 with AVX-512, 3 x 3 with AVX2).
template <int G>
constexpr int planar_block_vectors = (simd::kVectorRegisters - 1) / (G + 1);

// Output row `out_row` of the turned convolution t, every filter, from the
// planes in `rows` (filled; kernel row 0 at buffer_row). `sums` holds a group's planes.
template <typename T>
void planar_forward_row(const Conv2DDims& t, const T* turned, const DirectRows& kernel_rows,
                        const PlanarInputRows<T>& rows, Index buffer_row, std::vector<T>& sums, const RowMatrix<T>& y,
                        Index out_row) {
    constexpr Index L = simd::width<T>;
    const Index out_w = t.geometry.out_w, filters = t.filters, kernel_w = t.window.kernel_w;
    const Index group_size = planar_group_size(filters), sums_step = rows.columns;
    const T* in = rows.values.data() + (buffer_row + kernel_rows.kh_begin) * rows.row_step;
    const T* w = turned + kernel_rows.kh_begin * kernel_w * t.channels * filters;
    for (Index first = 0; first < filters; first += group_size) {
        const Index count = std::min(group_size, filters - first);
        with_planar_group(count, [&](auto group) {
            constexpr int G = decltype(group)::value, P = planar_block_vectors<G>;
            // Blocks of P vectors; the last takes the fewest of P, 2P/3, P/2, P/4 vectors that reach the row's end.
            for (Index ow = 0; ow < out_w;) {
                const Index vectors = (out_w - ow + L - 1) / L;
                with_group_size<P>(vectors, [&](auto block) {
                    constexpr int V = decltype(block)::value;
                    planar_forward_pixels<T, G, V>(in + ow, rows.columns, rows.row_step,
                                                   kernel_rows.kh_end - kernel_rows.kh_begin, kernel_w, t.channels,
                                                   w + first, filters, sums.data() + ow, sums_step);
                    ow += V * L;
                });
            }
            T* y_row = y.row(out_row * out_w) + first;
            for (Index ow = 0; ow < out_w; ++ow)
                for (int g = 0; g < G; ++g) y_row[ow * y.ld + g] = sums[g * sums_step + ow];
        });
    }
}

// dy (N, OH, OW, K), weights (KH, KW, C, K)  ->  dx (N, H, W, C), overwritten;
// for the layers planar_pays_input_gradient accepts. Through a ReLU
// (relu_output, dy's shape, or nullptr): dy is read where relu_output > 0.
template <typename T>
void conv2d_planar_input_gradient(const Conv2DDims& d, const RowMatrix<T>& dy, const T* weights,
                                  const RowMatrix<T>& dx, const RowMatrix<T>* relu_output = nullptr) {
    if (d.pixels() == 0) return;
    const Conv2DDims t = direct_input_gradient_dims(d);
    const std::vector<T> turned = direct_turned_weights(d, weights);  // (KH, KW, K, C)
    parallel_chunks(t.batch * t.geometry.out_h, direct_chunks(t), [&](int, Index first_row, Index last_row) {
        PlanarInputRows<T> rows(t, planar_block_vectors<1>);
        std::vector<T> sums(static_cast<std::size_t>(kPlanarMaxGroup * rows.columns));
        for (Index group = first_row; group < last_row;) {
            const Index end = direct_group_end(t, group, last_row), group_top = direct_rows(t, group).top;
            planar_fill_group(t, dy, group, end, rows, relu_output);
            for (Index out_row = group; out_row < end; ++out_row) {
                const DirectRows kernel_rows = direct_rows(t, out_row);
                planar_forward_row(t, turned.data(), kernel_rows, rows, kernel_rows.top - group_top, sums, dx,
                                   out_row);
            }
            group = end;
        }
    });
}

// The input gradient without im2col for few input channels: the planar
// kernel below 8 channels, else the direct one (turned); where either applies.
inline bool direct_or_planar_pays_input_gradient(const Conv2DDims& d) {
    return direct_pays_input_gradient(d) || planar_pays_input_gradient(d);
}

template <typename T>
void conv2d_direct_or_planar_input_gradient(const Conv2DDims& d, const RowMatrix<T>& dy, const T* weights,
                                            const RowMatrix<T>& dx, const RowMatrix<T>* relu_output = nullptr) {
    if (planar_pays_input_gradient(d))
        conv2d_planar_input_gradient(d, dy, weights, dx, relu_output);
    else
        conv2d_direct_input_gradient(d, dy, weights, dx, relu_output);
}

}  // namespace detail
}  // namespace cpu
}  // namespace bcnn

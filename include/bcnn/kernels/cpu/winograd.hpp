#pragma once
// Winograd F(4x4, 3x3) convolution for 3x3 stride-1 layers (Lavin & Gray,
// "Fast Algorithms for Convolutional Neural Networks", 2016): forward and
// input gradient of conv2d.hpp's convolution, same layouts and padding.
//   x (N, H, W, C), weights (3, 3, C, K), bias (K) or nullptr  ->  y (N, OH, OW, K)
//
// Each 4x4 block of outputs (a tile) reads a 6x6 block of inputs d (starting
// pad_top / pad_left above and left of it, zeros outside the image); per
// input channel c and filter k
//   Y = A^T [ sum_c (G g G^T) .* (B^T d B) ] A
// with the 3x3 kernel g = weights[:, :, c, k] and the interpolation points
// 0, 1, -1, 2, -2, infinity:
//   B^T = [ 4   0  -5   0   1   0 ]    G = [  1/4     0     0  ]    A^T = [ 1  1   1  1   1  0 ]
//         [ 0  -4  -4   1   1   0 ]        [ -1/6  -1/6  -1/6  ]          [ 0  1  -1  2  -2  0 ]
//         [ 0   4  -4  -1   1   0 ]        [ -1/6   1/6  -1/6  ]          [ 0  1   1  4   4  0 ]
//         [ 0  -2  -1   2   1   0 ]        [ 1/24  1/12   1/6  ]          [ 0  1  -1  8  -8  1 ]
//         [ 0   2  -1  -2   1   0 ]        [ 1/24 -1/12   1/6  ]
//         [ 0   4   0  -5   0   1 ]        [   0     0     1   ]
// The sum over c is, for each of the 36 positions xi of the 6x6 transformed
// tile, a GEMM: M[xi] (tiles x K) = V[xi] (tiles x C) * U[xi] (C x K), where
// U = G g G^T (weights, transformed once per call) and V = B^T d B (inputs).
// 36 products per tile and channel pair replace the 144 of a direct 3x3
// convolution producing 16 outputs; the transforms cost O(C + K) per tile.
//
// Tiles are processed in blocks (kWinogradBlockTiles); threads take
// contiguous runs of blocks, each with its own scratch (V, M and transform
// rows for one block, kept between calls: winograd_buffer), and every output
// pixel is written by exactly one thread, so results do not depend on
// timing. gemm runs serially inside the parallel region.
//
// The input gradient of a 3x3 stride-1 convolution is itself a 3x3 stride-1
// correlation: dx[ih, iw, c] = sum dy[ih - (2 - pad_top) + kh, iw - (2 - pad_left) + kw, k]
//                                   * weights[2 - kh, 2 - kw, c, k]
// (dy = 0 outside its OH x OW extent): the kernel rotated by 180 degrees with
// C and K swapped, padding 2 - pad before, output the size of x. It runs
// through the same machinery.
//
// Float accuracy: the transforms scale values by up to 8 * 4 (A, B) and
// 1/24 (G), so float results carry errors of 3e-6 to 1.2e-5 of the output's
// scale (max |y|; growing with C, measured up to C = 256 in
// tests/kernels/test_winograd.cpp), against ~1e-7 for im2col + GEMM. Double
// results agree with a direct loop to better than 1e-12 of the scale.
//
// x, y, dy and dx may be channel slices of wider NHWC buffers; weights and
// bias must be contiguous.

#include <algorithm>
#include <memory>
#include <vector>

#include "bcnn/core/parallel.hpp"
#include "bcnn/kernels/cpu/bias_activation.hpp"
#include "bcnn/kernels/cpu/conv2d_dims.hpp"
#include "bcnn/kernels/cpu/gemm.hpp"
#include "bcnn/kernels/cpu/window.hpp"

// Vectorise a loop over channels whose input and output rows never overlap.
#ifdef _OPENMP
#define BCNN_WINOGRAD_SIMD _Pragma("omp simd")
#else
#define BCNN_WINOGRAD_SIMD
#endif

namespace bcnn {
namespace cpu {
namespace detail {

constexpr Index kWinogradOut = 4;    // output tile side
constexpr Index kWinogradPoints = 36;  // positions of a transformed tile
// Tiles per block: the rows of each of a block's 36 GEMMs. Every GEMM re-packs
// its (C, K) slice of U, which only pays off over enough rows: at batch 32 on
// 2 threads, 256->256 @37x37 ran 2.5x slower with 8-tile blocks (whose V and M
// fit in L2) than with 96, and 32 tiles still lost 1.5-2x on C = K >= 256;
// 96, 160 and 320 were within the machine's noise of each other.
constexpr Index kWinogradBlockTiles = 96;

// Scratch buffer number `slot` of the calling thread, at least `size` values
// (contents unspecified), kept between calls. Fresh allocations of several
// MiB are mapped anew by the allocator each time and then page-fault on
// every 4 KiB page: 50 ms for the 36 x 512 x 512 transformed float kernels
// of one VGG layer on this machine, ten times the transform itself.
enum WinogradBuffer { kKernelBuffer, kRotatedBuffer, kTransformedInputs, kProducts, kHalfTransform };

template <typename T, int slot>
T* winograd_buffer(Index size) {
    static thread_local std::vector<T> buffer;
    if (static_cast<Index>(buffer.size()) < size) buffer.resize(static_cast<std::size_t>(size));
    return buffer.data();
}

// 3x3 kernel, stride 1 (bcnn's convolutions have dilation 1).
inline bool winograd_applicable(const Conv2DDims& d) {
    return d.window.kernel_h == 3 && d.window.kernel_w == 3 && d.window.stride_h == 1 && d.window.stride_w == 1;
}

// Output tiles of the forward pass: N * ceil(OH / 4) * ceil(OW / 4).
inline Index winograd_tiles(const Conv2DDims& d) {
    return d.batch * ((d.geometry.out_h + kWinogradOut - 1) / kWinogradOut) *
           ((d.geometry.out_w + kWinogradOut - 1) / kWinogradOut);
}

// When Winograd beats conv2d.hpp's im2col + GEMM. Measured on this machine
// (AMD EPYC, AVX2, 2 threads, float, 'same' padding, medians of 5 runs on a
// heavily shared machine: repeated runs differ by up to +-30%) as speedups
// forward / input gradient at batch 32:
//   16->16 @150  1.6 / 1.4     64->64 @37   1.6 / 2.3     256->256 @37 3.1 / 4.0
//   128->32 @18  1.6 / 2.3     32->32 @148  2.0 / 1.6     32->16 @37   2.2 / 2.0
//   16->32 @75   1.2 / 1.3     32->8 @75    1.8 / 1.6     8->8 @150    1.1 / 1.0
//   3->16 @150   0.7-1.2 / 0.6-0.8 (over several runs)
//   VGG16 64@150 2.5 / 2.4, 128@75 2.6 / 2.9, 256@37 2.6 / 3.6, 512@18 3.1 / 8.4, 512@9 2.0 / 4.8
// hence C, K >= 16. Few tiles lose, because the kernel transform and every
// GEMM's packing of U cost O(C K) each, amortised over the tiles. Forward,
// 512->512: @9x9 batch 1 (9 tiles) 0.5, @18x18 batch 1 (25 tiles) 1.0,
// @9x9 batch 4 (36 tiles) 1.1, @4x4 batch 32 (32 tiles) 1.5. The forward
// also loses when most of each 4x4 tile hangs past the image: 256->256
// @5x5 (25 of 64 outputs used) 0.8-1.0 with 128 tiles, while 512 @9x9
// (81 of 144) gains 1.0-2.0 (1.4 typical). Not excluded, for want of a
// reliable measurement: 256 @3x3 (9 of 16, 32 tiles, ~15 ms) timed 0.6.
// The im2col input gradient (GEMM, then col2im's scatter) is slower than its
// forward, so Winograd's wins from fewer tiles and on any image size
// (256 @5x5 1.2-1.7, @3x3 1.2-1.9, 512 @4x4 1.6-4.7; @18x18 batch 1,
// 25 tiles, 1.5; @9x9 batch 1, 9 tiles, 0.8).
inline bool winograd_pays_forward(const Conv2DDims& d) {
    const Index tiles = winograd_tiles(d);
    return winograd_applicable(d) && d.channels >= 16 && d.filters >= 16 && tiles >= 32 &&
           d.pixels() * 2 >= tiles * kWinogradOut * kWinogradOut;
}

inline bool winograd_pays_input_gradient(const Conv2DDims& d) {
    return winograd_applicable(d) && d.channels >= 16 && d.filters >= 16 && winograd_tiles(d) >= 16;
}

// The 1-D transforms of six values (T, or simd vectors of T in
// winograd_narrow.hpp), each result to its own reference (GCC vectorises
// the row loops below over these, not over arrays).

// (o0, ..., o5) = B^T (d0, ..., d5).
template <typename T, typename Value>
inline void winograd_input_values(Value d0, Value d1, Value d2, Value d3, Value d4, Value d5, Value& o0, Value& o1,
                                  Value& o2, Value& o3, Value& o4, Value& o5) {
    o0 = T(4) * d0 - T(5) * d2 + d4;
    o1 = (d3 + d4) - T(4) * (d1 + d2);
    o2 = (d4 - d3) + T(4) * (d1 - d2);
    o3 = (d4 - d2) + T(2) * (d3 - d1);
    o4 = (d4 - d2) - T(2) * (d3 - d1);
    o5 = T(4) * d1 - T(5) * d3 + d5;
}

// (o0, ..., o3) = A^T (m0, ..., m5).
template <typename T, typename Value>
inline void winograd_output_values(Value m0, Value m1, Value m2, Value m3, Value m4, Value m5, Value& o0, Value& o1,
                                   Value& o2, Value& o3) {
    const Value sum12 = m1 + m2, diff12 = m1 - m2;
    const Value sum34 = m3 + m4, diff34 = m3 - m4;
    o0 = m0 + sum12 + sum34;
    o1 = diff12 + T(2) * diff34;
    o2 = sum12 + T(4) * sum34;
    o3 = diff12 + T(8) * diff34 + m5;
}

// The weights gradient (winograd_narrow_weights.hpp) runs the forward
// backwards: a tile's output gradient and the gradient of U = G g G^T come
// from the transposes of A and G.

// (o0, ..., o5) = A (d0, ..., d3) (4 -> 6).
template <typename T, typename Value>
inline void winograd_gradient_values(Value d0, Value d1, Value d2, Value d3, Value& o0, Value& o1, Value& o2,
                                     Value& o3, Value& o4, Value& o5) {
    const Value sum02 = d0 + d2, sum13 = d1 + d3;
    const Value outer = d0 + T(4) * d2, inner = T(2) * d1 + T(8) * d3;
    o0 = d0;
    o1 = sum02 + sum13;
    o2 = sum02 - sum13;
    o3 = outer + inner;
    o4 = outer - inner;
    o5 = d3;
}

// (o0, o1, o2) = G^T (s0, ..., s5) (6 -> 3).
template <typename T, typename Value>
inline void winograd_kernel_gradient_values(Value s0, Value s1, Value s2, Value s3, Value s4, Value s5, Value& o0,
                                            Value& o1, Value& o2) {
    o0 = s0 / T(4) - (s1 + s2) / T(6) + (s3 + s4) / T(24);
    o1 = (s2 - s1) / T(6) + (s3 - s4) / T(12);
    o2 = (s3 + s4 - s1 - s2) / T(6) + s5;
}

// The same applied to n channels at once: row r of the input is
// in[r][0, n), row i of the output out[i][0, n).

// out = B^T in (6 -> 6).
template <typename T>
void winograd_input_rows(const T* const in[6], T* const out[6], Index n) {
    BCNN_WINOGRAD_SIMD
    for (Index c = 0; c < n; ++c)
        winograd_input_values<T>(in[0][c], in[1][c], in[2][c], in[3][c], in[4][c], in[5][c], out[0][c], out[1][c],
                                 out[2][c], out[3][c], out[4][c], out[5][c]);
}

// out = A^T in + bias (6 -> 4).
template <typename T>
void winograd_output_rows(const T* const in[6], T* const out[4], const T* bias, Index n) {
    BCNN_WINOGRAD_SIMD
    for (Index k = 0; k < n; ++k) {
        T o0, o1, o2, o3;
        winograd_output_values<T>(in[0][k], in[1][k], in[2][k], in[3][k], in[4][k], in[5][k], o0, o1, o2, o3);
        out[0][k] = o0 + bias[k];
        out[1][k] = o1 + bias[k];
        out[2][k] = o2 + bias[k];
        out[3][k] = o3 + bias[k];
    }
}

// out = G in (3 -> 6).
template <typename T>
void winograd_kernel_rows(const T* const in[3], T* const out[6], Index n) {
    BCNN_WINOGRAD_SIMD
    for (Index k = 0; k < n; ++k) {
        const T g0 = in[0][k], g1 = in[1][k], g2 = in[2][k];
        const T outer = g0 + g2;
        out[0][k] = g0 / T(4);
        out[1][k] = -(outer + g1) / T(6);
        out[2][k] = -(outer - g1) / T(6);
        out[3][k] = g0 / T(24) + g1 / T(12) + g2 / T(6);
        out[4][k] = g0 / T(24) - g1 / T(12) + g2 / T(6);
        out[5][k] = g2;
    }
}

// u (36, C, K): u[xi] = (G g G^T)[xi] for weights (3, 3, C, K); u is the
// calling thread's kKernelBuffer, valid until its next call. Small kernels are
// transformed serially (a 64 x 64 one takes ~30 us, less than waking threads).
template <typename T>
const T* winograd_kernel_transform(const T* weights, Index channels, Index filters) {
    constexpr Index kMinValuesPerThread = Index(1) << 18;
    const Index size = kWinogradPoints * channels * filters;
    T* const u = winograd_buffer<T, kKernelBuffer>(size);
    const int parts = static_cast<int>(std::clamp<Index>(size / kMinValuesPerThread, 1, num_threads()));
    parallel_chunks(channels, parts, [&](int, Index first, Index last) {
        T* const half = winograd_buffer<T, kHalfTransform>(6 * 3 * filters);  // G g: 6 x 3 rows of K
        for (Index c = first; c < last; ++c) {
            for (Index kw = 0; kw < 3; ++kw) {
                const T* in[3];
                T* out[6];
                for (Index kh = 0; kh < 3; ++kh) in[kh] = weights + ((kh * 3 + kw) * channels + c) * filters;
                for (Index i = 0; i < 6; ++i) out[i] = half + (i * 3 + kw) * filters;
                winograd_kernel_rows(in, out, filters);
            }
            for (Index i = 0; i < 6; ++i) {
                const T* in[3];
                T* out[6];
                for (Index kw = 0; kw < 3; ++kw) in[kw] = half + (i * 3 + kw) * filters;
                for (Index j = 0; j < 6; ++j) out[j] = u + ((i * 6 + j) * channels + c) * filters;
                winograd_kernel_rows(in, out, filters);
            }
        }
    });
    return u;
}

// out (N, g.out_h, g.out_w, K) = activation(bias + the 3x3 stride-1
// correlation of in (N, g.in_h, g.in_w, C) (zero outside, window shifted by
// g.pad_top / g.pad_left) with the kernel whose transform is u (36, C, K));
// bias may be nullptr.
template <typename T>
void winograd_correlate(Index batch, const WindowGeometry& g, const RowMatrix<T>& in, const T* u, const T* bias,
                        ActivationFn activation, const RowMatrix<T>& out) {
    const Index channels = in.cols, filters = out.cols;
    const Index tiles_h = (g.out_h + kWinogradOut - 1) / kWinogradOut;
    const Index tiles_w = (g.out_w + kWinogradOut - 1) / kWinogradOut;
    const Index tiles = batch * tiles_h * tiles_w;
    if (tiles == 0) return;
    const int threads = num_threads();
    const Index block = std::min(kWinogradBlockTiles, (tiles + threads - 1) / threads);
    const Index blocks = (tiles + block - 1) / block;
    const std::unique_ptr<T[]> zeros(new T[static_cast<std::size_t>(std::max(channels, filters))]());

    parallel_chunks(blocks, threads, [&](int, Index first_block, Index last_block) {
        T* const v = winograd_buffer<T, kTransformedInputs>(kWinogradPoints * block * channels);
        T* const m = winograd_buffer<T, kProducts>(kWinogradPoints * block * filters);
        // 36 rows of C or K, then one of K: the target of outputs past the image.
        T* const half = winograd_buffer<T, kHalfTransform>(kWinogradPoints * std::max(channels, filters) + filters);
        T* const discard = half + kWinogradPoints * std::max(channels, filters);
        for (Index b = first_block; b < last_block; ++b) {
            const Index first = b * block, count = std::min(block, tiles - first);
            // V[xi] rows t = B^T d B of tile first + t.
            for (Index t = 0; t < count; ++t) {
                const Index tile = first + t, tw = tile % tiles_w, rest = tile / tiles_w;
                const Index th = rest % tiles_h, n = rest / tiles_h;
                const Index top = th * kWinogradOut - g.pad_top, left = tw * kWinogradOut - g.pad_left;
                for (Index s = 0; s < 6; ++s) {  // columns: half = B^T d
                    const T* col[6];
                    T* dst[6];
                    const Index w = left + s;
                    for (Index r = 0; r < 6; ++r) {
                        const Index h = top + r;
                        const bool inside = h >= 0 && h < g.in_h && w >= 0 && w < g.in_w;
                        col[r] = inside ? in.row((n * g.in_h + h) * g.in_w + w) : zeros.get();
                        dst[r] = half + (r * 6 + s) * channels;
                    }
                    winograd_input_rows(col, dst, channels);
                }
                for (Index i = 0; i < 6; ++i) {  // rows: V = (B^T d) B
                    const T* row[6];
                    T* dst[6];
                    for (Index s = 0; s < 6; ++s) {
                        row[s] = half + (i * 6 + s) * channels;
                        dst[s] = v + ((i * 6 + s) * block + t) * channels;
                    }
                    winograd_input_rows(row, dst, channels);
                }
            }
            // M[xi] (count x K) = V[xi] (count x C) * U[xi] (C x K)
            for (Index xi = 0; xi < kWinogradPoints; ++xi)
                gemm(Transpose::no, Transpose::no, count, filters, channels, T(1), v + xi * block * channels,
                     channels, u + xi * channels * filters, filters, T(0), m + xi * block * filters, filters);
            // Y = A^T M A + bias, clipped to the image.
            for (Index t = 0; t < count; ++t) {
                const Index tile = first + t, tw = tile % tiles_w, rest = tile / tiles_w;
                const Index th = rest % tiles_h, n = rest / tiles_h;
                const Index top = th * kWinogradOut, left = tw * kWinogradOut;
                for (Index s = 0; s < 6; ++s) {  // columns: half = A^T M
                    const T* col[6];
                    T* dst[4];
                    for (Index r = 0; r < 6; ++r) col[r] = m + ((r * 6 + s) * block + t) * filters;
                    for (Index i = 0; i < 4; ++i) dst[i] = half + (i * 6 + s) * filters;
                    winograd_output_rows(col, dst, zeros.get(), filters);
                }
                for (Index i = 0; i < 4; ++i) {  // rows: Y = (A^T M) A + bias
                    const T* row[6];
                    T* dst[4];
                    const Index h = top + i;
                    for (Index s = 0; s < 6; ++s) row[s] = half + (i * 6 + s) * filters;
                    for (Index j = 0; j < 4; ++j) {
                        const Index w = left + j;
                        dst[j] = h < g.out_h && w < g.out_w ? out.row((n * g.out_h + h) * g.out_w + w) : discard;
                    }
                    winograd_output_rows(row, dst, bias ? bias : zeros.get(), filters);
                    if (activation == ActivationFn::relu)
                        for (Index j = 0; j < 4; ++j)
                            for (Index k = 0; k < filters; ++k) dst[j][k] = dst[j][k] < T(0) ? T(0) : dst[j][k];
                }
            }
        }
    });
}

// x (N, H, W, C), weights (3, 3, C, K), bias (K) or nullptr  ->  y (N, OH, OW, K)
// y = activation(conv(x, weights) + bias); d from conv2d_dims; y is overwritten.
template <typename T>
void conv2d_winograd_forward(const Conv2DDims& d, const RowMatrix<T>& x, const T* weights, const T* bias,
                             const RowMatrix<T>& y, ActivationFn activation = ActivationFn::linear) {
    BCNN_CHECK(winograd_applicable(d), "conv2d_winograd_forward: needs a 3x3 kernel with stride 1, got " << d.window);
    winograd_correlate(d.batch, d.geometry, x, winograd_kernel_transform(weights, d.channels, d.filters), bias,
                       activation, y);
}

// The geometry of the input gradient's correlation (the header's comment):
// dy (OH x OW) in, dx (H x W) out, padding 2 - pad before.
inline WindowGeometry winograd_input_gradient_geometry(const WindowGeometry& g) {
    return WindowGeometry{g.out_h, g.out_w, g.in_h, g.in_w, 2 - g.pad_top, 2 - g.pad_left};
}

// U (36, K, C) of the input gradient's kernel: weights (3, 3, C, K) rotated
// by 180 degrees with C and K swapped, transformed (winograd_kernel_transform).
template <typename T>
const T* winograd_input_gradient_kernel(const Conv2DDims& d, const T* weights) {
    const Index channels = d.channels, filters = d.filters;
    // rotated (3, 3, K, C): rotated[kh][kw][k][c] = weights[2 - kh][2 - kw][c][k]
    T* const rotated = winograd_buffer<T, kRotatedBuffer>(9 * channels * filters);
    for (Index tap = 0; tap < 9; ++tap) {
        const T* from = weights + (8 - tap) * channels * filters;
        T* to = rotated + tap * channels * filters;
        for (Index c = 0; c < channels; ++c)
            for (Index k = 0; k < filters; ++k) to[k * channels + c] = from[c * filters + k];
    }
    return winograd_kernel_transform<T>(rotated, filters, channels);
}

// dy (N, OH, OW, K), weights (3, 3, C, K)  ->  dx (N, H, W, C), overwritten.
template <typename T>
void conv2d_winograd_input_gradient(const Conv2DDims& d, const RowMatrix<T>& dy, const T* weights,
                                    const RowMatrix<T>& dx) {
    BCNN_CHECK(winograd_applicable(d),
               "conv2d_winograd_input_gradient: needs a 3x3 kernel with stride 1, got " << d.window);
    winograd_correlate(d.batch, winograd_input_gradient_geometry(d.geometry), dy,
                       winograd_input_gradient_kernel(d, weights), static_cast<const T*>(nullptr),
                       ActivationFn::linear, dx);
}

}  // namespace detail
}  // namespace cpu
}  // namespace bcnn

#undef BCNN_WINOGRAD_SIMD

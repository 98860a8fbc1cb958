#pragma once
// The backward of a separable convolution (separable_conv2d.hpp) computed
// band by band of rows of one image. Run one after the other over whole
// tensors, its steps make about 11 passes over tensors of the layer's size
// (23 MB for (32, 75, 75, 32) floats): a ReLU's mask writes dy_pre, the
// pointwise weights and input gradients read it and write d_depthwise_out,
// the depthwise weights and input gradients read that. Here each band goes
// through every step, its dy_pre and d_depthwise_out held in buffers of the
// thread's own (a few hundred KiB) and read back while still in cache:
//   1. dy_pre = dy, or dy where relu_output > 0 (the ReLU folded in);
//      d_bias += the band's column sums of dy_pre;
//   2. d_pointwise += depthwise_out[band]^T * dy_pre[band]        (C x K)
//   3. d_depthwise_out = dy_pre * pointwise^T, for the band and the rows
//      of halo that step 5 reads                                 (pixels x C)
//   4. d_depthwise += the band's depthwise weights gradient from x and d_depthwise_out
//   5. dx[band] = d_depthwise_out convolved with the flipped kernel
// Memory traffic: dy, relu_output, depthwise_out and x read once (x's halo
// rows twice) and dx written once; neither dy_pre nor d_depthwise_out is
// written out. The halo rows of steps 1 and 3 are computed by both bands
// they border (halo / band_rows more of those steps).
// Measured against the whole-tensor steps (relu_backward_bias_gradient,
// then separable_conv2d_backward; 2 threads, batch 32, 15 interleaved runs
// twice on the shared 2-core Zen 3): 16->32 @75 0.75-0.86x the time,
// 32->32 @75 0.83-0.91x, 32->64 @37 0.94-0.96x, 64->64 @37 1.01-1.02x,
// 128->128 @18 0.90-0.95x.
// Where it applies (separable_bands_apply): stride 1, 'same' padding (output
// rows are input rows), depth multiplier 1 with fewer than 256 channels
// (depthwise_conv2d.hpp's register-blocked kernels). A band is a piece of
// the whole-tensor computation over an image of its own rows: an image of
// rows [e0, e1) gives the right values for its rows [r0, r1) whenever every
// row those read that lies in the real image is inside [e0, e1) (rows
// outside the real image are zero padding in both).
// Weight and bias gradients are summed per chunk of bands in ChunkPartials,
// added in chunk order: the result depends only on the thread count.

#include <algorithm>
#include <memory>
#include <vector>

#include "bcnn/core/parallel.hpp"
#include "bcnn/core/row_matrix.hpp"
#include "bcnn/kernels/cpu/column_sums.hpp"
#include "bcnn/kernels/cpu/conv2d.hpp"
#include "bcnn/kernels/cpu/conv2d_direct.hpp"
#include "bcnn/kernels/cpu/depthwise_conv2d.hpp"
#include "bcnn/kernels/cpu/gemm.hpp"

namespace bcnn {
namespace cpu {
namespace detail {

// Whether the banded backward handles a separable convolution of these
// depthwise extents.
inline bool separable_bands_apply(const DepthwiseDims& d) {
    return depthwise_blocked_pays(d) && d.stride_h == 1 && d.stride_w == 1 &&
           d.geometry.out_h == d.geometry.in_h && d.geometry.out_w == d.geometry.in_w;
}

// The bytes of dy_pre and d_depthwise_out (K + C values a pixel) one band
// may hold, halo included. Measured (2 threads, batch 32, the custom CNN's
// layers 16->32 @75, 32->32 @75, 32->64 @37, 64->64 @37, 128->128 @18;
// interleaved runs on the shared 2-core Zen 3, 512 KiB L2): 96 KiB was 5-10%
// slower than 160 KiB, 320 and 640 KiB 3-12% faster than it, 1280 KiB and
// whole images no faster than 640 KiB. The steps compute more than they
// stream: fewer, taller bands recompute fewer halo rows and make fewer,
// larger GEMMs.
constexpr Index kSeparableBandBytes = 640 * 1024;

// Rows of halo on either side of a band. The weights gradient of output row
// r reads x rows r - pad_top .. r + pad_bottom, and dx row r reads
// d_depthwise_out rows r - pad_bottom .. r + pad_top (pad_bottom = KH - 1 - pad_top).
inline Index separable_band_halo(const DepthwiseDims& d) {
    return std::max(d.geometry.pad_top, d.kernel_h - 1 - d.geometry.pad_top);
}

// Rows of a band for d and K filters: as many as kSeparableBandBytes holds
// with their halo, at least 1.
inline Index separable_band_rows(const DepthwiseDims& d, Index filters, Index value_bytes) {
    const Index row_bytes = d.geometry.in_w * (d.channels + filters) * value_bytes;
    const Index rows = kSeparableBandBytes / std::max<Index>(row_bytes, 1) - 2 * separable_band_halo(d);
    return std::clamp<Index>(rows, 1, d.geometry.in_h);
}

// The rows of one band: the rows [first, last) of image n it owns, and
// [ext_first, ext_last): the owned rows and the halo rows (inside the image)
// that their weights and input gradients read.
struct SeparableBand {
    Index n, first, last, ext_first, ext_last;
};

inline SeparableBand separable_band(const DepthwiseDims& d, Index band_rows, Index unit) {
    const Index height = d.geometry.in_h, bands = (height + band_rows - 1) / band_rows;
    SeparableBand b;
    b.n = unit / bands;
    b.first = unit % bands * band_rows;
    b.last = std::min(height, b.first + band_rows);
    const Index halo = separable_band_halo(d);
    b.ext_first = std::max<Index>(0, b.first - halo);
    b.ext_last = std::min(height, b.last + halo);
    return b;
}

// d restricted to an image of `rows` rows (one band's), batch 1.
inline DepthwiseDims separable_band_dims(const DepthwiseDims& d, Index rows) {
    DepthwiseDims band = d;
    band.batch = 1;
    band.geometry.in_h = band.geometry.out_h = rows;
    return band;
}

// Rows [first, first + rows) of image n of an NHWC tensor of width w, as a
// matrix of pixels.
template <typename T>
RowMatrix<T> separable_image_rows(const RowMatrix<T>& m, const DepthwiseDims& d, Index n, Index first, Index rows) {
    const Index w = d.geometry.in_w;
    return RowMatrix<T>{m.row((n * d.geometry.in_h + first) * w), rows * w, m.cols, m.ld};
}

// What a banded backward reads and writes; pointers are nullptr when not
// given or not wanted.
template <typename T>
struct SeparableBandsArgs {
    RowMatrix<T> x, depthwise_out, dy;
    const RowMatrix<T>* relu_output;  // y of a ReLU layer, dy's shape, or nullptr
    const T* depthwise_weights;       // (KH, KW, C, 1)
    const T* pointwise_weights;       // (1, 1, C, K)
    const RowMatrix<T>* dx;           // (N, H, W, C)
    T *d_depthwise_weights, *d_pointwise_weights, *d_bias;
};

// The banded backward with bands of band_rows rows (separable_band_rows, or
// fewer in the tests). d: the depthwise part's extents, separable_bands_apply;
// filters: K.
template <typename T>
void separable_bands_backward(const DepthwiseDims& d, Index filters, Index band_rows, const SeparableBandsArgs<T>& a) {
    const Index channels = d.channels, width = d.geometry.in_w, height = d.geometry.in_h;
    const Index pointwise_size = channels * filters, depthwise_size = d.kernel_h * d.kernel_w * channels;
    const bool depthwise_gradient = a.dx || a.d_depthwise_weights;
    // pointwise^T (K, C), packed once for every band's d_depthwise_out.
    const PackedB<T> pointwise_t =
        depthwise_gradient ? pack_b(Transpose::yes, filters, channels, a.pointwise_weights, filters) : PackedB<T>();
    const std::vector<T> flipped = depthwise_flipped_weights(d, a.depthwise_weights);
    const Index bands = (height + band_rows - 1) / band_rows, units = d.batch * bands;
    const int parts = static_cast<int>(std::clamp<Index>(units, 1, chunks_per_team()));
    // Per chunk: d_pointwise (C x K), d_depthwise (KH x KW x C), d_bias (K).
    ChunkPartials<T> partials(parts, pointwise_size + depthwise_size + filters);
    const Index ext_rows = band_rows + 2 * separable_band_halo(d);
    parallel_chunks(units, parts, [&](int part, Index first_unit, Index last_unit) {
        T* pointwise_sum = partials.chunk(part);
        T* depthwise_sum = pointwise_sum + pointwise_size;
        T* bias_sum = depthwise_sum + depthwise_size;
        const std::unique_ptr<T[]> dy_pre = scratch<T>(a.relu_output ? ext_rows * width * filters : 0);
        const std::unique_ptr<T[]> d_depthwise_out = scratch<T>(depthwise_gradient ? ext_rows * width * channels : 0);
        for (Index unit = first_unit; unit < last_unit; ++unit) {
            const SeparableBand b = separable_band(d, band_rows, unit);
            const Index rows = b.ext_last - b.ext_first, pixels = rows * width;
            const Index owned_first = (b.first - b.ext_first) * width, owned_pixels = (b.last - b.first) * width;
            // 1. dy_pre (pixels, K): dy read in place, or through the ReLU into the band's buffer.
            RowMatrix<T> pre = separable_image_rows(a.dy, d, b.n, b.ext_first, rows);
            if (a.relu_output) {
                const RowMatrix<T> mask = separable_image_rows(*a.relu_output, d, b.n, b.ext_first, rows);
                for (Index p = 0; p < pixels; ++p)
                    relu_mask_copy(pre.row(p), mask.row(p), filters, dy_pre.get() + p * filters);
                pre = RowMatrix<T>{dy_pre.get(), pixels, filters, filters};
            }
            if (a.d_bias) accumulate_rows(pre, owned_first, owned_first + owned_pixels, bias_sum);
            // 2. d_pointwise (C, K) += depthwise_out^T (C, owned) * dy_pre (owned, K)
            if (a.d_pointwise_weights) {
                const RowMatrix<T> z = separable_image_rows(a.depthwise_out, d, b.n, b.first, b.last - b.first);
                gemm(Transpose::yes, Transpose::no, channels, filters, owned_pixels, T(1), z.data, z.ld,
                     pre.row(owned_first), pre.ld, T(1), pointwise_sum, filters);
            }
            if (!depthwise_gradient) continue;
            // 3. d_depthwise_out (pixels, C) = dy_pre (pixels, K) * pointwise^T (K, C)
            gemm(Transpose::no, pixels, pre.data, pre.ld, pointwise_t, T(1), T(0), d_depthwise_out.get(), channels);
            const DepthwiseDims band = separable_band_dims(d, rows);
            const RowMatrix<T> dz{d_depthwise_out.get(), pixels, channels, channels};
            const Index row_begin = b.first - b.ext_first, row_end = b.last - b.ext_first;
            // 4. the depthwise weights gradient of the owned rows
            if (a.d_depthwise_weights) {
                const RowMatrix<T> x = separable_image_rows(a.x, d, b.n, b.ext_first, rows);
                depthwise_weight_gradient_rows(band, x, dz, row_begin, row_end, depthwise_sum,
                                               static_cast<T*>(nullptr));
            }
            // 5. dx of the owned rows
            if (a.dx) {
                const DepthwiseDims turned = depthwise_input_gradient_dims(band);
                const InteriorColumns interior = interior_columns(turned);
                const RowMatrix<T> dx = separable_image_rows(*a.dx, d, b.n, b.ext_first, rows);
                for (Index row = row_begin; row < row_end; ++row)
                    depthwise_row_blocked_any(turned, interior, dz, flipped.data(), static_cast<const T*>(nullptr),
                                              dx, row);
            }
        }
    });
    std::vector<T> totals(static_cast<std::size_t>(pointwise_size + depthwise_size + filters));
    partials.add_in_order(parts, totals.data());
    if (a.d_pointwise_weights) std::copy_n(totals.data(), pointwise_size, a.d_pointwise_weights);
    if (a.d_depthwise_weights) std::copy_n(totals.data() + pointwise_size, depthwise_size, a.d_depthwise_weights);
    if (a.d_bias) std::copy_n(totals.data() + pointwise_size + depthwise_size, filters, a.d_bias);
}

}  // namespace detail
}  // namespace cpu
}  // namespace bcnn

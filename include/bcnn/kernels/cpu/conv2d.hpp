#pragma once
// 2-D convolution, Keras Conv2D (dilation 1): NHWC activations, HWIO weights.
//   x (N, H, W, C), weights (KH, KW, C, K), bias (K) or nullptr  ->  y (N, OH, OW, K)
//   y[n, oh, ow, k] = bias[k]
//       + sum_{kh, kw, c} x[n, oh*SH - pad_top + kh, ow*SW - pad_left + kw, c] * weights[kh, kw, c, k]
// with x = 0 outside the image. 'valid': no padding, OH = (H - KH) / SH + 1.
// 'same' (Keras/TensorFlow): OH = ceil(H / SH); the total padding
// max((OH - 1) * SH + KH - H, 0) is split with the odd pixel at the bottom
// (pad_top = total / 2); the same along the width (window.hpp).
//
// As GEMMs, with the column matrix of im2col.hpp (one row per output pixel,
// KH * KW * C wide) and the weights read as a (KH * KW * C, K) matrix:
//   y = columns * weights,  d_weights = columns^T * dy,  d_columns = dy * weights^T.
// A 1x1 stride-1 convolution's column matrix is x itself (output pixel p reads
// input pixel p, and 'same' pads nothing), so it is a plain GEMM on the NHWC
// rows: no im2col, no copy. Otherwise the column matrix is never built whole:
// the output pixels are cut into tiles (conv2d_tile_pixels), and each thread
// im2cols one tile into its own buffer, multiplies, and goes on to its next.
// gemm runs serially inside those parallel regions.
// Two other algorithms take the layers where they measured faster, unless
// set_conv_algorithm(ConvAlgorithm::gemm_only) (conv_algorithm.hpp):
// - few input channels (direct_pays, direct_pays_weights_gradient,
//   direct_pays_input_gradient): a direct convolution with no im2col for the
//   forward, the weights gradient and (stride 1, 'same') the input gradient
//   (conv2d_direct.hpp), e.g. the first layers on RGB images; with fewer
//   than 8 input channels the input gradient vectorised over pixels instead
//   (planar_pays_input_gradient, conv2d_planar.hpp);
// - 3x3 stride 1, wide enough (winograd_pays_forward /
//   winograd_pays_input_gradient): Winograd F(4x4, 3x3) for the forward and
//   the input gradient (winograd.hpp); with at most 32 channels and filters,
//   whole vectors of each (winograd_narrow_applicable), its narrow variant
//   (winograd_narrow.hpp) for the forward and both gradients, ahead of the
//   direct kernels.
//
// x, y, dy and dx may be channel slices of wider NHWC buffers (RowMatrix with
// ld > cols): a DenseNet layer reads the first c channels of its block's
// buffer and writes its output into a slice of another. Weights, their
// gradient and the bias must be contiguous.

#include <algorithm>
#include <memory>
#include <vector>

#include "bcnn/core/parallel.hpp"
#include "bcnn/kernels/cpu/activation.hpp"
#include "bcnn/kernels/cpu/bias_activation.hpp"
#include "bcnn/kernels/cpu/checks.hpp"
#include "bcnn/kernels/cpu/column_sums.hpp"
#include "bcnn/kernels/cpu/conv2d_direct.hpp"
#include "bcnn/kernels/cpu/conv2d_dims.hpp"
#include "bcnn/kernels/cpu/conv2d_planar.hpp"
#include "bcnn/kernels/cpu/conv_algorithm.hpp"
#include "bcnn/kernels/cpu/gemm.hpp"
#include "bcnn/kernels/cpu/im2col.hpp"
#include "bcnn/kernels/cpu/winograd.hpp"
#include "bcnn/kernels/cpu/winograd_narrow.hpp"
#include "bcnn/kernels/cpu/winograd_narrow_weights.hpp"
#include "bcnn/kernels/cpu/window.hpp"

namespace bcnn {
namespace cpu {
namespace detail {

// Tile size. A tile's columns (tile x KH*KW*C) are written by im2col and read
// straight back by its GEMM; 512 KiB keeps them in a core's L2 (1-2 MiB on
// current x86 servers) next to gemm's packed blocks instead of making a round
// trip through DRAM. Tiles keep at least 64 pixels even when a row is wider
// than 8 KiB (fewer only to give every thread as many tiles): a GEMM of few rows spends its time in packing and edge tiles
// (the weights are packed once per call, PackedB, but each tile's columns are
// packed by its own GEMM). Small problems are cut so every thread gets work,
// and the tile count is rounded up to a multiple of the threads, so that
// each thread gets as many tiles (the threads take equal runs of tiles): 512
// pixels of 1,152 values in tiles of 113 made 5 tiles, 3 for one thread and
// 2 for the other; now 6 of 86 (DenseNet's 3x3 128->32 on 4x4 maps).
constexpr Index kConvColumnTileBytes = 512 * 1024;
constexpr Index kConvMinTilePixels = 64;

template <typename T>
Index conv2d_tile_pixels(Index pixels, Index patch, int threads) {
    threads = std::max(threads, 1);
    const Index fits_cache = kConvColumnTileBytes / (static_cast<Index>(sizeof(T)) * std::max<Index>(patch, 1));
    const Index per_thread = (pixels + threads - 1) / threads;
    const Index size =
        std::max<Index>(1, std::min(pixels, std::max(kConvMinTilePixels, std::min(fits_cache, per_thread))));
    const Index tiles = (pixels + size - 1) / size, balanced = (tiles + threads - 1) / threads * threads;
    return std::max<Index>(1, (pixels + balanced - 1) / balanced);
}

// The output pixels [0, pixels) cut into tiles of `size` (the last may be shorter).
struct Conv2DTiles {
    Index pixels = 0, size = 1;
    Index count() const { return (pixels + size - 1) / size; }
    Index first(Index tile) const { return tile * size; }
    Index length(Index tile) const { return std::min(size, pixels - tile * size); }
};

template <typename T>
Conv2DTiles conv2d_tiles(const Conv2DDims& d) {
    return Conv2DTiles{d.pixels(), conv2d_tile_pixels<T>(d.pixels(), d.patch(), num_threads())};
}

// An uninitialised per-thread work buffer (first touched by its own thread).
template <typename T>
std::unique_ptr<T[]> scratch(Index size) {
    return std::unique_ptr<T[]>(new T[static_cast<std::size_t>(std::max<Index>(size, 1))]);
}

// One thread's view of the column matrix, tile by tile: x's own rows for a
// pointwise convolution, an im2col buffer otherwise.
template <typename T>
class ColumnTiles {
public:
    ColumnTiles(const Conv2DDims& d, const RowMatrix<T>& x, Index tile_pixels)
        : d_(d), x_(x), buffer_(d.pointwise() ? nullptr : scratch<T>(tile_pixels * d.patch())) {}

    // Column-matrix rows of output pixels [first, first + count); valid until
    // the next call. count is at most the tile size unless the convolution is
    // pointwise.
    RowMatrix<T> rows(Index first, Index count) {
        if (d_.pointwise()) return RowMatrix<T>{x_.row(first), count, d_.patch(), x_.ld};
        im2col(x_, d_.window, d_.geometry, first, count, buffer_.get(), d_.patch());
        return RowMatrix<T>{buffer_.get(), count, d_.patch(), d_.patch()};
    }

private:
    const Conv2DDims& d_;
    RowMatrix<T> x_;
    std::unique_ptr<T[]> buffer_;
};

// d_weights (KH*KW*C, K) = sum over tiles of columns^T (KH*KW*C, tile) * dy (tile, K).
// Each chunk of consecutive tiles accumulates its own partial sum (chunk 0
// straight into d_weights); the partials are then added in chunk order.
template <typename T>
void conv2d_weights_gradient(const Conv2DDims& d, const Conv2DTiles& tiles, const RowMatrix<T>& x,
                             const RowMatrix<T>& dy, T* d_weights) {
    const Index size = d.patch() * d.filters;
    const int parts = static_cast<int>(std::min<Index>(tiles.count(), num_threads()));
    const std::unique_ptr<T[]> partials = scratch<T>((parts - 1) * size);
    parallel_chunks(tiles.count(), parts, [&](int part, Index first_tile, Index last_tile) {
        T* sum = part == 0 ? d_weights : partials.get() + (part - 1) * size;
        ColumnTiles<T> columns(d, x, tiles.size);
        // A pointwise convolution reads x in place, so its whole chunk is one GEMM.
        const Index begin = tiles.first(first_tile), end = std::min(tiles.pixels, tiles.first(last_tile));
        const Index step = d.pointwise() ? end - begin : tiles.size;
        for (Index first = begin; first < end; first += step) {
            const Index count = std::min(step, end - first);
            const RowMatrix<T> cols = columns.rows(first, count);
            gemm(Transpose::yes, Transpose::no, d.patch(), d.filters, count, T(1), cols.data, cols.ld, dy.row(first),
                 dy.ld, first == begin ? T(0) : T(1), sum, d.filters);
        }
    });
    if (parts == 1) return;
    parallel_for(0, d.patch(), [&](Index r) {
        T* target = d_weights + r * d.filters;
        for (int part = 1; part < parts; ++part) {
            const T* partial = partials.get() + (part - 1) * size + r * d.filters;
            for (Index k = 0; k < d.filters; ++k) target[k] += partial[k];
        }
    });
}

// dx from dy; weights is the (KH*KW*C, K) matrix.
// Pointwise: dx rows = dy rows * weights^T, tile by tile, nothing to scatter.
// Otherwise dx = 0, then for each tile d_columns = dy rows * weights^T is
// scattered back onto dx by col2im_add. Nearby output pixels share input
// pixels, so the work is cut into bands of output rows of one image, tall
// enough that bands two apart never reach the same input row
// ((band_rows + 1) * SH >= KH): all even bands run in parallel, then all odd
// ones. Each dx element receives its contributions in a fixed order.
template <typename T>
void conv2d_input_gradient(const Conv2DDims& d, const Conv2DTiles& tiles, const RowMatrix<T>& dy, const T* weights,
                           const RowMatrix<T>& dx) {
    const Index patch = d.patch(), filters = d.filters;
    if (d.pointwise()) {  // dx (pixels, C) = dy (pixels, K) * weights^T (K, C): one GEMM, threaded inside
        gemm(Transpose::no, Transpose::yes, d.pixels(), patch, filters, T(1), dy.data, dy.ld, weights, filters, T(0),
             dx.data, dx.ld);
        return;
    }
    // weights^T (K, KH*KW*C), packed once for every tile's GEMM.
    const PackedB<T> packed_weights_t = pack_b(Transpose::yes, filters, patch, weights, filters);
    parallel_for(0, dx.rows, [&](Index r) { std::fill_n(dx.row(r), dx.cols, T(0)); });
    const Index out_h = d.geometry.out_h, out_w = d.geometry.out_w;
    const Index min_band_rows = (d.window.kernel_h + d.window.stride_h - 1) / d.window.stride_h - 1;
    const Index band_rows = std::min(out_h, std::max({min_band_rows, (tiles.size + out_w - 1) / out_w, Index(1)}));
    const Index bands = (out_h + band_rows - 1) / band_rows;
    for (Index parity = 0; parity < 2; ++parity) {
        const Index bands_per_image = (bands + 1 - parity) / 2;
        if (bands_per_image == 0) continue;
        parallel_chunks(d.batch * bands_per_image, num_threads(), [&](int, Index first_unit, Index last_unit) {
            const std::unique_ptr<T[]> d_columns = scratch<T>(tiles.size * patch);
            for (Index unit = first_unit; unit < last_unit; ++unit) {
                const Index n = unit / bands_per_image, band = 2 * (unit % bands_per_image) + parity;
                const Index begin = (n * out_h + band * band_rows) * out_w;
                const Index end = (n * out_h + std::min(out_h, (band + 1) * band_rows)) * out_w;
                for (Index first = begin; first < end; first += tiles.size) {
                    const Index count = std::min(tiles.size, end - first);
                    gemm(Transpose::no, count, dy.row(first), dy.ld, packed_weights_t, T(1), T(0), d_columns.get(),
                         patch);
                    col2im_add(d_columns.get(), patch, d.window, d.geometry, first, count, dx);
                }
            }
        });
    }
}

}  // namespace detail

// (N, H, W, C) input and (KH, KW, C, K) weights -> (N, OH, OW, K) output.
inline Shape conv2d_output_shape(const Shape& x, const Shape& weights, const ConvParams& params) {
    return detail::conv2d_dims(x, weights, params, "conv2d_output_shape").output_shape();
}

// x (N, H, W, C), weights (KH, KW, C, K), bias (K) or nullptr  ->  y (N, OH, OW, K)
// y = activation(conv(x, weights) + bias), the bias and activation applied to
// each tile of output rows right after its GEMM.
template <typename T>
void conv2d_forward(const Tensor<T>& x, const Tensor<T>& weights, OptionalInput<T> bias, const ConvParams& params,
                    Tensor<T>& y, ActivationFn activation = ActivationFn::linear) {
    const char* op = "conv2d_forward";
    const detail::Conv2DDims d = detail::checked_conv2d_dims(x, weights, params, op);
    if (bias) detail::require_shape(*bias, Shape{d.filters}, op, "bias");
    detail::require_shape(y, d.output_shape(), op, "output");
    if (d.pixels() == 0) return;
    const RowMatrix<T> xm = x.as_rows("conv2d_forward input"), ym = y.as_rows("conv2d_forward output");
    const T* b = bias ? bias->as_rows("conv2d_forward bias").data : nullptr;
    if (conv_algorithm() == ConvAlgorithm::automatic && detail::winograd_narrow_applicable<T>(d)) {
        detail::conv2d_winograd_narrow_forward(d, xm, weights.data(), b, ym, activation);
        return;
    }
    if (conv_algorithm() == ConvAlgorithm::automatic && (detail::direct_pays(d) || detail::direct_pays_small_map(d))) {
        detail::conv2d_direct_forward(d, xm, weights.data(), b, activation, ym);
        return;
    }
    if (conv_algorithm() == ConvAlgorithm::automatic && detail::winograd_pays_forward(d)) {
        detail::conv2d_winograd_forward(d, xm, weights.data(), b, ym, activation);
        return;
    }
    const GemmEpilogue<T> epilogue = bias_activation_epilogue(b, activation);
    if (d.pointwise()) {  // y (pixels, K) = x (pixels, C) * weights (C, K): one GEMM, threaded inside
        gemm(Transpose::no, Transpose::no, d.pixels(), d.filters, d.patch(), T(1), xm.data, xm.ld, weights.data(),
             d.filters, T(0), ym.data, ym.ld, epilogue);
        return;
    }
    // The weights are packed once and shared by every tile's GEMM.
    const PackedB<T> packed_weights = pack_b(Transpose::no, d.patch(), d.filters, weights.data(), d.filters);
    const detail::Conv2DTiles tiles = detail::conv2d_tiles<T>(d);
    parallel_chunks(tiles.count(), num_threads(), [&](int, Index first_tile, Index last_tile) {
        detail::ColumnTiles<T> columns(d, xm, tiles.size);
        for (Index t = first_tile; t < last_tile; ++t) {
            const Index first = tiles.first(t), count = tiles.length(t);
            const RowMatrix<T> cols = columns.rows(first, count);
            // y rows (count, K) = columns (count, KH*KW*C) * weights (KH*KW*C, K)
            gemm(Transpose::no, count, cols.data, cols.ld, packed_weights, T(1), T(0), ym.row(first), ym.ld, epilogue);
        }
    });
}

// dy (N, OH, OW, K)  ->  dx (N, H, W, C), d_weights (KH, KW, C, K), d_bias (K);
// any may be nullptr when not needed (first layer, frozen weights, no bias).
// Outputs are overwritten. Every result is bit-for-bit the same for the same
// thread count (reductions combine per-chunk partials in a fixed order).
template <typename T>
void conv2d_backward(const Tensor<T>& x, const Tensor<T>& weights, const Tensor<T>& dy, const ConvParams& params,
                     OptionalOutput<T> dx, OptionalOutput<T> d_weights, OptionalOutput<T> d_bias) {
    const char* op = "conv2d_backward";
    const detail::Conv2DDims d = detail::checked_conv2d_dims(x, weights, params, op);
    detail::require_shape(dy, d.output_shape(), op, "output gradient");
    if (dx) detail::require_shape(*dx, x.shape(), op, "input gradient");
    if (d_weights) {
        detail::require_shape(*d_weights, weights.shape(), op, "weights gradient");
        detail::require_contiguous(*d_weights, op, "weights gradient");
    }
    if (d_bias) detail::require_shape(*d_bias, Shape{d.filters}, op, "bias gradient");
    if (d.pixels() == 0) {
        for (Tensor<T>* gradient : {dx, d_weights, d_bias})
            if (gradient) gradient->fill(T(0));
        return;
    }
    const RowMatrix<T> dym = dy.as_rows("conv2d_backward output gradient");
    const bool narrow = conv_algorithm() == ConvAlgorithm::automatic && detail::winograd_narrow_applicable<T>(d);
    // Narrow Winograd's two gradients and the bias's in one pass over dy:
    // dx and d_weights the same bits as the calls below, d_bias summed in
    // tile order (rounded differently from sum_rows).
    if (narrow && dx && d_weights && (!d_bias || d_bias->is_contiguous())) {
        detail::conv2d_winograd_narrow_backward(d, x.as_rows(op), dym, static_cast<const RowMatrix<T>*>(nullptr),
                                                weights.data(), dx->as_rows(op), d_weights->data(),
                                                d_bias ? d_bias->data() : nullptr);
        return;
    }
    const detail::Conv2DTiles tiles = detail::conv2d_tiles<T>(d);
    if (d_bias) detail::sum_rows(dym, d_bias->as_rows("conv2d_backward bias gradient").data);
    if (d_weights) {
        const RowMatrix<T> xm = x.as_rows("conv2d_backward input");
        if (narrow)
            detail::conv2d_winograd_narrow_weights_gradient(d, xm, dym, d_weights->data());
        else if (conv_algorithm() == ConvAlgorithm::automatic && detail::direct_pays_weights_gradient(d))
            detail::conv2d_direct_weights_gradient(d, xm, dym, d_weights->data());
        else
            detail::conv2d_weights_gradient(d, tiles, xm, dym, d_weights->data());
    }
    if (!dx) return;
    const RowMatrix<T> dxm = dx->as_rows("conv2d_backward input gradient");
    if (narrow)
        detail::conv2d_winograd_narrow_input_gradient(d, dym, weights.data(), dxm);
    else if (conv_algorithm() == ConvAlgorithm::automatic && detail::direct_or_planar_pays_input_gradient(d))
        detail::conv2d_direct_or_planar_input_gradient(d, dym, weights.data(), dxm);
    else if (conv_algorithm() == ConvAlgorithm::automatic && detail::winograd_pays_input_gradient(d))
        detail::conv2d_winograd_input_gradient(d, dym, weights.data(), dxm);
    else
        detail::conv2d_input_gradient(d, tiles, dym, weights.data(), dxm);
}

// conv2d_backward of a convolution followed by a ReLU: relu_output is the
// layer's output y = relu(conv(x, weights) + bias) and dy its gradient; the
// convolution's gradients are those of dy_pre = dy where y > 0, else 0.
// pre (y's shape) is scratch for dy_pre. Where narrow Winograd takes the
// layer (winograd_narrow_applicable) or the direct kernels take both wanted
// gradients (few input channels, the weights gradient wanted), they read dy
// through the mask as they load it and the weights gradient sums d_bias on
// the way, so dy_pre is never written (pre is left as it was); where the
// direct kernels take both with whole vectors of filters (and fewer than 16
// channels, where narrow Winograd would apply too), both come from one pass
// over dy (conv2d_direct_relu_backward). Narrow Winograd's two
// gradients took 0.8-0.9x the time of that one pass at 16->16 @150 (batch
// 32, 2 threads; 0.67x at 32->32 @75, where the direct input gradient does
// not apply). Otherwise pre = dy_pre (relu_backward_bias_gradient) and
// conv2d_backward runs on it.
template <typename T>
void conv2d_relu_backward(const Tensor<T>& x, const Tensor<T>& weights, const Tensor<T>& relu_output,
                          const Tensor<T>& dy, const ConvParams& params, Tensor<T>& pre, OptionalOutput<T> dx,
                          OptionalOutput<T> d_weights, OptionalOutput<T> d_bias) {
    const char* op = "conv2d_relu_backward";
    const detail::Conv2DDims d = detail::checked_conv2d_dims(x, weights, params, op);
    detail::require_shape(relu_output, d.output_shape(), op, "output");
    detail::require_shape(dy, d.output_shape(), op, "output gradient");
    detail::require_shape(pre, d.output_shape(), op, "pre-activation gradient");
    const bool automatic = conv_algorithm() == ConvAlgorithm::automatic && d.pixels() > 0 && d_weights;
    // Fewer than 16 channels: the one pass of the direct kernels is faster
    // (8->8 @150 0.8x narrow Winograd's time, 8->16 0.88x).
    const bool one_pass = dx && detail::direct_relu_backward_applies<T>(d);
    const bool narrow = automatic && detail::winograd_narrow_applicable<T>(d) && (d.channels >= 16 || !one_pass);
    const bool direct = automatic && !narrow && detail::direct_pays_weights_gradient(d) &&
                        (!dx || detail::direct_or_planar_pays_input_gradient(d));
    if (!narrow && !direct) {
        if (d_bias)
            relu_backward_bias_gradient(relu_output, dy, pre, *d_bias);
        else
            relu_backward(relu_output, dy, pre);
        conv2d_backward(x, weights, pre, params, dx, d_weights, nullptr);
        return;
    }
    detail::require_shape(*d_weights, weights.shape(), op, "weights gradient");
    detail::require_contiguous(*d_weights, op, "weights gradient");
    if (dx) detail::require_shape(*dx, x.shape(), op, "input gradient");
    if (d_bias) {
        detail::require_shape(*d_bias, Shape{d.filters}, op, "bias gradient");
        detail::require_contiguous(*d_bias, op, "bias gradient");
    }
    const RowMatrix<T> mask = relu_output.as_rows(op), dym = dy.as_rows(op);
    T* d_bias_data = d_bias ? d_bias->data() : nullptr;
    if (narrow && dx) {
        detail::conv2d_winograd_narrow_backward(d, x.as_rows(op), dym, &mask, weights.data(), dx->as_rows(op),
                                                d_weights->data(), d_bias_data);
        return;
    }
    if (narrow) {
        detail::conv2d_winograd_narrow_weights_gradient(d, x.as_rows(op), dym, d_weights->data(), &mask, d_bias_data);
        return;
    }
    if (one_pass) {  // both gradients in one pass over dy
        detail::conv2d_direct_relu_backward(d, x.as_rows(op), dym, mask, weights.data(), dx->as_rows(op),
                                            d_weights->data(), d_bias_data);
        return;
    }
    detail::conv2d_direct_weights_gradient(d, x.as_rows(op), dym, d_weights->data(), &mask, d_bias_data);
    if (dx) detail::conv2d_direct_or_planar_input_gradient(d, dym, weights.data(), dx->as_rows(op), &mask);
}

}  // namespace cpu
}  // namespace bcnn

#pragma once
// 2-D max and average pooling, Keras MaxPool2D / AveragePooling2D.
//   x (N, H, W, C), window (pool size, strides, padding)  ->  y (N, OH, OW, C)
// Padded positions never take part: max pooling pads with -inf, and average
// pooling divides by the number of valid (non-padded) elements in the window,
// as TensorFlow does for 'same'. Max pooling's gradient goes to the first
// maximum of each window in row-major scan order; overlapping windows add up.
// Loops run innermost over the channels, which are contiguous in NHWC.

#include <algorithm>
#include <cstdint>
#include <limits>
#include <type_traits>
#include <vector>

#include "bcnn/core/parallel.hpp"
#include "bcnn/kernels/cpu/checks.hpp"
#include "bcnn/kernels/cpu/window.hpp"

namespace bcnn {
namespace cpu {
namespace detail {

// The input rows [h_begin, h_end) and columns [w_begin, w_end) that one
// output pixel's window covers, padding excluded (never empty).
struct PoolCover {
    Index h_begin, h_end, w_begin, w_end;
    Index count() const { return (h_end - h_begin) * (w_end - w_begin); }
};

inline PoolCover pool_cover(const WindowGeometry& g, const Window2D& window, Index oh, Index ow) {
    const Index top = oh * window.stride_h - g.pad_top, left = ow * window.stride_w - g.pad_left;
    return PoolCover{std::max<Index>(top, 0), std::min(top + window.kernel_h, g.in_h), std::max<Index>(left, 0),
                     std::min(left + window.kernel_w, g.in_w)};
}

inline WindowGeometry pool_geometry(const Shape& x, const Window2D& window, const char* op) {
    BCNN_CHECK(x.rank() == 4, op << ": input must be NHWC (rank 4), got shape " << x);
    return window_geometry(x[1], x[2], window, op);
}

// A pixel's index within one image, as wide as T so that the argmax scan
// (a select on values and indices together) vectorises.
template <typename T>
using PixelIndex = std::conditional_t<sizeof(T) <= 4, std::int32_t, std::int64_t>;

// Channels per backward task: the backward passes scatter into dx, so they
// split the work by (image, channel block), which never share an element.
constexpr Index kPoolChannelBlock = 64;

// Calls body(n, c_begin, c_end) for every image and channel block, in parallel.
template <typename Body>
void for_each_image_channel_block(Index batch, Index channels, Body body) {
    const Index blocks = (channels + kPoolChannelBlock - 1) / kPoolChannelBlock;
    parallel_for(0, batch * blocks, [&](Index task) {
        const Index c_begin = (task % blocks) * kPoolChannelBlock;
        body(task / blocks, c_begin, std::min(c_begin + kPoolChannelBlock, channels));
    });
}

// Zeroes channels [c_begin, c_end) of the `pixels` rows starting at `first_row`.
template <typename T>
void zero_channel_block(const RowMatrix<T>& m, Index first_row, Index pixels, Index c_begin, Index c_end) {
    for (Index p = 0; p < pixels; ++p) std::fill(m.row(first_row + p) + c_begin, m.row(first_row + p) + c_end, T(0));
}

}  // namespace detail

// x (N, H, W, C)  ->  (N, OH, OW, C)
inline Shape pool2d_output_shape(const Shape& x, const Window2D& window) {
    const WindowGeometry g = detail::pool_geometry(x, window, "pool2d");
    return Shape{x[0], g.out_h, g.out_w, x[3]};
}

namespace detail {

// The shared body of the pooling forwards: checks x (N, H, W, C) and y
// (N, OH, OW, C), then, in parallel over output rows, calls
// reduce(out, cover, input_row) for every output pixel, where out is its
// C outputs, cover the input window it sees, and input_row(ih, iw) the C
// inputs at that position of the same image.
template <typename T, typename Reduce>
void for_each_pool_window(const Tensor<T>& x, const Window2D& window, Tensor<T>& y, const char* op, Reduce reduce) {
    require_rank(x, 4, op, "input");
    const WindowGeometry g = pool_geometry(x.shape(), window, op);
    require_shape(y, pool2d_output_shape(x.shape(), window), op, "output");
    if (y.numel() == 0) return;
    const RowMatrix<T> xm = x.as_rows(op), ym = y.as_rows(op);
    parallel_for(0, x.dim(0) * g.out_h, [&](Index image_row) {
        const Index n = image_row / g.out_h, oh = image_row % g.out_h;
        const auto input_row = [&](Index ih, Index iw) -> const T* { return xm.row((n * g.in_h + ih) * g.in_w + iw); };
        for (Index ow = 0; ow < g.out_w; ++ow)
            reduce(ym.row(image_row * g.out_w + ow), pool_cover(g, window, oh, ow), input_row);
    });
}

}  // namespace detail

// x (N, H, W, C)  ->  y (N, OH, OW, C), the maximum of each window
template <typename T>
void max_pool2d_forward(const Tensor<T>& x, const Window2D& window, Tensor<T>& y) {
    const Index channels = x.rank() == 4 ? x.dim(3) : 0;
    const auto reduce = [&](T* out, const detail::PoolCover& cover, const auto& input_row) {
        const T* first = input_row(cover.h_begin, cover.w_begin);
        std::copy(first, first + channels, out);
        for (Index ih = cover.h_begin; ih < cover.h_end; ++ih)
            for (Index iw = cover.w_begin; iw < cover.w_end; ++iw) {
                const T* in = input_row(ih, iw);
                for (Index c = 0; c < channels; ++c) out[c] = in[c] > out[c] ? in[c] : out[c];
            }
    };
    detail::for_each_pool_window(x, window, y, "max_pool2d_forward", reduce);
}

// x (N, H, W, C), dy (N, OH, OW, C)  ->  dx (N, H, W, C): each window's
// gradient goes to its first maximum (row-major scan order).
template <typename T>
void max_pool2d_backward(const Tensor<T>& x, const Tensor<T>& dy, const Window2D& window, Tensor<T>& dx) {
    const char* op = "max_pool2d_backward";
    detail::require_rank(x, 4, op, "input");
    const WindowGeometry g = detail::pool_geometry(x.shape(), window, op);
    detail::require_shape(dy, pool2d_output_shape(x.shape(), window), op, "output gradient");
    detail::require_shape(dx, x.shape(), op, "input gradient");
    if (dx.numel() == 0) return;
    const RowMatrix<T> xm = x.as_rows("max_pool2d_backward input");
    const RowMatrix<T> dym = dy.as_rows("max_pool2d_backward output gradient");
    const RowMatrix<T> dxm = dx.as_rows("max_pool2d_backward input gradient");
    const Index pixels = g.in_h * g.in_w;
    BCNN_CHECK(pixels <= std::numeric_limits<detail::PixelIndex<T>>::max(),
               op << ": input " << x.shape() << " has too many pixels per image");
    detail::for_each_image_channel_block(x.dim(0), x.dim(3), [&](Index n, Index c_begin, Index c_end) {
        detail::zero_channel_block(dxm, n * pixels, pixels, c_begin, c_end);
        const Index width = c_end - c_begin;
        const RowMatrix<T> image{xm.row(n * pixels), pixels, xm.cols, xm.ld};
        const RowMatrix<T> image_grad{dxm.row(n * pixels), pixels, dxm.cols, dxm.ld};
        std::vector<T> best(width);
        std::vector<detail::PixelIndex<T>> best_pixel(width);
        for (Index oh = 0; oh < g.out_h; ++oh)
            for (Index ow = 0; ow < g.out_w; ++ow) {
                const detail::PoolCover cover = detail::pool_cover(g, window, oh, ow);
                const Index first_pixel = cover.h_begin * g.in_w + cover.w_begin;
                std::copy(image.row(first_pixel) + c_begin, image.row(first_pixel) + c_end, best.begin());
                std::fill(best_pixel.begin(), best_pixel.end(), static_cast<detail::PixelIndex<T>>(first_pixel));
                for (Index ih = cover.h_begin; ih < cover.h_end; ++ih)
                    for (Index iw = cover.w_begin; iw < cover.w_end; ++iw) {
                        const auto pixel = static_cast<detail::PixelIndex<T>>(ih * g.in_w + iw);
                        const T* in = image.row(pixel) + c_begin;
                        for (Index c = 0; c < width; ++c) {
                            const bool better = in[c] > best[c];  // strict: ties keep the first maximum
                            best[c] = better ? in[c] : best[c];
                            best_pixel[c] = better ? pixel : best_pixel[c];
                        }
                    }
                const T* out_grad = dym.row((n * g.out_h + oh) * g.out_w + ow) + c_begin;
                for (Index c = 0; c < width; ++c) image_grad.row(best_pixel[c])[c_begin + c] += out_grad[c];
            }
    });
}

// x (N, H, W, C)  ->  y (N, OH, OW, C), the mean of each window's valid elements
template <typename T>
void avg_pool2d_forward(const Tensor<T>& x, const Window2D& window, Tensor<T>& y) {
    const Index channels = x.rank() == 4 ? x.dim(3) : 0;
    const auto reduce = [&](T* out, const detail::PoolCover& cover, const auto& input_row) {
        std::fill(out, out + channels, T(0));
        for (Index ih = cover.h_begin; ih < cover.h_end; ++ih)
            for (Index iw = cover.w_begin; iw < cover.w_end; ++iw) {
                const T* in = input_row(ih, iw);
                for (Index c = 0; c < channels; ++c) out[c] += in[c];
            }
        const T scale = T(1) / static_cast<T>(cover.count());
        for (Index c = 0; c < channels; ++c) out[c] *= scale;
    };
    detail::for_each_pool_window(x, window, y, "avg_pool2d_forward", reduce);
}

// dy (N, OH, OW, C)  ->  dx (N, H, W, C); dx's shape gives the input size.
template <typename T>
void avg_pool2d_backward(const Tensor<T>& dy, const Window2D& window, Tensor<T>& dx) {
    const char* op = "avg_pool2d_backward";
    detail::require_rank(dx, 4, op, "input gradient");
    const WindowGeometry g = detail::pool_geometry(dx.shape(), window, op);
    detail::require_shape(dy, pool2d_output_shape(dx.shape(), window), op, "output gradient");
    if (dx.numel() == 0) return;
    const RowMatrix<T> dym = dy.as_rows("avg_pool2d_backward output gradient");
    const RowMatrix<T> dxm = dx.as_rows("avg_pool2d_backward input gradient");
    const Index pixels = g.in_h * g.in_w;
    detail::for_each_image_channel_block(dx.dim(0), dx.dim(3), [&](Index n, Index c_begin, Index c_end) {
        detail::zero_channel_block(dxm, n * pixels, pixels, c_begin, c_end);
        for (Index oh = 0; oh < g.out_h; ++oh)
            for (Index ow = 0; ow < g.out_w; ++ow) {
                const detail::PoolCover cover = detail::pool_cover(g, window, oh, ow);
                const T scale = T(1) / static_cast<T>(cover.count());
                const T* out_grad = dym.row((n * g.out_h + oh) * g.out_w + ow);
                for (Index ih = cover.h_begin; ih < cover.h_end; ++ih)
                    for (Index iw = cover.w_begin; iw < cover.w_end; ++iw) {
                        T* in_grad = dxm.row(n * pixels + ih * g.in_w + iw);
                        for (Index c = c_begin; c < c_end; ++c) in_grad[c] += out_grad[c] * scale;
                    }
            }
    });
}

}  // namespace cpu
}  // namespace bcnn

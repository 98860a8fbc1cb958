#pragma once
// 2-D max and average pooling, Keras MaxPool2D / AveragePooling2D.
//   x (N, H, W, C), window (pool size, strides, padding)  ->  y (N, OH, OW, C)
// Padded positions never take part: max pooling pads with -inf, and average
// pooling divides by the number of valid (non-padded) elements in the window,
// as TensorFlow does for 'same'. Max pooling's gradient goes to the first
// maximum of each window in row-major scan order; overlapping windows add up.
// Loops run innermost over the channels, which are contiguous in NHWC; max
// pooling works on one simd::Vec of channels at a time. Its backward pass
// writes dx in one pass when the windows do not overlap (strides >= pool
// size, Keras' default), and zeroes dx then adds each window's share otherwise.

#include <algorithm>
#include <cstdint>

#include "bcnn/core/parallel.hpp"
#include "bcnn/kernels/cpu/elementwise.hpp"
#include "bcnn/kernels/cpu/simd.hpp"
#include "bcnn/kernels/cpu/window.hpp"

namespace bcnn {
namespace cpu {

// In the positions of a ReLU's max pooling (one byte a window and channel:
// the place of the window's first maximum, row-major from 0), the value of
// a window whose maximum is not > 0: the ReLU passes no gradient back.
constexpr std::uint8_t kNoPoolGradient = 255;

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

// A window's maximum, lane by lane, and where it lies: the position of its
// first pixel with that value among the window's pixels in row-major order
// (0, 1, ...).
template <typename T>
struct WindowMax {
    simd::Vec<T> value;
    simd::Lanes<T> position;
};

// The maximum of value_at(ih, iw) (a simd::Vec<T>) over the window's
// pixels, lane by lane; a later pixel wins only when strictly greater, so a
// NaN in the first position stays, as in the scalar rule.
// Always inlined: as a call, its result went through the stack and the
// max pooling's backward took 1.4x as long (mp2x2_16_150, 2 threads).
template <typename T, typename ValueAt>
[[gnu::always_inline]] inline WindowMax<T> window_first_max_of(const PoolCover& cover, const ValueAt& value_at) {
    simd::Vec<T> best = value_at(cover.h_begin, cover.w_begin);
    simd::Lanes<T> position = {}, current = {};
    for (Index ih = cover.h_begin; ih < cover.h_end; ++ih)
        for (Index iw = cover.w_begin; iw < cover.w_end; ++iw) {
            const simd::Vec<T> in = value_at(ih, iw);
            const simd::Lanes<T> better = in > best;
            best = better ? in : best;
            position = better ? current : position;
            current += 1;
        }
    return WindowMax<T>{best, position};
}

// window_first_max_of's value alone (the compiler drops the positions).
template <typename T, typename ValueAt>
simd::Vec<T> window_max_of(const PoolCover& cover, const ValueAt& value_at) {
    return window_first_max_of<T>(cover, value_at).value;
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
        for (Index c = 0; c < channels; c += simd::width<T>) {
            const int lanes = detail::lanes_at<T>(c, channels);
            detail::store_lanes(out + c, detail::window_max_of<T>(cover, [&](Index ih, Index iw) {
                                    return detail::load_lanes(input_row(ih, iw) + c, lanes);
                                }),
                                lanes);
        }
    };
    detail::for_each_pool_window(x, window, y, "max_pool2d_forward", reduce);
}

namespace detail {

// For each lane, the position of the first maximum of value_at(ih, iw) (a
// simd::Vec<T>) among the window's pixels (window_first_max_of).
template <typename T, typename ValueAt>
simd::Lanes<T> first_max_position_of(const PoolCover& cover, const ValueAt& value_at) {
    return window_first_max_of<T>(cover, value_at).position;
}

// Channels [c, c + lanes) of one window of an image: each channel's first maximum.
template <typename T>
WindowMax<T> window_first_max(const RowMatrix<T>& image, Index in_w, const PoolCover& cover, Index c, int lanes) {
    return window_first_max_of<T>(
        cover, [&](Index ih, Index iw) { return load_lanes(image.row(ih * in_w + iw) + c, lanes); });
}

// Where a ReLU then a max pooling send a window's gradient: the first
// maximum's position where that maximum is > 0, kNoPoolGradient where it is
// not (the ReLU passes nothing back; NaN included).
template <typename T>
simd::Lanes<T> relu_pool_position(const WindowMax<T>& best) {
    return best.value > simd::Vec<T>{} ? best.position : simd::Lanes<T>{} + kNoPoolGradient;
}

// The positions of `lanes` channels to or from memory, one byte each.
template <typename T>
void store_pool_positions(std::uint8_t* to, const simd::Lanes<T>& position, int lanes) {
    if (lanes == simd::width<T>) return simd::narrow_to_bytes<T>(to, position);
    std::uint8_t bytes[simd::width<T>];
    simd::narrow_to_bytes<T>(bytes, position);
    std::copy_n(bytes, lanes, to);
}

template <typename T>
simd::Lanes<T> load_pool_positions(const std::uint8_t* from, int lanes) {
    if (lanes == simd::width<T>) return simd::widen_bytes<T>(from);
    std::uint8_t bytes[simd::width<T>] = {};
    std::copy_n(from, lanes, bytes);
    return simd::widen_bytes<T>(bytes);
}

// Gives grad (channels [c, c + lanes) of a window's output gradient) to the
// window's pixel at `position` in each lane and zero to its other pixels:
// writes the image's gradient (accumulate = false: windows do not overlap)
// or adds to it.
template <typename T>
[[gnu::always_inline]] inline void spread_to_position(const RowMatrix<T>& image_grad, Index in_w,
                                                      const PoolCover& cover, const simd::Lanes<T>& position,
                                                      const simd::Vec<T>& grad, Index c, int lanes,
                                                      bool accumulate) {
    simd::Lanes<T> current = {};
    for (Index ih = cover.h_begin; ih < cover.h_end; ++ih)
        for (Index iw = cover.w_begin; iw < cover.w_end; ++iw) {
            T* in_grad = image_grad.row(ih * in_w + iw) + c;
            const simd::Vec<T> share = position == current ? grad : simd::Vec<T>{};
            store_lanes(in_grad, accumulate ? load_lanes(in_grad, lanes) + share : share, lanes);
            current += 1;
        }
}

// Gives the window's gradient (channels [c, c + lanes) of dy at out_grad) to
// each channel's first maximum and zero to the other pixels of the window
// (spread_to_position). relu_before: the image is a ReLU's output and dx the
// gradient before it, so the maximum gets the gradient only where it is
// positive (relu_pool_position).
template <typename T>
void spread_window_gradient(const RowMatrix<T>& image, const RowMatrix<T>& image_grad, Index in_w,
                            const PoolCover& cover, const T* out_grad, Index c, int lanes, bool accumulate,
                            bool relu_before) {
    const WindowMax<T> best = window_first_max(image, in_w, cover, c, lanes);
    spread_to_position(image_grad, in_w, cover, relu_before ? relu_pool_position(best) : best.position,
                       load_lanes(out_grad + c, lanes), c, lanes, accumulate);
}

// Zeroes rows [h_begin, h_end) x columns [w_begin, w_end) of one image's gradient.
template <typename T>
void zero_pixels(const RowMatrix<T>& image_grad, Index in_w, Index h_begin, Index h_end, Index w_begin, Index w_end) {
    for (Index ih = h_begin; ih < h_end; ++ih)
        for (Index iw = w_begin; iw < w_end; ++iw) {
            T* row = image_grad.row(ih * in_w + iw);
            std::fill(row, row + image_grad.cols, T(0));
        }
}

// Whether no input pixel lies in two windows (strides >= pool size, e.g.
// Keras' default 2x2/2).
inline bool pool_windows_disjoint(const Window2D& window) {
    return window.stride_h >= window.kernel_h && window.stride_w >= window.kernel_w;
}

// Visits the input pixels of one image that output row oh owns when windows
// do not overlap: its windows' rows from the previous window's end (the
// image's top for oh = 0) to its own end, and for the last row the rest of
// the image. Calls outside(h_begin, h_end, w_begin, w_end) for each
// rectangle of pixels that no window covers and inside(ow, cover) for each
// window, left to right. Every pixel of the image is visited by exactly one
// output row.
template <typename Outside, typename Inside>
void visit_disjoint_pool_row(const WindowGeometry& g, const Window2D& window, Index oh, const Outside& outside,
                             const Inside& inside) {
    const PoolCover first = pool_cover(g, window, oh, 0);
    const Index rows_begin = oh == 0 ? 0 : pool_cover(g, window, oh - 1, 0).h_end;
    outside(rows_begin, first.h_begin, Index(0), g.in_w);
    Index next_column = 0;
    for (Index ow = 0; ow < g.out_w; ++ow) {
        const PoolCover cover = pool_cover(g, window, oh, ow);
        outside(cover.h_begin, cover.h_end, next_column, cover.w_begin);
        inside(ow, cover);
        next_column = cover.w_end;
    }
    outside(first.h_begin, first.h_end, next_column, g.in_w);
    if (oh + 1 == g.out_h) outside(first.h_end, g.in_h, Index(0), g.in_w);
}

// Windows that do not overlap (pool_windows_disjoint): every input pixel
// lies in at most one window, so dx (N, H, W, C) is written in one pass:
// spread(image_grad, n, window, cover) writes the pixels of each window (of
// image n, its index in (N, OH, OW) order, and its cover in image_grad: the
// image's gradient), and pixels outside every window (the remainder of
// 'valid', the gaps when the stride exceeds the pool) are zeroed on the
// way. Parallel over output rows (visit_disjoint_pool_row).
// (bcnn_bench, 2 threads, medians of 3, time of oneDNN / bcnn: mp2x2_128_75
// 0.58 -> 2.27, mp2x2_512_18 0.79 -> 2.08, mp2x2_16_150 1.28 -> 1.84 against
// the zero-fill and scatter that the overlapping path below still uses.)
template <typename T, typename Spread>
void write_disjoint_pool_gradient(const RowMatrix<T>& dxm, Index batch, const WindowGeometry& g,
                                  const Window2D& window, const Spread& spread) {
    const Index pixels = g.in_h * g.in_w;
    parallel_for(0, batch * g.out_h, [&](Index image_row) {
        const Index n = image_row / g.out_h, oh = image_row % g.out_h;
        const RowMatrix<T> image_grad{dxm.row(n * pixels), pixels, dxm.cols, dxm.ld};
        visit_disjoint_pool_row(
            g, window, oh,
            [&](Index h_begin, Index h_end, Index w_begin, Index w_end) {
                zero_pixels(image_grad, g.in_w, h_begin, h_end, w_begin, w_end);
            },
            [&](Index ow, const PoolCover& cover) { spread(image_grad, n, image_row * g.out_w + ow, cover); });
    });
}

// max_pool2d_backward for windows that do not overlap: each window's
// gradient at its first maximum (write_disjoint_pool_gradient).
template <typename T>
void max_pool2d_backward_disjoint(const RowMatrix<T>& xm, const RowMatrix<T>& dym, const RowMatrix<T>& dxm,
                                  Index batch, const WindowGeometry& g, const Window2D& window, bool relu_before) {
    const Index pixels = g.in_h * g.in_w, channels = xm.cols;
    const auto spread = [&](const RowMatrix<T>& image_grad, Index n, Index output, const PoolCover& cover) {
        const RowMatrix<T> image{xm.row(n * pixels), pixels, xm.cols, xm.ld};
        for (Index c = 0; c < channels; c += simd::width<T>)
            spread_window_gradient(image, image_grad, g.in_w, cover, dym.row(output), c, lanes_at<T>(c, channels),
                                   false, relu_before);
    };
    write_disjoint_pool_gradient(dxm, batch, g, window, spread);
}

// Overlapping windows: dx is zeroed, then each window adds its gradient, in
// window order, parallel over (image, channel block) tasks that share no element.
template <typename T>
void max_pool2d_backward_overlapping(const RowMatrix<T>& xm, const RowMatrix<T>& dym, const RowMatrix<T>& dxm,
                                     Index batch, const WindowGeometry& g, const Window2D& window,
                                     bool relu_before) {
    const Index pixels = g.in_h * g.in_w;
    for_each_image_channel_block(batch, xm.cols, [&](Index n, Index c_begin, Index c_end) {
        zero_channel_block(dxm, n * pixels, pixels, c_begin, c_end);
        const RowMatrix<T> image{xm.row(n * pixels), pixels, xm.cols, xm.ld};
        const RowMatrix<T> image_grad{dxm.row(n * pixels), pixels, dxm.cols, dxm.ld};
        for (Index oh = 0; oh < g.out_h; ++oh)
            for (Index ow = 0; ow < g.out_w; ++ow) {
                const PoolCover cover = pool_cover(g, window, oh, ow);
                const T* out_grad = dym.row((n * g.out_h + oh) * g.out_w + ow);
                for (Index c = c_begin; c < c_end; c += simd::width<T>)
                    spread_window_gradient(image, image_grad, g.in_w, cover, out_grad, c, lanes_at<T>(c, c_end), true,
                                           relu_before);
            }
    });
}

// max_pool2d_backward, or with relu_before max_pool2d_relu_backward, named op in errors.
template <typename T>
void max_pool2d_backward(const Tensor<T>& x, const Tensor<T>& dy, const Window2D& window, Tensor<T>& dx,
                         bool relu_before, const char* op) {
    require_rank(x, 4, op, "input");
    const WindowGeometry g = pool_geometry(x.shape(), window, op);
    require_shape(dy, pool2d_output_shape(x.shape(), window), op, "output gradient");
    require_shape(dx, x.shape(), op, "input gradient");
    if (dx.numel() == 0) return;
    const RowMatrix<T> xm = x.as_rows(op), dym = dy.as_rows(op), dxm = dx.as_rows(op);
    if (pool_windows_disjoint(window))
        max_pool2d_backward_disjoint(xm, dym, dxm, x.dim(0), g, window, relu_before);
    else
        max_pool2d_backward_overlapping(xm, dym, dxm, x.dim(0), g, window, relu_before);
}

}  // namespace detail

// x (N, H, W, C), dy (N, OH, OW, C)  ->  dx (N, H, W, C): each window's
// gradient goes to its first maximum (row-major scan order).
template <typename T>
void max_pool2d_backward(const Tensor<T>& x, const Tensor<T>& dy, const Window2D& window, Tensor<T>& dx) {
    detail::max_pool2d_backward(x, dy, window, dx, false, "max_pool2d_backward");
}

// The backward of a ReLU then max pooling, given the ReLU's output x (the
// pooling's input) and the pooling's output gradient dy: the gradient before
// the ReLU, max_pool2d_backward's where x > 0 and 0 elsewhere, in one pass.
// A Conv2D with a ReLU followed by a MaxPooling2D runs its backward on it
// (nn::KernelLayer::backward_fused) and reads no mask.
template <typename T>
void max_pool2d_relu_backward(const Tensor<T>& x, const Tensor<T>& dy, const Window2D& window, Tensor<T>& dx) {
    detail::max_pool2d_backward(x, dy, window, dx, true, "max_pool2d_relu_backward");
}

// max_pool2d_relu_backward from the positions the forward kept instead of
// its input: positions (N, OH, OW, C), relu_pool_position's bytes (what
// conv2d_relu_max_pool_forward writes), dy (N, OH, OW, C)  ->  dx (N, H, W,
// C) = dy at each window's position, 0 elsewhere. Windows must not overlap.
template <typename T>
void max_pool2d_relu_backward_from_positions(const Tensor<std::uint8_t>& positions, const Tensor<T>& dy,
                                             const Window2D& window, Tensor<T>& dx) {
    const char* op = "max_pool2d_relu_backward_from_positions";
    detail::require_rank(dx, 4, op, "input gradient");
    const WindowGeometry g = detail::pool_geometry(dx.shape(), window, op);
    BCNN_CHECK(detail::pool_windows_disjoint(window), op << ": takes windows that do not overlap, got " << window);
    const Shape out = pool2d_output_shape(dx.shape(), window);
    detail::require_shape(dy, out, op, "output gradient");
    detail::require_shape(positions, out, op, "positions");
    detail::require_contiguous(positions, op, "positions");
    if (dx.numel() == 0) return;
    const RowMatrix<T> dym = dy.as_rows(op), dxm = dx.as_rows(op);
    const Index channels = dx.dim(3);
    detail::write_disjoint_pool_gradient(
        dxm, dx.dim(0), g, window,
        [&](const RowMatrix<T>& image_grad, Index, Index output, const detail::PoolCover& cover) {
            const std::uint8_t* position = positions.data() + output * channels;
            for (Index c = 0; c < channels; c += simd::width<T>) {
                const int lanes = detail::lanes_at<T>(c, channels);
                const simd::Lanes<T> at = detail::load_pool_positions<T>(position + c, lanes);
                const simd::Vec<T> grad = detail::load_lanes(dym.row(output) + c, lanes);
                detail::spread_to_position(image_grad, g.in_w, cover, at, grad, c, lanes, false);
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

#pragma once
// Sliding-window geometry shared by convolution and pooling, with Keras
// rules: 'valid' uses only whole windows; 'same' gives ceil(in / stride)
// outputs and, when the padding is odd, pads one more at the bottom/right.

#include <algorithm>
#include <ostream>
#include <tuple>
#include <utility>

#include "bcnn/core/error.hpp"
#include "bcnn/core/shape.hpp"

namespace bcnn {

enum class Padding { valid, same };

inline const char* padding_name(Padding padding) { return padding == Padding::same ? "same" : "valid"; }

// A 2-D window: kernel (or pool) size, strides, padding mode.
struct Window2D {
    Index kernel_h = 1, kernel_w = 1;
    Index stride_h = 1, stride_w = 1;
    Padding padding = Padding::valid;
};

inline std::ostream& operator<<(std::ostream& out, const Window2D& w) {
    return out << "kernel " << w.kernel_h << 'x' << w.kernel_w << ", strides " << w.stride_h << 'x' << w.stride_w
               << ", padding '" << padding_name(w.padding) << "'";
}

// Convolution options; the kernel size comes from the weights' shape.
// Dilation is 1 (the networks bcnn builds need no other).
struct ConvParams {
    Index stride_h = 1, stride_w = 1;
    Padding padding = Padding::valid;
};

// The window a convolution with a kh x kw kernel slides.
inline Window2D conv_window(Index kernel_h, Index kernel_w, const ConvParams& params) {
    return Window2D{kernel_h, kernel_w, params.stride_h, params.stride_w, params.padding};
}

// Where the window lands on an in_h x in_w input: output size and the
// padding before the first row/column (the rest of the padding is after).
struct WindowGeometry {
    Index in_h = 0, in_w = 0;
    Index out_h = 0, out_w = 0;
    Index pad_top = 0, pad_left = 0;
};

namespace detail {

// One axis: (output extent, padding before) for input extent `in`.
inline std::pair<Index, Index> window_axis(Index in, Index kernel, Index stride, Padding padding) {
    if (padding == Padding::valid) return {in >= kernel ? (in - kernel) / stride + 1 : 0, 0};
    const Index out = (in + stride - 1) / stride;
    const Index pad_total = std::max<Index>((out - 1) * stride + kernel - in, 0);
    return {out, pad_total / 2};
}

}  // namespace detail

inline WindowGeometry window_geometry(Index in_h, Index in_w, const Window2D& window, const char* op) {
    BCNN_CHECK(window.kernel_h >= 1 && window.kernel_w >= 1 && window.stride_h >= 1 && window.stride_w >= 1,
               op << ": invalid window (" << window << ")");
    WindowGeometry g;
    g.in_h = in_h;
    g.in_w = in_w;
    std::tie(g.out_h, g.pad_top) = detail::window_axis(in_h, window.kernel_h, window.stride_h, window.padding);
    std::tie(g.out_w, g.pad_left) = detail::window_axis(in_w, window.kernel_w, window.stride_w, window.padding);
    BCNN_CHECK(g.out_h > 0 && g.out_w > 0, op << ": input " << in_h << 'x' << in_w << " is smaller than the window ("
                                              << window << ")");
    return g;
}

}  // namespace bcnn

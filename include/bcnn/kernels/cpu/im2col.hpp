#pragma once
// im2col / col2im for an NHWC convolution, on pixel ranges (tiles).
//
// The column matrix of a convolution has one row per output pixel
// p = (n * OH + oh) * OW + ow, and each row holds that pixel's input patch in
// [kh][kw][c] order (KH * KW * C values; zeros where the window hangs over the
// padding). That is the row order of HWIO weights (KH, KW, C, K) read as a
// (KH * KW * C, K) matrix, so  y = columns * weights  needs no weight reshuffle.
//
// x and dx are RowMatrix views: row (n * H + h) * W + w is input pixel (n, h, w),
// with any leading dimension (channel slices of a wider buffer work).

#include <algorithm>

#include "bcnn/core/row_matrix.hpp"
#include "bcnn/kernels/cpu/window.hpp"

namespace bcnn {
namespace cpu {
namespace detail {

// Calls run(offset, input_row, taps) for the window of output pixel `pixel`,
// row by row (kh), each window row cut into at most three runs of consecutive
// taps kw: padding on the left, taps inside the image, padding on the right.
// offset = (kh * KW + first kw) * C is where the run starts in the column row;
// input_row is the input pixel of the run's first tap (the next taps read the
// next pixels), or -1 for padding.
template <typename Run>
void for_each_patch_run(const Window2D& window, const WindowGeometry& g, Index channels, Index pixel, Run run) {
    const Index ow = pixel % g.out_w, rest = pixel / g.out_w;
    const Index oh = rest % g.out_h, n = rest / g.out_h;
    const Index top = oh * window.stride_h - g.pad_top, left = ow * window.stride_w - g.pad_left;
    // Taps [inside_begin, inside_end) of every window row land inside the image's width.
    const Index inside_begin = std::clamp<Index>(-left, 0, window.kernel_w);
    const Index inside_end = std::clamp<Index>(g.in_w - left, inside_begin, window.kernel_w);
    for (Index kh = 0; kh < window.kernel_h; ++kh) {
        const Index h = top + kh, offset = kh * window.kernel_w * channels;
        if (h < 0 || h >= g.in_h) {
            run(offset, Index(-1), window.kernel_w);
            continue;
        }
        if (inside_begin > 0) run(offset, Index(-1), inside_begin);
        if (inside_end > inside_begin)
            run(offset + inside_begin * channels, (n * g.in_h + h) * g.in_w + left + inside_begin,
                inside_end - inside_begin);
        if (inside_end < window.kernel_w) run(offset + inside_end * channels, Index(-1), window.kernel_w - inside_end);
    }
}

// columns rows [0, count) <- patches of output pixels [first, first + count).
// columns: count x (KH * KW * C), leading dimension ld_columns.
template <typename T>
void im2col(const RowMatrix<T>& x, const Window2D& window, const WindowGeometry& g, Index first, Index count,
            T* columns, Index ld_columns) {
    const Index channels = x.cols;
    for (Index r = 0; r < count; ++r) {
        T* row = columns + r * ld_columns;
        for_each_patch_run(window, g, channels, first + r, [&](Index offset, Index input_row, Index taps) {
            T* out = row + offset;
            if (input_row < 0)
                std::fill_n(out, taps * channels, T(0));
            else if (x.ld == channels)  // consecutive pixels are contiguous: one copy
                std::copy_n(x.row(input_row), taps * channels, out);
            else
                for (Index t = 0; t < taps; ++t) std::copy_n(x.row(input_row + t), channels, out + t * channels);
        });
    }
}

// dx += the column-matrix gradient rows [0, count) of output pixels
// [first, first + count), scattered back to the input pixels they came from
// (padding taps are dropped). Callers must not let two threads touch the same
// input pixel at once.
template <typename T>
void col2im_add(const T* columns, Index ld_columns, const Window2D& window, const WindowGeometry& g, Index first,
                Index count, const RowMatrix<T>& dx) {
    const Index channels = dx.cols;
    for (Index r = 0; r < count; ++r) {
        const T* row = columns + r * ld_columns;
        for_each_patch_run(window, g, channels, first + r, [&](Index offset, Index input_row, Index taps) {
            if (input_row < 0) return;
            const T* in = row + offset;
            if (dx.ld == channels) {  // consecutive pixels are contiguous: one loop
                T* target = dx.row(input_row);
                for (Index i = 0; i < taps * channels; ++i) target[i] += in[i];
                return;
            }
            for (Index t = 0; t < taps; ++t) {
                T* target = dx.row(input_row + t);
                for (Index c = 0; c < channels; ++c) target[c] += in[t * channels + c];
            }
        });
    }
}

}  // namespace detail
}  // namespace cpu
}  // namespace bcnn

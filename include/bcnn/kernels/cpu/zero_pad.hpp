#pragma once
// Zero padding of the spatial axes (Keras ZeroPadding2D, channels last).
//   x (N, H, W, C) -> y (N, top + H + bottom, left + W + right, C), zeros around x
// The backward pass crops the gradient back to x's extent. Tensors may be
// channel-slice views of wider buffers.

#include <algorithm>
#include <ostream>

#include "bcnn/kernels/cpu/elementwise.hpp"

namespace bcnn {
namespace cpu {

struct Padding2D {
    Index top = 0, bottom = 0, left = 0, right = 0;
};

inline std::ostream& operator<<(std::ostream& out, const Padding2D& pad) {
    return out << "padding (top " << pad.top << ", bottom " << pad.bottom << ", left " << pad.left << ", right "
               << pad.right << ")";
}

// (N, H, W, C) -> (N, top + H + bottom, left + W + right, C)
inline Shape zero_pad2d_output_shape(const Shape& x, const Padding2D& pad) {
    BCNN_CHECK(x.rank() == 4, "zero_pad2d: input must be NHWC (rank 4), got shape " << x);
    BCNN_CHECK(pad.top >= 0 && pad.bottom >= 0 && pad.left >= 0 && pad.right >= 0,
               "zero_pad2d: negative " << pad);
    return Shape{x[0], pad.top + x[1] + pad.bottom, pad.left + x[2] + pad.right, x[3]};
}

// x (N, H, W, C) -> y (N, OH, OW, C)
template <typename T>
void zero_pad2d_forward(const Tensor<T>& x, const Padding2D& pad, Tensor<T>& y) {
    detail::require_rank(x, 4, "zero_pad2d_forward", "input");
    detail::require_shape(y, zero_pad2d_output_shape(x.shape(), pad), "zero_pad2d_forward", "output");
    if (y.numel() == 0) return;
    const Index h = x.dim(1), w = x.dim(2), c = x.dim(3), oh = y.dim(1), ow = y.dim(2);
    const RowMatrix<T> xm = x.as_rows("zero_pad2d_forward input"), ym = y.as_rows("zero_pad2d_forward output");
    // One output image line (n, oh) per iteration; pixel (n, i, j) is row (n * height + i) * width + j.
    detail::parallel_rows(x.dim(0) * oh, ow * c, [&](Index line) {
        const Index n = line / oh, i = line % oh - pad.top;
        for (Index oj = 0; oj < ow; ++oj) {
            T* out = ym.row(line * ow + oj);
            const Index j = oj - pad.left;
            if (i >= 0 && i < h && j >= 0 && j < w)
                std::copy(xm.row((n * h + i) * w + j), xm.row((n * h + i) * w + j) + c, out);
            else
                std::fill(out, out + c, T(0));
        }
    });
}

// dy (N, OH, OW, C) -> dx (N, H, W, C): the gradient inside the padding.
template <typename T>
void zero_pad2d_backward(const Tensor<T>& dy, const Padding2D& pad, Tensor<T>& dx) {
    detail::require_rank(dx, 4, "zero_pad2d_backward", "input gradient");
    detail::require_shape(dy, zero_pad2d_output_shape(dx.shape(), pad), "zero_pad2d_backward", "output gradient");
    if (dx.numel() == 0) return;
    const Index h = dx.dim(1), w = dx.dim(2), c = dx.dim(3), oh = dy.dim(1), ow = dy.dim(2);
    const RowMatrix<T> dym = dy.as_rows("zero_pad2d_backward output gradient");
    const RowMatrix<T> dxm = dx.as_rows("zero_pad2d_backward input gradient");
    detail::parallel_rows(dx.dim(0) * h, w * c, [&](Index line) {
        const Index n = line / h, i = line % h;
        for (Index j = 0; j < w; ++j) {
            const T* in = dym.row((n * oh + i + pad.top) * ow + j + pad.left);
            std::copy(in, in + c, dxm.row(line * w + j));
        }
    });
}

}  // namespace cpu
}  // namespace bcnn

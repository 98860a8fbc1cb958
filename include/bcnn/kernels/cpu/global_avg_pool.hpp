#pragma once
// Global average pooling, Keras GlobalAveragePooling2D.
//   x (N, H, W, C)  ->  y (N, C),  y[n, c] = mean over h, w of x[n, h, w, c]

#include <algorithm>

#include "bcnn/core/parallel.hpp"
#include "bcnn/kernels/cpu/checks.hpp"

namespace bcnn {
namespace cpu {
namespace detail {

inline void require_global_pool_input(const Shape& x, const char* op) {
    BCNN_CHECK(x.rank() == 4, op << ": input must be NHWC (rank 4), got shape " << x);
    BCNN_CHECK(x[1] >= 1 && x[2] >= 1, op << ": input " << x << " has no pixels to average");
}

}  // namespace detail

// x (N, H, W, C)  ->  y (N, C)
template <typename T>
void global_avg_pool_forward(const Tensor<T>& x, Tensor<T>& y) {
    const char* op = "global_avg_pool_forward";
    detail::require_rank(x, 4, op, "input");
    detail::require_global_pool_input(x.shape(), op);
    const Index batch = x.dim(0), pixels = x.dim(1) * x.dim(2), channels = x.dim(3);
    detail::require_shape(y, Shape{batch, channels}, op, "output");
    if (y.numel() == 0) return;
    const RowMatrix<T> xm = x.as_rows("global_avg_pool_forward input");
    const RowMatrix<T> ym = y.as_rows("global_avg_pool_forward output");
    const T scale = T(1) / static_cast<T>(pixels);
    parallel_for(0, batch, [&](Index n) {
        T* out = ym.row(n);
        std::fill(out, out + channels, T(0));
        for (Index p = 0; p < pixels; ++p) {
            const T* in = xm.row(n * pixels + p);
            for (Index c = 0; c < channels; ++c) out[c] += in[c];
        }
        for (Index c = 0; c < channels; ++c) out[c] *= scale;
    });
}

// dy (N, C)  ->  dx (N, H, W, C); dx's shape gives the input size.
template <typename T>
void global_avg_pool_backward(const Tensor<T>& dy, Tensor<T>& dx) {
    const char* op = "global_avg_pool_backward";
    detail::require_rank(dx, 4, op, "input gradient");
    detail::require_global_pool_input(dx.shape(), op);
    const Index batch = dx.dim(0), rows = dx.dim(1), cols = dx.dim(2), channels = dx.dim(3);
    detail::require_shape(dy, Shape{batch, channels}, op, "output gradient");
    if (dx.numel() == 0) return;
    const RowMatrix<T> dym = dy.as_rows("global_avg_pool_backward output gradient");
    const RowMatrix<T> dxm = dx.as_rows("global_avg_pool_backward input gradient");
    const T scale = T(1) / static_cast<T>(rows * cols);
    parallel_for(0, batch * rows, [&](Index image_row) {
        const T* out_grad = dym.row(image_row / rows);
        for (Index w = 0; w < cols; ++w) {
            T* in_grad = dxm.row(image_row * cols + w);
            for (Index c = 0; c < channels; ++c) in_grad[c] = out_grad[c] * scale;
        }
    });
}

}  // namespace cpu
}  // namespace bcnn

#pragma once
// Fully connected layer, Keras layout.
//   x (N, In), weights (In, Out), bias (Out) or nullptr  ->  y (N, Out)
//   y = activation(x * weights + bias)

#include "bcnn/kernels/cpu/bias_activation.hpp"
#include "bcnn/kernels/cpu/checks.hpp"
#include "bcnn/kernels/cpu/column_sums.hpp"
#include "bcnn/kernels/cpu/gemm.hpp"

namespace bcnn {
namespace cpu {

template <typename T>
void dense_forward(const Tensor<T>& x, const Tensor<T>& weights, OptionalInput<T> bias, Tensor<T>& y,
                   ActivationFn activation = ActivationFn::linear) {
    detail::require_rank(x, 2, "dense_forward", "input");
    detail::require_rank(weights, 2, "dense_forward", "weights");
    const Index n = x.dim(0), in = x.dim(1), out = weights.dim(1);
    BCNN_CHECK(weights.dim(0) == in, "dense_forward: input " << x.shape() << " does not match weights "
                                                             << weights.shape() << " (expected (" << in << ", units))");
    if (bias) detail::require_shape(*bias, Shape{out}, "dense_forward", "bias");
    detail::require_shape(y, Shape{n, out}, "dense_forward", "output");
    const RowMatrix<T> xm = x.as_rows("dense_forward input"), wm = weights.as_rows("dense_forward weights");
    const RowMatrix<T> ym = y.as_rows("dense_forward output");
    const T* b = bias ? bias->as_rows("dense_forward bias").data : nullptr;
    gemm(Transpose::no, Transpose::no, n, out, in, T(1), xm.data, xm.ld, wm.data, wm.ld, T(0), ym.data, ym.ld,
         bias_activation_epilogue(b, activation));
}

// dy (N, Out)  ->  dx (N, In), d_weights (In, Out), d_bias (Out); any may be
// nullptr when not needed (frozen weights, first layer).
template <typename T>
void dense_backward(const Tensor<T>& x, const Tensor<T>& weights, const Tensor<T>& dy, OptionalOutput<T> dx,
                    OptionalOutput<T> d_weights, OptionalOutput<T> d_bias) {
    detail::require_rank(x, 2, "dense_backward", "input");
    detail::require_rank(weights, 2, "dense_backward", "weights");
    const Index n = x.dim(0), in = x.dim(1), out = weights.dim(1);
    BCNN_CHECK(weights.dim(0) == in, "dense_backward: input " << x.shape() << " does not match weights " << weights.shape());
    detail::require_shape(dy, Shape{n, out}, "dense_backward", "output gradient");
    const RowMatrix<T> xm = x.as_rows("dense_backward input"), wm = weights.as_rows("dense_backward weights");
    const RowMatrix<T> dym = dy.as_rows("dense_backward output gradient");
    if (dx) {
        detail::require_shape(*dx, x.shape(), "dense_backward", "input gradient");
        const RowMatrix<T> dxm = dx->as_rows("dense_backward input gradient");
        // dx (N, In) = dy (N, Out) * weights^T (Out, In)
        gemm(Transpose::no, Transpose::yes, n, in, out, T(1), dym.data, dym.ld, wm.data, wm.ld, T(0), dxm.data, dxm.ld);
    }
    if (d_weights) {
        detail::require_shape(*d_weights, weights.shape(), "dense_backward", "weights gradient");
        const RowMatrix<T> dwm = d_weights->as_rows("dense_backward weights gradient");
        // dW (In, Out) = x^T (In, N) * dy (N, Out)
        gemm(Transpose::yes, Transpose::no, in, out, n, T(1), xm.data, xm.ld, dym.data, dym.ld, T(0), dwm.data, dwm.ld);
    }
    if (d_bias) {
        detail::require_shape(*d_bias, Shape{out}, "dense_backward", "bias gradient");
        detail::sum_rows(dym, d_bias->data());
    }
}

}  // namespace cpu
}  // namespace bcnn

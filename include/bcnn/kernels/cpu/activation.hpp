#pragma once
// Activations.
//   relu:    x (any shape) -> y = max(x, 0); NaN passes through (so it is seen downstream).
//   relu_backward_bias_gradient: relu_backward and the bias gradient of the
//            layer below (the sum of dx over its rows) in one pass over dx.
//   softmax: logits (N, K) -> probabilities (N, K), per row, stable (max subtracted).
// Tensors may be channel-slice views; outputs may alias inputs exactly
// (y may be x, dx may be dy).

#include <algorithm>
#include <cmath>

#include "bcnn/kernels/cpu/column_sums.hpp"
#include "bcnn/kernels/cpu/elementwise.hpp"
#include "bcnn/kernels/cpu/simd.hpp"

namespace bcnn {
namespace cpu {

// x (any shape) -> y (same shape)
template <typename T>
void relu_forward(const Tensor<T>& x, Tensor<T>& y) {
    detail::require_defined_on_cpu(x, "relu_forward", "input");
    detail::require_shape(y, x.shape(), "relu_forward", "output");
    detail::for_each_span(
        "relu_forward", y,
        [](T* out, const T* in, Index cols) {
            for (Index c = 0; c < cols; ++c) out[c] = in[c] < T(0) ? T(0) : in[c];
        },
        x);
}

// y (forward output), dy (same shape) -> dx = dy where y > 0, else 0
template <typename T>
void relu_backward(const Tensor<T>& y, const Tensor<T>& dy, Tensor<T>& dx) {
    detail::require_defined_on_cpu(y, "relu_backward", "output");
    detail::require_shape(dy, y.shape(), "relu_backward", "output gradient");
    detail::require_shape(dx, y.shape(), "relu_backward", "input gradient");
    detail::for_each_span(
        "relu_backward", dx,
        [](T* out, const T* fwd, const T* grad, Index cols) {
            for (Index c = 0; c < cols; ++c) out[c] = fwd[c] > T(0) ? grad[c] : T(0);
        },
        y, dy);
}

// y (forward output, rows of C channels: N or (N, H, W) of them), dy (same
// shape) -> dx = dy where y > 0, else 0, and d_bias (C) = the sum of dx over
// its rows: the gradient of the bias added before this ReLU. One pass over dx
// instead of relu_backward's and then the layer's sum_rows over it; the sums
// are sum_rows' (same chunks, same order), so d_bias has the same bits.
template <typename T>
void relu_backward_bias_gradient(const Tensor<T>& y, const Tensor<T>& dy, Tensor<T>& dx, Tensor<T>& d_bias) {
    const char* op = "relu_backward_bias_gradient";
    detail::require_defined_on_cpu(y, op, "output");
    BCNN_CHECK(y.rank() >= 1, op << ": output has shape " << y.shape() << ", expected at least one axis (channels)");
    detail::require_shape(dy, y.shape(), op, "output gradient");
    detail::require_shape(dx, y.shape(), op, "input gradient");
    detail::require_shape(d_bias, Shape{y.dim(-1)}, op, "bias gradient");
    detail::require_contiguous(d_bias, op, "bias gradient");
    const RowMatrix<T> fwd = y.as_rows(op), grad = dy.as_rows(op), out = dx.as_rows(op);
    const Index cols = fwd.cols;
    constexpr int kWidth = simd::width<T>;
    detail::sum_rows_of(
        fwd.rows, cols,
        [&](Index first, Index last, T* sum) {
            for (Index r = first; r < last; ++r) {
                const T* f = fwd.row(r);
                const T* g = grad.row(r);
                T* o = out.row(r);
                Index c = 0;
                for (; c + kWidth <= cols; c += kWidth) {
                    const simd::Vec<T> kept = simd::load(f + c) > T(0) ? simd::load(g + c) : simd::Vec<T>{};
                    simd::store(o + c, kept);
                    simd::store(sum + c, simd::load(sum + c) + kept);
                }
                for (; c < cols; ++c) {
                    o[c] = f[c] > T(0) ? g[c] : T(0);
                    sum[c] += o[c];
                }
            }
        },
        d_bias.data());
}

namespace detail {

// p = softmax(z) over one row of k values (p may be z). Returns log-sum-exp(z)
// in double, computed as max + log(sum(exp(z - max))) so large logits stay finite.
template <typename T>
double softmax_row(const T* z, T* p, Index k) {
    const T max = *std::max_element(z, z + k);
    double sum = 0;
    for (Index j = 0; j < k; ++j) {
        p[j] = std::exp(z[j] - max);
        sum += p[j];
    }
    const T inverse = static_cast<T>(1.0 / sum);
    for (Index j = 0; j < k; ++j) p[j] *= inverse;
    return static_cast<double>(max) + std::log(sum);
}

}  // namespace detail

// logits (N, K) -> probabilities (N, K)
template <typename T>
void softmax_forward(const Tensor<T>& logits, Tensor<T>& probabilities) {
    detail::require_rank(logits, 2, "softmax_forward", "logits");
    BCNN_CHECK(logits.dim(1) >= 1, "softmax_forward: logits of shape " << logits.shape() << " have no classes");
    detail::require_shape(probabilities, logits.shape(), "softmax_forward", "probabilities");
    detail::for_each_row(
        "softmax_forward", probabilities,
        [](Index, T* p, const T* z, Index k) { detail::softmax_row(z, p, k); }, logits);
}

// probabilities (N, K), dy (N, K) -> dx (N, K):  dx = p * (dy - sum_k(dy * p))
template <typename T>
void softmax_backward(const Tensor<T>& probabilities, const Tensor<T>& dy, Tensor<T>& dx) {
    detail::require_rank(probabilities, 2, "softmax_backward", "probabilities");
    detail::require_shape(dy, probabilities.shape(), "softmax_backward", "output gradient");
    detail::require_shape(dx, probabilities.shape(), "softmax_backward", "input gradient");
    detail::for_each_row(
        "softmax_backward", dx,
        [](Index, T* out, const T* p, const T* grad, Index k) {
            double dot = 0;
            for (Index j = 0; j < k; ++j) dot += static_cast<double>(grad[j]) * p[j];
            const T projection = static_cast<T>(dot);
            for (Index j = 0; j < k; ++j) out[j] = p[j] * (grad[j] - projection);
        },
        probabilities, dy);
}

}  // namespace cpu
}  // namespace bcnn

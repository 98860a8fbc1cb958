#pragma once
// The epilogue of the GEMM-based kernels (conv2d, dense, separable conv2d):
// add the bias and apply the layer's activation to output rows while they are
// still in cache, instead of two more passes over the whole output.
//   y rows [first, first + count) of (pixels or samples, K):  y = fn(y + bias)
// bias (K) may be nullptr. relu keeps NaN (so it is seen downstream), as
// relu_forward does.

#include "bcnn/core/row_matrix.hpp"

namespace bcnn {
namespace cpu {

// A layer's own activation (Keras' `activation=`): linear or relu.
enum class ActivationFn { linear, relu };

template <typename T>
void add_bias_and_activate(const RowMatrix<T>& y, Index first, Index count, const T* bias, ActivationFn fn) {
    if (!bias && fn == ActivationFn::linear) return;
    for (Index r = first; r < first + count; ++r) {
        T* row = y.row(r);
        if (bias)
            for (Index k = 0; k < y.cols; ++k) row[k] += bias[k];
        if (fn == ActivationFn::relu)
            for (Index k = 0; k < y.cols; ++k) row[k] = row[k] < T(0) ? T(0) : row[k];
    }
}

}  // namespace cpu
}  // namespace bcnn

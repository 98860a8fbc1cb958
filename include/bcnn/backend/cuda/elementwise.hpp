#pragma once
// Elementwise ops on device tensors, defined in cuda/elementwise.cpp
// (bcnn::cuda), with the semantics of kernels/cpu/elementwise.hpp:
//   add_inplace(y, x)        y += x for tensors of one shape, either of which
//                            may be a channel slice of a wider buffer (a
//                            DenseNet block's gradient prefix)
//   scale_inplace(y, alpha)  y *= alpha (y may be a slice)
//   all_finite(x)            no element is inf or NaN (reads one flag back:
//                            waits for the work queued before it)
// One operation per element, as the CPU: results equal it bit for bit.
// Call through bcnn::backend (backend/elementwise.hpp).

#include "bcnn/core/tensor.hpp"

namespace bcnn {
namespace cuda {

// y (any shape) += x (same shape)
void add_inplace(Tensor<float>& y, const Tensor<float>& x);
void add_inplace(Tensor<double>& y, const Tensor<double>& x);

// y (any shape) *= alpha
void scale_inplace(Tensor<float>& y, float alpha);
void scale_inplace(Tensor<double>& y, double alpha);

// x (any shape) -> whether every element is finite
bool all_finite(const Tensor<float>& x);
bool all_finite(const Tensor<double>& x);

}  // namespace cuda
}  // namespace bcnn

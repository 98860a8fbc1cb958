#pragma once
// Elementwise accumulation on device tensors, defined in cuda/elementwise.cpp
// (bcnn::cuda). The semantics are cpu::add_inplace's (kernels/cpu/elementwise.hpp):
// y += x for tensors of one shape, either of which may be a channel slice of
// a wider buffer (a DenseNet block's gradient prefix). One addition per
// element, as the CPU: results equal it bit for bit.
// Call through bcnn::backend::add_inplace (backend/elementwise.hpp).

#include "bcnn/core/tensor.hpp"

namespace bcnn {
namespace cuda {

// y (any shape) += x (same shape)
void add_inplace(Tensor<float>& y, const Tensor<float>& x);
void add_inplace(Tensor<double>& y, const Tensor<double>& x);

}  // namespace cuda
}  // namespace bcnn

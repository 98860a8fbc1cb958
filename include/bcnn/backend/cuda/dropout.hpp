#pragma once
// Inverted dropout on device tensors, defined in cuda/dropout.cpp
// (bcnn::cuda). The semantics are cpu::dropout_*'s (kernels/cpu/dropout.hpp):
// element i (row-major index) is kept, with mask value 1 / (1 - rate), when
// uniform_at(first + i) >= rate, where first = rng.advance(numel()) is
// reserved on the host and the same Philox4x32-10 runs on the device
// (cuda/philox.hpp): for the same (seed, counter) the mask, y and dx equal
// the CPU kernel's bit for bit. Tensors may be row views (channel slices);
// y may alias x, dx may alias dy.
// Call through bcnn::backend::dropout_forward/dropout_backward (backend/dropout.hpp).

#include "bcnn/core/rng.hpp"
#include "bcnn/core/tensor.hpp"

namespace bcnn {
namespace cuda {

// x (any shape), rate in [0, 1) -> mask, y (same shape)
void dropout_forward(const Tensor<float>& x, float rate, Rng& rng, Tensor<float>& mask, Tensor<float>& y);
void dropout_forward(const Tensor<double>& x, double rate, Rng& rng, Tensor<double>& mask, Tensor<double>& y);

// dy, mask (same shape) -> dx = dy * mask
void dropout_backward(const Tensor<float>& dy, const Tensor<float>& mask, Tensor<float>& dx);
void dropout_backward(const Tensor<double>& dy, const Tensor<double>& mask, Tensor<double>& dx);

}  // namespace cuda
}  // namespace bcnn

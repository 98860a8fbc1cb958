#pragma once
// Concatenation along the last axis (NHWC channels) on device tensors,
// defined in cuda/concat.cpp (bcnn::cuda). The semantics are
// cpu::concat_channels_*'s (kernels/cpu/concat.hpp): inputs of equal leading
// dimensions, any tensor may be a channel-slice view. Pure copies
// (cudaMemcpy2DAsync on the calling thread's stream): results equal the CPU's bit for bit.
// Call through bcnn::backend::concat_channels_forward/backward (backend/concat.hpp).

#include <vector>

#include "bcnn/core/tensor.hpp"

namespace bcnn {
namespace cuda {

// inputs[i] (..., C_i) -> y (..., sum_i C_i)
void concat_channels_forward(const std::vector<Tensor<float>>& inputs, Tensor<float>& y);
void concat_channels_forward(const std::vector<Tensor<double>>& inputs, Tensor<double>& y);

// dy (..., sum_i C_i) -> d_inputs[i] (..., C_i), caller-allocated
void concat_channels_backward(const Tensor<float>& dy, std::vector<Tensor<float>>& d_inputs);
void concat_channels_backward(const Tensor<double>& dy, std::vector<Tensor<double>>& d_inputs);

}  // namespace cuda
}  // namespace bcnn

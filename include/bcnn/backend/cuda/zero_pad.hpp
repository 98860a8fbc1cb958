#pragma once
// Zero padding of the spatial axes on device tensors, defined in
// cuda/zero_pad.cpp (bcnn::cuda). The semantics are cpu::zero_pad2d_*'s
// (kernels/cpu/zero_pad.hpp): NHWC, zeros around x; the backward crops the
// gradient back to x's extent. Tensors may be channel slices of wider
// buffers. Pure copies: results equal the CPU's bit for bit.
// Call through bcnn::backend::zero_pad2d_forward/backward (backend/zero_pad.hpp).

#include "bcnn/core/tensor.hpp"
#include "bcnn/kernels/cpu/zero_pad.hpp"

namespace bcnn {
namespace cuda {

// x (N, H, W, C) -> y (N, top + H + bottom, left + W + right, C)
void zero_pad2d_forward(const Tensor<float>& x, const cpu::Padding2D& pad, Tensor<float>& y);
void zero_pad2d_forward(const Tensor<double>& x, const cpu::Padding2D& pad, Tensor<double>& y);

// dy (N, OH, OW, C) -> dx (N, H, W, C), the gradient inside the padding; dx's shape gives the input size
void zero_pad2d_backward(const Tensor<float>& dy, const cpu::Padding2D& pad, Tensor<float>& dx);
void zero_pad2d_backward(const Tensor<double>& dy, const cpu::Padding2D& pad, Tensor<double>& dx);

}  // namespace cuda
}  // namespace bcnn

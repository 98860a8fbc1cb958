#pragma once
// Depthwise 2-D convolution on device tensors with cuDNN (a grouped
// convolution, groups = C), defined in cuda/depthwise_conv2d.cpp
// (bcnn::cuda). The semantics are cpu::depthwise_conv2d_*'s
// (kernels/cpu/depthwise_conv2d.hpp): NHWC activations, Keras depthwise
// weights (KH, KW, C, M) with output channel c*M + m, Keras 'same' padding
// with the odd pixel at the bottom/right, bias and every gradient optional.
// x, y, dy and dx may be channel slices of wider NHWC device buffers; weights,
// bias and their gradients must be contiguous. Results agree with the CPU
// kernel up to rounding (summation order differs), not bit for bit. Float
// uses TF32 only when cuda::set_conv2d_tf32(true) (conv2d.hpp).
// Call through bcnn::backend::depthwise_conv2d_* (backend/depthwise_conv2d.hpp).

#include "bcnn/core/tensor.hpp"
#include "bcnn/kernels/cpu/window.hpp"

namespace bcnn {
namespace cuda {

// x (N, H, W, C), weights (KH, KW, C, M), bias (C*M) or nullptr  ->  y (N, OH, OW, C*M)
void depthwise_conv2d_forward(const Tensor<float>& x, const Tensor<float>& weights, const Tensor<float>* bias,
                              const ConvParams& params, Tensor<float>& y);
void depthwise_conv2d_forward(const Tensor<double>& x, const Tensor<double>& weights, const Tensor<double>* bias,
                              const ConvParams& params, Tensor<double>& y);

// x (N, H, W, C), weights (KH, KW, C, M), dy (N, OH, OW, C*M)
//   ->  dx (N, H, W, C), d_weights (KH, KW, C, M), d_bias (C*M), each nullptr when not wanted.
// Outputs are overwritten.
void depthwise_conv2d_backward(const Tensor<float>& x, const Tensor<float>& weights, const Tensor<float>& dy,
                               const ConvParams& params, Tensor<float>* dx, Tensor<float>* d_weights,
                               Tensor<float>* d_bias);
void depthwise_conv2d_backward(const Tensor<double>& x, const Tensor<double>& weights, const Tensor<double>& dy,
                               const ConvParams& params, Tensor<double>* dx, Tensor<double>* d_weights,
                               Tensor<double>* d_bias);

}  // namespace cuda
}  // namespace bcnn

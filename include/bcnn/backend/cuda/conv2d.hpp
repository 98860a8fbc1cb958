#pragma once
// 2-D convolution on device tensors with cuDNN, defined in cuda/conv2d.cpp
// (bcnn::cuda). The semantics are cpu::conv2d_*'s (kernels/cpu/conv2d.hpp):
// NHWC activations, Keras HWIO weights (KH, KW, C, K), Keras 'same' padding
// with the odd pixel at the bottom/right, bias and every gradient optional.
// x, y, dy and dx may be channel slices of wider NHWC device buffers; weights,
// bias and their gradients must be contiguous. Results agree with the CPU
// kernel up to rounding (summation order differs), not bit for bit.
// Call through bcnn::backend::conv2d_forward/conv2d_backward (backend/conv2d.hpp).

#include "bcnn/core/tensor.hpp"
#include "bcnn/kernels/cpu/window.hpp"

namespace bcnn {
namespace cuda {

// x (N, H, W, C), weights (KH, KW, C, K), bias (K) or nullptr  ->  y (N, OH, OW, K)
void conv2d_forward(const Tensor<float>& x, const Tensor<float>& weights, const Tensor<float>* bias,
                    const ConvParams& params, Tensor<float>& y);
void conv2d_forward(const Tensor<double>& x, const Tensor<double>& weights, const Tensor<double>* bias,
                    const ConvParams& params, Tensor<double>& y);

// x (N, H, W, C), weights (KH, KW, C, K), dy (N, OH, OW, K)
//   ->  dx (N, H, W, C), d_weights (KH, KW, C, K), d_bias (K), each nullptr when not wanted.
// Outputs are overwritten.
void conv2d_backward(const Tensor<float>& x, const Tensor<float>& weights, const Tensor<float>& dy,
                     const ConvParams& params, Tensor<float>* dx, Tensor<float>* d_weights, Tensor<float>* d_bias);
void conv2d_backward(const Tensor<double>& x, const Tensor<double>& weights, const Tensor<double>& dy,
                     const ConvParams& params, Tensor<double>* dx, Tensor<double>* d_weights, Tensor<double>* d_bias);

// Whether float convolutions may use TF32 tensor cores (Ampere and later):
// about 10 mantissa bits in the products, several times faster. Off by default,
// so float results match the CPU kernel to float rounding. Applies to the
// calling process from the next call on; double never uses TF32.
void set_conv2d_tf32(bool allowed);
bool conv2d_tf32();

}  // namespace cuda
}  // namespace bcnn

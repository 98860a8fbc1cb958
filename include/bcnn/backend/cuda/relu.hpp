#pragma once
// ReLU on device tensors, defined in cuda/relu.cpp (bcnn::cuda). Tensors may
// be contiguous or row views (Tensor::channels() of a wider NHWC buffer); an
// output may alias an input exactly. Results equal cpu::relu_* bit for bit.
// Call through bcnn::backend::relu_forward/relu_backward (backend/relu.hpp).

#include "bcnn/core/tensor.hpp"

namespace bcnn {
namespace cuda {

// x (any shape) -> y (same shape): y = x < 0 ? 0 : x (NaN passes through)
void relu_forward(const Tensor<float>& x, Tensor<float>& y);
void relu_forward(const Tensor<double>& x, Tensor<double>& y);

// y = relu_forward's output, dy (same shape) -> dx (same shape): dx = y > 0 ? dy : 0
void relu_backward(const Tensor<float>& y, const Tensor<float>& dy, Tensor<float>& dx);
void relu_backward(const Tensor<double>& y, const Tensor<double>& dy, Tensor<double>& dx);

// relu_backward, and d_bias (C) = dx summed over its rows (every axis but
// the last, C), in double, deterministic; equals the CPU's up to rounding.
void relu_backward_bias_gradient(const Tensor<float>& y, const Tensor<float>& dy, Tensor<float>& dx,
                                 Tensor<float>& d_bias);
void relu_backward_bias_gradient(const Tensor<double>& y, const Tensor<double>& dy, Tensor<double>& dx,
                                 Tensor<double>& d_bias);

}  // namespace cuda
}  // namespace bcnn

#pragma once
// Fully connected layer on device tensors with cuBLAS, defined in
// cuda/dense.cpp (bcnn::cuda). The semantics are cpu::dense_*'s
// (kernels/cpu/dense.hpp): Keras weights (In, Out), bias and every gradient
// optional, the layer's activation fused after the bias. x, weights, y, dy,
// dx and d_weights may be row views (channel slices); bias and its gradient
// are vectors. No TF32, no atomics: results are deterministic and agree with
// the CPU kernel up to rounding (summation order differs), not bit for bit.
// Call through bcnn::backend::dense_forward/dense_backward (backend/dense.hpp).

#include "bcnn/core/tensor.hpp"
#include "bcnn/kernels/cpu/bias_activation.hpp"

namespace bcnn {
namespace cuda {

// x (N, In), weights (In, Out), bias (Out) or nullptr  ->  y (N, Out) = activation(x * weights + bias)
void dense_forward(const Tensor<float>& x, const Tensor<float>& weights, const Tensor<float>* bias, Tensor<float>& y,
                   cpu::ActivationFn activation = cpu::ActivationFn::linear);
void dense_forward(const Tensor<double>& x, const Tensor<double>& weights, const Tensor<double>* bias,
                   Tensor<double>& y, cpu::ActivationFn activation = cpu::ActivationFn::linear);

// x (N, In), weights (In, Out), dy (N, Out)  ->  dx (N, In), d_weights (In, Out),
// d_bias (Out), each nullptr when not wanted. Outputs are overwritten.
void dense_backward(const Tensor<float>& x, const Tensor<float>& weights, const Tensor<float>& dy, Tensor<float>* dx,
                    Tensor<float>* d_weights, Tensor<float>* d_bias);
void dense_backward(const Tensor<double>& x, const Tensor<double>& weights, const Tensor<double>& dy,
                    Tensor<double>* dx, Tensor<double>* d_weights, Tensor<double>* d_bias);

}  // namespace cuda
}  // namespace bcnn

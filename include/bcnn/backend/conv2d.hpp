#pragma once
// Conv2D's dispatch point: CPU tensors run cpu::conv2d_*, device tensors cuda::conv2d_*.
//   x (N, H, W, C), weights (KH, KW, C, K), bias (K) or nullptr  ->  y (N, OH, OW, K) = activation(conv + bias)
//   x, weights, dy (N, OH, OW, K)  ->  dx, d_weights, d_bias, each nullptr when not wanted
//   conv2d_relu_backward: the same for a convolution followed by a ReLU, from
//   its output y and dy after the ReLU (pre: scratch of dy's shape); the CPU
//   kernel reads dy through the mask where it can, cuda runs the ReLU's
//   gradient into pre first.
// All tensors of a call must be on one device; each kernel checks the shapes.
// The CPU kernel fuses the activation into its last pass; on cuda the ReLU is
// a second op over y (cuda::relu_forward in place).

#include "bcnn/backend/cuda/conv2d.hpp"
#include "bcnn/backend/cuda/relu.hpp"
#include "bcnn/backend/dispatch.hpp"
#include "bcnn/kernels/cpu/conv2d.hpp"

namespace bcnn {
namespace backend {

template <typename T>
void conv2d_forward(const Tensor<T>& x, const Tensor<T>& weights, OptionalInput<T> bias, const ConvParams& params,
                    Tensor<T>& y, cpu::ActivationFn activation = cpu::ActivationFn::linear) {
    const char* op = "conv2d_forward";
    const Device device = detail::common_device<T>(op, {{"input", x}, {"weights", weights}, {"output", y}});
    if (bias) detail::common_device<T>(op, {{"input", x}, {"bias", *bias}});
    if (device == Device::cpu) {
        cpu::conv2d_forward(x, weights, bias, params, y, activation);
        return;
    }
#ifdef BCNN_WITH_CUDA
    cuda::conv2d_forward(x, weights, bias, params, y);
    if (activation == cpu::ActivationFn::relu) cuda::relu_forward(y, y);
#else
    detail::throw_no_cuda_backend(op);
#endif
}

template <typename T>
void conv2d_backward(const Tensor<T>& x, const Tensor<T>& weights, const Tensor<T>& dy, const ConvParams& params,
                     OptionalOutput<T> dx, OptionalOutput<T> d_weights, OptionalOutput<T> d_bias) {
    const char* op = "conv2d_backward";
    const Device device =
        detail::common_device<T>(op, {{"input", x}, {"weights", weights}, {"output gradient", dy}});
    if (dx) detail::common_device<T>(op, {{"input", x}, {"input gradient", *dx}});
    if (d_weights) detail::common_device<T>(op, {{"input", x}, {"weights gradient", *d_weights}});
    if (d_bias) detail::common_device<T>(op, {{"input", x}, {"bias gradient", *d_bias}});
    if (device == Device::cpu) {
        cpu::conv2d_backward(x, weights, dy, params, dx, d_weights, d_bias);
        return;
    }
#ifdef BCNN_WITH_CUDA
    cuda::conv2d_backward(x, weights, dy, params, dx, d_weights, d_bias);
#else
    detail::throw_no_cuda_backend(op);
#endif
}

template <typename T>
void conv2d_relu_backward(const Tensor<T>& x, const Tensor<T>& weights, const Tensor<T>& relu_output,
                          const Tensor<T>& dy, const ConvParams& params, Tensor<T>& pre, OptionalOutput<T> dx,
                          OptionalOutput<T> d_weights, OptionalOutput<T> d_bias) {
    const char* op = "conv2d_relu_backward";
    const Device device = detail::common_device<T>(
        op, {{"input", x}, {"weights", weights}, {"output", relu_output}, {"output gradient", dy}, {"scratch", pre}});
    if (dx) detail::common_device<T>(op, {{"input", x}, {"input gradient", *dx}});
    if (d_weights) detail::common_device<T>(op, {{"input", x}, {"weights gradient", *d_weights}});
    if (d_bias) detail::common_device<T>(op, {{"input", x}, {"bias gradient", *d_bias}});
    if (device == Device::cpu) {
        cpu::conv2d_relu_backward(x, weights, relu_output, dy, params, pre, dx, d_weights, d_bias);
        return;
    }
#ifdef BCNN_WITH_CUDA
    if (d_bias)
        cuda::relu_backward_bias_gradient(relu_output, dy, pre, *d_bias);
    else
        cuda::relu_backward(relu_output, dy, pre);
    cuda::conv2d_backward(x, weights, pre, params, dx, d_weights, nullptr);
#else
    detail::throw_no_cuda_backend(op);
#endif
}

}  // namespace backend
}  // namespace bcnn

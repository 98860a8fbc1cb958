#pragma once
// ReLU's dispatch point: CPU tensors run cpu::relu_*, device tensors cuda::relu_*.
//   x (any shape) -> y (same shape): y = max(x, 0), NaN passes through
//   y (relu_forward's output), dy -> dx (all one shape): dx = dy where y > 0, else 0
//   relu_backward_bias_gradient: the same, and d_bias (C) = dx summed over its
//     rows (every axis but the last): the bias gradient of the layer below
// All tensors of a call must be on one device; each kernel checks the shapes.

#include "bcnn/backend/cuda/relu.hpp"
#include "bcnn/backend/dispatch.hpp"
#include "bcnn/kernels/cpu/activation.hpp"

namespace bcnn {
namespace backend {

template <typename T>
void relu_forward(const Tensor<T>& x, Tensor<T>& y) {
    if (detail::common_device<T>("relu_forward", {{"input", x}, {"output", y}}) == Device::cpu) {
        cpu::relu_forward(x, y);
        return;
    }
#ifdef BCNN_WITH_CUDA
    cuda::relu_forward(x, y);
#else
    detail::throw_no_cuda_backend("relu_forward");
#endif
}

template <typename T>
void relu_backward(const Tensor<T>& y, const Tensor<T>& dy, Tensor<T>& dx) {
    const Device device =
        detail::common_device<T>("relu_backward", {{"output", y}, {"output gradient", dy}, {"input gradient", dx}});
    if (device == Device::cpu) {
        cpu::relu_backward(y, dy, dx);
        return;
    }
#ifdef BCNN_WITH_CUDA
    cuda::relu_backward(y, dy, dx);
#else
    detail::throw_no_cuda_backend("relu_backward");
#endif
}

template <typename T>
void relu_backward_bias_gradient(const Tensor<T>& y, const Tensor<T>& dy, Tensor<T>& dx, Tensor<T>& d_bias) {
    const char* op = "relu_backward_bias_gradient";
    const Device device = detail::common_device<T>(
        op, {{"output", y}, {"output gradient", dy}, {"input gradient", dx}, {"bias gradient", d_bias}});
    if (device == Device::cpu) {
        cpu::relu_backward_bias_gradient(y, dy, dx, d_bias);
        return;
    }
#ifdef BCNN_WITH_CUDA
    cuda::relu_backward_bias_gradient(y, dy, dx, d_bias);
#else
    detail::throw_no_cuda_backend(op);
#endif
}

}  // namespace backend
}  // namespace bcnn

#pragma once
// ReLU's dispatch point: CPU tensors run cpu::relu_*, device tensors cuda::relu_*.
//   x (any shape) -> y (same shape): y = max(x, 0), NaN passes through
//   y (relu_forward's output), dy -> dx (all one shape): dx = dy where y > 0, else 0
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

}  // namespace backend
}  // namespace bcnn

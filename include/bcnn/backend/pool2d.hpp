#pragma once
// Pooling's dispatch points: CPU tensors run cpu::*_pool*, device tensors cuda::*_pool*.
//   max/avg_pool2d_forward:   x (N, H, W, C), window  ->  y (N, OH, OW, C)
//   max_pool2d_backward:      x, dy (N, OH, OW, C), window  ->  dx (N, H, W, C)
//   avg_pool2d_backward:      dy, window  ->  dx (N, H, W, C)
//   global_avg_pool_forward:  x (N, H, W, C)  ->  y (N, C)
//   global_avg_pool_backward: dy (N, C)  ->  dx (N, H, W, C)
// All tensors of a call must be on one device; each kernel checks the shapes.

#include "bcnn/backend/cuda/pool2d.hpp"
#include "bcnn/backend/dispatch.hpp"
#include "bcnn/kernels/cpu/global_avg_pool.hpp"
#include "bcnn/kernels/cpu/pool2d.hpp"

namespace bcnn {
namespace backend {

template <typename T>
void max_pool2d_forward(const Tensor<T>& x, const Window2D& window, Tensor<T>& y) {
    const char* op = "max_pool2d_forward";
    if (detail::common_device<T>(op, {{"input", x}, {"output", y}}) == Device::cpu) {
        cpu::max_pool2d_forward(x, window, y);
        return;
    }
#ifdef BCNN_WITH_CUDA
    cuda::max_pool2d_forward(x, window, y);
#else
    detail::throw_no_cuda_backend(op);
#endif
}

template <typename T>
void max_pool2d_backward(const Tensor<T>& x, const Tensor<T>& dy, const Window2D& window, Tensor<T>& dx) {
    const char* op = "max_pool2d_backward";
    const Device device =
        detail::common_device<T>(op, {{"input", x}, {"output gradient", dy}, {"input gradient", dx}});
    if (device == Device::cpu) {
        cpu::max_pool2d_backward(x, dy, window, dx);
        return;
    }
#ifdef BCNN_WITH_CUDA
    cuda::max_pool2d_backward(x, dy, window, dx);
#else
    detail::throw_no_cuda_backend(op);
#endif
}

template <typename T>
void avg_pool2d_forward(const Tensor<T>& x, const Window2D& window, Tensor<T>& y) {
    const char* op = "avg_pool2d_forward";
    if (detail::common_device<T>(op, {{"input", x}, {"output", y}}) == Device::cpu) {
        cpu::avg_pool2d_forward(x, window, y);
        return;
    }
#ifdef BCNN_WITH_CUDA
    cuda::avg_pool2d_forward(x, window, y);
#else
    detail::throw_no_cuda_backend(op);
#endif
}

template <typename T>
void avg_pool2d_backward(const Tensor<T>& dy, const Window2D& window, Tensor<T>& dx) {
    const char* op = "avg_pool2d_backward";
    if (detail::common_device<T>(op, {{"output gradient", dy}, {"input gradient", dx}}) == Device::cpu) {
        cpu::avg_pool2d_backward(dy, window, dx);
        return;
    }
#ifdef BCNN_WITH_CUDA
    cuda::avg_pool2d_backward(dy, window, dx);
#else
    detail::throw_no_cuda_backend(op);
#endif
}

template <typename T>
void global_avg_pool_forward(const Tensor<T>& x, Tensor<T>& y) {
    const char* op = "global_avg_pool_forward";
    if (detail::common_device<T>(op, {{"input", x}, {"output", y}}) == Device::cpu) {
        cpu::global_avg_pool_forward(x, y);
        return;
    }
#ifdef BCNN_WITH_CUDA
    cuda::global_avg_pool_forward(x, y);
#else
    detail::throw_no_cuda_backend(op);
#endif
}

template <typename T>
void global_avg_pool_backward(const Tensor<T>& dy, Tensor<T>& dx) {
    const char* op = "global_avg_pool_backward";
    if (detail::common_device<T>(op, {{"output gradient", dy}, {"input gradient", dx}}) == Device::cpu) {
        cpu::global_avg_pool_backward(dy, dx);
        return;
    }
#ifdef BCNN_WITH_CUDA
    cuda::global_avg_pool_backward(dy, dx);
#else
    detail::throw_no_cuda_backend(op);
#endif
}

}  // namespace backend
}  // namespace bcnn

#pragma once
// Zero padding's dispatch point: CPU tensors run cpu::zero_pad2d_*, device tensors cuda::zero_pad2d_*.
//   x (N, H, W, C) -> y (N, top + H + bottom, left + W + right, C)
//   dy (N, OH, OW, C) -> dx (N, H, W, C)
// All tensors of a call must be on one device; each kernel checks the shapes.

#include "bcnn/backend/cuda/zero_pad.hpp"
#include "bcnn/backend/dispatch.hpp"
#include "bcnn/kernels/cpu/zero_pad.hpp"

namespace bcnn {
namespace backend {

template <typename T>
void zero_pad2d_forward(const Tensor<T>& x, const cpu::Padding2D& pad, Tensor<T>& y) {
    const char* op = "zero_pad2d_forward";
    if (detail::common_device<T>(op, {{"input", x}, {"output", y}}) == Device::cpu) {
        cpu::zero_pad2d_forward(x, pad, y);
        return;
    }
#ifdef BCNN_WITH_CUDA
    cuda::zero_pad2d_forward(x, pad, y);
#else
    detail::throw_no_cuda_backend(op);
#endif
}

template <typename T>
void zero_pad2d_backward(const Tensor<T>& dy, const cpu::Padding2D& pad, Tensor<T>& dx) {
    const char* op = "zero_pad2d_backward";
    if (detail::common_device<T>(op, {{"output gradient", dy}, {"input gradient", dx}}) == Device::cpu) {
        cpu::zero_pad2d_backward(dy, pad, dx);
        return;
    }
#ifdef BCNN_WITH_CUDA
    cuda::zero_pad2d_backward(dy, pad, dx);
#else
    detail::throw_no_cuda_backend(op);
#endif
}

}  // namespace backend
}  // namespace bcnn

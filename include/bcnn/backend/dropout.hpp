#pragma once
// Dropout's dispatch point: CPU tensors run cpu::dropout_*, device tensors cuda::dropout_*.
//   x (any shape), rate in [0, 1), rng -> mask (0 or 1/(1-rate)), y = x * mask (same shape)
//   dy, mask -> dx = dy * mask
// Both devices draw the same mask for the same rng (seed, counter).
// All tensors of a call must be on one device; each kernel checks the shapes.

#include "bcnn/backend/cuda/dropout.hpp"
#include "bcnn/backend/dispatch.hpp"
#include "bcnn/kernels/cpu/dropout.hpp"

namespace bcnn {
namespace backend {

template <typename T>
void dropout_forward(const Tensor<T>& x, typename bcnn::detail::NonDeduced<T>::type rate, Rng& rng, Tensor<T>& mask,
                     Tensor<T>& y) {
    const char* op = "dropout_forward";
    if (detail::common_device<T>(op, {{"input", x}, {"mask", mask}, {"output", y}}) == Device::cpu) {
        cpu::dropout_forward(x, rate, rng, mask, y);
        return;
    }
#ifdef BCNN_WITH_CUDA
    cuda::dropout_forward(x, rate, rng, mask, y);
#else
    detail::throw_no_cuda_backend(op);
#endif
}

template <typename T>
void dropout_backward(const Tensor<T>& dy, const Tensor<T>& mask, Tensor<T>& dx) {
    const char* op = "dropout_backward";
    if (detail::common_device<T>(op, {{"output gradient", dy}, {"mask", mask}, {"input gradient", dx}}) ==
        Device::cpu) {
        cpu::dropout_backward(dy, mask, dx);
        return;
    }
#ifdef BCNN_WITH_CUDA
    cuda::dropout_backward(dy, mask, dx);
#else
    detail::throw_no_cuda_backend(op);
#endif
}

}  // namespace backend
}  // namespace bcnn

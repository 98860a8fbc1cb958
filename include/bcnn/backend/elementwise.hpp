#pragma once
// Elementwise dispatch points for layers: CPU tensors run the CPU code,
// device tensors the cuda:: ops.
//   copy(source, destination):  destination = source (same shape; either may be a channel slice)
//   add_inplace(y, x):          y += x (same shape; either may be a channel slice)
// Both tensors of a call must be on one device.

#include "bcnn/backend/concat.hpp"
#include "bcnn/backend/cuda/elementwise.hpp"
#include "bcnn/backend/dispatch.hpp"
#include "bcnn/kernels/cpu/elementwise.hpp"

namespace bcnn {
namespace backend {

// source (any shape) -> destination (same shape)
template <typename T>
void copy(const Tensor<T>& source, const Tensor<T>& destination) {
    const char* op = "copy";
    if (detail::common_device<T>(op, {{"source", source}, {"destination", destination}}) == Device::cpu) {
        destination.copy_from(source);
        return;
    }
#ifdef BCNN_WITH_CUDA
    // A copy is a concatenation of one tensor (cudaMemcpy2DAsync of its rows).
    Tensor<T> to = destination;
    cuda::concat_channels_forward(std::vector<Tensor<T>>{source}, to);
#else
    detail::throw_no_cuda_backend(op);
#endif
}

// y (any shape) += x (same shape)
template <typename T>
void add_inplace(Tensor<T>& y, const Tensor<T>& x) {
    const char* op = "add_inplace";
    if (detail::common_device<T>(op, {{"accumulator", y}, {"addend", x}}) == Device::cpu) {
        cpu::add_inplace(y, x);
        return;
    }
#ifdef BCNN_WITH_CUDA
    cuda::add_inplace(y, x);
#else
    detail::throw_no_cuda_backend(op);
#endif
}

}  // namespace backend
}  // namespace bcnn

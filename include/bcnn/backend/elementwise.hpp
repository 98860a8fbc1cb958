#pragma once
// Elementwise dispatch points for layers: CPU tensors run the CPU code,
// device tensors the cuda:: ops.
//   copy(source, destination):  destination = source (same shape; either may be a channel slice)
//   add_inplace(y, x):          y += x (same shape; either may be a channel slice)
//   scale_inplace(y, alpha):    y *= alpha
//   all_finite(x):              no element is inf or NaN (on cuda: waits for the queued work)
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

// y (any shape) *= alpha
template <typename T>
void scale_inplace(Tensor<T>& y, typename bcnn::detail::NonDeduced<T>::type alpha) {
    const char* op = "scale_inplace";
    if (detail::common_device<T>(op, {{"tensor", y}}) == Device::cpu) {
        cpu::scale_inplace(y, alpha);
        return;
    }
#ifdef BCNN_WITH_CUDA
    cuda::scale_inplace(y, alpha);
#else
    detail::throw_no_cuda_backend(op);
#endif
}

// x (any shape) -> whether every element is finite
template <typename T>
bool all_finite(const Tensor<T>& x) {
    const char* op = "all_finite";
    if (detail::common_device<T>(op, {{"tensor", x}}) == Device::cpu) return cpu::all_finite(x);
#ifdef BCNN_WITH_CUDA
    return cuda::all_finite(x);
#else
    detail::throw_no_cuda_backend(op);
#endif
}

}  // namespace backend
}  // namespace bcnn

#pragma once
// Internal to bcnn_cuda: argument checks of the cuda:: ops, worded like the
// CPU kernels' (kernels/cpu/checks.hpp) but requiring device tensors.

#include "bcnn/core/tensor.hpp"

namespace bcnn {
namespace cuda {
namespace detail {

template <typename T>
void require_device(const Tensor<T>& t, const char* op, const char* name) {
    BCNN_CHECK(t.defined(), op << ": " << name << " is an empty tensor");
    BCNN_CHECK(t.device() == Device::cuda, op << ": " << name << " of shape " << t.shape() << " is on " << t.device()
                                              << "; this operation runs on cuda (see bcnn::to_device)");
}

template <typename T>
void require_shape(const Tensor<T>& t, const Shape& expected, const char* op, const char* name) {
    require_device(t, op, name);
    BCNN_CHECK(t.shape() == expected, op << ": " << name << " has shape " << t.shape() << ", expected " << expected);
}

template <typename T>
void require_rank(const Tensor<T>& t, int rank, const char* op, const char* name) {
    require_device(t, op, name);
    BCNN_CHECK(t.rank() == rank, op << ": " << name << " must have rank " << rank << ", got shape " << t.shape());
}

template <typename T>
void require_contiguous(const Tensor<T>& t, const char* op, const char* name) {
    BCNN_CHECK(t.is_contiguous(), op << ": " << name << " of shape " << t.shape() << " with strides " << t.strides()
                                     << " must be contiguous");
}

}  // namespace detail
}  // namespace cuda
}  // namespace bcnn

#pragma once
// Argument checks shared by the CPU kernels. Each failure throws bcnn::Error
// naming the kernel, the argument and the shapes involved.

#include "bcnn/core/tensor.hpp"

namespace bcnn {
namespace cpu {
namespace detail {

template <typename T>
void require_rank(const Tensor<T>& t, int rank, const char* op, const char* name) {
    BCNN_CHECK(t.defined(), op << ": " << name << " is an empty tensor");
    t.require_cpu(op);
    BCNN_CHECK(t.rank() == rank, op << ": " << name << " must have rank " << rank << ", got shape " << t.shape());
}

template <typename T>
void require_shape(const Tensor<T>& t, const Shape& expected, const char* op, const char* name) {
    BCNN_CHECK(t.defined(), op << ": " << name << " is an empty tensor, expected shape " << expected);
    t.require_cpu(op);
    BCNN_CHECK(t.shape() == expected, op << ": " << name << " has shape " << t.shape() << ", expected " << expected);
}

template <typename T>
void require_contiguous(const Tensor<T>& t, const char* op, const char* name) {
    BCNN_CHECK(t.is_contiguous(), op << ": " << name << " of shape " << t.shape() << " must be contiguous");
}

}  // namespace detail
}  // namespace cpu
}  // namespace bcnn

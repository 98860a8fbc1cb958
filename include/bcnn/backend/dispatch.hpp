#pragma once
// Shared by the dispatch points in backend/: every tensor of an op must be
// on one device, which picks cpu:: or cuda::. Without the CUDA backend linked
// (BCNN_WITH_CUDA undefined), device tensors raise one clear error.

#include <initializer_list>

#include "bcnn/core/tensor.hpp"

namespace bcnn {
namespace backend {
namespace detail {

constexpr const char* kNoCudaBackend = "bcnn was built without the CUDA backend; link bcnn::cuda";

template <typename T>
struct Operand {
    const char* name;
    const Tensor<T>& tensor;
};

// The device all operands live on; throws naming two operands and their devices otherwise.
template <typename T>
Device common_device(const char* op, std::initializer_list<Operand<T>> operands) {
    const Operand<T>& first = *operands.begin();
    for (const Operand<T>& operand : operands) {
        BCNN_CHECK(operand.tensor.defined(), op << ": " << operand.name << " is an empty tensor");
        BCNN_CHECK(operand.tensor.device() == first.tensor.device(),
                   op << ": " << first.name << " is on " << first.tensor.device() << " but " << operand.name
                      << " is on " << operand.tensor.device() << "; move tensors with bcnn::to_device()");
    }
    return first.tensor.device();
}

[[noreturn]] inline void throw_no_cuda_backend(const char* op) {
    throw Error(std::string(op) + ": tensors are on cuda but " + kNoCudaBackend);
}

}  // namespace detail
}  // namespace backend
}  // namespace bcnn

#pragma once
// Softmax cross-entropy's dispatch point: CPU tensors run
// cpu::softmax_cross_entropy_*, device tensors cuda::softmax_cross_entropy_*.
//   logits (N, K), labels (N) int32 in [0, K) -> probabilities (N, K); returns the mean loss
//   probabilities, labels -> d_logits (N, K) = (probabilities - onehot(labels)) / N
// All tensors of a call, the labels included, must be on one device; each kernel checks the shapes.

#include <cstdint>

#include "bcnn/backend/cuda/softmax_cross_entropy.hpp"
#include "bcnn/backend/dispatch.hpp"
#include "bcnn/kernels/cpu/softmax_cross_entropy.hpp"

namespace bcnn {
namespace backend {
namespace detail {

// The labels must be on `device`, the device of the other operands.
inline void require_labels_on(Device device, const Tensor<std::int32_t>& labels, const char* op, const char* first) {
    BCNN_CHECK(labels.defined(), op << ": labels is an empty tensor");
    BCNN_CHECK(labels.device() == device, op << ": " << first << " is on " << device << " but labels is on "
                                             << labels.device() << "; move tensors with bcnn::to_device()");
}

}  // namespace detail

template <typename T>
T softmax_cross_entropy_forward(const Tensor<T>& logits, const Tensor<std::int32_t>& labels,
                                Tensor<T>& probabilities) {
    const char* op = "softmax_cross_entropy_forward";
    const Device device = detail::common_device<T>(op, {{"logits", logits}, {"probabilities", probabilities}});
    detail::require_labels_on(device, labels, op, "logits");
    if (device == Device::cpu) return cpu::softmax_cross_entropy_forward(logits, labels, probabilities);
#ifdef BCNN_WITH_CUDA
    return cuda::softmax_cross_entropy_forward(logits, labels, probabilities);
#else
    detail::throw_no_cuda_backend(op);
#endif
}

template <typename T>
void softmax_cross_entropy_backward(const Tensor<T>& probabilities, const Tensor<std::int32_t>& labels,
                                    Tensor<T>& d_logits) {
    const char* op = "softmax_cross_entropy_backward";
    const Device device =
        detail::common_device<T>(op, {{"probabilities", probabilities}, {"logits gradient", d_logits}});
    detail::require_labels_on(device, labels, op, "probabilities");
    if (device == Device::cpu) {
        cpu::softmax_cross_entropy_backward(probabilities, labels, d_logits);
        return;
    }
#ifdef BCNN_WITH_CUDA
    cuda::softmax_cross_entropy_backward(probabilities, labels, d_logits);
#else
    detail::throw_no_cuda_backend(op);
#endif
}

}  // namespace backend
}  // namespace bcnn

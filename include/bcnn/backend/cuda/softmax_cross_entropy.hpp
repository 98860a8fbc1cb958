#pragma once
// Softmax fused with sparse categorical cross-entropy on device tensors,
// defined in cuda/softmax_cross_entropy.cpp (bcnn::cuda). The semantics are
// cpu::softmax_cross_entropy_*'s (kernels/cpu/softmax_cross_entropy.hpp):
//   logits (N, K), labels (N) int32 in [0, K)  ->  probabilities (N, K),
//   loss = mean_n( log-sum-exp(logits[n]) - logits[n][labels[n]] )   (returned, T)
//   d_logits = (probabilities - onehot(labels)) / N
// Labels are a device tensor too. A label outside [0, K) or a non-finite logit
// throws with the CPU kernel's message before anything is written. The loss
// is summed per row, then over the rows in a fixed order (deterministic); it
// and the probabilities agree with the CPU up to rounding (the device's exp
// and log are not the host's); d_logits from the same probabilities equals
// the CPU's bit for bit. Both calls wait for the device (the label check,
// and the loss is returned to the host).
// Logits, probabilities and d_logits may be row views; probabilities may
// alias logits and d_logits may alias probabilities.
// Call through bcnn::backend::softmax_cross_entropy_* (backend/softmax_cross_entropy.hpp).

#include <cstdint>

#include "bcnn/core/tensor.hpp"

namespace bcnn {
namespace cuda {

// logits (N, K), labels (N) -> probabilities (N, K); returns the mean loss.
float softmax_cross_entropy_forward(const Tensor<float>& logits, const Tensor<std::int32_t>& labels,
                                    Tensor<float>& probabilities);
double softmax_cross_entropy_forward(const Tensor<double>& logits, const Tensor<std::int32_t>& labels,
                                     Tensor<double>& probabilities);

// probabilities (N, K), labels (N) -> d_logits (N, K), the gradient of the mean loss.
void softmax_cross_entropy_backward(const Tensor<float>& probabilities, const Tensor<std::int32_t>& labels,
                                    Tensor<float>& d_logits);
void softmax_cross_entropy_backward(const Tensor<double>& probabilities, const Tensor<std::int32_t>& labels,
                                    Tensor<double>& d_logits);

}  // namespace cuda
}  // namespace bcnn

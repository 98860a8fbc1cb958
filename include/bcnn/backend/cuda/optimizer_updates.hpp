#pragma once
// Optimiser updates on device tensors, defined in cuda/optimizer_updates.cpp
// (bcnn::cuda): the element-wise arithmetic of optim::Adam::update and
// optim::SGD::update (include/bcnn/optim/), operation for operation in T,
// with the step constants computed on the host exactly as those classes do.
// The device never contracts a multiply and an add into an FMA, so results
// equal the CPU's bit for bit wherever the CPU build does not contract
// either (GCC contracts under -std=gnu++17 with FMA hardware); otherwise
// they agree to rounding. Every tensor must be a contiguous device tensor of
// the parameter's shape; all are updated in place.
// optim::Adam / optim::SGD call these from update() for device parameters
// (their CPU arithmetic lives in those classes, so there is no backend/ dispatch).

#include <cstdint>

#include "bcnn/core/tensor.hpp"

namespace bcnn {
namespace cuda {

// Keras' Adam at step t >= 1 (t = iterations + 1), as optim::Adam:
//   m += (g - m) * (1 - beta_1);  v += (g*g - v) * (1 - beta_2)
//   p -= m * alpha / (sqrt(v) + epsilon),  alpha = lr * sqrt(1 - beta_2^t) / (1 - beta_1^t) (double, then T)
void adam_update(const Tensor<float>& value, const Tensor<float>& grad, const Tensor<float>& m,
                 const Tensor<float>& v, double learning_rate, double beta_1, double beta_2, double epsilon,
                 std::int64_t t);
void adam_update(const Tensor<double>& value, const Tensor<double>& grad, const Tensor<double>& m,
                 const Tensor<double>& v, double learning_rate, double beta_1, double beta_2, double epsilon,
                 std::int64_t t);

// Keras' SGD, as optim::SGD. velocity == nullptr (momentum 0, no slot): p -= g * lr;
// else velocity = velocity * momentum - g * lr, then p += velocity (plain) or
// p += velocity * momentum - g * lr (nesterov).
void sgd_update(const Tensor<float>& value, const Tensor<float>& grad, const Tensor<float>* velocity,
                double learning_rate, double momentum, bool nesterov);
void sgd_update(const Tensor<double>& value, const Tensor<double>& grad, const Tensor<double>* velocity,
                double learning_rate, double momentum, bool nesterov);

}  // namespace cuda
}  // namespace bcnn

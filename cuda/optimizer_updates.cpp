// cuda::adam_update / sgd_update: argument checks and the step constants,
// computed as optim::Adam::update and optim::SGD::update compute them, then
// the kernels in optimizer_updates_kernels.cu. Signatures in
// include/bcnn/backend/cuda/optimizer_updates.hpp.

#include "bcnn/backend/cuda/optimizer_updates.hpp"

#include <cmath>

#include "argument_checks.hpp"
#include "check.hpp"
#include "optimizer_updates_kernels.hpp"

namespace bcnn {
namespace cuda {

namespace {

// A contiguous device tensor of the parameter's shape.
template <typename T>
void require_state(const Tensor<T>& t, const Tensor<T>& value, const char* op, const char* name) {
    detail::require_shape(t, value.shape(), op, name);
    detail::require_contiguous(t, op, name);
}

template <typename T>
void adam_update_on_device(const Tensor<T>& value, const Tensor<T>& grad, const Tensor<T>& m, const Tensor<T>& v,
                           double learning_rate, double beta_1, double beta_2, double epsilon, std::int64_t t) {
    const char* op = "cuda::adam_update";
    detail::require_device(value, op, "parameter");
    detail::require_contiguous(value, op, "parameter");
    require_state(grad, value, op, "gradient");
    require_state(m, value, op, "m");
    require_state(v, value, op, "v");
    BCNN_CHECK(std::isfinite(learning_rate) && learning_rate >= 0,
               op << ": learning rate must be finite and >= 0, got " << learning_rate);
    BCNN_CHECK(beta_1 >= 0 && beta_1 < 1, op << ": beta_1 must be in [0, 1), got " << beta_1);
    BCNN_CHECK(beta_2 >= 0 && beta_2 < 1, op << ": beta_2 must be in [0, 1), got " << beta_2);
    BCNN_CHECK(epsilon > 0 && std::isfinite(epsilon), op << ": epsilon must be positive, got " << epsilon);
    BCNN_CHECK(t >= 1, op << ": step " << t << " must be >= 1 (iterations + 1)");
    // As optim::Adam::update.
    const double steps = static_cast<double>(t);
    const kernels::AdamConstants<T> k{
        static_cast<T>(learning_rate * std::sqrt(1.0 - std::pow(beta_2, steps)) / (1.0 - std::pow(beta_1, steps))),
        static_cast<T>(1.0 - beta_1), static_cast<T>(1.0 - beta_2), static_cast<T>(epsilon)};
    BCNN_CUDA_CHECK(kernels::adam_update(value.data(), grad.data(), m.data(), v.data(), value.numel(), k),
                    op << " on parameter " << value.shape());
}

template <typename T>
void sgd_update_on_device(const Tensor<T>& value, const Tensor<T>& grad, const Tensor<T>* velocity,
                          double learning_rate, double momentum, bool nesterov) {
    const char* op = "cuda::sgd_update";
    detail::require_device(value, op, "parameter");
    detail::require_contiguous(value, op, "parameter");
    require_state(grad, value, op, "gradient");
    if (velocity) require_state(*velocity, value, op, "velocity");
    BCNN_CHECK(std::isfinite(learning_rate) && learning_rate >= 0,
               op << ": learning rate must be finite and >= 0, got " << learning_rate);
    BCNN_CHECK(momentum >= 0 && momentum <= 1, op << ": momentum must be in [0, 1], got " << momentum);
    BCNN_CUDA_CHECK(kernels::sgd_update(value.data(), grad.data(), velocity ? velocity->data() : nullptr,
                                        value.numel(), static_cast<T>(learning_rate), static_cast<T>(momentum),
                                        nesterov),
                    op << " on parameter " << value.shape());
}

}  // namespace

void adam_update(const Tensor<float>& value, const Tensor<float>& grad, const Tensor<float>& m,
                 const Tensor<float>& v, double learning_rate, double beta_1, double beta_2, double epsilon,
                 std::int64_t t) {
    adam_update_on_device(value, grad, m, v, learning_rate, beta_1, beta_2, epsilon, t);
}
void adam_update(const Tensor<double>& value, const Tensor<double>& grad, const Tensor<double>& m,
                 const Tensor<double>& v, double learning_rate, double beta_1, double beta_2, double epsilon,
                 std::int64_t t) {
    adam_update_on_device(value, grad, m, v, learning_rate, beta_1, beta_2, epsilon, t);
}
void sgd_update(const Tensor<float>& value, const Tensor<float>& grad, const Tensor<float>* velocity,
                double learning_rate, double momentum, bool nesterov) {
    sgd_update_on_device(value, grad, velocity, learning_rate, momentum, nesterov);
}
void sgd_update(const Tensor<double>& value, const Tensor<double>& grad, const Tensor<double>* velocity,
                double learning_rate, double momentum, bool nesterov) {
    sgd_update_on_device(value, grad, velocity, learning_rate, momentum, nesterov);
}

}  // namespace cuda
}  // namespace bcnn

#pragma once
// Adam with Keras' defaults (lr 1e-3, beta_1 0.9, beta_2 0.999, epsilon 1e-7)
// and Keras' update, per element, at step t = iterations + 1:
//   m += (g - m) * (1 - beta_1)            (= beta_1 m + (1 - beta_1) g)
//   v += (g^2 - v) * (1 - beta_2)          (= beta_2 v + (1 - beta_2) g^2)
//   alpha = lr * sqrt(1 - beta_2^t) / (1 - beta_1^t)     (in double)
//   p -= m * alpha / (sqrt(v) + epsilon)
// epsilon is Keras' "epsilon hat": it is added after the bias correction.
// Slots: "m", "v". Parameters on cuda are updated there by cuda::adam_update,
// the same arithmetic operation for operation (backend/cuda/optimizer_updates.hpp).

#include <cmath>

#include "bcnn/backend/cuda/optimizer_updates.hpp"
#include "bcnn/optim/optimizer.hpp"

namespace bcnn {
namespace optim {

template <typename T>
class Adam : public Optimizer<T> {
public:
    explicit Adam(double learning_rate = 1e-3, double beta_1 = 0.9, double beta_2 = 0.999, double epsilon = 1e-7)
        : Optimizer<T>("Adam", learning_rate), beta_1_(beta_1), beta_2_(beta_2), epsilon_(epsilon) {
        BCNN_CHECK(beta_1 >= 0 && beta_1 < 1, "Adam: beta_1 must be in [0, 1), got " << beta_1);
        BCNN_CHECK(beta_2 >= 0 && beta_2 < 1, "Adam: beta_2 must be in [0, 1), got " << beta_2);
        BCNN_CHECK(epsilon > 0 && std::isfinite(epsilon), "Adam: epsilon must be positive, got " << epsilon);
    }

    double beta_1() const { return beta_1_; }
    double beta_2() const { return beta_2_; }
    double epsilon() const { return epsilon_; }

protected:
    std::vector<std::string> slot_names() const override { return {"m", "v"}; }

    std::vector<std::pair<std::string, double>> hyperparameters() const override {
        return {{"beta_1", beta_1_}, {"beta_2", beta_2_}, {"epsilon", epsilon_}};
    }

    // p, g, m, v: contiguous, same shape, one device.
    void update(const Tensor<T>& value, const Tensor<T>& grad, std::vector<Tensor<T>>& slots,
                std::int64_t t) override {
        if (value.device() != Device::cpu) {
#ifdef BCNN_WITH_CUDA
            cuda::adam_update(value, grad, slots[0], slots[1], this->learning_rate(), beta_1_, beta_2_, epsilon_, t);
            return;
#else
            throw Error(std::string("Adam: parameters are on cuda but ") + backend::detail::kNoCudaBackend);
#endif
        }
        const double steps = static_cast<double>(t);
        const T alpha = static_cast<T>(this->learning_rate() * std::sqrt(1.0 - std::pow(beta_2_, steps)) /
                                       (1.0 - std::pow(beta_1_, steps)));
        const T one_minus_beta_1 = static_cast<T>(1.0 - beta_1_);
        const T one_minus_beta_2 = static_cast<T>(1.0 - beta_2_);
        const T epsilon = static_cast<T>(epsilon_);
        T* p = value.data();
        const T* g = grad.data();
        T* m = slots[0].data();
        T* v = slots[1].data();
        this->for_each_range(value.numel(), [&](Index first, Index last) {
            for (Index i = first; i < last; ++i) {
                m[i] += (g[i] - m[i]) * one_minus_beta_1;
                v[i] += (g[i] * g[i] - v[i]) * one_minus_beta_2;
                p[i] -= m[i] * alpha / (std::sqrt(v[i]) + epsilon);
            }
        });
    }

private:
    double beta_1_, beta_2_, epsilon_;
};

}  // namespace optim
}  // namespace bcnn

#pragma once
// SGD with optional momentum, as Keras' SGD (default lr 0.01, momentum 0):
//   momentum == 0:  p -= lr * g                       (no slots)
//   momentum  > 0:  velocity = momentum * velocity - lr * g
//                   p += velocity                               (plain)
//                   p += momentum * velocity - lr * g           (nesterov)
// Slot: "velocity" (when momentum > 0). Parameters on cuda are updated there by
// cuda::sgd_update, the same arithmetic (backend/cuda/optimizer_updates.hpp).

#include "bcnn/backend/cuda/optimizer_updates.hpp"
#include "bcnn/optim/optimizer.hpp"

namespace bcnn {
namespace optim {

template <typename T>
class SGD : public Optimizer<T> {
public:
    explicit SGD(double learning_rate = 0.01, double momentum = 0.0, bool nesterov = false)
        : Optimizer<T>("SGD", learning_rate), momentum_(momentum), nesterov_(nesterov) {
        BCNN_CHECK(momentum >= 0 && momentum <= 1, "SGD: momentum must be in [0, 1], got " << momentum);
    }

    double momentum() const { return momentum_; }
    bool nesterov() const { return nesterov_; }

protected:
    std::vector<std::string> slot_names() const override {
        if (momentum_ == 0) return {};
        return {"velocity"};
    }

    std::vector<std::pair<std::string, double>> hyperparameters() const override {
        return {{"momentum", momentum_}, {"nesterov", nesterov_ ? 1.0 : 0.0}};
    }

    // p, g, velocity: contiguous, same shape, one device.
    void update(const Tensor<T>& value, const Tensor<T>& grad, std::vector<Tensor<T>>& slots, std::int64_t) override {
        if (value.device() != Device::cpu) {
#ifdef BCNN_WITH_CUDA
            cuda::sgd_update(value, grad, slots.empty() ? nullptr : &slots[0], this->learning_rate(), momentum_,
                             nesterov_);
            return;
#else
            throw Error(std::string("SGD: parameters are on cuda but ") + backend::detail::kNoCudaBackend);
#endif
        }
        const T learning_rate = static_cast<T>(this->learning_rate());
        const T momentum = static_cast<T>(momentum_);
        T* p = value.data();
        const T* g = grad.data();
        if (slots.empty()) {
            this->for_each_range(value.numel(), [&](Index first, Index last) {
                for (Index i = first; i < last; ++i) p[i] -= g[i] * learning_rate;
            });
            return;
        }
        T* velocity = slots[0].data();
        const bool nesterov = nesterov_;
        this->for_each_range(value.numel(), [&](Index first, Index last) {
            for (Index i = first; i < last; ++i) {
                velocity[i] = velocity[i] * momentum - g[i] * learning_rate;
                p[i] += nesterov ? velocity[i] * momentum - g[i] * learning_rate : velocity[i];
            }
        });
    }

private:
    double momentum_;
    bool nesterov_;
};

}  // namespace optim
}  // namespace bcnn

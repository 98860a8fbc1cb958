#pragma once
// Adam with Keras' defaults (lr 1e-3, beta_1 0.9, beta_2 0.999, epsilon 1e-7)
// and Keras' update, per element, at step t = iterations + 1:
//   m += (g - m) * (1 - beta_1)            (= beta_1 m + (1 - beta_1) g)
//   v += (g^2 - v) * (1 - beta_2)          (= beta_2 v + (1 - beta_2) g^2)
//   alpha = lr * sqrt(1 - beta_2^t) / (1 - beta_1^t)     (in double)
//   p -= m * alpha / (sqrt(v) + epsilon)
// epsilon is Keras' "epsilon hat": it is added after the bias correction.
// Slots: "m", "v". Parameters on cuda are updated there by cuda::adam_update,
// the same arithmetic (backend/cuda/optimizer_updates.hpp), which rounds
// every operation; on the CPU the moment updates are fused multiply-adds
// where the target has FMA (simd::fma: m = fma(g - m, 1 - beta_1, m),
// v = fma(fma(g, g, -v), 1 - beta_2, v)), as GCC contracted the scalar loop.
// On the CPU the update runs in simd::Vec lanes (adam_update_lanes): the
// scalar loop took 3.7 ms of a 157 ms custom-CNN step (2.3 M parameters),
// as GCC keeps std::sqrt scalar where it may set errno.

#include <cmath>

#include "bcnn/backend/cuda/optimizer_updates.hpp"
#include "bcnn/kernels/cpu/simd.hpp"
#include "bcnn/optim/optimizer.hpp"

namespace bcnn {
namespace optim {
namespace detail {

// Adam's moment and parameter updates for elements [first, last) of p, g,
// m and v, simd::width<T> at a time (the last group partial): every element
// goes through the same vector operations, so the result does not depend on
// where a range starts or ends.
template <typename T>
void adam_update_lanes(T* p, const T* g, T* m, T* v, Index first, Index last, T alpha, T one_minus_beta_1,
                       T one_minus_beta_2, T epsilon) {
    namespace simd = cpu::simd;
    constexpr Index width = simd::width<T>;
    const simd::Vec<T> a = simd::broadcast(alpha), c1 = simd::broadcast(one_minus_beta_1),
                       c2 = simd::broadcast(one_minus_beta_2), eps = simd::broadcast(epsilon);
    // `lanes` is the constant width in the main loop, so its loads and stores are whole vectors.
    const auto group = [&](Index i, int lanes) {
        const simd::Vec<T> gi = simd::load_part(g + i, lanes), mi = simd::load_part(m + i, lanes),
                           vi = simd::load_part(v + i, lanes), pi = simd::load_part(p + i, lanes);
        const simd::Vec<T> m_new = simd::fma<T>(gi - mi, c1, mi);
        const simd::Vec<T> v_new = simd::fma<T>(simd::fma<T>(gi, gi, -vi), c2, vi);
        simd::store_part(m + i, m_new, lanes);
        simd::store_part(v + i, v_new, lanes);
        simd::store_part(p + i, pi - m_new * a / (simd::sqrt<T>(v_new) + eps), lanes);
    };
    Index i = first;
    for (; i + width <= last; i += width) group(i, static_cast<int>(width));
    if (i < last) group(i, static_cast<int>(last - i));
}

}  // namespace detail

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
            detail::adam_update_lanes(p, g, m, v, first, last, alpha, one_minus_beta_1, one_minus_beta_2, epsilon);
        });
    }

private:
    double beta_1_, beta_2_, epsilon_;
};

}  // namespace optim
}  // namespace bcnn

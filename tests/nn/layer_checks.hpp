#pragma once
// Checks shared by the layer tests: parameter lookup by name, Keras'
// glorot-uniform range, buffer reuse across steps and frozen layers.

#include <algorithm>
#include <bcnn/nn/module.hpp>
#include <catch2/catch.hpp>
#include <cmath>
#include <string>
#include <vector>

#include "support/gradcheck.hpp"
#include "support/random.hpp"

namespace bcnn {
namespace testing {

// The parameter (or buffer) called `name` in `module` ("kernel", "conv2d/bias").
template <typename T>
nn::Parameter<T>& parameter(nn::Module<T>& module, const std::string& name) {
    for (const auto& p : module.named_parameters())
        if (p.name == name) return *p.parameter;
    FAIL("no parameter " << name);
    throw;  // unreachable: FAIL throws
}

template <typename T>
std::vector<std::string> parameter_names(nn::Module<T>& module) {
    std::vector<std::string> names;
    for (const auto& p : module.named_parameters()) names.push_back(p.name);
    return names;
}

template <typename T>
double max_abs(const Tensor<T>& t) {
    double m = 0;
    for (T v : t.to_vector()) m = std::max(m, std::abs(static_cast<double>(v)));
    return m;
}

// Values drawn from U(-limit, limit) with fans (fan_in, fan_out): inside the
// range and, with enough draws, close to its edge.
template <typename T>
void check_glorot_uniform(const Tensor<T>& kernel, Index fan_in, Index fan_out) {
    const double limit = std::sqrt(6.0 / static_cast<double>(fan_in + fan_out));
    INFO("kernel " << kernel.shape() << ", glorot limit " << limit);
    REQUIRE(kernel.numel() >= 100);  // the largest of 100 draws exceeds 0.9 * limit but with chance 0.9^100
    CHECK(max_abs(kernel) <= limit);
    CHECK(max_abs(kernel) > 0.9 * limit);
}

// Sets every trainable parameter of `module` to random values (seeded).
inline void randomize_parameters(nn::Module<double>& module, std::uint64_t seed, double low = -1, double high = 1) {
    for (const auto& p : module.named_parameters())
        if (!p.parameter->is_buffer)
            p.parameter->value.copy_from(random_tensor<double>(p.parameter->value.shape(), seed++, low, high));
}

// Two steps on the same batch shape write into the same output and input
// gradient buffers: nothing is allocated per step.
template <typename T>
void check_buffers_reused(nn::Module<T>& module, const Tensor<T>& x, bool training) {
    Rng rng(1);
    const nn::Context context{training, &rng};
    const Tensor<T> y1 = module.forward(x, context);
    const Tensor<T> dx1 = module.backward(Tensor<T>(y1.shape(), T(1)), true);
    const Tensor<T> y2 = module.forward(x, context);
    const Tensor<T> dx2 = module.backward(Tensor<T>(y2.shape(), T(1)), true);
    CHECK(y1.data() == y2.data());
    CHECK(dx1.data() == dx2.data());
    CHECK_FALSE(module.backward(Tensor<T>(y2.shape(), T(1)), false).defined());
}

// A frozen layer leaves its gradients untouched and still passes the same
// input gradient back as when it was trainable.
inline void check_frozen(nn::Module<double>& module, const Tensor<double>& x) {
    const nn::Context context{true, nullptr};
    const Tensor<double> y = module.forward(x, context);
    const Tensor<double> dy = random_tensor<double>(y.shape(), 77);
    const Tensor<double> trainable_dx = module.backward(dy, true).clone();
    module.set_trainable(false);
    CHECK(module.count_trainable_params() == 0);
    for (const auto& p : module.named_parameters())
        if (!p.parameter->is_buffer) p.parameter->grad.fill(123.0);
    module.forward(x, context);
    const Tensor<double> frozen_dx = module.backward(dy, true);
    CHECK(max_abs_diff(frozen_dx, trainable_dx) == 0.0);
    for (const auto& p : module.named_parameters())
        if (!p.parameter->is_buffer)
            for (double g : p.parameter->grad.to_vector()) CHECK(g == 123.0);
    module.set_trainable(true);
}

}  // namespace testing
}  // namespace bcnn

#pragma once
// Random test tensors, drawn from bcnn's own seeded Rng.

#include <bcnn/core/rng.hpp>

namespace bcnn {
namespace testing {

// Uniform values in [low, high); the same seed gives the same tensor.
template <typename T = double>
Tensor<T> random_tensor(const Shape& shape, std::uint64_t seed, T low = T(-1), T high = T(1)) {
    Tensor<T> t = Tensor<T>::uninitialized(shape);
    Rng rng(seed);
    rng.uniform(t, low, high);
    return t;
}

// Uniform values in [low, high) whose magnitude is at least `gap`, so that
// finite differences of step < gap never cross a kink at zero (ReLU).
template <typename T = double>
Tensor<T> random_tensor_away_from_zero(const Shape& shape, std::uint64_t seed, T gap = T(1e-3)) {
    Tensor<T> t = random_tensor<T>(shape, seed);
    T* data = t.data();
    for (Index i = 0; i < t.numel(); ++i)
        if (data[i] > -gap && data[i] < gap) data[i] = data[i] < 0 ? data[i] - 2 * gap : data[i] + 2 * gap;
    return t;
}

}  // namespace testing
}  // namespace bcnn

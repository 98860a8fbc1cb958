#pragma once
// Random test tensors, drawn from bcnn's own seeded Rng.

#include <numeric>
#include <utility>
#include <vector>

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

// Distinct values: a random permutation of 0..numel-1, scaled into [-1, 1).
// Neighbouring values differ by 2/numel, far more than a finite-difference
// step, so no pooling window's maximum changes place under the perturbation.
inline Tensor<double> distinct_tensor(const Shape& shape, std::uint64_t seed) {
    std::vector<double> values(static_cast<std::size_t>(shape.numel()));
    std::iota(values.begin(), values.end(), 0.0);
    Rng rng(seed);
    for (std::size_t i = values.size(); i > 1; --i) std::swap(values[i - 1], values[rng.next_below(i)]);
    for (double& v : values) v = 2 * v / static_cast<double>(values.size()) - 1;
    return Tensor<double>::from_vector(shape, values);
}

}  // namespace testing
}  // namespace bcnn

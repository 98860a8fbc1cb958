#pragma once
// Keras' default initialisers.

#include <cmath>

#include "bcnn/core/rng.hpp"

namespace bcnn {
namespace nn {

// glorot_uniform: U(-limit, limit), limit = sqrt(6 / (fan_in + fan_out)).
// For a kernel (kh, kw, in, out): fan_in = kh*kw*in, fan_out = kh*kw*out;
// for a dense kernel (in, out): fan_in = in, fan_out = out.
template <typename T>
void glorot_uniform(const Tensor<T>& kernel, Index fan_in, Index fan_out, Rng& rng) {
    BCNN_CHECK(fan_in + fan_out > 0, "glorot_uniform: fan_in + fan_out must be positive for " << kernel.shape());
    const T limit = static_cast<T>(std::sqrt(6.0 / static_cast<double>(fan_in + fan_out)));
    rng.uniform(kernel, -limit, limit);
}

// The fans Keras computes for a kernel shape: the last two axes are (in, out),
// the ones before them the receptive field.
inline std::pair<Index, Index> kernel_fans(const Shape& shape) {
    BCNN_CHECK(shape.rank() >= 2, "kernel_fans: kernel shape " << shape << " needs at least 2 axes");
    Index receptive = 1;
    for (int axis = 0; axis + 2 < shape.rank(); ++axis) receptive *= shape[axis];
    return {receptive * shape[shape.rank() - 2], receptive * shape[shape.rank() - 1]};
}

// glorot_uniform with Keras' fans for `kernel`'s shape.
template <typename T>
void glorot_uniform(const Tensor<T>& kernel, Rng& rng) {
    const auto [fan_in, fan_out] = kernel_fans(kernel.shape());
    glorot_uniform(kernel, fan_in, fan_out, rng);
}

}  // namespace nn
}  // namespace bcnn

#pragma once
// Inverted dropout (Keras Dropout in training): each element is kept with
// probability 1 - rate and scaled by 1 / (1 - rate), so inference is the identity.
//   x (any shape) -> mask (same shape, 0 or 1/(1-rate)), y = x * mask
// Element i is kept when rng.uniform_at(first + i) >= rate, where first is the
// start of the numel() stream positions the call reserves from rng: the mask
// depends only on (seed, counter), never on the thread count. rate 0 keeps
// every element (mask 1, y = x) and still reserves the positions.
// Tensors may be channel-slice views (i is the row-major element index);
// y may alias x, dx may alias dy.

#include "bcnn/core/rng.hpp"
#include "bcnn/kernels/cpu/elementwise.hpp"

namespace bcnn {
namespace cpu {

// x (any shape), rate in [0, 1) -> mask, y (same shape)
template <typename T>
void dropout_forward(const Tensor<T>& x, typename bcnn::detail::NonDeduced<T>::type rate, Rng& rng, Tensor<T>& mask,
                     Tensor<T>& y) {
    BCNN_CHECK(rate >= T(0) && rate < T(1), "dropout_forward: rate " << rate << " is outside [0, 1)");
    detail::require_defined_on_cpu(x, "dropout_forward", "input");
    detail::require_shape(mask, x.shape(), "dropout_forward", "mask");
    detail::require_shape(y, x.shape(), "dropout_forward", "output");
    const std::uint64_t first = rng.advance(static_cast<std::uint64_t>(x.numel()));
    const T scale = T(1) / (T(1) - rate);
    detail::for_each_row(
        "dropout_forward", mask,
        [&, threshold = T(rate), kept = scale](Index row_first, T* keep, Index cols) {
            // threshold and kept are the lambda's own copies: through references, which keep
            // might alias, GCC reloaded them for every element and branched on the random
            // comparison (half the forward's time, 331,776 values, 1 thread).
            rng.uniform_run(first + static_cast<std::uint64_t>(row_first), cols, keep);
            for (Index c = 0; c < cols; ++c) keep[c] = keep[c] >= threshold ? kept : T(0);
        });
    detail::for_each_row(
        "dropout_forward", y,
        [](Index, T* out, const T* in, const T* keep, Index cols) {
            for (Index c = 0; c < cols; ++c) out[c] = in[c] * keep[c];
        },
        x, mask);
}

// dy, mask (same shape) -> dx = dy * mask
template <typename T>
void dropout_backward(const Tensor<T>& dy, const Tensor<T>& mask, Tensor<T>& dx) {
    detail::require_defined_on_cpu(dy, "dropout_backward", "output gradient");
    detail::require_shape(mask, dy.shape(), "dropout_backward", "mask");
    detail::require_shape(dx, dy.shape(), "dropout_backward", "input gradient");
    detail::for_each_row(
        "dropout_backward", dx,
        [](Index, T* out, const T* grad, const T* keep, Index cols) {
            for (Index c = 0; c < cols; ++c) out[c] = grad[c] * keep[c];
        },
        dy, mask);
}

}  // namespace cpu
}  // namespace bcnn

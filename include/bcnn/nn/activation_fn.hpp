#pragma once
// The activation a layer applies to its own output (Keras' `activation=`
// argument): linear or relu. Softmax is not fused into layers: a model ends in
// logits, the loss applies softmax (numerically stable), and predict()
// returns probabilities. The GEMM-based kernels apply it themselves
// (kernels/cpu/bias_activation.hpp); the others call apply_activation.
// Both helpers run on the tensors' device (backend/relu.hpp).

#include <string>

#include "bcnn/backend/relu.hpp"
#include "bcnn/kernels/cpu/bias_activation.hpp"

namespace bcnn {
namespace nn {

using cpu::ActivationFn;

inline const char* activation_name(ActivationFn fn) { return fn == ActivationFn::relu ? "relu" : "linear"; }

// y = fn(y) in place.
template <typename T>
void apply_activation(ActivationFn fn, Tensor<T>& y) {
    if (fn == ActivationFn::relu) backend::relu_forward(y, y);
}

// The gradient before the activation, given its output y and the gradient dy
// after it: written into `pre` (which may be dy itself) and returned.
template <typename T>
const Tensor<T>& activation_backward(ActivationFn fn, const Tensor<T>& y, const Tensor<T>& dy, Tensor<T>& pre) {
    if (fn == ActivationFn::linear) return dy;
    backend::relu_backward(y, dy, pre);
    return pre;
}

}  // namespace nn
}  // namespace bcnn

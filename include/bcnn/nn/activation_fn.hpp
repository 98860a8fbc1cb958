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

// activation_backward for a layer with a bias added before its activation
// (the layer's gradient wanted in d_bias, or nullptr). After a ReLU the bias
// gradient, the sum of the returned gradient over its rows, comes out of the
// same pass (backend::relu_backward_bias_gradient) and d_bias is set to
// nullptr, so the layer's kernel does not sum it again; after a linear
// activation d_bias is left for the kernel.
template <typename T>
const Tensor<T>& activation_backward(ActivationFn fn, const Tensor<T>& y, const Tensor<T>& dy, Tensor<T>& pre,
                                     OptionalOutput<T>& d_bias) {
    if (fn == ActivationFn::linear || !d_bias) return activation_backward(fn, y, dy, pre);
    backend::relu_backward_bias_gradient(y, dy, pre, *d_bias);
    d_bias = nullptr;
    return pre;
}

}  // namespace nn
}  // namespace bcnn

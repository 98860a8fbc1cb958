#pragma once
// SeparableConv2D's dispatch point: CPU tensors run cpu::separable_conv2d_*;
// device tensors run the same composition of cuda:: ops (depthwise without
// bias, then a 1x1 convolution with bias, then the activation).
//   x (N, H, W, C), depthwise (KH, KW, C, M)  ->  depthwise_out (N, OH, OW, C*M)
//   depthwise_out, pointwise (1, 1, C*M, K), bias (K) or nullptr  ->  y (N, OH, OW, K)
//   backward: dy (N, OH, OW, K) -> dx, d_depthwise, d_pointwise, d_bias (each nullptr when not wanted),
//             with d_depthwise_out (N, OH, OW, C*M) as scratch
//   relu backward: the same through a following ReLU, on the CPU where
//             separable_conv2d_relu_backward_applies (cpu:: has the cases)
// All tensors of a call must be on one device; each kernel checks the shapes.

#include "bcnn/backend/conv2d.hpp"
#include "bcnn/backend/depthwise_conv2d.hpp"
#include "bcnn/kernels/cpu/separable_conv2d.hpp"

namespace bcnn {
namespace backend {

template <typename T>
void separable_conv2d_forward(const Tensor<T>& x, const Tensor<T>& depthwise_weights,
                              const Tensor<T>& pointwise_weights, OptionalInput<T> bias, const ConvParams& params,
                              Tensor<T>& depthwise_out, Tensor<T>& y,
                              cpu::ActivationFn activation = cpu::ActivationFn::linear) {
    const char* op = "separable_conv2d_forward";
    const Device device = detail::common_device<T>(op, {{"input", x},
                                                        {"depthwise weights", depthwise_weights},
                                                        {"pointwise weights", pointwise_weights},
                                                        {"depthwise output", depthwise_out},
                                                        {"output", y}});
    if (device == Device::cpu) {
        cpu::separable_conv2d_forward(x, depthwise_weights, pointwise_weights, bias, params, depthwise_out, y,
                                      activation);
        return;
    }
    // The CPU kernel's shape checks, then the composition it runs.
    cpu::separable_conv2d_output_shape(x.shape(), depthwise_weights.shape(), pointwise_weights.shape(), params);
    backend::depthwise_conv2d_forward(x, depthwise_weights, nullptr, params, depthwise_out);
    backend::conv2d_forward(depthwise_out, pointwise_weights, bias, cpu::detail::kPointwiseParams, y, activation);
}

template <typename T>
void separable_conv2d_backward(const Tensor<T>& x, const Tensor<T>& depthwise_weights,
                               const Tensor<T>& pointwise_weights, const Tensor<T>& depthwise_out, const Tensor<T>& dy,
                               const ConvParams& params, Tensor<T>& d_depthwise_out, OptionalOutput<T> dx,
                               OptionalOutput<T> d_depthwise_weights, OptionalOutput<T> d_pointwise_weights,
                               OptionalOutput<T> d_bias) {
    const char* op = "separable_conv2d_backward";
    const Device device = detail::common_device<T>(op, {{"input", x},
                                                        {"depthwise weights", depthwise_weights},
                                                        {"pointwise weights", pointwise_weights},
                                                        {"depthwise output", depthwise_out},
                                                        {"output gradient", dy},
                                                        {"depthwise output gradient", d_depthwise_out}});
    if (device == Device::cpu) {
        cpu::separable_conv2d_backward(x, depthwise_weights, pointwise_weights, depthwise_out, dy, params,
                                       d_depthwise_out, dx, d_depthwise_weights, d_pointwise_weights, d_bias);
        return;
    }
    const bool depthwise_gradient_needed = dx || d_depthwise_weights;
    backend::conv2d_backward(depthwise_out, pointwise_weights, dy, cpu::detail::kPointwiseParams,
                             depthwise_gradient_needed ? &d_depthwise_out : nullptr, d_pointwise_weights, d_bias);
    if (depthwise_gradient_needed)
        backend::depthwise_conv2d_backward(x, depthwise_weights, d_depthwise_out, params, dx, d_depthwise_weights,
                                           nullptr);
}

// Whether separable_conv2d_relu_backward takes these tensors: CPU ones in the
// banded backward's cases. Elsewhere a layer runs the ReLU's backward, then
// separable_conv2d_backward.
template <typename T>
bool separable_conv2d_relu_backward_applies(const Tensor<T>& x, const Tensor<T>& depthwise_weights,
                                            const ConvParams& params) {
    return x.device() == Device::cpu &&
           cpu::separable_conv2d_relu_backward_applies(x.shape(), depthwise_weights.shape(), params);
}

template <typename T>
void separable_conv2d_relu_backward(const Tensor<T>& x, const Tensor<T>& depthwise_weights,
                                    const Tensor<T>& pointwise_weights, const Tensor<T>& depthwise_out,
                                    const Tensor<T>& relu_output, const Tensor<T>& dy, const ConvParams& params,
                                    OptionalOutput<T> dx, OptionalOutput<T> d_depthwise_weights,
                                    OptionalOutput<T> d_pointwise_weights, OptionalOutput<T> d_bias) {
    const char* op = "separable_conv2d_relu_backward";
    const Device device = detail::common_device<T>(op, {{"input", x},
                                                        {"depthwise weights", depthwise_weights},
                                                        {"pointwise weights", pointwise_weights},
                                                        {"depthwise output", depthwise_out},
                                                        {"output", relu_output},
                                                        {"output gradient", dy}});
    BCNN_CHECK(device == Device::cpu, op << ": runs on the CPU only; tensors are on " << device
                                         << " (run relu_backward, then separable_conv2d_backward)");
    cpu::separable_conv2d_relu_backward(x, depthwise_weights, pointwise_weights, depthwise_out, relu_output, dy,
                                        params, dx, d_depthwise_weights, d_pointwise_weights, d_bias);
}

}  // namespace backend
}  // namespace bcnn

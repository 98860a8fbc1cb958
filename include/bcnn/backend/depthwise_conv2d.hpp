#pragma once
// DepthwiseConv2D's dispatch point: CPU tensors run cpu::depthwise_conv2d_*,
// device tensors cuda::depthwise_conv2d_*.
//   x (N, H, W, C), weights (KH, KW, C, M), bias (C*M) or nullptr  ->  y (N, OH, OW, C*M)
//   x, weights, dy (N, OH, OW, C*M)  ->  dx, d_weights, d_bias, each nullptr when not wanted
// All tensors of a call must be on one device; each kernel checks the shapes.

#include "bcnn/backend/cuda/depthwise_conv2d.hpp"
#include "bcnn/backend/dispatch.hpp"
#include "bcnn/kernels/cpu/depthwise_conv2d.hpp"

namespace bcnn {
namespace backend {

template <typename T>
void depthwise_conv2d_forward(const Tensor<T>& x, const Tensor<T>& weights, OptionalInput<T> bias,
                              const ConvParams& params, Tensor<T>& y) {
    const char* op = "depthwise_conv2d_forward";
    const Device device = detail::common_device<T>(op, {{"input", x}, {"depthwise weights", weights}, {"output", y}});
    if (bias) detail::common_device<T>(op, {{"input", x}, {"bias", *bias}});
    if (device == Device::cpu) {
        cpu::depthwise_conv2d_forward(x, weights, bias, params, y);
        return;
    }
#ifdef BCNN_WITH_CUDA
    cuda::depthwise_conv2d_forward(x, weights, bias, params, y);
#else
    detail::throw_no_cuda_backend(op);
#endif
}

template <typename T>
void depthwise_conv2d_backward(const Tensor<T>& x, const Tensor<T>& weights, const Tensor<T>& dy,
                               const ConvParams& params, OptionalOutput<T> dx, OptionalOutput<T> d_weights,
                               OptionalOutput<T> d_bias) {
    const char* op = "depthwise_conv2d_backward";
    const Device device =
        detail::common_device<T>(op, {{"input", x}, {"depthwise weights", weights}, {"output gradient", dy}});
    if (dx) detail::common_device<T>(op, {{"input", x}, {"input gradient", *dx}});
    if (d_weights) detail::common_device<T>(op, {{"input", x}, {"depthwise weights gradient", *d_weights}});
    if (d_bias) detail::common_device<T>(op, {{"input", x}, {"bias gradient", *d_bias}});
    if (device == Device::cpu) {
        cpu::depthwise_conv2d_backward(x, weights, dy, params, dx, d_weights, d_bias);
        return;
    }
#ifdef BCNN_WITH_CUDA
    cuda::depthwise_conv2d_backward(x, weights, dy, params, dx, d_weights, d_bias);
#else
    detail::throw_no_cuda_backend(op);
#endif
}

}  // namespace backend
}  // namespace bcnn

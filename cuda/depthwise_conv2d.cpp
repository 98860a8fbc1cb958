// cuda::depthwise_conv2d_forward / backward with cuDNN (declared in
// include/bcnn/backend/cuda/depthwise_conv2d.hpp): the CPU kernel's argument
// checks, then a cuDNN convolution with groups = C and K = C*M filters of
// one input channel (convolution.hpp). Keras' (KH, KW, C, M) weights are the
// HWIO tensor (KH, KW, 1, C*M) as they lie in memory (output channel
// c*M + m), transposed to cuDNN's KRSC (C*M, KH, KW, 1) on the device; cuDNN
// gives filter k to group k / M = c, as the CPU kernel.

#include "bcnn/backend/cuda/depthwise_conv2d.hpp"

#include "bcnn/kernels/cpu/depthwise_conv2d.hpp"
#include "convolution.hpp"

namespace bcnn {
namespace cuda {

namespace {

// The CPU kernel's checks for device tensors, and the extents as a grouped
// convolution's: C input channels, C*M filters.
template <typename T>
cpu::detail::DepthwiseDims checked_dims(const Tensor<T>& x, const Tensor<T>& weights, const ConvParams& params,
                                        const char* op) {
    detail::require_device(x, op, "input");
    detail::require_device(weights, op, "depthwise weights");
    detail::require_contiguous(weights, op, "depthwise weights");
    return cpu::detail::depthwise_dims(x.shape(), weights.shape(), params, op);
}

cpu::detail::Conv2DDims as_grouped(const cpu::detail::DepthwiseDims& d, const ConvParams& params) {
    cpu::detail::Conv2DDims grouped;
    grouped.batch = d.batch;
    grouped.channels = d.channels;
    grouped.filters = d.channels_out();
    grouped.window = conv_window(d.kernel_h, d.kernel_w, params);
    grouped.geometry = d.geometry;
    return grouped;
}

// x (N, H, W, C), weights (KH, KW, C, M), bias (C*M) or nullptr  ->  y (N, OH, OW, C*M)
template <typename T>
void depthwise_forward_on_device(const Tensor<T>& x, const Tensor<T>& weights, const Tensor<T>* bias,
                                 const ConvParams& params, Tensor<T>& y) {
    const char* op = "cuda::depthwise_conv2d_forward";
    const cpu::detail::DepthwiseDims d = checked_dims(x, weights, params, op);
    if (bias) {
        detail::require_shape(*bias, Shape{d.channels_out()}, op, "bias");
        detail::require_contiguous(*bias, op, "bias");
    }
    detail::require_shape(y, d.output_shape(), op, "output");
    if (y.numel() == 0) return;
    detail::run_convolution(as_grouped(d, params), d.channels, x, weights, params, op,
                            [&](detail::Convolution<T>& conv) { detail::convolution_forward(conv, x, weights, bias, y); });
}

// x, weights, dy (N, OH, OW, C*M)  ->  dx, d_weights, d_bias, each optional
template <typename T>
void depthwise_backward_on_device(const Tensor<T>& x, const Tensor<T>& weights, const Tensor<T>& dy,
                                  const ConvParams& params, Tensor<T>* dx, Tensor<T>* d_weights, Tensor<T>* d_bias) {
    const char* op = "cuda::depthwise_conv2d_backward";
    const cpu::detail::DepthwiseDims d = checked_dims(x, weights, params, op);
    detail::require_shape(dy, d.output_shape(), op, "output gradient");
    if (dx) detail::require_shape(*dx, x.shape(), op, "input gradient");
    if (d_weights) {
        detail::require_shape(*d_weights, weights.shape(), op, "depthwise weights gradient");
        detail::require_contiguous(*d_weights, op, "depthwise weights gradient");
    }
    if (d_bias) {
        detail::require_shape(*d_bias, Shape{d.channels_out()}, op, "bias gradient");
        detail::require_contiguous(*d_bias, op, "bias gradient");
    }
    if (dy.numel() == 0) {  // an empty batch (or no channels): dx is empty, the parameter gradients are zero
        detail::zero_parameter_gradients(d_weights, d_bias, op);
        return;
    }
    detail::run_convolution(as_grouped(d, params), d.channels, x, weights, params, op,
                            [&](detail::Convolution<T>& conv) {
                                detail::convolution_backward(conv, x, weights, dy, dx, d_weights, d_bias);
                            });
}

}  // namespace

void depthwise_conv2d_forward(const Tensor<float>& x, const Tensor<float>& weights, const Tensor<float>* bias,
                              const ConvParams& params, Tensor<float>& y) {
    depthwise_forward_on_device(x, weights, bias, params, y);
}
void depthwise_conv2d_forward(const Tensor<double>& x, const Tensor<double>& weights, const Tensor<double>* bias,
                              const ConvParams& params, Tensor<double>& y) {
    depthwise_forward_on_device(x, weights, bias, params, y);
}
void depthwise_conv2d_backward(const Tensor<float>& x, const Tensor<float>& weights, const Tensor<float>& dy,
                               const ConvParams& params, Tensor<float>* dx, Tensor<float>* d_weights,
                               Tensor<float>* d_bias) {
    depthwise_backward_on_device(x, weights, dy, params, dx, d_weights, d_bias);
}
void depthwise_conv2d_backward(const Tensor<double>& x, const Tensor<double>& weights, const Tensor<double>& dy,
                               const ConvParams& params, Tensor<double>* dx, Tensor<double>* d_weights,
                               Tensor<double>* d_bias) {
    depthwise_backward_on_device(x, weights, dy, params, dx, d_weights, d_bias);
}

}  // namespace cuda
}  // namespace bcnn

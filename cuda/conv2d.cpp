// cuda::conv2d_forward / conv2d_backward with cuDNN (declared in
// include/bcnn/backend/cuda/conv2d.hpp), the CPU kernel's semantics: the
// argument checks of cpu::conv2d_*, then one ungrouped cuDNN convolution
// (convolution.hpp: layouts, Keras 'same' padding, views, bias).

#include "bcnn/backend/cuda/conv2d.hpp"

#include <atomic>

#include "convolution.hpp"

namespace bcnn {
namespace cuda {

namespace {

std::atomic<bool> tf32_allowed{false};

// The CPU kernel's checks of x and the weights, for device tensors
// (cpu::detail::checked_conv2d_dims itself requires CPU tensors).
template <typename T>
cpu::detail::Conv2DDims checked_dims(const Tensor<T>& x, const Tensor<T>& weights, const ConvParams& params,
                                     const char* op) {
    detail::require_device(x, op, "input");
    detail::require_device(weights, op, "weights");
    detail::require_contiguous(weights, op, "weights");
    return cpu::detail::conv2d_dims(x.shape(), weights.shape(), params, op);
}

// x (N, H, W, C), weights (KH, KW, C, K), bias (K) or nullptr  ->  y (N, OH, OW, K)
template <typename T>
void conv2d_forward_on_device(const Tensor<T>& x, const Tensor<T>& weights, const Tensor<T>* bias,
                              const ConvParams& params, Tensor<T>& y) {
    const char* op = "cuda::conv2d_forward";
    const cpu::detail::Conv2DDims d = checked_dims(x, weights, params, op);
    if (bias) {
        detail::require_shape(*bias, Shape{d.filters}, op, "bias");
        detail::require_contiguous(*bias, op, "bias");
    }
    detail::require_shape(y, d.output_shape(), op, "output");
    if (d.pixels() == 0) return;
    detail::run_convolution(d, 1, x, weights, params, op, [&](detail::Convolution<T>& conv) {
        detail::convolution_forward(conv, x, weights, bias, y);
    });
}

// x (N, H, W, C), weights (KH, KW, C, K), dy (N, OH, OW, K)
//   ->  dx (N, H, W, C), d_weights (KH, KW, C, K), d_bias (K), each optional
template <typename T>
void conv2d_backward_on_device(const Tensor<T>& x, const Tensor<T>& weights, const Tensor<T>& dy,
                               const ConvParams& params, Tensor<T>* dx, Tensor<T>* d_weights, Tensor<T>* d_bias) {
    const char* op = "cuda::conv2d_backward";
    const cpu::detail::Conv2DDims d = checked_dims(x, weights, params, op);
    detail::require_shape(dy, d.output_shape(), op, "output gradient");
    if (dx) detail::require_shape(*dx, x.shape(), op, "input gradient");
    if (d_weights) {
        detail::require_shape(*d_weights, weights.shape(), op, "weights gradient");
        detail::require_contiguous(*d_weights, op, "weights gradient");
    }
    if (d_bias) {
        detail::require_shape(*d_bias, Shape{d.filters}, op, "bias gradient");
        detail::require_contiguous(*d_bias, op, "bias gradient");
    }
    if (d.pixels() == 0) {  // an empty batch: dx is empty, the parameter gradients are zero
        detail::zero_parameter_gradients(d_weights, d_bias, op);
        return;
    }
    detail::run_convolution(d, 1, x, weights, params, op, [&](detail::Convolution<T>& conv) {
        detail::convolution_backward(conv, x, weights, dy, dx, d_weights, d_bias);
    });
}

}  // namespace

void conv2d_forward(const Tensor<float>& x, const Tensor<float>& weights, const Tensor<float>* bias,
                    const ConvParams& params, Tensor<float>& y) {
    conv2d_forward_on_device(x, weights, bias, params, y);
}
void conv2d_forward(const Tensor<double>& x, const Tensor<double>& weights, const Tensor<double>* bias,
                    const ConvParams& params, Tensor<double>& y) {
    conv2d_forward_on_device(x, weights, bias, params, y);
}
void conv2d_backward(const Tensor<float>& x, const Tensor<float>& weights, const Tensor<float>& dy,
                     const ConvParams& params, Tensor<float>* dx, Tensor<float>* d_weights, Tensor<float>* d_bias) {
    conv2d_backward_on_device(x, weights, dy, params, dx, d_weights, d_bias);
}
void conv2d_backward(const Tensor<double>& x, const Tensor<double>& weights, const Tensor<double>& dy,
                     const ConvParams& params, Tensor<double>* dx, Tensor<double>* d_weights, Tensor<double>* d_bias) {
    conv2d_backward_on_device(x, weights, dy, params, dx, d_weights, d_bias);
}

void set_conv2d_tf32(bool allowed) { tf32_allowed.store(allowed); }
bool conv2d_tf32() { return tf32_allowed.load(); }

}  // namespace cuda
}  // namespace bcnn

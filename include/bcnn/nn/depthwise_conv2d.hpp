#pragma once
// DepthwiseConv2D (Keras DepthwiseConv2D): each input channel convolved with
// its own depth_multiplier filters.
//   x (N, H, W, C) -> y (N, OH, OW, C*M) = fn(depthwise(x, depthwise_kernel) + bias),
//   output channel c*M + m from input channel c and filter m.
// Parameters: depthwise_kernel (KH, KW, C, M), bias (C*M) when use_bias.
// Initial values: depthwise_kernel glorot_uniform with Keras' fans for its
// shape (fan_in = KH*KW*C, fan_out = KH*KW*M), bias 0.

#include "bcnn/backend/depthwise_conv2d.hpp"
#include "bcnn/nn/kernel_layer.hpp"
#include "bcnn/nn/spatial.hpp"

namespace bcnn {
namespace nn {

template <typename T>
class DepthwiseConv2D : public KernelLayer<T> {
public:
    explicit DepthwiseConv2D(Size2D kernel_size, Size2D strides = 1, Padding padding = Padding::valid,
                             Index depth_multiplier = 1, ActivationFn activation = ActivationFn::linear,
                             bool use_bias = true, std::string name = "")
        : KernelLayer<T>(activation, use_bias, std::move(name)),
          kernel_size_(kernel_size),
          params_{strides.h, strides.w, padding},
          depth_multiplier_(depth_multiplier) {
        BCNN_CHECK(kernel_size.h >= 1 && kernel_size.w >= 1,
                   "DepthwiseConv2D: kernel_size must be positive, got " << kernel_size);
        BCNN_CHECK(strides.h >= 1 && strides.w >= 1, "DepthwiseConv2D: strides must be positive, got " << strides);
        BCNN_CHECK(depth_multiplier >= 1,
                   "DepthwiseConv2D: depth_multiplier must be positive, got " << depth_multiplier);
    }

    const char* type() const override { return "DepthwiseConv2D"; }
    const char* default_name() const override { return "depthwise_conv2d"; }

protected:
    Shape do_build(const Shape& input_shape) override {
        const WindowGeometry g =
            layer_window_geometry(*this, input_shape, conv_window(kernel_size_.h, kernel_size_.w, params_));
        const Index channels = input_shape[2];
        this->add_kernel("depthwise_kernel", Shape{kernel_size_.h, kernel_size_.w, channels, depth_multiplier_});
        this->add_bias(channels * depth_multiplier_);
        return Shape{g.out_h, g.out_w, channels * depth_multiplier_};
    }

    void run_forward(const Tensor<T>& x, const Tensor<T>& kernel, OptionalInput<T> bias, ActivationFn activation,
                     Tensor<T>& y) override {
        backend::depthwise_conv2d_forward(x, kernel, bias, params_, y);
        apply_activation(activation, y);
    }

    void run_backward(const Tensor<T>& x, const Tensor<T>& kernel, const Tensor<T>& dy, OptionalOutput<T> dx,
                      OptionalOutput<T> d_kernel, OptionalOutput<T> d_bias) override {
        backend::depthwise_conv2d_backward(x, kernel, dy, params_, dx, d_kernel, d_bias);
    }

private:
    Size2D kernel_size_;
    ConvParams params_;
    Index depth_multiplier_;
};

}  // namespace nn
}  // namespace bcnn

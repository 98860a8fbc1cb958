#pragma once
// DepthwiseConv2D (Keras DepthwiseConv2D): each input channel convolved with
// its own depth_multiplier filters.
//   x (N, H, W, C) -> y (N, OH, OW, C*M) = fn(depthwise(x, depthwise_kernel) + bias),
//   output channel c*M + m from input channel c and filter m.
// Parameters: depthwise_kernel (KH, KW, C, M), bias (C*M) when use_bias.
// Initial values: depthwise_kernel glorot_uniform with Keras' fans for its
// shape (fan_in = KH*KW*C, fan_out = KH*KW*M), bias 0.

#include "bcnn/kernels/cpu/depthwise_conv2d.hpp"
#include "bcnn/nn/activation_fn.hpp"
#include "bcnn/nn/initializers.hpp"
#include "bcnn/nn/spatial.hpp"

namespace bcnn {
namespace nn {

template <typename T>
class DepthwiseConv2D : public Module<T> {
public:
    explicit DepthwiseConv2D(Size2D kernel_size, Size2D strides = 1, Padding padding = Padding::valid,
                             Index depth_multiplier = 1, ActivationFn activation = ActivationFn::linear,
                             bool use_bias = true, std::string name = "")
        : Module<T>(std::move(name)),
          kernel_size_(kernel_size),
          params_{strides.h, strides.w, padding},
          depth_multiplier_(depth_multiplier),
          activation_(activation),
          use_bias_(use_bias) {
        BCNN_CHECK(kernel_size.h >= 1 && kernel_size.w >= 1,
                   "DepthwiseConv2D: kernel_size must be positive, got " << kernel_size);
        BCNN_CHECK(strides.h >= 1 && strides.w >= 1, "DepthwiseConv2D: strides must be positive, got " << strides);
        BCNN_CHECK(depth_multiplier >= 1,
                   "DepthwiseConv2D: depth_multiplier must be positive, got " << depth_multiplier);
    }

    const char* type() const override { return "DepthwiseConv2D"; }
    const char* default_name() const override { return "depthwise_conv2d"; }

    void do_initialize(Rng& rng) override {
        glorot_uniform(kernel_->value, rng);
        if (bias_) bias_->value.fill(T(0));
    }

    Tensor<T> forward(const Tensor<T>& x, const Context&) override {
        this->check_input(x);
        input_ = x;
        Tensor<T>& y = this->reuse(output_, this->batch_shape(x.dim(0), this->output_shape()));
        cpu::depthwise_conv2d_forward(x, kernel_->value, bias_ ? &bias_->value : nullptr, params_, y);
        apply_activation(activation_, y);
        return y;
    }

    Tensor<T> backward(const Tensor<T>& dy, bool need_input_grad) override {
        Tensor<T>& pre = this->reuse(pre_activation_grad_, dy.shape());
        const Tensor<T>& d_linear = activation_backward(activation_, output_, dy, pre);
        Tensor<T> dx;
        if (need_input_grad) dx = this->reuse(input_grad_, input_.shape());
        const bool weights = this->trainable();
        cpu::depthwise_conv2d_backward(input_, kernel_->value, d_linear, params_, need_input_grad ? &dx : nullptr,
                                       weights ? &kernel_->grad : nullptr, weights && bias_ ? &bias_->grad : nullptr);
        return dx;
    }

protected:
    Shape do_build(const Shape& input_shape) override {
        const WindowGeometry g =
            layer_window_geometry(*this, input_shape, conv_window(kernel_size_.h, kernel_size_.w, params_));
        const Index channels = input_shape[2];
        kernel_ = &this->add_parameter("depthwise_kernel",
                                       Shape{kernel_size_.h, kernel_size_.w, channels, depth_multiplier_});
        if (use_bias_) bias_ = &this->add_parameter("bias", Shape{channels * depth_multiplier_});
        return Shape{g.out_h, g.out_w, channels * depth_multiplier_};
    }

private:
    Size2D kernel_size_;
    ConvParams params_;
    Index depth_multiplier_;
    ActivationFn activation_;
    bool use_bias_;
    Parameter<T>* kernel_ = nullptr;
    Parameter<T>* bias_ = nullptr;
    Tensor<T> input_, output_, pre_activation_grad_, input_grad_;
};

}  // namespace nn
}  // namespace bcnn

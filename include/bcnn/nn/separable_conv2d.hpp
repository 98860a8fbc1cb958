#pragma once
// SeparableConv2D (Keras SeparableConv2D, depth multiplier 1): a depthwise
// convolution (no bias; it carries the strides and padding) then a pointwise
// 1x1 convolution with bias, then the activation.
//   x (N, H, W, C) -> depthwise (N, OH, OW, C) -> y (N, OH, OW, filters)
// Parameters: depthwise_kernel (KH, KW, C, 1), pointwise_kernel (1, 1, C, filters),
// bias (filters) when use_bias; KH*KW*C + C*filters + filters of them.
// Initial values: both kernels glorot_uniform, each with Keras' fans for its
// own shape (depthwise: KH*KW*C and KH*KW; pointwise: C and filters), bias 0.

#include "bcnn/backend/separable_conv2d.hpp"
#include "bcnn/nn/activation_fn.hpp"
#include "bcnn/nn/initializers.hpp"
#include "bcnn/nn/spatial.hpp"

namespace bcnn {
namespace nn {

template <typename T>
class SeparableConv2D : public Module<T> {
public:
    SeparableConv2D(Index filters, Size2D kernel_size, Size2D strides = 1, Padding padding = Padding::valid,
                    ActivationFn activation = ActivationFn::linear, bool use_bias = true, std::string name = "")
        : Module<T>(std::move(name)),
          filters_(filters),
          kernel_size_(kernel_size),
          params_{strides.h, strides.w, padding},
          activation_(activation),
          use_bias_(use_bias) {
        BCNN_CHECK(filters >= 1, "SeparableConv2D: filters must be positive, got " << filters);
        BCNN_CHECK(kernel_size.h >= 1 && kernel_size.w >= 1,
                   "SeparableConv2D: kernel_size must be positive, got " << kernel_size);
        BCNN_CHECK(strides.h >= 1 && strides.w >= 1, "SeparableConv2D: strides must be positive, got " << strides);
    }

    const char* type() const override { return "SeparableConv2D"; }
    const char* default_name() const override { return "separable_conv2d"; }

    void do_initialize(Rng& rng) override {
        glorot_uniform(depthwise_->value, rng);
        glorot_uniform(pointwise_->value, rng);
        if (bias_) bias_->value.fill(T(0));
    }

    Tensor<T> forward(const Tensor<T>& x, const Context&) override {
        this->check_input(x);
        input_ = x;
        const Shape y_shape = this->batch_shape(x.dim(0), this->output_shape());
        Tensor<T>& y = this->reuse(output_, y_shape);
        Tensor<T>& depthwise = this->reuse(depthwise_out_, depthwise_shape(y_shape));
        backend::separable_conv2d_forward(x, depthwise_->value, pointwise_->value, bias_ ? &bias_->value : nullptr,
                                          params_, depthwise, y, activation_);
        return y;
    }

    Tensor<T> backward(const Tensor<T>& dy, bool need_input_grad) override {
        const bool weights = this->trainable();
        OptionalOutput<T> d_bias = weights && bias_ ? &bias_->grad : nullptr;
        Tensor<T> dx;
        if (need_input_grad) dx = this->reuse(input_grad_, input_.shape());
        OptionalOutput<T> d_depthwise_weights = weights ? &depthwise_->grad : nullptr;
        OptionalOutput<T> d_pointwise_weights = weights ? &pointwise_->grad : nullptr;
        if (activation_ == ActivationFn::relu &&
            backend::separable_conv2d_relu_backward_applies(input_, depthwise_->value, params_)) {
            // The ReLU read on the way: no pre-activation gradient written.
            backend::separable_conv2d_relu_backward(input_, depthwise_->value, pointwise_->value, depthwise_out_,
                                                    output_, dy, params_, need_input_grad ? &dx : nullptr,
                                                    d_depthwise_weights, d_pointwise_weights, d_bias);
            return dx;
        }
        Tensor<T>& pre = this->reuse(pre_activation_grad_, dy.shape());
        // After a ReLU, d_bias is summed here (and becomes nullptr).
        const Tensor<T>& d_linear = activation_backward(activation_, output_, dy, pre, d_bias);
        Tensor<T>& d_depthwise = this->reuse(depthwise_out_grad_, depthwise_out_.shape());
        backend::separable_conv2d_backward(input_, depthwise_->value, pointwise_->value, depthwise_out_, d_linear,
                                           params_, d_depthwise, need_input_grad ? &dx : nullptr,
                                           d_depthwise_weights, d_pointwise_weights, d_bias);
        return dx;
    }

protected:
    Shape do_build(const Shape& input_shape) override {
        const WindowGeometry g =
            layer_window_geometry(*this, input_shape, conv_window(kernel_size_.h, kernel_size_.w, params_));
        const Index channels = input_shape[2];
        depthwise_ = &this->add_parameter("depthwise_kernel", Shape{kernel_size_.h, kernel_size_.w, channels, 1});
        pointwise_ = &this->add_parameter("pointwise_kernel", Shape{1, 1, channels, filters_});
        if (use_bias_) bias_ = &this->add_parameter("bias", Shape{filters_});
        return Shape{g.out_h, g.out_w, filters_};
    }

private:
    // The depthwise part's output (N, OH, OW, C) for an output (N, OH, OW, filters).
    Shape depthwise_shape(const Shape& y_shape) const {
        return Shape{y_shape[0], y_shape[1], y_shape[2], this->input_shape()[2]};
    }

    Index filters_;
    Size2D kernel_size_;
    ConvParams params_;
    ActivationFn activation_;
    bool use_bias_;
    Parameter<T>* depthwise_ = nullptr;
    Parameter<T>* pointwise_ = nullptr;
    Parameter<T>* bias_ = nullptr;
    Tensor<T> input_, depthwise_out_, output_, pre_activation_grad_, depthwise_out_grad_, input_grad_;
};

}  // namespace nn
}  // namespace bcnn

#pragma once
// Conv2D (Keras Conv2D): x (N, H, W, C) -> y (N, OH, OW, filters) = fn(conv(x, kernel) + bias).
// Parameters: kernel (KH, KW, C, filters), bias (filters) when use_bias.
// Initial values: kernel glorot_uniform (fan_in = KH*KW*C, fan_out = KH*KW*filters), bias 0.

#include "bcnn/kernels/cpu/conv2d.hpp"
#include "bcnn/nn/activation_fn.hpp"
#include "bcnn/nn/initializers.hpp"
#include "bcnn/nn/spatial.hpp"

namespace bcnn {
namespace nn {

template <typename T>
class Conv2D : public Module<T> {
public:
    Conv2D(Index filters, Size2D kernel_size, Size2D strides = 1, Padding padding = Padding::valid,
           ActivationFn activation = ActivationFn::linear, bool use_bias = true, std::string name = "")
        : Module<T>(std::move(name)),
          filters_(filters),
          kernel_size_(kernel_size),
          params_{strides.h, strides.w, padding},
          activation_(activation),
          use_bias_(use_bias) {
        BCNN_CHECK(filters >= 1, "Conv2D: filters must be positive, got " << filters);
        BCNN_CHECK(kernel_size.h >= 1 && kernel_size.w >= 1,
                   "Conv2D: kernel_size must be positive, got " << kernel_size);
        BCNN_CHECK(strides.h >= 1 && strides.w >= 1, "Conv2D: strides must be positive, got " << strides);
    }

    const char* type() const override { return "Conv2D"; }
    const char* default_name() const override { return "conv2d"; }

    void do_initialize(Rng& rng) override {
        glorot_uniform(kernel_->value, rng);
        if (bias_) bias_->value.fill(T(0));
    }

    Tensor<T> forward(const Tensor<T>& x, const Context&) override {
        this->check_input(x);
        input_ = x;
        Tensor<T>& y = this->reuse(output_, this->batch_shape(x.dim(0), this->output_shape()));
        cpu::conv2d_forward(x, kernel_->value, bias_ ? &bias_->value : nullptr, params_, y);
        apply_activation(activation_, y);
        return y;
    }

    Tensor<T> backward(const Tensor<T>& dy, bool need_input_grad) override {
        Tensor<T>& pre = this->reuse(pre_activation_grad_, dy.shape());
        const Tensor<T>& d_linear = activation_backward(activation_, output_, dy, pre);
        Tensor<T> dx;
        if (need_input_grad) dx = this->reuse(input_grad_, input_.shape());
        const bool weights = this->trainable();
        cpu::conv2d_backward(input_, kernel_->value, d_linear, params_, need_input_grad ? &dx : nullptr,
                             weights ? &kernel_->grad : nullptr, weights && bias_ ? &bias_->grad : nullptr);
        return dx;
    }

protected:
    Shape do_build(const Shape& input_shape) override {
        const WindowGeometry g =
            layer_window_geometry(*this, input_shape, conv_window(kernel_size_.h, kernel_size_.w, params_));
        kernel_ = &this->add_parameter("kernel", Shape{kernel_size_.h, kernel_size_.w, input_shape[2], filters_});
        if (use_bias_) bias_ = &this->add_parameter("bias", Shape{filters_});
        return Shape{g.out_h, g.out_w, filters_};
    }

private:
    Index filters_;
    Size2D kernel_size_;
    ConvParams params_;
    ActivationFn activation_;
    bool use_bias_;
    Parameter<T>* kernel_ = nullptr;
    Parameter<T>* bias_ = nullptr;
    Tensor<T> input_, output_, pre_activation_grad_, input_grad_;
};

}  // namespace nn
}  // namespace bcnn

#pragma once
// Dense (Keras Dense): x (N, in) -> y (N, units) = fn(x * kernel + bias).
// Parameters: kernel (in, units), bias (units) when use_bias.

#include "bcnn/kernels/cpu/dense.hpp"
#include "bcnn/nn/activation_fn.hpp"
#include "bcnn/nn/initializers.hpp"
#include "bcnn/nn/module.hpp"

namespace bcnn {
namespace nn {

template <typename T>
class Dense : public Module<T> {
public:
    explicit Dense(Index units, ActivationFn activation = ActivationFn::linear, bool use_bias = true,
                   std::string name = "")
        : Module<T>(std::move(name)), units_(units), activation_(activation), use_bias_(use_bias) {
        BCNN_CHECK(units >= 1, "Dense: units must be positive, got " << units);
    }

    const char* type() const override { return "Dense"; }
    const char* default_name() const override { return "dense"; }

    void do_initialize(Rng& rng) override {
        glorot_uniform(kernel_->value, rng);
        if (bias_) bias_->value.fill(T(0));
    }

    Tensor<T> forward(const Tensor<T>& x, const Context&) override {
        this->check_input(x);
        input_ = x;
        Tensor<T>& y = this->reuse(output_, Shape{x.dim(0), units_});
        cpu::dense_forward(x, kernel_->value, bias_ ? &bias_->value : nullptr, y);
        apply_activation(activation_, y);
        return y;
    }

    Tensor<T> backward(const Tensor<T>& dy, bool need_input_grad) override {
        Tensor<T>& pre = this->reuse(pre_activation_grad_, dy.shape());
        const Tensor<T>& d_linear = activation_backward(activation_, output_, dy, pre);
        Tensor<T> dx;
        if (need_input_grad) dx = this->reuse(input_grad_, input_.shape());
        const bool weights = this->trainable();
        cpu::dense_backward(input_, kernel_->value, d_linear, need_input_grad ? &dx : nullptr,
                            weights ? &kernel_->grad : nullptr, weights && bias_ ? &bias_->grad : nullptr);
        return dx;
    }

protected:
    Shape do_build(const Shape& input_shape) override {
        BCNN_CHECK(input_shape.rank() == 1, "Dense '" << this->name() << "': input must be (features,), got "
                                                      << input_shape << "; add a Flatten layer before it");
        kernel_ = &this->add_parameter("kernel", Shape{input_shape[0], units_});
        if (use_bias_) bias_ = &this->add_parameter("bias", Shape{units_});
        return Shape{units_};
    }

private:
    Index units_;
    ActivationFn activation_;
    bool use_bias_;
    Parameter<T>* kernel_ = nullptr;
    Parameter<T>* bias_ = nullptr;
    Tensor<T> input_, output_, pre_activation_grad_, input_grad_;
};

}  // namespace nn
}  // namespace bcnn

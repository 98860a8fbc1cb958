#pragma once
// Activation (Keras Activation layer): y = fn(x) elementwise, x (N, ...) ->
// y (N, ...); no parameters. 'linear' returns its input unchanged.

#include "bcnn/nn/activation_fn.hpp"
#include "bcnn/nn/module.hpp"

namespace bcnn {
namespace nn {

template <typename T>
class Activation : public Module<T> {
public:
    explicit Activation(ActivationFn activation, std::string name = "")
        : Module<T>(std::move(name)), activation_(activation) {}

    const char* type() const override { return "Activation"; }
    const char* default_name() const override { return "activation"; }

    ActivationFn activation() const { return activation_; }

    Tensor<T> forward(const Tensor<T>& x, const Context&) override {
        this->check_input(x);
        if (activation_ == ActivationFn::linear) return x;
        Tensor<T>& y = this->reuse(output_, x.shape());
        backend::relu_forward(x, y);
        return y;
    }

    Tensor<T> backward(const Tensor<T>& dy, bool need_input_grad) override {
        if (!need_input_grad) return Tensor<T>();
        if (activation_ == ActivationFn::linear) return dy;
        Tensor<T>& dx = this->reuse(input_grad_, dy.shape());
        return activation_backward(activation_, output_, dy, dx);
    }

protected:
    Shape do_build(const Shape& input_shape) override { return input_shape; }

private:
    ActivationFn activation_;
    Tensor<T> output_, input_grad_;
};

}  // namespace nn
}  // namespace bcnn

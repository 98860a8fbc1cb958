#pragma once
// MaxPooling2D (Keras MaxPooling2D / MaxPool2D): the maximum of each window.
//   x (N, H, W, C) -> y (N, OH, OW, C); no parameters.
// The gradient of a window goes to its first maximum (row-major scan order).

#include "bcnn/backend/pool2d.hpp"
#include "bcnn/nn/pooling2d.hpp"

namespace bcnn {
namespace nn {

template <typename T>
class MaxPooling2D : public Pooling2D<T> {
public:
    explicit MaxPooling2D(Size2D pool_size = 2, std::optional<Size2D> strides = std::nullopt,
                          Padding padding = Padding::valid, std::string name = "")
        : Pooling2D<T>("MaxPooling2D", pool_size, strides, padding, std::move(name)) {}

    const char* type() const override { return "MaxPooling2D"; }
    const char* default_name() const override { return "max_pooling2d"; }

    Tensor<T> forward(const Tensor<T>& x, const Context&) override {
        Tensor<T>& y = this->output_for(x);
        backend::max_pool2d_forward(x, this->window_, y);
        return y;
    }

    Tensor<T> backward(const Tensor<T>& dy, bool need_input_grad) override {
        if (!need_input_grad) return Tensor<T>();
        Tensor<T>& dx = this->reuse(this->input_grad_, this->input_.shape());
        backend::max_pool2d_backward(this->input_, dy, this->window_, dx);
        return dx;
    }
};

}  // namespace nn
}  // namespace bcnn

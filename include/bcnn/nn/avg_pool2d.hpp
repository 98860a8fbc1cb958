#pragma once
// AveragePooling2D (Keras AveragePooling2D / AvgPool2D): the mean of each
// window's elements, padding excluded ('same' windows at the border average
// fewer elements, as in TensorFlow).
//   x (N, H, W, C) -> y (N, OH, OW, C); no parameters.

#include "bcnn/backend/pool2d.hpp"
#include "bcnn/nn/pooling2d.hpp"

namespace bcnn {
namespace nn {

template <typename T>
class AveragePooling2D : public Pooling2D<T> {
public:
    explicit AveragePooling2D(Size2D pool_size = 2, std::optional<Size2D> strides = std::nullopt,
                              Padding padding = Padding::valid, std::string name = "")
        : Pooling2D<T>("AveragePooling2D", pool_size, strides, padding, std::move(name)) {}

    const char* type() const override { return "AveragePooling2D"; }
    const char* default_name() const override { return "average_pooling2d"; }

    Tensor<T> forward(const Tensor<T>& x, const Context&) override {
        Tensor<T>& y = this->output_for(x);
        backend::avg_pool2d_forward(x, this->window_, y);
        return y;
    }

    Tensor<T> backward(const Tensor<T>& dy, bool need_input_grad) override {
        if (!need_input_grad) return Tensor<T>();
        Tensor<T>& dx = this->reuse(this->input_grad_, this->input_.shape());
        backend::avg_pool2d_backward(dy, this->window_, dx);
        return dx;
    }
};

}  // namespace nn
}  // namespace bcnn

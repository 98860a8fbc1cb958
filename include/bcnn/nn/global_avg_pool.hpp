#pragma once
// GlobalAveragePooling2D (Keras GlobalAveragePooling2D): the mean over the
// spatial axes.  x (N, H, W, C) -> y (N, C); no parameters.

#include "bcnn/backend/pool2d.hpp"
#include "bcnn/nn/spatial.hpp"

namespace bcnn {
namespace nn {

template <typename T>
class GlobalAveragePooling2D : public Module<T> {
public:
    explicit GlobalAveragePooling2D(std::string name = "") : Module<T>(std::move(name)) {}

    const char* type() const override { return "GlobalAveragePooling2D"; }
    const char* default_name() const override { return "global_average_pooling2d"; }

    Tensor<T> forward(const Tensor<T>& x, const Context&) override {
        this->check_input(x);
        input_shape_ = x.shape();
        Tensor<T>& y = this->reuse(output_, this->batch_shape(x.dim(0), this->output_shape()));
        backend::global_avg_pool_forward(x, y);
        return y;
    }

    Tensor<T> backward(const Tensor<T>& dy, bool need_input_grad) override {
        if (!need_input_grad) return Tensor<T>();
        Tensor<T>& dx = this->reuse(input_grad_, input_shape_);
        backend::global_avg_pool_backward(dy, dx);
        return dx;
    }

protected:
    Shape do_build(const Shape& input_shape) override {
        require_image_input(*this, input_shape);
        return Shape{input_shape[2]};
    }

private:
    Shape input_shape_;  // of the last forward, batch axis included
    Tensor<T> output_, input_grad_;
};

}  // namespace nn
}  // namespace bcnn

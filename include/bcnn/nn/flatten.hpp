#pragma once
// Flatten (Keras Flatten, channels last): x (N, H, W, C) -> y (N, H*W*C) in
// H, W, C order. A view of its input, never a copy (the input must be
// contiguous); backward is a view of the gradient. No parameters.

#include "bcnn/kernels/cpu/flatten.hpp"
#include "bcnn/nn/module.hpp"

namespace bcnn {
namespace nn {

template <typename T>
class Flatten : public Module<T> {
public:
    explicit Flatten(std::string name = "") : Module<T>(std::move(name)) {}

    const char* type() const override { return "Flatten"; }
    const char* default_name() const override { return "flatten"; }

    Tensor<T> forward(const Tensor<T>& x, const Context&) override {
        this->check_input(x);
        input_shape_ = x.shape();
        return cpu::flatten(x);
    }

    Tensor<T> backward(const Tensor<T>& dy, bool need_input_grad) override {
        if (!need_input_grad) return Tensor<T>();
        return cpu::flatten_backward(dy, input_shape_);
    }

protected:
    Shape do_build(const Shape& input_shape) override {
        BCNN_CHECK(input_shape.rank() >= 1, "Flatten '" << this->name() << "': input has no axis besides the batch");
        return Shape{input_shape.numel()};
    }

private:
    Shape input_shape_;  // of the last forward, batch axis included
};

}  // namespace nn
}  // namespace bcnn

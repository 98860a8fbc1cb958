#pragma once
// Dense (Keras Dense): x (N, in) -> y (N, units) = fn(x * kernel + bias).
// Parameters: kernel (in, units), bias (units) when use_bias.

#include "bcnn/backend/dense.hpp"
#include "bcnn/nn/kernel_layer.hpp"

namespace bcnn {
namespace nn {

template <typename T>
class Dense : public KernelLayer<T> {
public:
    explicit Dense(Index units, ActivationFn activation = ActivationFn::linear, bool use_bias = true,
                   std::string name = "")
        : KernelLayer<T>(activation, use_bias, std::move(name)), units_(units) {
        BCNN_CHECK(units >= 1, "Dense: units must be positive, got " << units);
    }

    const char* type() const override { return "Dense"; }
    const char* default_name() const override { return "dense"; }

protected:
    Shape do_build(const Shape& input_shape) override {
        BCNN_CHECK(input_shape.rank() == 1, "Dense '" << this->name() << "': input must be (features,), got "
                                                      << input_shape << "; add a Flatten layer before it");
        this->add_kernel("kernel", Shape{input_shape[0], units_});
        this->add_bias(units_);
        return Shape{units_};
    }

    void run_forward(const Tensor<T>& x, const Tensor<T>& kernel, OptionalInput<T> bias, ActivationFn activation,
                     Tensor<T>& y) override {
        backend::dense_forward(x, kernel, bias, y, activation);
    }

    void run_backward(const Tensor<T>& x, const Tensor<T>& kernel, const Tensor<T>& dy, OptionalOutput<T> dx,
                      OptionalOutput<T> d_kernel, OptionalOutput<T> d_bias) override {
        backend::dense_backward(x, kernel, dy, dx, d_kernel, d_bias);
    }

private:
    Index units_;
};

}  // namespace nn
}  // namespace bcnn

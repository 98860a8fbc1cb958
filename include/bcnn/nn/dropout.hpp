#pragma once
// Dropout (Keras Dropout, inverted): in training each element is zeroed with
// probability `rate` and the rest scaled by 1 / (1 - rate); otherwise (and
// always when rate is 0) it is the identity and returns its input unchanged.
//   x (N, ...) -> y (N, ...); no parameters.
// Training draws the mask from context.rng, which must then be set.

#include "bcnn/backend/dropout.hpp"
#include "bcnn/nn/module.hpp"

namespace bcnn {
namespace nn {

template <typename T>
class Dropout : public Module<T> {
public:
    explicit Dropout(double rate, std::string name = "") : Module<T>(std::move(name)), rate_(rate) {
        BCNN_CHECK(rate >= 0 && rate < 1, "Dropout: rate " << rate << " is outside [0, 1)");
    }

    const char* type() const override { return "Dropout"; }
    const char* default_name() const override { return "dropout"; }

    double rate() const { return rate_; }

    Tensor<T> forward(const Tensor<T>& x, const Context& context) override {
        this->check_input(x);
        const bool active = context.training && rate_ > 0;
        BCNN_CHECK(!active || context.rng,
                   "Dropout '" << this->name() << "': training needs a random generator, but Context::rng is null");
        active_ = active;
        if (!active_) return x;
        Tensor<T>& mask = this->reuse(mask_, x.shape());
        Tensor<T>& y = this->reuse(output_, x.shape());
        backend::dropout_forward(x, static_cast<T>(rate_), *context.rng, mask, y);
        return y;
    }

    Tensor<T> backward(const Tensor<T>& dy, bool need_input_grad) override {
        if (!need_input_grad) return Tensor<T>();
        if (!active_) return dy;
        Tensor<T>& dx = this->reuse(input_grad_, dy.shape());
        backend::dropout_backward(dy, mask_, dx);
        return dx;
    }

protected:
    Shape do_build(const Shape& input_shape) override { return input_shape; }

private:
    double rate_;
    bool active_ = false;  // whether the last forward dropped anything
    Tensor<T> mask_, output_, input_grad_;
};

}  // namespace nn
}  // namespace bcnn

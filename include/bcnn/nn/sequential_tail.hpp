#pragma once
// SequentialTail: the modules [first, end) of a built Sequential run as one
// module, on inputs that are the output of module first - 1. With a frozen
// backbone as module 0, SequentialTail(model, 1) is the head alone: it trains
// and scores on the backbone's features computed once (train/features.hpp)
// exactly as the whole model would on images, since a frozen backbone's
// forward does not depend on the mode and draws no random numbers.
//   x (N, model.at(first - 1).output_shape()...) -> y (N, model.output_shape()...)
//
// It owns nothing: the modules stay the Sequential's, so training the tail
// trains them. Its name and parameters are the whole model's (children() are
// all of the Sequential's, backbone included, and the tail takes its name),
// so a checkpoint, a weights file or an optimiser's state written from the
// tail is the whole model's and loads into it, and the other way round.
// Backward stops, like Sequential's, before the first module with trainable
// weights, never going below module `first`.

#include <cstddef>

#include "bcnn/nn/sequential.hpp"

namespace bcnn {
namespace nn {

template <typename T>
class SequentialTail : public Module<T> {
public:
    // `model` must be built and outlive the tail; 1 <= first < model.size().
    SequentialTail(Sequential<T>& model, std::size_t first) : Module<T>(model.name()), model_(model), first_(first) {
        BCNN_CHECK(model.built(), "SequentialTail: Sequential '" << model.name() << "' is not built");
        BCNN_CHECK(first >= 1 && first < model.size(),
                   "SequentialTail: first module " << first << " of Sequential '" << model.name() << "' with "
                                                   << model.size() << " modules is not in [1, " << model.size() << ")");
        this->build(model.at(first - 1).output_shape());
    }

    const char* type() const override { return "SequentialTail"; }
    const char* default_name() const override { return "sequential_tail"; }

    std::size_t first() const { return first_; }

    // All of the Sequential's modules, so that parameter names are the whole model's.
    std::vector<Module<T>*> children() override { return model_.children(); }

    // Fused pairs as in Sequential, formed from module `first` on.
    Tensor<T> forward(const Tensor<T>& x, const Context& context) override {
        this->check_input(x);
        return detail::forward_modules(first_, model_.size(), module_at(), x, context);
    }

    Tensor<T> backward(const Tensor<T>& dy, bool need_input_grad) override {
        std::size_t stop = first_;
        if (!need_input_grad)
            while (stop < model_.size() && model_.at(stop).count_trainable_params() == 0) ++stop;
        Tensor<T> grad = detail::backward_modules(first_, model_.size(), stop, module_at(), dy, need_input_grad);
        return need_input_grad ? grad : Tensor<T>();
    }

protected:
    Shape do_build(const Shape&) override { return model_.output_shape(); }

private:
    auto module_at() const {
        return [this](std::size_t i) -> Module<T>& { return model_.at(i); };
    }

    Sequential<T>& model_;
    std::size_t first_;
};

}  // namespace nn
}  // namespace bcnn

#pragma once
// Sequential: modules applied one after another, like keras.Sequential.
// Backward runs in reverse and stops early: modules before the first one
// with trainable weights get no backward call at all, so a frozen backbone
// costs only its forward pass.

#include <map>
#include <memory>
#include <utility>
#include <vector>

#include "bcnn/nn/module.hpp"
#include "bcnn/nn/summary.hpp"

namespace bcnn {
namespace nn {

template <typename T>
class Sequential : public Module<T> {
public:
    explicit Sequential(std::string name = "sequential") : Module<T>(std::move(name)) {}

    const char* type() const override { return "Sequential"; }
    const char* default_name() const override { return "sequential"; }

    // Appends a module, naming it Keras-style ("conv2d", "conv2d_1", ...) when
    // it has no name; names must be unique within the Sequential.
    Module<T>& add(std::unique_ptr<Module<T>> module) {
        BCNN_CHECK(module, "Sequential '" << this->name() << "': cannot add a null module");
        BCNN_CHECK(!this->built(), "Sequential '" << this->name() << "': cannot add '" << module->type()
                                                  << "' after build()");
        if (module->name().empty()) {
            int& count = name_counts_[module->default_name()];
            const std::string base = module->default_name();
            module->set_name(count == 0 ? base : base + "_" + std::to_string(count));
            ++count;
        }
        for (const auto& existing : modules_)
            BCNN_CHECK(existing->name() != module->name(),
                       "Sequential '" << this->name() << "': two modules named '" << module->name() << "'");
        modules_.push_back(std::move(module));
        return *modules_.back();
    }

    // Constructs a module in place: model.emplace<Dense<float>>(512, ActivationFn::relu).
    template <typename ModuleType, typename... Args>
    ModuleType& emplace(Args&&... args) {
        auto module = std::make_unique<ModuleType>(std::forward<Args>(args)...);
        ModuleType& ref = *module;
        add(std::move(module));
        return ref;
    }

    std::size_t size() const { return modules_.size(); }
    Module<T>& at(std::size_t i) const {
        BCNN_CHECK(i < modules_.size(), "Sequential '" << this->name() << "': no module " << i << " of " << modules_.size());
        return *modules_[i];
    }

    std::vector<Module<T>*> children() override {
        std::vector<Module<T>*> out;
        for (auto& m : modules_) out.push_back(m.get());
        return out;
    }

    void do_initialize(Rng& rng) override {
        for (auto& m : modules_) m->initialize(rng);
    }

    Tensor<T> forward(const Tensor<T>& x, const Context& context) override {
        this->check_input(x);
        Tensor<T> h = x;
        for (auto& m : modules_) h = m->forward(h, context);
        return h;
    }

    Tensor<T> backward(const Tensor<T>& dy, bool need_input_grad) override {
        const std::size_t first = need_input_grad ? 0 : first_trainable();
        Tensor<T> grad = dy;
        for (std::size_t i = modules_.size(); i-- > first;) {
            grad = modules_[i]->backward(grad, need_input_grad || i > first);
        }
        return need_input_grad ? grad : Tensor<T>();
    }

    // Keras-style summary: layer (type), output shape, parameters, totals.
    std::string summary() { return format_summary(*this); }

protected:
    Shape do_build(const Shape& input_shape) override {
        BCNN_CHECK(!modules_.empty(), "Sequential '" << this->name() << "': nothing to build");
        Shape shape = input_shape;
        for (auto& m : modules_) shape = m->build(shape);
        return shape;
    }

private:
    // Index of the first module with trainable weights (size() when none).
    std::size_t first_trainable() const {
        for (std::size_t i = 0; i < modules_.size(); ++i)
            if (modules_[i]->count_trainable_params() > 0) return i;
        return modules_.size();
    }

    std::vector<std::unique_ptr<Module<T>>> modules_;
    std::map<std::string, int> name_counts_;
};

}  // namespace nn
}  // namespace bcnn

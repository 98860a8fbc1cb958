#pragma once
// Sequential: modules applied one after another, like keras.Sequential.
// Backward runs in reverse and stops early: modules before the first one
// with trainable weights get no backward call at all, so a frozen backbone
// costs only its forward pass. A module that fuses with the next one
// (Module::fuses_with: BatchNormalization, or a Conv2D with a ReLU, then
// MaxPooling2D) runs the pair as one, forward and backward.

#include <map>
#include <memory>
#include <utility>
#include <vector>

#include "bcnn/nn/module.hpp"
#include "bcnn/nn/summary.hpp"

namespace bcnn {
namespace nn {
namespace detail {

// A run of modules [first, first + size) that Sequential calls as one: a
// single module (size 1), or a module and the next one it fuses with
// (Module::fuses_with, size 2).
struct ModuleGroup {
    std::size_t first, size;
};

// Modules [first, end) in groups, pairs formed left to right. at(i) is module i.
template <typename ModuleAt>
std::vector<ModuleGroup> module_groups(std::size_t first, std::size_t end, const ModuleAt& at) {
    std::vector<ModuleGroup> groups;
    for (std::size_t i = first; i < end; i += groups.back().size)
        groups.push_back({i, i + 1 < end && at(i).fuses_with(at(i + 1)) ? std::size_t(2) : std::size_t(1)});
    return groups;
}

// The forward of modules [first, end) on x, group by group.
template <typename T, typename ModuleAt>
Tensor<T> forward_modules(std::size_t first, std::size_t end, const ModuleAt& at, const Tensor<T>& x,
                          const Context& context) {
    Tensor<T> h = x;
    for (const ModuleGroup& group : module_groups(first, end, at))
        h = group.size == 2 ? at(group.first).forward_fused(at(group.first + 1), h, context)
                            : at(group.first).forward(h, context);
    return h;
}

// The backward of modules [first, end) after forward_modules(first, end),
// in reverse, stopping before `stop` (>= first): the groups that end after
// it run, each asked for its input gradient when need_input_grad or when
// it starts after stop. Returns the last gradient computed.
template <typename T, typename ModuleAt>
Tensor<T> backward_modules(std::size_t first, std::size_t end, std::size_t stop, const ModuleAt& at,
                           const Tensor<T>& dy, bool need_input_grad) {
    const std::vector<ModuleGroup> groups = module_groups(first, end, at);
    Tensor<T> grad = dy;
    for (auto group = groups.rbegin(); group != groups.rend() && group->first + group->size > stop; ++group) {
        const bool need = need_input_grad || group->first > stop;
        grad = group->size == 2 ? at(group->first).backward_fused(at(group->first + 1), grad, need)
                                : at(group->first).backward(grad, need);
    }
    return grad;
}

}  // namespace detail

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

    // Modules that fuse with the next (Module::fuses_with) run as a pair.
    Tensor<T> forward(const Tensor<T>& x, const Context& context) override {
        this->check_input(x);
        return detail::forward_modules(0, modules_.size(), module_at(), x, context);
    }

    Tensor<T> backward(const Tensor<T>& dy, bool need_input_grad) override {
        const std::size_t stop = need_input_grad ? 0 : first_trainable();
        Tensor<T> grad = detail::backward_modules(0, modules_.size(), stop, module_at(), dy, need_input_grad);
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
    auto module_at() const {
        return [this](std::size_t i) -> Module<T>& { return *modules_[i]; };
    }

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

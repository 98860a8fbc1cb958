#pragma once
// Module: a layer with explicit forward and backward (no tape). A module owns
// its parameters (trainable weights) and buffers (e.g. BatchNorm's moving
// statistics), keeps what its backward needs from the last forward, and
// reuses its output buffers from step to step.
//
// A module lives on a device (Device::cpu until to() moves it): its
// parameters, gradients, buffers and the tensors it reuses from step to step
// are there, and its forward takes inputs on that device. build() creates
// the parameters on the module's device and initialize() runs on the host
// for any device; weights files are read and written with the module on the
// host (io/ copies host tensors): load, then to(Device::cuda); to(Device::cpu)
// before saving (train_bloodcells does so around its checkpoints).
//
// Shapes given to build() and reported by output_shape() exclude the batch
// axis, as Keras prints them: an NHWC image batch (N, 150, 150, 3) has input
// shape (150, 150, 3).

#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "bcnn/backend/transfer.hpp"
#include "bcnn/core/rng.hpp"
#include "bcnn/core/tensor.hpp"

namespace bcnn {
namespace nn {

// How a forward pass runs.
struct Context {
    bool training = false;  // dropout active; BatchNorm uses batch statistics (when trainable)
    Rng* rng = nullptr;     // the generator dropout draws from; needed when training
    // No backward() follows this forward (evaluation, prediction, features):
    // layers may fold and fuse what a backward would need apart (DenseLayer
    // folds its 1_bn into 1_conv). Only without training.
    bool inference_only = false;
};

// The context of a forward that no backward follows.
inline Context inference_only_context() {
    Context context;
    context.inference_only = true;
    return context;
}

template <typename T>
struct Parameter {
    std::string name;        // "kernel", "bias", "gamma", "beta", "moving_mean", ...
    Tensor<T> value;
    Tensor<T> grad;          // same shape as value; undefined for buffers
    bool is_buffer = false;  // saved with the weights, never changed by an optimiser
};

// A parameter as seen from a model: its full name ("conv2d_1/kernel"), whether
// an optimiser may change it now, and the parameter itself.
template <typename T>
struct NamedParameter {
    std::string name;
    bool trainable;
    Parameter<T>* parameter;
};

template <typename T>
class Module {
public:
    explicit Module(std::string name = "") : name_(std::move(name)) {}
    virtual ~Module() = default;
    Module(const Module&) = delete;
    Module& operator=(const Module&) = delete;

    // The class name Keras prints in summaries, e.g. "Conv2D".
    virtual const char* type() const = 0;
    // The base of automatic names, e.g. "conv2d" (then "conv2d_1", ...).
    virtual const char* default_name() const = 0;

    const std::string& name() const { return name_; }
    void set_name(std::string name) { name_ = std::move(name); }

    // Creates the parameters for `input_shape` (no batch axis) and returns the
    // output shape. Calling it again with another shape is an error.
    Shape build(const Shape& input_shape) {
        if (built_) {
            BCNN_CHECK(input_shape == input_shape_, type() << " '" << name_ << "': built for input " << input_shape_
                                                           << ", now given " << input_shape);
            return output_shape_;
        }
        output_shape_ = do_build(input_shape);
        input_shape_ = input_shape;
        built_ = true;
        if (device_ != Device::cpu) to(device_);  // do_build created the parameters on the host
        return output_shape_;
    }
    bool built() const { return built_; }
    const Shape& input_shape() const { return input_shape_; }
    const Shape& output_shape() const { return output_shape_; }

    // Sets parameters to Keras' default initial values, drawing from `rng`.
    // The module must be built (its parameters exist only then).
    // A module on another device is initialised on the host and moved back.
    void initialize(Rng& rng) {
        BCNN_CHECK(built_, type() << " '" << name_ << "': initialize() before build()");
        const Device device = device_;
        if (device != Device::cpu) to(Device::cpu);
        do_initialize(rng);
        if (device != Device::cpu) to(device);
    }

    // The device this module's parameters and buffers live on.
    Device device() const { return device_; }

    // Moves this module and its children to `device`: parameters, their
    // gradients and buffers (BatchNorm's moving statistics). The Parameter objects stay the same (optimisers and
    // layers keep pointing to them); their tensors are replaced by copies on
    // `device`. Buffers reused between steps are reallocated there on the next
    // forward; a backward needs a forward on the new device first.
    void to(Device device) {
        for (Parameter<T>& p : parameters_) {
            if (p.value.defined()) p.value = to_device(p.value, device);
            if (p.grad.defined()) p.grad = to_device(p.grad, device);
        }
        device_ = device;
        for (Module* child : children()) child->to(device);
    }

    // x (N, input_shape...) -> y (N, output_shape...). The result is this
    // module's output buffer: valid until its next forward.
    virtual Tensor<T> forward(const Tensor<T>& x, const Context& context) = 0;

    // dy (N, output_shape...) -> dx (N, input_shape...), or an empty tensor when
    // !need_input_grad. Sets the gradients of the trainable parameters from the
    // last forward (overwriting them). Frozen modules compute no weight gradients.
    virtual Tensor<T> backward(const Tensor<T>& dy, bool need_input_grad) = 0;

    // Fusion with the module that follows in a Sequential. A module that can
    // run its forward and backward together with `next`'s, passing over less
    // memory than the two apart, returns true from fuses_with(next) and
    // overrides the two calls below; Sequential then calls them instead of
    // the pair's own (nn::detail::module_groups). They compute what the pair
    // computes: forward_fused returns next's output for x, backward_fused
    // this module's input gradient for next's output gradient dy (and sets
    // both modules' parameter gradients). As defined here they run the two
    // modules one after the other, which an override may fall back to.
    virtual bool fuses_with(const Module& /*next*/) const { return false; }
    virtual Tensor<T> forward_fused(Module& next, const Tensor<T>& x, const Context& context) {
        return next.forward(forward(x, context), context);
    }
    virtual Tensor<T> backward_fused(Module& next, const Tensor<T>& dy, bool need_input_grad) {
        return backward(next.backward(dy, true), need_input_grad);
    }

    // Whether an optimiser may change this module's weights. Setting it sets
    // every child's too (children(), recursively).
    bool trainable() const { return trainable_; }
    void set_trainable(bool trainable) {
        trainable_ = trainable;
        for (Module* child : children()) child->set_trainable(trainable);
    }

    // Child modules, for composites (Sequential, dense blocks).
    virtual std::vector<Module*> children() { return {}; }

    // Calls visit(name, trainable now, parameter) for this module's own
    // parameters, then its children's, depth first. Names are relative to this
    // module: its own are "kernel", a child's "conv2d/kernel", a grandchild's
    // "block1/conv2d/kernel".
    void visit_parameters(const std::function<void(const std::string&, bool, Parameter<T>&)>& visit,
                          const std::string& prefix = "") {
        for (Parameter<T>& p : parameters_) visit(prefix + p.name, trainable_ && !p.is_buffer, p);
        for (Module* child : children()) child->visit_parameters(visit, prefix + child->name() + "/");
    }

    std::vector<NamedParameter<T>> named_parameters() {
        std::vector<NamedParameter<T>> out;
        visit_parameters([&](const std::string& name, bool trainable, Parameter<T>& p) {
            out.push_back({name, trainable, &p});
        });
        return out;
    }

    // Parameter counts as Keras reports them (buffers count as non-trainable).
    Index count_params() { return count([](bool) { return true; }); }
    Index count_trainable_params() { return count([](bool trainable) { return trainable; }); }

protected:
    // Builds parameters; returns the output shape (no batch axis).
    virtual Shape do_build(const Shape& input_shape) = 0;
    // Sets the built parameters' initial values; modules without parameters keep this default.
    virtual void do_initialize(Rng&) {}

    // Adds a zero-filled parameter; the reference stays valid for the module's life.
    Parameter<T>& add_parameter(const std::string& name, const Shape& shape, bool is_buffer = false) {
        Parameter<T> p;
        p.name = name;
        p.value = Tensor<T>(shape);
        if (!is_buffer) p.grad = Tensor<T>(shape);
        p.is_buffer = is_buffer;
        parameters_.push_back(std::move(p));
        return parameters_.back();
    }
    Parameter<T>& parameter(const std::string& name) {
        for (Parameter<T>& p : parameters_)
            if (p.name == name) return p;
        throw Error(std::string(type()) + " '" + name_ + "' has no parameter \"" + name + "\"");
    }

    // Checks that x is (N, input_shape...) for this built module.
    void check_input(const Tensor<T>& x) const {
        BCNN_CHECK(built_, type() << " '" << name_ << "': forward before build()");
        bool match = x.rank() == input_shape_.rank() + 1;
        for (int axis = 0; match && axis < input_shape_.rank(); ++axis) match = x.dim(axis + 1) == input_shape_[axis];
        BCNN_CHECK(match, type() << " '" << name_ << "': input has shape " << x.shape() << ", expected (N, "
                                 << input_shape_.str().substr(1));
    }

    // (N, output_shape...) for a batch of n.
    Shape batch_shape(Index n, const Shape& shape) const {
        Shape out{n};
        for (Index extent : shape) out.push_back(extent);
        return out;
    }

    // `buffer` with `shape` on this module's device, reallocated only when the
    // shape or the device changes.
    template <typename U>
    Tensor<U>& reuse(Tensor<U>& buffer, const Shape& shape) const {
        if (!buffer.defined() || buffer.shape() != shape || buffer.device() != device_)
            buffer = empty_on<U>(shape, device_);
        return buffer;
    }

private:
    template <typename Predicate>
    Index count(Predicate include) {
        Index total = 0;
        visit_parameters([&](const std::string&, bool trainable, Parameter<T>& p) {
            if (include(trainable)) total += p.value.numel();
        });
        return total;
    }

    std::string name_;
    bool trainable_ = true;
    bool built_ = false;
    Device device_ = Device::cpu;
    std::deque<Parameter<T>> parameters_;  // deque: references stay valid
    Shape input_shape_, output_shape_;
};

}  // namespace nn
}  // namespace bcnn

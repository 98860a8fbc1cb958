#pragma once
// OnDevice: a composite model (Sequential, SequentialTail, ...) run on a
// device behind a host interface. forward() moves each batch to the device,
// runs the model there and moves its output back; backward() does the same
// with the gradients. So everything that feeds host batches and reads host
// outputs -- fit, evaluate, predict, compute_features, recalibrate_batch_norm
// -- trains and scores a model on the GPU unchanged:
//   nn::OnDevice<float> gpu(model, Device::cuda);   // moves model's modules to cuda
//   train::TrainingState<float> state{gpu, optimizer, rng};
//   x (N, model input...) on the host -> y (N, model output...) on the host
// Only the batch and the model's output cross the bus each step (the
// parameters stay on the device; the optimiser updates them there).
//
// It owns nothing: its name and children are the model's, so its parameter
// names are the model's (an optimiser's state or checkpoint from either fits
// the other). The model must keep no parameters of its own besides its
// children's (a composite). To save weights, move the modules back to the
// host first (to(Device::cpu)).

#include "bcnn/backend/transfer.hpp"
#include "bcnn/nn/module.hpp"

namespace bcnn {
namespace nn {

template <typename T>
class OnDevice : public Module<T> {
public:
    // `model` must be built and outlive this; its modules move to `device`.
    OnDevice(Module<T>& model, Device device) : Module<T>(model.name()), model_(model) {
        BCNN_CHECK(model.built(), "OnDevice: " << model.type() << " '" << model.name() << "' is not built");
        Index in_children = 0;
        for (Module<T>* child : model.children()) in_children += child->count_params();
        BCNN_CHECK(in_children == model.count_params(),
                   "OnDevice: " << model.type() << " '" << model.name()
                                << "' has parameters of its own; wrap a composite (Sequential) holding it");
        this->build(model.input_shape());
        this->to(device);
    }

    const char* type() const override { return model_.type(); }
    const char* default_name() const override { return model_.default_name(); }

    std::vector<Module<T>*> children() override { return model_.children(); }

    // x (N, input...) on any device -> the model's output on the host.
    Tensor<T> forward(const Tensor<T>& x, const Context& context) override {
        this->check_input(x);
        return to_device(model_.forward(to_device(x, this->device()), context), Device::cpu);
    }

    // dy (N, output...) on any device -> dx on the host (empty when !need_input_grad).
    Tensor<T> backward(const Tensor<T>& dy, bool need_input_grad) override {
        const Tensor<T> dx = model_.backward(to_device(dy, this->device()), need_input_grad);
        return dx.defined() ? to_device(dx, Device::cpu) : dx;
    }

protected:
    Shape do_build(const Shape&) override { return model_.output_shape(); }

private:
    Module<T>& model_;
};

}  // namespace nn
}  // namespace bcnn

#pragma once
// KernelLayer: the shared body of the layers that are one kernel, an
// optional bias and a fused activation (Dense, Conv2D, DepthwiseConv2D):
//   y = fn(op(x, kernel) + bias)
// It owns the parameters, the activation, the reused buffers, and the
// forward/backward plumbing; a subclass creates the parameters in do_build()
// (with add_kernel / add_bias) and runs its op in run_forward / run_backward.
// forward_into() writes the output into a caller's tensor instead of the
// layer's own buffer: a DenseNet layer writes its growth channels straight
// into a channel slice of its block's buffer (nn/dense_layer.hpp).
// In a Sequential, a layer with a ReLU and an (N, H, W, C) output followed
// by a MaxPooling2D (a Conv2D, as in the custom CNN and VGG16) takes its
// gradient before the ReLU straight from the pooling's output gradient on
// the CPU (cpu::max_pool2d_relu_backward, backward_fused), so its own
// backward reads no mask (conv2d_1 and its pooling in the custom CNN: 0.90-0.95x the pair's backward).
// Where the layer's CPU kernel takes the pair's forward as one
// (fuses_pool_on_cpu: a Conv2D that cpu::conv2d_relu_max_pool_applies to,
// the custom CNN's conv2d_1), it pools as it computes and keeps, instead of
// its own output, where each window's maximum lies
// (kernels/cpu/conv2d_max_pool.hpp); the backward_fused takes the gradient
// before the ReLU from those positions (max_pool2d_relu_backward_from_positions).

#include "bcnn/kernels/cpu/pool2d.hpp"
#include "bcnn/nn/activation_fn.hpp"
#include "bcnn/nn/initializers.hpp"
#include "bcnn/nn/max_pool2d.hpp"
#include "bcnn/nn/module.hpp"

namespace bcnn {
namespace nn {

template <typename T>
class KernelLayer : public Module<T> {
public:
    KernelLayer(ActivationFn activation, bool use_bias, std::string name)
        : Module<T>(std::move(name)), activation_(activation), use_bias_(use_bias) {}

    Tensor<T> forward(const Tensor<T>& x, const Context&) override {
        this->check_input(x);
        run(x, this->reuse(own_output_, this->batch_shape(x.dim(0), this->output_shape())));
        return output_;
    }

    // forward() into `y` (N, output_shape...), which may be a channel slice of
    // a wider buffer, instead of this layer's own buffer. y stays this layer's
    // output, read by backward(), until its next forward.
    void forward_into(const Tensor<T>& x, const Tensor<T>& y, const Context&) {
        this->check_input(x);
        const Shape expected = this->batch_shape(x.dim(0), this->output_shape());
        BCNN_CHECK(y.defined() && y.shape() == expected, this->type() << " '" << this->name() << "': output has shape "
                                                                      << y.shape() << ", expected " << expected);
        run(x, y);
    }

    const Tensor<T>& kernel() const { return kernel_->value; }
    const Tensor<T>* bias() const { return bias_ ? &bias_->value : nullptr; }

    Tensor<T> backward(const Tensor<T>& dy, bool need_input_grad) override {
        BCNN_CHECK(!pooled_by_kernel_, this->type() << " '" << this->name() << "': the last forward ran fused with '"
                                                    << pooled_by_kernel_->name()
                                                    << "' and kept no output; its backward is backward_fused "
                                                       "(through the Sequential)");
        Tensor<T> dx = input_gradient(need_input_grad);
        if (activation_ == ActivationFn::linear)
            run_backward(input_, kernel_->value, dy, dx.defined() ? &dx : nullptr, kernel_gradient(), bias_gradient());
        else
            run_relu_backward(input_, kernel_->value, output_, dy, this->reuse(pre_activation_grad_, dy.shape()),
                              dx.defined() ? &dx : nullptr, kernel_gradient(), bias_gradient());
        return dx;
    }

    // A MaxPooling2D after this layer's ReLU, on an (N, H, W, C) output.
    bool fuses_with(const Module<T>& next) const override {
        return activation_ == ActivationFn::relu && this->output_shape().rank() == 3 &&
               dynamic_cast<const MaxPooling2D<T>*>(&next) != nullptr;
    }

    // The two layers' forwards, or on the CPU where fuses_pool_on_cpu, this
    // layer's kernel computing the pooled output and the positions of the
    // windows' maxima (run_forward_pooled), without this layer's output.
    Tensor<T> forward_fused(Module<T>& next, const Tensor<T>& x, const Context& context) override {
        const auto& pool = dynamic_cast<const MaxPooling2D<T>&>(next);
        if (this->device() != Device::cpu || !fuses_pool_on_cpu(pool.window()))
            return Module<T>::forward_fused(next, x, context);
        this->check_input(x);
        input_ = x;
        output_ = Tensor<T>();
        const Shape pooled_shape = this->batch_shape(x.dim(0), pool.output_shape());
        Tensor<T>& pooled = this->reuse(pooled_output_, pooled_shape);
        run_forward_pooled(x, kernel_->value, bias_ ? &bias_->value : nullptr, pool.window(), pooled,
                           this->reuse(pool_positions_, pooled_shape));
        pooled_by_kernel_ = &pool;
        return pooled;
    }

    // dy is the pooling's output gradient. On the CPU the gradient before
    // the ReLU comes from the positions the fused kernel kept, or else from
    // max_pool2d_relu_backward of this layer's output, and the kernel's
    // backward then needs no mask; elsewhere the two layers apart.
    Tensor<T> backward_fused(Module<T>& next, const Tensor<T>& dy, bool need_input_grad) override {
        if (this->device() != Device::cpu) return Module<T>::backward_fused(next, dy, need_input_grad);
        const auto& pool = dynamic_cast<const MaxPooling2D<T>&>(next);
        Tensor<T>& pre = this->reuse(pre_activation_grad_, this->batch_shape(input_.dim(0), this->output_shape()));
        if (pooled_by_kernel_ == &pool)
            cpu::max_pool2d_relu_backward_from_positions(pool_positions_, dy, pool.window(), pre);
        else
            cpu::max_pool2d_relu_backward(output_, dy, pool.window(), pre);
        Tensor<T> dx = input_gradient(need_input_grad);
        run_backward(input_, kernel_->value, pre, dx.defined() ? &dx : nullptr, kernel_gradient(), bias_gradient());
        return dx;
    }

protected:
    // y = activation(op(x, kernel) + bias) (bias may be nullptr), on the
    // tensors' device (backend/); the CPU kernels fuse the bias and the
    // activation into their last pass over y, cuda applies the ReLU after.
    virtual void run_forward(const Tensor<T>& x, const Tensor<T>& kernel, OptionalInput<T> bias,
                             ActivationFn activation, Tensor<T>& y) = 0;
    // Gradients of op given dy before the activation; any output may be nullptr.
    virtual void run_backward(const Tensor<T>& x, const Tensor<T>& kernel, const Tensor<T>& dy, OptionalOutput<T> dx,
                              OptionalOutput<T> d_kernel, OptionalOutput<T> d_bias) = 0;
    // The same given dy after the ReLU of output y; pre (y's shape) is scratch.
    // Here: the ReLU's gradient into pre, summing d_bias on the way
    // (activation_backward), then run_backward on it. Conv2D overrides it
    // with a kernel that reads dy through the mask itself.
    virtual void run_relu_backward(const Tensor<T>& x, const Tensor<T>& kernel, const Tensor<T>& y,
                                   const Tensor<T>& dy, Tensor<T>& pre, OptionalOutput<T> dx,
                                   OptionalOutput<T> d_kernel, OptionalOutput<T> d_bias) {
        const Tensor<T>& d_linear = activation_backward(ActivationFn::relu, y, dy, pre, d_bias);
        run_backward(x, kernel, d_linear, dx, d_kernel, d_bias);
    }

    // Whether this layer's CPU kernel takes its forward (with its ReLU) and
    // a following max pooling `window` as one, run_forward_pooled. No
    // layer's does unless it says so.
    virtual bool fuses_pool_on_cpu(const Window2D& /*window*/) const { return false; }
    // pooled = max_pool2d(relu(op(x, kernel) + bias), window) and where each
    // window sends its gradient (positions, cpu::relu_pool_position's bytes).
    virtual void run_forward_pooled(const Tensor<T>& /*x*/, const Tensor<T>& /*kernel*/, OptionalInput<T> /*bias*/,
                                    const Window2D& /*window*/, Tensor<T>& /*pooled*/,
                                    Tensor<std::uint8_t>& /*positions*/) {
        BCNN_CHECK(false, this->type() << " '" << this->name() << "' has no kernel fused with its pooling");
    }

    // Keras' defaults: kernel glorot_uniform with the fans of its shape, bias 0.
    void do_initialize(Rng& rng) override {
        glorot_uniform(kernel_->value, rng);
        if (bias_) bias_->value.fill(T(0));
    }

    void add_kernel(const std::string& name, const Shape& shape) { kernel_ = &this->add_parameter(name, shape); }
    // Adds the bias when the layer uses one.
    void add_bias(Index units) {
        if (use_bias_) bias_ = &this->add_parameter("bias", Shape{units});
    }

private:
    // What a backward writes: dx (the input's shape; empty unless
    // need_input_grad), the kernel's and bias's gradients (nullptr when
    // frozen or without a bias).
    Tensor<T> input_gradient(bool need_input_grad) {
        return need_input_grad ? this->reuse(input_grad_, input_.shape()) : Tensor<T>();
    }
    Tensor<T>* kernel_gradient() { return this->trainable() ? &kernel_->grad : nullptr; }
    Tensor<T>* bias_gradient() { return this->trainable() && bias_ ? &bias_->grad : nullptr; }

    // y = fn(op(x, kernel) + bias) into y, remembered for backward().
    void run(const Tensor<T>& x, const Tensor<T>& y) {
        input_ = x;
        output_ = y;
        pooled_by_kernel_ = nullptr;
        run_forward(x, kernel_->value, bias_ ? &bias_->value : nullptr, activation_, output_);
    }

    ActivationFn activation_;
    bool use_bias_;
    Parameter<T>* kernel_ = nullptr;
    Parameter<T>* bias_ = nullptr;
    Tensor<T> input_;
    Tensor<T> output_;      // the last forward's output: own_output_ or forward_into's y
    Tensor<T> own_output_;  // this layer's buffer, reused from step to step
    // Where this layer's kernel computed the pooling `pooled_by_kernel_` in
    // the last forward (forward_fused; nullptr: it did not, output_ is set):
    // its pooled output and the positions of the windows' maxima.
    const MaxPooling2D<T>* pooled_by_kernel_ = nullptr;
    Tensor<T> pooled_output_;
    Tensor<std::uint8_t> pool_positions_;
    Tensor<T> pre_activation_grad_, input_grad_;
};

}  // namespace nn
}  // namespace bcnn

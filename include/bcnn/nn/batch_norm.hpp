#pragma once
// BatchNormalization (Keras BatchNormalization, axis -1): per channel (the
// last axis), y = gamma * (x - mean) / sqrt(var + epsilon) + beta, for
// x (N, H, W, C) or x (N, F).
// Parameters: gamma, beta (C), trainable; buffers moving_mean,
// moving_variance (C), saved with the weights, never trained (Keras counts
// them as non-trainable parameters). Initial values: gamma 1, beta 0,
// moving_mean 0, moving_variance 1.
// Mode (Keras 2): batch statistics only when context.training AND the layer
// is trainable; the moving statistics are then updated (momentum, with the
// unbiased variance for 4-D inputs as Keras' fused kernel does). Otherwise --
// inference, or a frozen layer during training -- the moving statistics
// normalise. backward() differentiates the mode of the last forward.
// Runs on the module's device (backend/batchnorm.hpp), folding into a
// convolution (fold_into) too.
// In a Sequential, a 4-D BatchNormalization followed by a MaxPooling2D whose
// windows do not overlap runs the pair as one on the CPU
// (kernels/cpu/batchnorm_max_pool.hpp: the same values, without writing the
// normalised tensor); on other devices the two run one after the other.

#include "bcnn/backend/batchnorm.hpp"
#include "bcnn/kernels/cpu/batchnorm_max_pool.hpp"
#include "bcnn/nn/max_pool2d.hpp"
#include "bcnn/nn/module.hpp"

namespace bcnn {
namespace nn {

template <typename T>
class BatchNormalization : public Module<T> {
public:
    explicit BatchNormalization(double momentum = cpu::kBatchNormMomentum, double epsilon = cpu::kBatchNormEpsilon,
                                std::string name = "")
        : Module<T>(std::move(name)), momentum_(momentum), epsilon_(epsilon) {
        BCNN_CHECK(momentum >= 0 && momentum <= 1, "BatchNormalization: momentum " << momentum << " is outside [0, 1]");
        BCNN_CHECK(epsilon > 0, "BatchNormalization: epsilon " << epsilon << " must be positive");
    }

    const char* type() const override { return "BatchNormalization"; }
    const char* default_name() const override { return "batch_normalization"; }

    void do_initialize(Rng&) override { set_initial_values(); }

    // The moving statistics' momentum: moving = moving * momentum + batch * (1 - momentum).
    double momentum() const { return momentum_; }
    void set_momentum(double momentum) {
        BCNN_CHECK(momentum >= 0 && momentum <= 1, "BatchNormalization: momentum " << momentum << " is outside [0, 1]");
        momentum_ = momentum;
    }

    Tensor<T> forward(const Tensor<T>& x, const Context& context) override {
        this->check_input(x);
        input_ = x;
        batch_statistics_ = context.training && this->trainable();
        fused_pool_ = nullptr;
        Tensor<T>& y = this->reuse(output_, x.shape());
        if (batch_statistics_) {
            const Shape channels = gamma_->value.shape();
            backend::batchnorm_forward_training(x, gamma_->value, beta_->value, momentum_, epsilon_,
                                                cpu::keras_unbiased_moving_variance(x.rank()), moving_mean_->value,
                                                moving_variance_->value, y, this->reuse(saved_mean_, channels),
                                                this->reuse(saved_inv_std_, channels));
        } else {
            backend::batchnorm_forward_inference(x, gamma_->value, beta_->value, moving_mean_->value,
                                                 moving_variance_->value, epsilon_, y);
        }
        return y;
    }

    // The layer `weights` (..., C) and `bias` (C) or nullptr feed, with this
    // BatchNorm (inference mode) folded in: kernels/cpu/batchnorm_folding.hpp,
    // on the tensors' device (backend::fold_batchnorm).
    void fold_into(const Tensor<T>& weights, OptionalInput<T> bias, Tensor<T>& folded_weights,
                   Tensor<T>& folded_bias) const {
        backend::fold_batchnorm(weights, bias, gamma_->value, beta_->value, moving_mean_->value,
                                moving_variance_->value, epsilon_, folded_weights, folded_bias);
    }

    Tensor<T> backward(const Tensor<T>& dy, bool need_input_grad) override {
        BCNN_CHECK(!fused_pool_, "BatchNormalization '" << this->name() << "': the last forward ran fused with '"
                                                        << fused_pool_->name()
                                                        << "'; its backward is backward_fused (through the Sequential)");
        Tensor<T> dx = input_gradient(need_input_grad);
        if (batch_statistics_)
            backend::batchnorm_backward_training(input_, gamma_->value, saved_mean_, saved_inv_std_, dy,
                                                 dx.defined() ? &dx : nullptr, gamma_gradient(), beta_gradient());
        else
            backend::batchnorm_backward_inference(input_, gamma_->value, moving_mean_->value,
                                                  moving_variance_->value, epsilon_, dy, dx.defined() ? &dx : nullptr,
                                                  gamma_gradient(), beta_gradient());
        return dx;
    }

    // A MaxPooling2D whose windows do not overlap, after an (H, W, C) input.
    bool fuses_with(const Module<T>& next) const override {
        const auto* pool = dynamic_cast<const MaxPooling2D<T>*>(&next);
        return pool && this->input_shape().rank() == 3 && cpu::batchnorm_max_pool_applies(pool->window());
    }

    // This layer then the pooling `next` (fuses_with), on the CPU without
    // writing this layer's output; elsewhere the two apart.
    Tensor<T> forward_fused(Module<T>& next, const Tensor<T>& x, const Context& context) override {
        if (this->device() != Device::cpu) return Module<T>::forward_fused(next, x, context);
        this->check_input(x);
        const auto& pool = dynamic_cast<const MaxPooling2D<T>&>(next);
        input_ = x;
        batch_statistics_ = context.training && this->trainable();
        Tensor<T>& pooled = this->reuse(output_, this->batch_shape(x.dim(0), pool.output_shape()));
        if (batch_statistics_) {
            const Shape channels = gamma_->value.shape();
            fused_affine_ = cpu::batchnorm_max_pool_forward_training(
                x, gamma_->value, beta_->value, momentum_, epsilon_, cpu::keras_unbiased_moving_variance(x.rank()),
                moving_mean_->value, moving_variance_->value, pool.window(), pooled,
                this->reuse(saved_mean_, channels), this->reuse(saved_inv_std_, channels));
        } else {
            fused_affine_ = cpu::batchnorm_max_pool_forward_inference(x, gamma_->value, beta_->value,
                                                                      moving_mean_->value, moving_variance_->value,
                                                                      epsilon_, pool.window(), pooled);
        }
        fused_pool_ = &pool;
        return pooled;
    }

    // dy: the pooling's output gradient.
    Tensor<T> backward_fused(Module<T>& next, const Tensor<T>& dy, bool need_input_grad) override {
        if (fused_pool_ != &next) return Module<T>::backward_fused(next, dy, need_input_grad);
        Tensor<T> dx = input_gradient(need_input_grad);
        if (batch_statistics_)
            cpu::batchnorm_max_pool_backward_training(input_, gamma_->value, saved_mean_, saved_inv_std_,
                                                      fused_affine_, fused_pool_->window(), dy,
                                                      dx.defined() ? &dx : nullptr, gamma_gradient(), beta_gradient());
        else
            cpu::batchnorm_max_pool_backward_inference(input_, gamma_->value, moving_mean_->value,
                                                       moving_variance_->value, epsilon_, fused_affine_,
                                                       fused_pool_->window(), dy, dx.defined() ? &dx : nullptr,
                                                       gamma_gradient(), beta_gradient());
        return dx;
    }

protected:
    Shape do_build(const Shape& input_shape) override {
        BCNN_CHECK(input_shape.rank() >= 1 && input_shape.numel() > 0,
                   "BatchNormalization '" << this->name() << "': input must have a channel axis and no empty axis, got "
                                          << input_shape << " (without the batch axis)");
        const Shape channels{input_shape[input_shape.rank() - 1]};
        gamma_ = &this->add_parameter("gamma", channels);
        beta_ = &this->add_parameter("beta", channels);
        moving_mean_ = &this->add_parameter("moving_mean", channels, true);
        moving_variance_ = &this->add_parameter("moving_variance", channels, true);
        set_initial_values();
        return input_shape;
    }

private:
    // What a backward writes: dx (the input's shape; empty unless
    // need_input_grad), and gamma's and beta's gradients (nullptr when frozen).
    Tensor<T> input_gradient(bool need_input_grad) {
        return need_input_grad ? this->reuse(input_grad_, input_.shape()) : Tensor<T>();
    }
    Tensor<T>* gamma_gradient() { return this->trainable() ? &gamma_->grad : nullptr; }
    Tensor<T>* beta_gradient() { return this->trainable() ? &beta_->grad : nullptr; }

    void set_initial_values() {
        gamma_->value.fill(T(1));
        beta_->value.fill(T(0));
        moving_mean_->value.fill(T(0));
        moving_variance_->value.fill(T(1));
    }

    double momentum_, epsilon_;
    Parameter<T>* gamma_ = nullptr;
    Parameter<T>* beta_ = nullptr;
    Parameter<T>* moving_mean_ = nullptr;
    Parameter<T>* moving_variance_ = nullptr;
    bool batch_statistics_ = false;  // the mode of the last forward
    // The pooling the last forward ran fused with (nullptr: none), and its normalising map.
    const MaxPooling2D<T>* fused_pool_ = nullptr;
    cpu::ChannelAffine fused_affine_;
    Tensor<T> input_, output_, input_grad_, saved_mean_, saved_inv_std_;
};

}  // namespace nn
}  // namespace bcnn

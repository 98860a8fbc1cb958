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

#include "bcnn/backend/batchnorm.hpp"
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
        Tensor<T> dx;
        if (need_input_grad) dx = this->reuse(input_grad_, input_.shape());
        const bool weights = this->trainable();
        Tensor<T>* d_gamma = weights ? &gamma_->grad : nullptr;
        Tensor<T>* d_beta = weights ? &beta_->grad : nullptr;
        if (batch_statistics_)
            backend::batchnorm_backward_training(input_, gamma_->value, saved_mean_, saved_inv_std_, dy,
                                                 need_input_grad ? &dx : nullptr, d_gamma, d_beta);
        else
            backend::batchnorm_backward_inference(input_, gamma_->value, moving_mean_->value,
                                                  moving_variance_->value, epsilon_, dy,
                                                  need_input_grad ? &dx : nullptr, d_gamma, d_beta);
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
    Tensor<T> input_, output_, input_grad_, saved_mean_, saved_inv_std_;
};

}  // namespace nn
}  // namespace bcnn

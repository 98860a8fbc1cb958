#pragma once
// TrainStep: one optimisation step on one batch, exactly what fit() does per
// training batch: forward in training mode (dropout draws from state.rng),
// the fused softmax cross-entropy, backward, and the optimiser's update of
// every trainable parameter of state.model. Its probability and gradient
// buffers are kept between calls, so steps on same-shaped batches allocate
// nothing. Also what bench/ times as a training step.
//   images (B, model input shape...), labels (B) -> the batch's mean loss and
//   predictions, from the weights before the update
// A non-finite loss or logit throws TrainingDiverged before any update.
// With a LossScaler (fp16 mixed precision), the loss gradient is multiplied
// by its scale before backward and the parameter gradients are checked and
// unscaled before the update; a step whose gradients overflowed updates
// nothing (parameters and optimiser state untouched; BatchNorm's moving
// statistics have moved in the forward pass, as in PyTorch) and skipped()
// says so.

#include <cmath>
#include <string>
#include <vector>

#include "bcnn/backend/elementwise.hpp"
#include "bcnn/kernels/cpu/softmax_cross_entropy.hpp"
#include "bcnn/train/callback.hpp"
#include "bcnn/train/evaluate.hpp"
#include "bcnn/train/loss_scaler.hpp"

namespace bcnn {
namespace train {

// The loss (or a logit) of a training batch is not finite; nothing was updated.
struct TrainingDiverged : Error {
    using Error::Error;
};

class TrainStep {
public:
    // state.model must be built; `state` (and `loss_scaler`, nullptr: no
    // loss scaling) must outlive the step.
    explicit TrainStep(TrainingState<float>& state, LossScaler* loss_scaler = nullptr)
        : state_(state), loss_scaler_(loss_scaler), parameters_(state.model.named_parameters()) {}

    // Whether the last call skipped its update (non-finite scaled gradients).
    bool skipped() const { return skipped_; }

    BatchResult operator()(const Tensor<float>& images, const Tensor<std::int32_t>& labels) {
        nn::Module<float>& model = state_.model;
        const Tensor<float> logits = model.forward(images, nn::Context{true, &state_.rng});
        BatchResult scored;
        try {
            scored = detail::score_batch(logits, labels, probabilities_);
        } catch (const Error& error) {
            throw TrainingDiverged(error.what());
        }
        if (!std::isfinite(scored.loss)) throw TrainingDiverged("loss is " + std::to_string(scored.loss));
        if (!d_logits_.defined() || d_logits_.shape() != logits.shape())
            d_logits_ = Tensor<float>::uninitialized(logits.shape());
        cpu::softmax_cross_entropy_backward(probabilities_, labels, d_logits_);
        if (loss_scaler_) backend::scale_inplace(d_logits_, static_cast<float>(loss_scaler_->scale()));
        model.backward(d_logits_, false);
        skipped_ = loss_scaler_ && !loss_scaler_->unscale(parameters_);
        if (!skipped_) state_.optimizer.step(parameters_);
        return scored;
    }

private:
    TrainingState<float>& state_;
    LossScaler* loss_scaler_;
    std::vector<nn::NamedParameter<float>> parameters_;
    bool skipped_ = false;
    Tensor<float> probabilities_, d_logits_;  // (B, classes)
};

}  // namespace train
}  // namespace bcnn

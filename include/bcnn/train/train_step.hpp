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

#include <cmath>
#include <string>
#include <vector>

#include "bcnn/kernels/cpu/softmax_cross_entropy.hpp"
#include "bcnn/train/callback.hpp"
#include "bcnn/train/evaluate.hpp"

namespace bcnn {
namespace train {

// The loss (or a logit) of a training batch is not finite; nothing was updated.
struct TrainingDiverged : Error {
    using Error::Error;
};

class TrainStep {
public:
    // state.model must be built; `state` must outlive the step.
    explicit TrainStep(TrainingState<float>& state)
        : state_(state), parameters_(state.model.named_parameters()) {}

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
        model.backward(d_logits_, false);
        state_.optimizer.step(parameters_);
        return scored;
    }

private:
    TrainingState<float>& state_;
    std::vector<nn::NamedParameter<float>> parameters_;
    Tensor<float> probabilities_, d_logits_;  // (B, classes)
};

}  // namespace train
}  // namespace bcnn

#pragma once
// LearningRateWarmup: raises the optimiser's learning rate linearly from
// target/steps to `target` over the first `steps` optimiser steps, then
// leaves it alone (so ReduceLROnPlateau and others act on it afterwards).
// Before step k (0-based, the optimiser's iterations()) with k < steps:
//   lr = target * (k + 1) / steps
// The step count is the optimiser's, so a run resumed from a checkpoint
// continues the warm-up where it stopped. Warm-up keeps Adam's first,
// learning-rate-sized steps small while its moment estimates settle; without
// it the study's network can stall at chance (README, "Results").

#include <cstdint>

#include "bcnn/train/callback.hpp"

namespace bcnn {
namespace train {

template <typename T>
class LearningRateWarmup : public Callback<T> {
public:
    LearningRateWarmup(double target, std::int64_t steps) : target_(target), steps_(steps) {
        BCNN_CHECK(target > 0 && std::isfinite(target), "LearningRateWarmup: target learning rate must be > 0, got " << target);
        BCNN_CHECK(steps >= 1, "LearningRateWarmup: steps must be >= 1, got " << steps);
    }

    void on_batch_begin(int /*epoch*/, int /*batch*/, TrainingState<T>& state) override {
        const std::int64_t step = state.optimizer.iterations();
        if (step < steps_)
            state.optimizer.set_learning_rate(target_ * static_cast<double>(step + 1) / static_cast<double>(steps_));
    }

private:
    double target_;
    std::int64_t steps_;
};

}  // namespace train
}  // namespace bcnn

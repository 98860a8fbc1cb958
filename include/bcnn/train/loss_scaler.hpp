#pragma once
// LossScaler: dynamic loss scaling for fp16 mixed precision (bf16 has
// float's exponent range and needs none). Small gradients underflow in fp16
// (below about 6e-8); multiplying the loss gradient by a scale S before
// backward lifts them into range, and dividing the parameter gradients by S
// before the optimiser step undoes it. S adapts as in PyTorch's GradScaler
// and Keras' LossScaleOptimizer:
//   - a step whose gradients are all finite is taken (gradients unscaled);
//     after `growth_interval` such steps in a row, S *= growth_factor;
//   - a step with an inf or NaN gradient (the scaled values overflowed) is
//     skipped: parameters and optimiser state stay as they are, and
//     S = max(S * backoff_factor, min_scale).
// With a power-of-two S (the defaults keep it one) scaling and unscaling are
// exact in binary floating point, so a step without overflow or underflow
// gives the same bits as the unscaled step. Works on CPU and device
// gradients (backend::scale_inplace / all_finite). TrainStep uses it
// (train_step.hpp).

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

#include "bcnn/backend/elementwise.hpp"
#include "bcnn/nn/module.hpp"

namespace bcnn {
namespace train {

struct LossScalerOptions {
    double initial_scale = 32768;  // 2^15
    double growth_factor = 2;      // > 1
    double backoff_factor = 0.5;   // in (0, 1)
    int growth_interval = 2000;    // finite steps in a row before S grows; >= 1
    double min_scale = 1;          // > 0, <= initial_scale
};

class LossScaler {
public:
    explicit LossScaler(const LossScalerOptions& options = {}) : options_(options), scale_(options.initial_scale) {
        const LossScalerOptions& o = options;
        BCNN_CHECK(std::isfinite(o.min_scale) && o.min_scale > 0,
                   "LossScaler: min_scale must be finite and > 0, got " << o.min_scale);
        BCNN_CHECK(std::isfinite(o.initial_scale) && o.initial_scale >= o.min_scale,
                   "LossScaler: initial_scale must be finite and >= min_scale (" << o.min_scale << "), got "
                                                                                 << o.initial_scale);
        BCNN_CHECK(std::isfinite(o.growth_factor) && o.growth_factor > 1,
                   "LossScaler: growth_factor must be finite and > 1, got " << o.growth_factor);
        BCNN_CHECK(o.backoff_factor > 0 && o.backoff_factor < 1,
                   "LossScaler: backoff_factor must be in (0, 1), got " << o.backoff_factor);
        BCNN_CHECK(o.growth_interval >= 1, "LossScaler: growth_interval must be >= 1, got " << o.growth_interval);
    }

    const LossScalerOptions& options() const { return options_; }
    // The current scale S: multiply the loss gradient by it before backward.
    double scale() const { return scale_; }
    // Finite steps since the scale last changed.
    int finite_steps() const { return finite_steps_; }
    // Steps skipped so far for non-finite gradients.
    std::int64_t skipped_steps() const { return skipped_steps_; }

    // After backward with the loss gradient scaled by scale(): when every
    // trainable parameter's gradient is finite, divides them by the scale,
    // counts the step (growing the scale after growth_interval of them) and
    // returns true: take the optimiser step. Otherwise leaves the gradients
    // as they are, backs the scale off and returns false: skip the step.
    bool unscale(const std::vector<nn::NamedParameter<float>>& parameters) {
        for (const nn::NamedParameter<float>& p : parameters)
            if (p.trainable && !backend::all_finite(p.parameter->grad)) {
                scale_ = std::max(scale_ * options_.backoff_factor, options_.min_scale);
                finite_steps_ = 0;
                ++skipped_steps_;
                return false;
            }
        const float inverse = static_cast<float>(1.0 / scale_);
        for (const nn::NamedParameter<float>& p : parameters)
            if (p.trainable) backend::scale_inplace(p.parameter->grad, inverse);
        if (++finite_steps_ >= options_.growth_interval) {
            scale_ *= options_.growth_factor;
            finite_steps_ = 0;
        }
        return true;
    }

private:
    LossScalerOptions options_;
    double scale_;
    int finite_steps_ = 0;
    std::int64_t skipped_steps_ = 0;
};

}  // namespace train
}  // namespace bcnn

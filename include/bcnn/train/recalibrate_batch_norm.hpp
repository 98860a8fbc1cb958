#pragma once
// recalibrate_batch_norm(): re-estimates the moving statistics of every
// trainable BatchNormalization layer for the model's current weights
// ("precise BatchNorm", Wu & Johnson 2021, "Rethinking 'Batch' in BatchNorm").
//
// During training the moving statistics are an exponential average (Keras'
// momentum 0.99: about the last 100 steps) of batch statistics taken while
// the weights were still changing; when they change fast the averages lag and
// inference-mode scores drop far below training-mode ones. This runs up to
// `max_batches` batches of `loader` forward in training mode (dropout on, as
// in training), with no weight update, and sets each moving mean and variance
// to the plain mean of those batches' statistics: batch k (0-based) is given
// momentum k / (k + 1). The layers' own momenta are restored afterwards.
// Returns the number of batches used. Not Keras behaviour: a program that
// calls it should say so next to the scores it reports.

#include <vector>

#include "bcnn/data/batch_loader.hpp"
#include "bcnn/nn/batch_norm.hpp"

namespace bcnn {
namespace train {

namespace detail {

template <typename T>
void collect_batch_norms(nn::Module<T>& module, std::vector<nn::BatchNormalization<T>*>& out) {
    if (auto* bn = dynamic_cast<nn::BatchNormalization<T>*>(&module)) out.push_back(bn);
    for (nn::Module<T>* child : module.children()) collect_batch_norms(*child, out);
}

// Restores the momenta the layers had when it was made.
template <typename T>
class MomentumRestorer {
public:
    explicit MomentumRestorer(const std::vector<nn::BatchNormalization<T>*>& layers) : layers_(layers) {
        for (auto* bn : layers_) momenta_.push_back(bn->momentum());
    }
    ~MomentumRestorer() {
        for (std::size_t i = 0; i < layers_.size(); ++i) layers_[i]->set_momentum(momenta_[i]);
    }
    MomentumRestorer(const MomentumRestorer&) = delete;
    MomentumRestorer& operator=(const MomentumRestorer&) = delete;

private:
    std::vector<nn::BatchNormalization<T>*> layers_;
    std::vector<double> momenta_;
};

}  // namespace detail

inline Index recalibrate_batch_norm(nn::Module<float>& model, data::BatchLoader& loader, Index max_batches, Rng& rng) {
    BCNN_CHECK(max_batches >= 1, "recalibrate_batch_norm: max_batches must be >= 1, got " << max_batches);
    std::vector<nn::BatchNormalization<float>*> layers;
    detail::collect_batch_norms(model, layers);
    const detail::MomentumRestorer<float> restore(layers);
    const nn::Context context{true, &rng};
    loader.start_epoch(0);
    data::Batch batch;
    Index used = 0;
    while (used < max_batches && loader.next(batch)) {
        const double momentum = static_cast<double>(used) / static_cast<double>(used + 1);
        for (auto* bn : layers) bn->set_momentum(momentum);
        model.forward(batch.images, context);
        ++used;
    }
    BCNN_CHECK(used > 0, "recalibrate_batch_norm: the loader served no batches");
    return used;
}

}  // namespace train
}  // namespace bcnn

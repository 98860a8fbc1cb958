#pragma once
// Inference over a data set: predict (class probabilities) and evaluate
// (mean loss, accuracy, confusion matrix). The model runs in inference mode:
// no dropout, BatchNorm uses its moving statistics.

#include <cstdint>
#include <vector>

#include "bcnn/data/batch_loader.hpp"
#include "bcnn/kernels/cpu/activation.hpp"
#include "bcnn/kernels/cpu/softmax_cross_entropy.hpp"
#include "bcnn/nn/module.hpp"
#include "bcnn/train/metrics.hpp"

namespace bcnn {
namespace train {

struct Evaluation {
    double loss = 0;
    double accuracy = 0;
    ConfusionMatrix confusion{1};
    std::vector<int> predictions;      // per sample, in the loader's order
    std::vector<Index> sample_indices; // the samples, in the same order
};

// Mean loss and per-sample predictions of one batch.
struct BatchResult {
    double loss = 0;
    std::vector<int> predictions;
};

namespace detail {

// Index of the largest value in each row of probabilities (B, K).
inline std::vector<int> argmax_rows(const Tensor<float>& probabilities) {
    const RowMatrix<float> p = probabilities.as_rows("argmax");
    std::vector<int> out(static_cast<std::size_t>(p.rows));
    for (Index r = 0; r < p.rows; ++r) {
        int best = 0;
        for (Index k = 1; k < p.cols; ++k)
            if (p.row(r)[k] > p.row(r)[best]) best = static_cast<int>(k);
        out[static_cast<std::size_t>(r)] = best;
    }
    return out;
}

// The batch's loss and predictions; its softmax goes into `probabilities` (B, K).
inline BatchResult score_batch(const Tensor<float>& logits, const Tensor<std::int32_t>& labels,
                               Tensor<float>& probabilities) {
    if (!probabilities.defined() || probabilities.shape() != logits.shape())
        probabilities = Tensor<float>::uninitialized(logits.shape());
    BatchResult result;
    result.loss = cpu::softmax_cross_entropy_forward(logits, labels, probabilities);
    result.predictions = argmax_rows(probabilities);
    return result;
}

}  // namespace detail

// Runs the model over every batch of `loader` for `epoch` (which fixes the
// order when the loader shuffles; evaluation loaders usually do not).
inline Evaluation evaluate(nn::Module<float>& model, data::BatchLoader& loader, int classes, std::uint64_t epoch = 0) {
    Evaluation result;
    result.confusion = ConfusionMatrix(classes);
    const nn::Context context = nn::inference_only_context();
    Tensor<float> probabilities;
    double loss_sum = 0;
    Index samples = 0;
    loader.start_epoch(epoch);
    data::Batch batch;
    while (loader.next(batch)) {
        const Tensor<float> logits = model.forward(batch.images, context);
        BCNN_CHECK(logits.rank() == 2 && logits.dim(1) == classes,
                   "evaluate: model output " << logits.shape() << " does not have " << classes << " classes");
        const BatchResult scored = detail::score_batch(logits, batch.labels, probabilities);
        const Index n = batch.labels.dim(0);
        loss_sum += scored.loss * static_cast<double>(n);
        samples += n;
        for (Index i = 0; i < n; ++i) {
            result.confusion.add(batch.labels.data()[i], scored.predictions[static_cast<std::size_t>(i)]);
            result.predictions.push_back(scored.predictions[static_cast<std::size_t>(i)]);
            result.sample_indices.push_back(batch.indices[static_cast<std::size_t>(i)]);
        }
    }
    BCNN_CHECK(samples > 0, "evaluate: the loader served no samples");
    result.loss = loss_sum / static_cast<double>(samples);
    result.accuracy = result.confusion.accuracy();
    return result;
}

// Class probabilities (N, K) for a batch of images (N, H, W, C), in inference mode.
inline Tensor<float> predict(nn::Module<float>& model, const Tensor<float>& images) {
    const Tensor<float> logits = model.forward(images, nn::inference_only_context());
    Tensor<float> probabilities = Tensor<float>::uninitialized(logits.shape());
    cpu::softmax_forward(logits, probabilities);
    return probabilities;
}

}  // namespace train
}  // namespace bcnn

#pragma once
// compute_features(): a module's outputs, in inference mode, for every sample
// a loader serves, kept in one float tensor indexed like the loader's source.
// For a frozen backbone these are the features of every image computed once:
// a BatchLoader over them (its float-sample constructor) then trains and
// scores the head alone (nn/sequential_tail.hpp) for as many epochs as
// wanted, at the cost of one backbone forward pass over the data.

#include <cstdint>
#include <functional>

#include "bcnn/data/batch_loader.hpp"
#include "bcnn/nn/module.hpp"

namespace bcnn {
namespace train {

// Called after each batch with the samples done so far and the loader's total.
using FeatureProgress = std::function<void(Index done, Index total)>;

// module: built, input (H, W, C) -> output (out...); the loader serves samples
// of its input shape, drawn from a source of `rows` samples (loader indices
// < rows). Returns features (rows, out...): row i is the module's output for
// sample i, computed in batches of the loader's batch size; rows the loader
// does not serve are zero. Runs the loader's epoch `epoch`.
inline Tensor<float> compute_features(nn::Module<float>& module, data::BatchLoader& loader, Index rows,
                                      const FeatureProgress& progress = {}, std::uint64_t epoch = 0) {
    BCNN_CHECK(module.built(), "compute_features: module '" << module.name() << "' is not built");
    BCNN_CHECK(rows >= 0, "compute_features: rows must be >= 0, got " << rows);
    Shape shape{rows};
    for (Index extent : module.output_shape()) shape.push_back(extent);
    Tensor<float> features(shape);
    const nn::Context inference = nn::inference_only_context();
    Index done = 0;
    loader.start_epoch(epoch);
    data::Batch batch;
    while (loader.next(batch)) {
        const Tensor<float> out = module.forward(batch.images, inference);
        for (std::size_t j = 0; j < batch.indices.size(); ++j) {
            const Index row = batch.indices[j], b = static_cast<Index>(j);
            BCNN_CHECK(row < rows, "compute_features: the loader served sample " << row << " of a source of " << rows);
            features.slice(0, row, row + 1).copy_from(out.slice(0, b, b + 1));
        }
        done += static_cast<Index>(batch.indices.size());
        if (progress) progress(done, loader.samples());
    }
    return features;
}

}  // namespace train
}  // namespace bcnn

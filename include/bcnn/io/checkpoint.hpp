#pragma once
// Full checkpoints: everything needed to resume training bit for bit, in one
// safetensors file written atomically:
//   tensors   "model/<name>"       every parameter and buffer of the module
//             "optimizer/<slot>/<name>"   the optimiser's state (optimizer.hpp)
//   metadata  "bcnn.format" = "checkpoint-1", "bcnn.model" (the module's name),
//             "bcnn.epoch" (epochs completed: training resumes at this epoch
//             index), "bcnn.rng.seed", "bcnn.rng.counter", the optimiser's
//             "optimizer.*" scalars, and the caller's free metadata (history,
//             best metric, ...), whose keys must not start with "bcnn." or
//             "optimizer.".
// load_checkpoint() checks the whole file (format, model tensors, optimiser
// type, hyperparameters and state) before changing anything.

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "bcnn/core/rng.hpp"
#include "bcnn/io/metadata.hpp"
#include "bcnn/io/weights.hpp"
#include "bcnn/optim/optimizer.hpp"

namespace bcnn {
namespace io {

struct CheckpointState {
    int epoch = 0;  // epochs completed
    Rng rng;        // the generator's seed and counter
    std::map<std::string, std::string> metadata = {};
};

namespace detail {

inline bool is_reserved_key(const std::string& key) {
    return key.rfind("bcnn.", 0) == 0 || key.rfind("optimizer.", 0) == 0;
}

}  // namespace detail

template <typename T>
void save_checkpoint(const std::string& path, nn::Module<T>& model, const optim::Optimizer<T>& optimizer,
                     const CheckpointState& state) {
    BCNN_CHECK(state.epoch >= 0, "save_checkpoint: epoch must be >= 0, got " << state.epoch << " ('" << path << "')");
    std::map<std::string, std::string> metadata;
    for (const auto& [key, value] : state.metadata) {
        BCNN_CHECK(!detail::is_reserved_key(key), "save_checkpoint: metadata key \"" << key
                                                      << "\" is reserved (keys starting with \"bcnn.\" or \"optimizer.\")");
        metadata[key] = value;
    }
    metadata[kFormatKey] = kCheckpointFormat;
    metadata["bcnn.model"] = model.name();
    metadata["bcnn.epoch"] = std::to_string(state.epoch);
    metadata["bcnn.rng.seed"] = std::to_string(state.rng.seed());
    metadata["bcnn.rng.counter"] = std::to_string(state.rng.counter());
    std::vector<NamedTensor> tensors;
    detail::append_parameters(tensors, model.named_parameters(), "model/");
    optimizer.save_state(tensors, metadata);
    save_safetensors(path, tensors, metadata);
}

// Restores the module's parameters and buffers and the optimiser's state
// from `path`; returns the epoch, generator and free metadata. On any
// mismatch bcnn::Error names it and neither the module nor the optimiser
// is changed.
template <typename T>
CheckpointState load_checkpoint(const std::string& path, nn::Module<T>& model, optim::Optimizer<T>& optimizer) {
    const SafetensorsFile file = SafetensorsFile::open(path);
    const std::string format = detail::file_format(file);
    BCNN_CHECK(format != kWeightsFormat, "'" << path << "' is a weights-only file (" << kFormatKey << " \"" << format
                                             << "\"), not a checkpoint; load it with load_weights()");
    BCNN_CHECK(format == kCheckpointFormat,
               "'" << path << "' is not a bcnn checkpoint: "
                   << (format.empty() ? "it has no \"" + std::string(kFormatKey) + "\" metadata"
                                      : kFormatKey + std::string(" is \"") + format + "\", expected \"" +
                                            kCheckpointFormat + "\""));
    CheckpointState state;
    state.epoch = metadata_number<int>(file, "bcnn.epoch");
    BCNN_CHECK(state.epoch >= 0, "'" << path << "': bcnn.epoch is negative (" << state.epoch << ")");
    state.rng = Rng(metadata_number<std::uint64_t>(file, "bcnn.rng.seed"),
                    metadata_number<std::uint64_t>(file, "bcnn.rng.counter"));
    for (const auto& [key, value] : file.metadata())
        if (!detail::is_reserved_key(key)) state.metadata[key] = value;

    const std::vector<nn::NamedParameter<T>> params = model.named_parameters();
    LoadReport report;
    const std::vector<Tensor<T>> values = detail::read_parameters(file, params, "model/", report);
    for (const SafetensorsEntry& entry : file.entries())
        if (entry.name.rfind("model/", 0) != 0 && entry.name.rfind("optimizer/", 0) != 0) report.unexpected(entry.name);
    report.throw_if_any("'" + path + "' does not fit model '" + model.name() + "'");
    optimizer.load_state(file, params);  // checks everything before changing the optimiser
    detail::assign_parameters(params, values);
    return state;
}

}  // namespace io
}  // namespace bcnn

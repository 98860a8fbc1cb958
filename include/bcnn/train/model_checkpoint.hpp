#pragma once
// ModelCheckpoint: writes a full checkpoint (io/checkpoint.hpp) to `path` at
// the end of an epoch, atomically (a reader never sees a partial file).
// save_best_only: only when the monitored value improves on the best so far
// (max: current > best, min: current < best, as Keras); otherwise every
// epoch. The checkpoint's epoch is the number of epochs completed (epoch + 1),
// so training resumed from it starts with the next epoch.
// initial_value_threshold (Keras' name) seeds the best value, e.g. when
// resuming, so that a worse epoch does not overwrite an earlier best file.
// Reports, as Keras: "Epoch 2: val_accuracy improved from 0.50000 to
// 0.60000, saving model to best.safetensors", "Epoch 3: val_accuracy did
// not improve from 0.60000", or "Epoch 1: saving model to ...".

#include <cstdio>
#include <optional>
#include <string>

#include "bcnn/io/checkpoint.hpp"
#include "bcnn/train/callback.hpp"

namespace bcnn {
namespace train {

template <typename T>
class ModelCheckpoint : public Callback<T> {
public:
    explicit ModelCheckpoint(std::string path, std::string monitor = "val_loss", bool save_best_only = true,
                             MonitorMode mode = MonitorMode::automatic,
                             std::optional<double> initial_value_threshold = std::nullopt)
        : path_(std::move(path)), monitor_(std::move(monitor), mode, "ModelCheckpoint"),
          save_best_only_(save_best_only), best_(initial_value_threshold.value_or(monitor_.worst())) {
        BCNN_CHECK(!path_.empty(), "ModelCheckpoint: the path is empty");
    }

    void on_epoch_end(int epoch, const Logs& logs, TrainingState<T>& state) override {
        const std::string prefix = "Epoch " + std::to_string(epoch + 1) + ": ";
        if (!save_best_only_) {
            save(epoch, state);
            this->report(prefix + "saving model to " + path_);
            return;
        }
        const double current = monitor_.value(logs);
        if (monitor_.maximize() ? current > best_ : current < best_) {
            const double previous = best_;
            save(epoch, state);
            best_ = current;
            this->report(prefix + monitor_.key() + " improved from " + fixed5(previous) + " to " + fixed5(current) +
                         ", saving model to " + path_);
        } else {
            this->report(prefix + monitor_.key() + " did not improve from " + fixed5(best_));
        }
    }

    double best() const { return best_; }
    const std::string& path() const { return path_; }

private:
    void save(int epoch, const TrainingState<T>& state) const {
        io::CheckpointState checkpoint;
        checkpoint.epoch = epoch + 1;
        checkpoint.rng = state.rng;
        checkpoint.metadata = state.metadata;
        io::save_checkpoint(path_, state.model, state.optimizer, checkpoint);
    }

    // Python's "{:.5f}".
    static std::string fixed5(double value) {
        char text[64];
        std::snprintf(text, sizeof(text), "%.5f", value);
        return text;
    }

    std::string path_;
    Monitor monitor_;
    bool save_best_only_;
    double best_;
};

}  // namespace train
}  // namespace bcnn

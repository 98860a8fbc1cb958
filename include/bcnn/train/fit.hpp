#pragma once
// fit(): the training loop, as Keras' model.fit. Each epoch: every batch of
// the training loader goes forward (training mode), through the fused
// softmax cross-entropy, backward, and one optimiser step; then the
// validation set is evaluated and the callbacks see the epoch's logs
// ("loss", "accuracy", "val_loss", "val_accuracy", "lr", and "seconds", the
// epoch's wall time including validation). Training loss and
// accuracy are means over the epoch's samples, as Keras reports them.
// A non-finite loss stops training with an error naming the epoch and batch.

#include <cstdio>
#include <memory>
#include <ostream>
#include <string>
#include <vector>

#include "bcnn/optim/optimizer.hpp"
#include "bcnn/train/callback.hpp"
#include "bcnn/train/evaluate.hpp"
#include "bcnn/train/progress.hpp"
#include "bcnn/train/train_step.hpp"

namespace bcnn {
namespace train {

struct FitOptions {
    int epochs = 10;
    int initial_epoch = 0;              // epochs already done (when resuming)
    int classes = 4;
    std::ostream* progress = nullptr;   // where the progress bar goes; nullptr: silent
    bool progress_terminal = false;     // redraw one line (true) or print plain lines
    LossScaler* loss_scaler = nullptr;  // fp16 mixed precision: dynamic loss scaling (loss_scaler.hpp)
};

// What fit() returns: the logs of every epoch run, in order.
using History = std::vector<Logs>;

// Logs of one epoch as text: "loss 0.4012  accuracy 0.8533  val_loss ...".
inline std::string format_logs(const Logs& logs) {
    std::string out;
    for (const char* key : {"loss", "accuracy", "val_loss", "val_accuracy", "lr"}) {
        const auto it = logs.find(key);
        if (it == logs.end()) continue;
        char value[64];
        std::snprintf(value, sizeof value, key == std::string("lr") ? "%.3g" : "%.4f", it->second);
        out += (out.empty() ? "" : "  ") + std::string(key) + " " + value;
    }
    return out;
}

namespace detail {

// One epoch of training; returns the epoch's mean loss and accuracy.
inline Logs train_epoch(TrainingState<float>& state, data::BatchLoader& loader, const FitOptions& options, int epoch,
                        const std::vector<Callback<float>*>& callbacks) {
    TrainStep step(state, options.loss_scaler);
    double loss_sum = 0;
    Index samples = 0, correct = 0, batches = 0;
    std::unique_ptr<ProgressBar> bar;
    if (options.progress) {
        ProgressOptions progress_options;
        progress_options.terminal = options.progress_terminal;
        progress_options.label = "epoch " + std::to_string(epoch + 1) + "/" + std::to_string(options.epochs);
        bar = std::make_unique<ProgressBar>(*options.progress, loader.batches_per_epoch(), progress_options);
    }
    loader.start_epoch(static_cast<std::uint64_t>(epoch));
    data::Batch batch;
    while (loader.next(batch)) {
        for (Callback<float>* callback : callbacks) callback->on_batch_begin(epoch, static_cast<int>(batches), state);
        BatchResult scored;
        try {
            scored = step(batch.images, batch.labels);
        } catch (const TrainingDiverged& error) {
            throw Error("training diverged at epoch " + std::to_string(epoch + 1) + ", batch " +
                        std::to_string(batches + 1) + ": " + error.what());
        }
        const Index n = batch.labels.dim(0);
        loss_sum += scored.loss * static_cast<double>(n);
        for (Index i = 0; i < n; ++i) correct += scored.predictions[static_cast<std::size_t>(i)] == batch.labels.data()[i];
        samples += n;
        ++batches;
        if (bar)
            bar->update(batches, samples, loss_sum / static_cast<double>(samples),
                        static_cast<double>(correct) / static_cast<double>(samples));
    }
    BCNN_CHECK(samples > 0, "fit: the training loader served no samples");
    Logs logs{{"loss", loss_sum / static_cast<double>(samples)},
              {"accuracy", static_cast<double>(correct) / static_cast<double>(samples)}};
    if (bar) bar->finish();
    return logs;
}

}  // namespace detail

// Trains `state.model` with `state.optimizer` for epochs [initial_epoch,
// epochs), evaluating on `validation` (may be nullptr) after each epoch.
inline History fit(TrainingState<float>& state, data::BatchLoader& train_loader, data::BatchLoader* validation,
                   const FitOptions& options, const std::vector<Callback<float>*>& callbacks = {}) {
    BCNN_CHECK(options.epochs >= 1 && options.initial_epoch >= 0 && options.initial_epoch <= options.epochs,
               "fit: epochs " << options.epochs << " with initial_epoch " << options.initial_epoch);
    History history;
    state.epoch = options.initial_epoch;
    for (Callback<float>* callback : callbacks) callback->on_train_begin(state);
    for (int epoch = options.initial_epoch; epoch < options.epochs && !state.stop_training; ++epoch) {
        const double start = steady_seconds();
        Logs logs = detail::train_epoch(state, train_loader, options, epoch, callbacks);
        if (validation) {
            const Evaluation eval = evaluate(state.model, *validation, options.classes);
            logs["val_loss"] = eval.loss;
            logs["val_accuracy"] = eval.accuracy;
        }
        logs["lr"] = state.optimizer.learning_rate();
        logs["seconds"] = steady_seconds() - start;
        state.epoch = epoch + 1;
        for (Callback<float>* callback : callbacks) callback->on_epoch_end(epoch, logs, state);
        if (options.progress) *options.progress << "  " << format_logs(logs) << '\n' << std::flush;
        history.push_back(logs);
    }
    for (Callback<float>* callback : callbacks) callback->on_train_end(state);
    return history;
}

}  // namespace train
}  // namespace bcnn

#pragma once
// Training callbacks, as in Keras: a training loop calls on_train_begin(),
// on_batch_begin() before each training batch's forward pass (Keras'
// on_train_batch_begin), on_epoch_end() after each epoch with that epoch's
// logs, and on_train_end().
//
// Logs hold the epoch's results by name: "loss", "accuracy", "val_loss",
// "val_accuracy", "lr". Epoch indices are 0-based, as Keras passes them.
// The library never prints: what a Keras callback prints with verbose=1 is
// recorded in messages() and, as it happens, passed to the handler set with
// set_message_handler() (a program may print it).

#include <cmath>
#include <functional>
#include <limits>
#include <map>
#include <string>
#include <vector>

#include "bcnn/core/rng.hpp"
#include "bcnn/nn/module.hpp"
#include "bcnn/optim/optimizer.hpp"

namespace bcnn {
namespace train {

using Logs = std::map<std::string, double>;

// What callbacks may read and change during training.
template <typename T>
struct TrainingState {
    nn::Module<T>& model;
    optim::Optimizer<T>& optimizer;
    Rng& rng;
    int epoch = 0;                // epochs completed (the training loop keeps it current)
    bool stop_training = false;   // set by a callback to end training after this epoch
    std::map<std::string, std::string> metadata = {};  // free text saved in checkpoints (history, ...)
};

template <typename T>
class Callback {
public:
    virtual ~Callback() = default;

    virtual void on_train_begin(TrainingState<T>&) {}
    virtual void on_batch_begin(int /*epoch*/, int /*batch*/, TrainingState<T>&) {}
    virtual void on_epoch_end(int /*epoch*/, const Logs&, TrainingState<T>&) {}
    virtual void on_train_end(TrainingState<T>&) {}

    // Everything this callback reported, oldest first.
    const std::vector<std::string>& messages() const { return messages_; }
    void set_message_handler(std::function<void(const std::string&)> handler) { handler_ = std::move(handler); }

protected:
    void report(const std::string& message) {
        messages_.push_back(message);
        if (handler_) handler_(message);
    }

private:
    std::vector<std::string> messages_;
    std::function<void(const std::string&)> handler_;
};

// Whether a monitored quantity should go down (min) or up (max); automatic
// picks max when the name contains "acc" (accuracy), min otherwise.
enum class MonitorMode { automatic, min, max };

// A monitored key of the logs and its direction.
class Monitor {
public:
    Monitor(std::string key, MonitorMode mode, const char* owner) : key_(std::move(key)), owner_(owner) {
        BCNN_CHECK(!key_.empty(), owner_ << ": the monitored key is empty");
        maximize_ = mode == MonitorMode::max || (mode == MonitorMode::automatic && key_.find("acc") != std::string::npos);
    }

    const std::string& key() const { return key_; }
    bool maximize() const { return maximize_; }

    // The worst possible value: -inf when maximising, +inf when minimising.
    double worst() const { return maximize_ ? -std::numeric_limits<double>::infinity() : std::numeric_limits<double>::infinity(); }

    // The monitored value in `logs`; throws naming the key and the keys present.
    double value(const Logs& logs) const {
        const auto found = logs.find(key_);
        if (found != logs.end()) return found->second;
        std::string present;
        for (const auto& entry : logs) present += (present.empty() ? "" : ", ") + entry.first;
        throw Error(std::string(owner_) + ": monitored key \"" + key_ + "\" is not in the logs (present: " +
                    (present.empty() ? "none" : present) + ")");
    }

private:
    std::string key_;
    const char* owner_;
    bool maximize_ = false;
};

}  // namespace train
}  // namespace bcnn

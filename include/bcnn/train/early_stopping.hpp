#pragma once
// EarlyStopping with Keras' logic: stop when the monitored value has not
// improved for `patience` epochs. At each epoch end:
//   (restore_best_weights and no copy yet: copy the current weights)
//   wait += 1
//   improvement (max: current - min_delta > best; min: current + min_delta < best):
//       best = current, copy the weights when restore_best_weights, wait = 0
//   otherwise, when wait >= patience and epoch > 0: stop training.
// With restore_best_weights, on_train_end() puts the best epoch's weights
// (parameters and buffers) back, whether or not training stopped early.
// Reports "Epoch N: early stopping" and "Restoring model weights from the
// end of the best epoch: N." (1-based, as Keras prints them).

#include <cmath>
#include <string>
#include <vector>

#include "bcnn/train/callback.hpp"

namespace bcnn {
namespace train {

template <typename T>
class EarlyStopping : public Callback<T> {
public:
    explicit EarlyStopping(std::string monitor = "val_loss", double min_delta = 0, int patience = 0,
                           MonitorMode mode = MonitorMode::automatic, bool restore_best_weights = false)
        : monitor_(std::move(monitor), mode, "EarlyStopping"), min_delta_(std::abs(min_delta)), patience_(patience),
          restore_best_weights_(restore_best_weights) {
        BCNN_CHECK(patience >= 0, "EarlyStopping: patience must be >= 0, got " << patience);
    }

    void on_train_begin(TrainingState<T>&) override {
        wait_ = 0;
        stopped_epoch_ = 0;
        best_epoch_ = 0;
        best_ = monitor_.worst();
        best_weights_.clear();
    }

    void on_epoch_end(int epoch, const Logs& logs, TrainingState<T>& state) override {
        const double current = monitor_.value(logs);
        if (restore_best_weights_ && best_weights_.empty()) {
            copy_weights(state.model);
            best_epoch_ = epoch;
        }
        ++wait_;
        if (improves(current)) {
            best_ = current;
            best_epoch_ = epoch;
            if (restore_best_weights_) copy_weights(state.model);
            wait_ = 0;
            return;
        }
        if (wait_ >= patience_ && epoch > 0) {
            stopped_epoch_ = epoch;
            state.stop_training = true;
            this->report("Epoch " + std::to_string(epoch + 1) + ": early stopping");
        }
    }

    void on_train_end(TrainingState<T>& state) override {
        if (!restore_best_weights_ || best_weights_.empty()) return;
        const std::vector<nn::NamedParameter<T>> params = state.model.named_parameters();
        BCNN_CHECK(params.size() == best_weights_.size(),
                   "EarlyStopping: the model has " << params.size() << " parameters, the saved best weights "
                                                   << best_weights_.size());
        for (std::size_t i = 0; i < params.size(); ++i) {
            BCNN_CHECK(params[i].name == best_weights_[i].first,
                       "EarlyStopping: parameter " << i << " is \"" << params[i].name << "\", the saved one \""
                                                   << best_weights_[i].first << "\"");
            params[i].parameter->value.copy_from(best_weights_[i].second);
        }
        this->report("Restoring model weights from the end of the best epoch: " + std::to_string(best_epoch_ + 1) + ".");
    }

    // The epoch (0-based) at which training was stopped, 0 when it was not.
    int stopped_epoch() const { return stopped_epoch_; }
    int best_epoch() const { return best_epoch_; }
    double best() const { return best_; }

private:
    bool improves(double current) const {
        return monitor_.maximize() ? current - min_delta_ > best_ : current + min_delta_ < best_;
    }

    void copy_weights(nn::Module<T>& model) {
        best_weights_.clear();
        for (const nn::NamedParameter<T>& p : model.named_parameters())
            best_weights_.emplace_back(p.name, p.parameter->value.clone());
    }

    Monitor monitor_;
    double min_delta_;
    int patience_;
    bool restore_best_weights_;
    int wait_ = 0;
    int stopped_epoch_ = 0;
    int best_epoch_ = 0;
    double best_ = monitor_.worst();
    std::vector<std::pair<std::string, Tensor<T>>> best_weights_;
};

}  // namespace train
}  // namespace bcnn

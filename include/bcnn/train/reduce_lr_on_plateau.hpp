#pragma once
// ReduceLROnPlateau with Keras' logic. The defaults are the seed study's
// settings (Keras' own are val_loss, factor 0.1, patience 10, min_lr 0).
// At each epoch end, with `current` the monitored value:
//   in cooldown:            cooldown_counter -= 1, wait = 0
//   current improves best   (max: current > best + min_delta; min: current < best - min_delta):
//                           best = current, wait = 0
//   else, not in cooldown:  wait += 1; when wait >= patience and lr > min_lr:
//                           lr = max(lr * factor, min_lr), cooldown_counter = cooldown, wait = 0
// on_train_begin() resets best, wait and cooldown. Each change of the
// learning rate is reported: "Epoch 4: ReduceLROnPlateau reducing learning
// rate to 0.0003." (epoch 1-based, as Keras prints it).

#include <algorithm>

#include "bcnn/io/metadata.hpp"
#include "bcnn/train/callback.hpp"

namespace bcnn {
namespace train {

template <typename T>
class ReduceLROnPlateau : public Callback<T> {
public:
    explicit ReduceLROnPlateau(std::string monitor = "val_accuracy", double factor = 0.3, int patience = 2,
                               MonitorMode mode = MonitorMode::automatic, double min_delta = 1e-4, int cooldown = 0,
                               double min_lr = 1e-6)
        : monitor_(std::move(monitor), mode, "ReduceLROnPlateau"), factor_(factor), patience_(patience),
          min_delta_(min_delta), cooldown_(cooldown), min_lr_(min_lr) {
        BCNN_CHECK(factor > 0 && factor < 1, "ReduceLROnPlateau: factor must be in (0, 1), got " << factor);
        BCNN_CHECK(patience >= 0, "ReduceLROnPlateau: patience must be >= 0, got " << patience);
        BCNN_CHECK(cooldown >= 0, "ReduceLROnPlateau: cooldown must be >= 0, got " << cooldown);
        BCNN_CHECK(min_lr >= 0, "ReduceLROnPlateau: min_lr must be >= 0, got " << min_lr);
        reset();
    }

    void on_train_begin(TrainingState<T>&) override { reset(); }

    void on_epoch_end(int epoch, const Logs& logs, TrainingState<T>& state) override {
        const double current = monitor_.value(logs);
        if (in_cooldown()) {
            --cooldown_counter_;
            wait_ = 0;
        }
        if (improves(current)) {
            best_ = current;
            wait_ = 0;
        } else if (!in_cooldown()) {
            ++wait_;
            const double old_lr = state.optimizer.learning_rate();
            if (wait_ >= patience_ && old_lr > min_lr_) {
                const double new_lr = std::max(old_lr * factor_, min_lr_);
                state.optimizer.set_learning_rate(new_lr);
                this->report("Epoch " + std::to_string(epoch + 1) + ": ReduceLROnPlateau reducing learning rate to " +
                             io::format_number(new_lr) + ".");
                cooldown_counter_ = cooldown_;
                wait_ = 0;
            }
        }
    }

    double best() const { return best_; }
    int wait() const { return wait_; }

private:
    bool improves(double current) const {
        return monitor_.maximize() ? current > best_ + min_delta_ : current < best_ - min_delta_;
    }
    bool in_cooldown() const { return cooldown_counter_ > 0; }
    void reset() {
        best_ = monitor_.worst();
        wait_ = 0;
        cooldown_counter_ = 0;
    }

    Monitor monitor_;
    double factor_;
    int patience_;
    double min_delta_;
    int cooldown_;
    double min_lr_;
    double best_ = 0;
    int wait_ = 0;
    int cooldown_counter_ = 0;
};

}  // namespace train
}  // namespace bcnn

#pragma once
// --device: where train_bloodcells trains. On cuda the model's modules live on
// the GPU behind nn::OnDevice (batches go up, outputs come back), and
// callbacks that write files (the checkpoint) see the modules on the host
// for the moment they save, so the files are the same as a CPU run's.
// --precision (cuda only): the compute precision of the GPU's convolutions
// and dense layers for the whole run; fp16 also scales the loss.

#include <memory>
#include <string>

#include <bcnn/backend/cuda/device.hpp>
#include <bcnn/backend/cuda/precision.hpp>
#include <bcnn/core/error.hpp>
#include <bcnn/train/callback.hpp>
#include <bcnn/train/loss_scaler.hpp>

#include "options.hpp"

namespace bloodcells {

inline bcnn::Device chosen_device(const Options& options) { return options.cuda ? bcnn::Device::cuda : bcnn::Device::cpu; }

// Throws, naming the reason, when --device cuda cannot run here.
inline void require_device(const Options& options) {
    if (!options.cuda) return;
#ifdef BCNN_WITH_CUDA
    std::string why;
    if (!bcnn::cuda::device_available(&why)) throw bcnn::Error("--device cuda: " + why);
#else
    throw bcnn::Error("--device cuda: this train_bloodcells was built without bcnn's CUDA backend (bcnn::cuda: "
                      "needs nvcc and cuDNN 9 at configure time); use --device cpu");
#endif
}

// "cuda: NVIDIA H100 ... cuDNN 9.19.0" for the report, or "cpu".
inline std::string device_description(const Options& options) {
#ifdef BCNN_WITH_CUDA
    if (options.cuda) return "cuda: " + bcnn::cuda::describe_device();
#endif
    (void)options;
    return "cpu";
}

// The run's compute precision, set on this thread while it lives (the
// training loop, evaluation and features all run on it), and the loss
// scaler fp16 needs (nullptr otherwise). --precision other than fp32 was
// refused without --device cuda, and --device cuda without the backend.
class ComputePrecision {
public:
    explicit ComputePrecision(const Options& options)
#ifdef BCNN_WITH_CUDA
        : scope_(options.precision)
#endif
    {
        if (options.precision == bcnn::Precision::fp16) loss_scaler_ = std::make_unique<bcnn::train::LossScaler>();
    }

    bcnn::train::LossScaler* loss_scaler() const { return loss_scaler_.get(); }

    // "fp32", or e.g. "bf16 (tensor cores, float accumulation and master weights)" for the report.
    static std::string describe(const Options& options) {
        switch (options.precision) {
            case bcnn::Precision::fp32: return "fp32";
            case bcnn::Precision::bf16:
                return "bf16 mixed precision (convolutions and dense layers on tensor cores, float accumulation, "
                       "float master weights)";
            case bcnn::Precision::fp16:
                return "fp16 mixed precision (convolutions and dense layers on tensor cores, float accumulation, "
                       "float master weights, dynamic loss scaling from 2^15)";
        }
        return "";
    }

private:
#ifdef BCNN_WITH_CUDA
    bcnn::cuda::ComputePrecisionScope scope_;
#endif
    std::unique_ptr<bcnn::train::LossScaler> loss_scaler_;
};

// Runs `inner`'s epoch end with the trained modules on the host, then moves them back to `device`.
class OnHost : public bcnn::train::Callback<float> {
public:
    OnHost(bcnn::train::Callback<float>& inner, bcnn::Device device) : inner_(inner), device_(device) {}

    void on_train_begin(bcnn::train::TrainingState<float>& state) override { inner_.on_train_begin(state); }
    void on_batch_begin(int epoch, int batch, bcnn::train::TrainingState<float>& state) override {
        inner_.on_batch_begin(epoch, batch, state);
    }
    void on_epoch_end(int epoch, const bcnn::train::Logs& logs, bcnn::train::TrainingState<float>& state) override {
        state.model.to(bcnn::Device::cpu);
        inner_.on_epoch_end(epoch, logs, state);
        state.model.to(device_);
    }
    void on_train_end(bcnn::train::TrainingState<float>& state) override { inner_.on_train_end(state); }

private:
    bcnn::train::Callback<float>& inner_;
    bcnn::Device device_;
};

}  // namespace bloodcells

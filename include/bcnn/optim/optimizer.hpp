#pragma once
// Optimizer: updates a model's trainable parameters from their gradients,
// keeping per-parameter state ("slots": Adam's m and v, SGD's velocity)
// keyed by the parameter's name, so that the state can be saved and loaded
// by name in a checkpoint:
//   tensors   "optimizer/<slot>/<parameter name>"  (e.g. "optimizer/m/dense/kernel")
//   metadata  "optimizer.type", "optimizer.iterations", "optimizer.learning_rate",
//             "optimizer.<hyperparameter>" (e.g. "optimizer.beta_1")
// Slots are created, zero-filled, the first time a parameter is trainable in
// step(), on the parameter's device; a parameter on cuda is updated there
// (cuda::adam_update / sgd_update). Updates are element-wise, so they are the
// same on any thread count. Saved state always goes through the host, and
// loaded slots go to their parameter's device: files do not depend on it.

#include <cmath>
#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "bcnn/backend/transfer.hpp"
#include "bcnn/core/parallel.hpp"
#include "bcnn/io/load_report.hpp"
#include "bcnn/io/metadata.hpp"
#include "bcnn/io/safetensors.hpp"
#include "bcnn/nn/module.hpp"

namespace bcnn {
namespace optim {

template <typename T>
class Optimizer {
public:
    virtual ~Optimizer() = default;
    Optimizer(const Optimizer&) = delete;
    Optimizer& operator=(const Optimizer&) = delete;

    // The class name Keras uses, e.g. "Adam"; saved and checked in checkpoints.
    const char* type() const { return type_; }

    double learning_rate() const { return learning_rate_; }
    void set_learning_rate(double learning_rate) {
        BCNN_CHECK(std::isfinite(learning_rate) && learning_rate >= 0,
                   type_ << ": learning rate must be finite and >= 0, got " << learning_rate);
        learning_rate_ = learning_rate;
    }

    // Number of step() calls so far (Keras' optimizer.iterations).
    std::int64_t iterations() const { return iterations_; }

    // One update of every parameter with trainable == true from its gradient;
    // the others (frozen weights, buffers) are left alone. Every entry is
    // checked before any is changed.
    virtual void step(const std::vector<nn::NamedParameter<T>>& params) {
        std::vector<const nn::NamedParameter<T>*> trainable;
        std::set<std::string> names;
        for (const nn::NamedParameter<T>& p : params) {
            BCNN_CHECK(names.insert(p.name).second, type() << ": parameter \"" << p.name << "\" appears twice");
            if (!p.trainable) continue;
            BCNN_CHECK(p.parameter != nullptr, type() << ": parameter \"" << p.name << "\" is null");
            const Tensor<T>& value = p.parameter->value;
            const Tensor<T>& grad = p.parameter->grad;
            BCNN_CHECK(value.defined() && value.is_contiguous(),
                       type() << ": parameter \"" << p.name << "\" must be a defined, contiguous tensor");
            BCNN_CHECK(grad.defined() && grad.shape() == value.shape() && grad.is_contiguous(),
                       type() << ": gradient of \"" << p.name << "\" has shape " << grad.shape() << ", expected "
                              << value.shape());
            BCNN_CHECK(grad.device() == value.device(), type() << ": parameter \"" << p.name << "\" is on "
                                                               << value.device() << " but its gradient is on "
                                                               << grad.device());
            const auto slots = slots_.find(p.name);
            if (slots != slots_.end())
                for (const Tensor<T>& slot : slots->second)
                    BCNN_CHECK(slot.shape() == value.shape(), type() << ": parameter \"" << p.name << "\" has shape "
                                                                     << value.shape() << " but its optimizer state has shape "
                                                                     << slot.shape() << " (a different model?)");
            trainable.push_back(&p);
        }
        const std::int64_t t = iterations_ + 1;
        const std::size_t slot_count = slot_names().size();
        for (const nn::NamedParameter<T>* p : trainable) {
            std::vector<Tensor<T>>& slots = slots_[p->name];
            const Tensor<T>& value = p->parameter->value;
            while (slots.size() < slot_count) slots.push_back(zeros_on<T>(value.shape(), value.device()));
            for (Tensor<T>& slot : slots) slot = to_device(slot, value.device());  // after Module::to()
            update(p->parameter->value, p->parameter->grad, slots, t);
        }
        iterations_ = t;
    }

    // Appends the slots as tensors "optimizer/<slot>/<name>" and writes the
    // scalars into `metadata` (keys "optimizer.*").
    void save_state(std::vector<io::NamedTensor>& out, std::map<std::string, std::string>& metadata) const {
        metadata["optimizer.type"] = type();
        metadata["optimizer.iterations"] = std::to_string(iterations_);
        metadata["optimizer.learning_rate"] = io::format_number(learning_rate_);
        for (const auto& [name, value] : hyperparameters()) metadata["optimizer." + name] = io::format_number(value);
        const std::vector<std::string> names = slot_names();
        for (const auto& [parameter, slots] : slots_)
            for (std::size_t k = 0; k < names.size(); ++k)
                out.push_back(io::named_tensor(slot_tensor_name(names[k], parameter), to_device(slots[k], Device::cpu)));
    }

    // Restores iterations, learning rate and slots saved by save_state() for
    // the parameters `params`. The file's optimizer type and hyperparameters
    // must equal this optimizer's; every slot tensor must belong to one of
    // `params` with its shape and dtype; once the saved optimizer has taken a
    // step, every trainable parameter must have its slots. On any mismatch
    // bcnn::Error names all of them and this optimizer is left unchanged.
    void load_state(const io::SafetensorsFile& file, const std::vector<nn::NamedParameter<T>>& params) {
        const std::string where = "'" + file.path() + "'";
        const auto saved_type = file.metadata().find("optimizer.type");
        BCNN_CHECK(saved_type != file.metadata().end(),
                   where << " holds no optimizer state (no \"optimizer.type\" metadata)");
        BCNN_CHECK(saved_type->second == type(),
                   where << " holds " << saved_type->second << " optimizer state; this optimizer is " << type());
        for (const auto& [name, value] : hyperparameters()) {
            const std::string& saved = io::metadata_text(file, "optimizer." + name);
            BCNN_CHECK(saved == io::format_number(value), where << ": the saved " << type() << " has " << name << " = "
                                                              << saved << ", this one " << io::format_number(value));
        }
        const auto saved_iterations = io::metadata_number<std::int64_t>(file, "optimizer.iterations");
        const auto saved_learning_rate = io::metadata_number<double>(file, "optimizer.learning_rate");
        BCNN_CHECK(saved_iterations >= 0, where << ": optimizer.iterations is negative (" << saved_iterations << ")");
        BCNN_CHECK(std::isfinite(saved_learning_rate) && saved_learning_rate >= 0,
                   where << ": optimizer.learning_rate is " << saved_learning_rate << ", not a valid learning rate");

        io::LoadReport report;
        std::set<std::string> consumed;
        std::map<std::string, std::vector<Tensor<T>>> loaded;
        const std::vector<std::string> names = slot_names();
        for (const nn::NamedParameter<T>& p : params) {
            std::vector<Tensor<T>> slots;
            std::vector<std::string> absent;
            for (const std::string& slot : names) {
                const std::string tensor_name = slot_tensor_name(slot, p.name);
                const io::SafetensorsEntry* entry = file.find(tensor_name);
                if (!entry) {
                    absent.push_back(tensor_name);
                    continue;
                }
                consumed.insert(tensor_name);
                const Tensor<T> saved = report.read<T>(file, *entry, p.parameter->value.shape());
                slots.push_back(saved.defined() ? to_device(saved, p.parameter->value.device()) : saved);
            }
            const bool needed = !slots.empty() || (p.trainable && saved_iterations > 0);
            if (needed)
                for (const std::string& name : absent) report.missing(name);
            if (slots.size() == names.size() && !names.empty()) loaded[p.name] = std::move(slots);
        }
        for (const io::SafetensorsEntry& entry : file.entries())
            if (entry.name.rfind("optimizer/", 0) == 0 && !consumed.count(entry.name)) report.unexpected(entry.name);
        report.throw_if_any(where + " does not fit this " + type() + " optimizer's parameters");

        slots_ = std::move(loaded);
        iterations_ = saved_iterations;
        learning_rate_ = saved_learning_rate;
    }

protected:
    Optimizer(const char* type, double learning_rate) : type_(type) { set_learning_rate(learning_rate); }

    // Names of the per-parameter state tensors, in the order update() gets them.
    virtual std::vector<std::string> slot_names() const = 0;

    // Hyperparameters other than the learning rate, saved and checked on load.
    virtual std::vector<std::pair<std::string, double>> hyperparameters() const = 0;

    // Updates one parameter in place: value, grad and the slots are contiguous,
    // of the same shape and on one device; slots are zero-filled on the first
    // step; t = iterations() + 1.
    virtual void update(const Tensor<T>& value, const Tensor<T>& grad, std::vector<Tensor<T>>& slots,
                        std::int64_t t) = 0;

    // Calls body(first, last) over [0, count), in parallel when count is large.
    template <typename Body>
    static void for_each_range(Index count, Body body) {
        constexpr Index kParallelThreshold = Index(1) << 15;
        if (count < kParallelThreshold) {
            body(Index(0), count);
            return;
        }
        parallel_chunks(count, chunks_per_team(), [&](int, Index first, Index last) { body(first, last); });
    }

private:
    static std::string slot_tensor_name(const std::string& slot, const std::string& parameter) {
        return "optimizer/" + slot + "/" + parameter;
    }

    const char* type_;
    double learning_rate_ = 0;
    std::int64_t iterations_ = 0;
    std::map<std::string, std::vector<Tensor<T>>> slots_;
};

}  // namespace optim
}  // namespace bcnn

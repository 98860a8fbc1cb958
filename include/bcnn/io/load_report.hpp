#pragma once
// LoadReport: what keeps a file from fitting a model (or an optimiser),
// collected over every tensor so that one error names all of it:
//   'x.safetensors' does not fit model 'sequential': missing 12 tensors
//   (conv2d/kernel, ...), unexpected 30 (block1_conv1/kernel, ...);
//   tensor "dense/kernel" has shape (5, 8) in the file, (5, 9) in the model

#include <string>
#include <vector>

#include "bcnn/core/error.hpp"
#include "bcnn/core/tensor.hpp"
#include "bcnn/io/dtype.hpp"
#include "bcnn/io/safetensors.hpp"

namespace bcnn {
namespace io {

class LoadReport {
public:
    // Names listed per kind of problem; the counts are always complete.
    static constexpr std::size_t kListed = 5;

    void missing(const std::string& name) { missing_.push_back(name); }
    void unexpected(const std::string& name) { unexpected_.push_back(name); }
    void mismatch(const std::string& description) { mismatches_.push_back(description); }

    bool empty() const { return missing_.empty() && unexpected_.empty() && mismatches_.empty(); }

    // Reads tensor `entry` as Tensor<T> when its dtype and shape are `expected`;
    // otherwise records the mismatch and returns an empty tensor.
    template <typename T>
    Tensor<T> read(const SafetensorsFile& file, const SafetensorsEntry& entry, const Shape& expected) {
        if (entry.dtype != dtype_of<T>()) {
            mismatch("tensor \"" + entry.name + "\" has dtype " + dtype_name(entry.dtype) + " in the file, " +
                     dtype_name(dtype_of<T>()) + " in the model");
            return Tensor<T>();
        }
        if (entry.shape != expected) {
            mismatch("tensor \"" + entry.name + "\" has shape " + entry.shape.str() + " in the file, " + expected.str() +
                     " in the model");
            return Tensor<T>();
        }
        return file.tensor<T>(entry.name);
    }

    // Throws bcnn::Error "<what>: <problems>" when anything was recorded.
    void throw_if_any(const std::string& what) const {
        if (empty()) return;
        std::string names;
        if (!missing_.empty())
            names = "missing " + std::to_string(missing_.size()) + (missing_.size() == 1 ? " tensor " : " tensors ") +
                    listed(missing_);
        if (!unexpected_.empty())
            names += (names.empty() ? "" : ", ") + std::string("unexpected ") + std::to_string(unexpected_.size()) + " " +
                     listed(unexpected_);
        std::vector<std::string> parts;
        if (!names.empty()) parts.push_back(names);
        for (std::size_t i = 0; i < mismatches_.size() && i < kListed; ++i) parts.push_back(mismatches_[i]);
        if (mismatches_.size() > kListed)
            parts.push_back("and " + std::to_string(mismatches_.size() - kListed) + " more mismatches");
        std::string message = what + ": ";
        for (std::size_t i = 0; i < parts.size(); ++i) message += (i ? "; " : "") + parts[i];
        throw Error(message);
    }

private:
    // "(a, b, c, d, e, ...)"
    static std::string listed(const std::vector<std::string>& names) {
        std::string out = "(";
        for (std::size_t i = 0; i < names.size() && i < kListed; ++i) out += (i ? ", " : "") + names[i];
        return out + (names.size() > kListed ? ", ...)" : ")");
    }

    std::vector<std::string> missing_, unexpected_, mismatches_;
};

}  // namespace io
}  // namespace bcnn

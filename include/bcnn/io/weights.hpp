#pragma once
// Weights-only files: a module's parameters and buffers as safetensors
// tensors named as named_parameters() names them ("dense/kernel", ...),
// with metadata "bcnn.format" = "weights-1" and "bcnn.model" = the module's
// name. load_weights() checks every name, shape and dtype before changing
// anything and names all that does not fit. Files without "bcnn.format"
// (e.g. converted pretrained weights) load the same way; a full checkpoint
// is refused with a pointer to load_checkpoint().

#include <map>
#include <set>
#include <string>
#include <vector>

#include "bcnn/backend/elementwise.hpp"
#include "bcnn/backend/transfer.hpp"
#include "bcnn/io/load_report.hpp"
#include "bcnn/io/safetensors.hpp"
#include "bcnn/nn/module.hpp"

namespace bcnn {
namespace io {

inline constexpr const char* kFormatKey = "bcnn.format";
inline constexpr const char* kWeightsFormat = "weights-1";
inline constexpr const char* kCheckpointFormat = "checkpoint-1";

namespace detail {

// The value of "bcnn.format" in `file`, or "" when it has none.
inline std::string file_format(const SafetensorsFile& file) {
    const auto found = file.metadata().find(kFormatKey);
    return found == file.metadata().end() ? std::string() : found->second;
}

// Appends every parameter of `params` as tensor "<prefix><name>".
template <typename T>
void append_parameters(std::vector<NamedTensor>& out, const std::vector<nn::NamedParameter<T>>& params,
                       const std::string& prefix) {
    for (const nn::NamedParameter<T>& p : params) out.push_back(named_tensor(prefix + p.name, p.parameter->value));
}

// Reads tensor "<prefix><name>" for every parameter of `params`, recording
// missing tensors, wrong shapes and dtypes, and the file's other tensors
// under `prefix` as unexpected. The result is in `params` order (empty
// tensors where something did not fit).
template <typename T>
std::vector<Tensor<T>> read_parameters(const SafetensorsFile& file, const std::vector<nn::NamedParameter<T>>& params,
                                       const std::string& prefix, LoadReport& report) {
    std::vector<Tensor<T>> values;
    std::set<std::string> expected;
    for (const nn::NamedParameter<T>& p : params) {
        const std::string name = prefix + p.name;
        expected.insert(name);
        const SafetensorsEntry* entry = file.find(name);
        if (!entry) {
            report.missing(name);
            values.emplace_back();
            continue;
        }
        values.push_back(report.read<T>(file, *entry, p.parameter->value.shape()));
    }
    for (const SafetensorsEntry& entry : file.entries())
        if (entry.name.rfind(prefix, 0) == 0 && !expected.count(entry.name)) report.unexpected(entry.name);
    return values;
}

// Copies values read by read_parameters() into the parameters.
template <typename T>
void assign_parameters(const std::vector<nn::NamedParameter<T>>& params, const std::vector<Tensor<T>>& values) {
    for (std::size_t i = 0; i < params.size(); ++i) {
        const Tensor<T>& value = params[i].parameter->value;  // on the module's device
        backend::copy(to_device(values[i], value.device()), value);
    }
}

}  // namespace detail

// Writes the module's parameters and buffers to `path` atomically.
template <typename T>
void save_weights(const std::string& path, nn::Module<T>& model) {
    std::vector<NamedTensor> tensors;
    detail::append_parameters(tensors, model.named_parameters(), "");
    save_safetensors(path, tensors, {{kFormatKey, kWeightsFormat}, {"bcnn.model", model.name()}});
}

// Sets every parameter and buffer of the module from `path`. The file must
// hold exactly the module's tensors with the same shapes and dtype;
// otherwise bcnn::Error lists what is missing, unexpected or mismatched and
// the module is unchanged.
template <typename T>
void load_weights(const std::string& path, nn::Module<T>& model) {
    const SafetensorsFile file = SafetensorsFile::open(path);
    const std::string format = detail::file_format(file);
    BCNN_CHECK(format != kCheckpointFormat,
               "'" << path << "' is a full checkpoint (" << kFormatKey << " \"" << format
                   << "\"), not a weights file; load it with load_checkpoint()");
    BCNN_CHECK(format.empty() || format == kWeightsFormat,
               "'" << path << "' has " << kFormatKey << " \"" << format << "\", expected \"" << kWeightsFormat << "\"");
    const std::vector<nn::NamedParameter<T>> params = model.named_parameters();
    LoadReport report;
    const std::vector<Tensor<T>> values = detail::read_parameters(file, params, "", report);
    report.throw_if_any("'" + path + "' does not fit model '" + model.name() + "'");
    detail::assign_parameters(params, values);
}

}  // namespace io
}  // namespace bcnn

#pragma once
// The text of model.summary(), laid out like Keras 2:
//   Model: "sequential"
//   _________________________________________________________________
//    Layer (type)                Output Shape              Param #
//   =================================================================
//    conv2d (Conv2D)             (None, 150, 150, 16)      448
//   ...
//   Total params: 2,314,532

#include <sstream>
#include <string>

#include "bcnn/nn/module.hpp"

namespace bcnn {
namespace nn {

namespace detail {

// 2314532 -> "2,314,532"
inline std::string with_thousands(Index n) {
    std::string digits = std::to_string(n < 0 ? -n : n);
    for (int i = static_cast<int>(digits.size()) - 3; i > 0; i -= 3) digits.insert(static_cast<std::size_t>(i), ",");
    return n < 0 ? "-" + digits : digits;
}

// A row of three fields starting at columns 1, 29 and 55 (Keras' layout); a
// field too long for its column is followed by one space.
inline std::string summary_row(const std::string& a, const std::string& b, const std::string& c) {
    std::string line = " " + a;
    for (const auto& [start, field] : {std::pair<std::size_t, const std::string*>{29, &b}, {55, &c}}) {
        line.append(line.size() < start ? start - line.size() : 1, ' ');
        line += *field;
    }
    return line + "\n";
}

}  // namespace detail

// Summary of a container's direct children.
template <typename T>
std::string format_summary(Module<T>& model) {
    const std::string rule(65, '_'), double_rule(65, '=');
    std::ostringstream out;
    out << "Model: \"" << model.name() << "\"\n" << rule << "\n";
    out << detail::summary_row("Layer (type)", "Output Shape", "Param #") << double_rule << "\n";
    const auto children = model.children();
    for (std::size_t i = 0; i < children.size(); ++i) {
        Module<T>* m = children[i];
        std::string shape = m->output_shape().str();
        shape = shape.size() > 2 ? "(None, " + shape.substr(1) : "(None)";
        out << detail::summary_row(m->name() + " (" + m->type() + ")", shape,
                                   std::to_string(m->count_params()));
        if (i + 1 < children.size()) out << "\n";
    }
    const Index total = model.count_params(), trainable = model.count_trainable_params();
    out << double_rule << "\n";
    out << "Total params: " << detail::with_thousands(total) << "\n";
    out << "Trainable params: " << detail::with_thousands(trainable) << "\n";
    out << "Non-trainable params: " << detail::with_thousands(total - trainable) << "\n";
    out << rule << "\n";
    return out.str();
}

}  // namespace nn
}  // namespace bcnn

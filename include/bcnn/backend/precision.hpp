#pragma once
// The compute precision of float convolutions and dense layers on the GPU:
//   fp32  float throughout (the default; results as without this setting)
//   bf16  inputs, weights and output gradients rounded to bfloat16 (8-bit
//         mantissa, float's exponent range) for the tensor cores; products
//         summed in float; results and master weights stay float
//   fp16  the same with IEEE half (10-bit mantissa, range about 6e-5 ..
//         65504): gradients need loss scaling (train/loss_scaler.hpp)
// The setting itself is per host thread, in the CUDA backend
// (backend/cuda/precision.hpp); this header needs no CUDA, so programs can
// parse and name a precision in any build.

#include <string>

#include "bcnn/core/error.hpp"

namespace bcnn {

enum class Precision { fp32, bf16, fp16 };

inline const char* precision_name(Precision precision) {
    switch (precision) {
        case Precision::fp32: return "fp32";
        case Precision::bf16: return "bf16";
        case Precision::fp16: return "fp16";
    }
    return "unknown";
}

// "fp32", "bf16" or "fp16"; anything else throws naming the value and the choices.
inline Precision parse_precision(const std::string& text) {
    for (Precision precision : {Precision::fp32, Precision::bf16, Precision::fp16})
        if (text == precision_name(precision)) return precision;
    throw Error("precision '" + text + "' is not one of fp32, bf16, fp16");
}

}  // namespace bcnn

#pragma once
// Which algorithms conv2d may choose, process-wide.
//   automatic  the fastest measured per layer: a direct convolution for few
//              input channels (conv2d_direct.hpp), Winograd F(4x4, 3x3) for
//              wide 3x3 stride-1 layers (winograd.hpp), im2col + GEMM otherwise.
//              Float results of Winograd layers are within ~1e-5 of the
//              output's scale of the exact result.
//   gemm_only  im2col + GEMM everywhere: float results within ~1e-7 of the
//              scale, for comparisons that need the tighter bound.
// Set it before running models; kernels read it on every call.

#include <atomic>

namespace bcnn {
namespace cpu {

enum class ConvAlgorithm { automatic, gemm_only };

inline const char* conv_algorithm_name(ConvAlgorithm algorithm) {
    return algorithm == ConvAlgorithm::automatic ? "automatic" : "gemm_only";
}

namespace detail {
inline std::atomic<ConvAlgorithm>& conv_algorithm_setting() {
    static std::atomic<ConvAlgorithm> setting{ConvAlgorithm::automatic};
    return setting;
}
}  // namespace detail

inline void set_conv_algorithm(ConvAlgorithm algorithm) { detail::conv_algorithm_setting() = algorithm; }
inline ConvAlgorithm conv_algorithm() { return detail::conv_algorithm_setting(); }

}  // namespace cpu
}  // namespace bcnn

#pragma once
// A layer's own activation (Keras' `activation=`), fused with its bias into
// the last pass over its output: the GEMM epilogue of conv2d, dense and
// separable conv2d (gemm.hpp applies it to each C tile while it is in
// cache), and the output transform of Winograd (winograd.hpp). relu keeps
// NaN (so it is seen downstream), as relu_forward does.

#include "bcnn/kernels/cpu/activation_fn.hpp"
#include "bcnn/kernels/cpu/gemm.hpp"

namespace bcnn {
namespace cpu {

// bias (K values, added to every output row) or nullptr, then fn.
template <typename T>
GemmEpilogue<T> bias_activation_epilogue(const T* bias, ActivationFn fn) {
    return GemmEpilogue<T>{bias, fn == ActivationFn::relu};
}

}  // namespace cpu
}  // namespace bcnn

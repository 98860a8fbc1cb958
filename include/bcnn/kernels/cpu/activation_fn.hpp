#pragma once
// The activations a kernel can fuse into the last pass over its output
// (bias_activation.hpp): a layer's own activation, Keras' `activation=`.
// Its own header so that code which only names them (the CUDA kernels)
// does not pull in the CPU GEMM.

namespace bcnn {
namespace cpu {

enum class ActivationFn { linear, relu };

}  // namespace cpu
}  // namespace bcnn

#pragma once
// Internal to bcnn_cuda (device code): float and double add, subtract and
// multiply rounded one operation at a time (the _rn intrinsics), which nvcc
// never contracts into an FMA. Kernels that must reproduce a CPU formula bit
// for bit (optimiser updates) use these instead of + - *.

namespace bcnn {
namespace cuda {
namespace kernels {

__device__ inline float add_rn(float a, float b) { return __fadd_rn(a, b); }
__device__ inline double add_rn(double a, double b) { return __dadd_rn(a, b); }
__device__ inline float sub_rn(float a, float b) { return __fsub_rn(a, b); }
__device__ inline double sub_rn(double a, double b) { return __dsub_rn(a, b); }
__device__ inline float mul_rn(float a, float b) { return __fmul_rn(a, b); }
__device__ inline double mul_rn(double a, double b) { return __dmul_rn(a, b); }

}  // namespace kernels
}  // namespace cuda
}  // namespace bcnn

#pragma once
// The compute precision of float ops on the GPU, defined in cuda/precision.cpp
// (bcnn::cuda). Per host thread, as the thread's stream and cuDNN handle:
// conv2d, depthwise conv2d and dense on float device tensors read it at each
// call. Under bf16 or fp16 they convert x, the weights and dy to the half type
// in scratch, run cuDNN / cuBLAS on the tensor cores with float accumulation,
// and write float results (y, dx, d_weights; bias and its gradient stay
// float). Double tensors ignore the setting; the CPU has no such setting.
//   cuda::ComputePrecisionScope scope(Precision::bf16);   // until scope ends

#include "bcnn/backend/precision.hpp"

namespace bcnn {
namespace cuda {

// The calling thread's setting; Precision::fp32 until set.
Precision compute_precision();
void set_compute_precision(Precision precision);

// Sets the calling thread's compute precision; the destructor restores the previous one.
class ComputePrecisionScope {
public:
    explicit ComputePrecisionScope(Precision precision) : previous_(compute_precision()) {
        set_compute_precision(precision);
    }
    ComputePrecisionScope(const ComputePrecisionScope&) = delete;
    ComputePrecisionScope& operator=(const ComputePrecisionScope&) = delete;
    ~ComputePrecisionScope() { set_compute_precision(previous_); }

private:
    Precision previous_;
};

}  // namespace cuda
}  // namespace bcnn

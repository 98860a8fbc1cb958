#pragma once
// Internal to bcnn_cuda: the weights gradient of a (grouped) convolution in
// double, summed directly, for what cuDNN 9 cannot do: it has no NHWC
// backward-filter algorithm for double (seen on an H200 with cuDNN 9.19:
// every algorithm answered CUDNN_STATUS_NOT_SUPPORTED, while float, and
// double forward and backward-data, ran). Double on the GPU is for checks
// against the CPU, so this sums plainly: one thread per weight, over every
// output pixel of the batch, in a fixed order (deterministic).
//
// The sum for one weight, and the geometry, are in filter_gradient_at.hpp.

#include <cuda_runtime_api.h>

#include "filter_gradient_at.hpp"

namespace bcnn {
namespace cuda {
namespace kernels {

// d_weights (KH, KW, C / groups, K), contiguous, from x and dy (above), on
// the context's stream. Returns the launch's status.
cudaError_t filter_gradient(const FilterGradientGeometry& g, const double* x, const double* dy, double* d_weights);

}  // namespace kernels
}  // namespace cuda
}  // namespace bcnn

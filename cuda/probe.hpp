#pragma once
// Internal to bcnn_cuda: can the current device run this build's kernels?

#include <cuda_runtime_api.h>

namespace bcnn {
namespace cuda {
namespace detail {

// cudaSuccess when the library holds a kernel image (SASS or PTX) the current
// device can run; otherwise e.g. cudaErrorNoKernelImageForDevice.
cudaError_t probe_kernel_image();

}  // namespace detail
}  // namespace cuda
}  // namespace bcnn

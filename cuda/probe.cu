// A kernel that does nothing, asked for its attributes to learn whether the
// device can load this build's code (compiled for CMAKE_CUDA_ARCHITECTURES).

#include "probe.hpp"

namespace bcnn {
namespace cuda {
namespace detail {

namespace {
__global__ void probe_kernel() {}
}  // namespace

cudaError_t probe_kernel_image() {
    cudaFuncAttributes attributes;
    const cudaError_t status = cudaFuncGetAttributes(&attributes, probe_kernel);
    cudaGetLastError();  // a failure here is an answer, not an error for the next launch check
    return status;
}

}  // namespace detail
}  // namespace cuda
}  // namespace bcnn

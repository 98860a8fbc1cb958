// cuda::DeviceTimer (include/bcnn/backend/cuda/timer.hpp).

#include "bcnn/backend/cuda/timer.hpp"

#include "check.hpp"
#include "stream.hpp"

namespace bcnn {
namespace cuda {

DeviceTimer::DeviceTimer() {
    BCNN_CUDA_CHECK(cudaEventCreate(&start_), "cuda::DeviceTimer");
    const cudaError_t status = cudaEventCreate(&stop_);
    if (status != cudaSuccess) cudaEventDestroy(start_);
    BCNN_CUDA_CHECK(status, "cuda::DeviceTimer");
}

// Statuses are dropped: a destructor must not throw.
DeviceTimer::~DeviceTimer() {
    cudaEventDestroy(start_);
    cudaEventDestroy(stop_);
}

void DeviceTimer::start() { BCNN_CUDA_CHECK(cudaEventRecord(start_, detail::context_stream()), "cuda::DeviceTimer::start"); }

double DeviceTimer::stop() {
    const char* context = "cuda::DeviceTimer::stop";
    BCNN_CUDA_CHECK(cudaEventRecord(stop_, detail::context_stream()), context);
    BCNN_CUDA_CHECK(cudaEventSynchronize(stop_), context);
    float milliseconds = 0;
    BCNN_CUDA_CHECK(cudaEventElapsedTime(&milliseconds, start_, stop_), context);
    return 1e-3 * milliseconds;
}

}  // namespace cuda
}  // namespace bcnn

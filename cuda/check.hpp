#pragma once
// Internal to bcnn_cuda. BCNN_CUDA_CHECK(call, context) runs a CUDA runtime,
// cuBLAS or cuDNN call and, when it fails, throws bcnn::Error naming the
// context (op and shapes), the call's text and its status, e.g.
//   cuda::allocate of 1099511627776 bytes: cudaMalloc(&data, bytes) returned
//   cudaErrorMemoryAllocation (out of memory)
// Kernel launches are checked through cudaGetLastError(); faults inside a
// kernel surface at the next synchronising call (CUDA_LAUNCH_BLOCKING=1 makes
// them surface at the launch). This header knows the runtime's status type;
// check_libraries.hpp adds cuBLAS's and cuDNN's (their headers are slow to
// compile, so only files calling those libraries include it).

#include <cuda_runtime_api.h>

#include <sstream>
#include <string>

#include "bcnn/core/error.hpp"

namespace bcnn {
namespace cuda {
namespace detail {

inline bool failed(cudaError_t status) { return status != cudaSuccess; }

// The status's name and description. A failed runtime call is also recorded
// as the runtime's "last error"; reading it here clears it, so the next
// launch check reports only its own failure.
inline std::string status_text(cudaError_t status) {
    cudaGetLastError();
    return std::string(cudaGetErrorName(status)) + " (" + cudaGetErrorString(status) + ")";
}

}  // namespace detail
}  // namespace cuda
}  // namespace bcnn

#define BCNN_CUDA_CHECK(call, context)                                                              \
    do {                                                                                            \
        const auto bcnn_cuda_status_ = (call);                                                      \
        if (::bcnn::cuda::detail::failed(bcnn_cuda_status_)) {                                      \
            std::ostringstream bcnn_cuda_stream_;                                                   \
            bcnn_cuda_stream_ << context << ": " << #call << " returned "                           \
                              << ::bcnn::cuda::detail::status_text(bcnn_cuda_status_);              \
            throw ::bcnn::Error(bcnn_cuda_stream_.str());                                           \
        }                                                                                           \
    } while (false)

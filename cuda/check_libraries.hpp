#pragma once
// Internal to bcnn_cuda: BCNN_CUDA_CHECK (check.hpp) for cuBLAS and cuDNN
// calls, whose statuses name themselves, e.g. "CUBLAS_STATUS_NOT_INITIALIZED
// (the library was not initialized)"; cuDNN adds its last error message.

#include <cublas_v2.h>
#include <cudnn.h>

#include "check.hpp"

namespace bcnn {
namespace cuda {
namespace detail {

inline bool failed(cublasStatus_t status) { return status != CUBLAS_STATUS_SUCCESS; }
inline bool failed(cudnnStatus_t status) { return status != CUDNN_STATUS_SUCCESS; }

inline std::string status_text(cublasStatus_t status) {
    return std::string(cublasGetStatusName(status)) + " (" + cublasGetStatusString(status) + ")";
}
inline std::string status_text(cudnnStatus_t status) {
    char details[512] = "";
    cudnnGetLastErrorString(details, sizeof(details));
    return std::string(cudnnGetErrorString(status)) + (details[0] ? std::string(" (") + details + ")" : std::string());
}

}  // namespace detail
}  // namespace cuda
}  // namespace bcnn

#pragma once
// Internal to bcnn_cuda: the calling thread's cuBLAS handle for its current
// device (cudaGetDevice), created on first use and destroyed when the thread
// ends; cuBLAS handles must not be shared by threads running at once. Handles
// run on the thread's context stream (stream.hpp), like cuDNN's, with
// the default math mode (no TF32 for float) and atomics disallowed, so every
// GEMM is deterministic.

#include <cublas_v2.h>

namespace bcnn {
namespace cuda {
namespace detail {

cublasHandle_t cublas_handle();

}  // namespace detail
}  // namespace cuda
}  // namespace bcnn

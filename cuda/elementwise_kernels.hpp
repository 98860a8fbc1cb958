#pragma once
// Internal to bcnn_cuda: elementwise launchers over row views of device memory. Returns the launch's status; elementwise.cpp checks
// arguments and the status.

#include <cuda_runtime_api.h>

#include "bcnn/core/row_matrix.hpp"

namespace bcnn {
namespace cuda {
namespace kernels {

// y += x; x and y have the same rows and cols.
template <typename T>
cudaError_t add_inplace(const RowMatrix<T>& y, const RowMatrix<T>& x);

// y *= alpha.
template <typename T>
cudaError_t scale_inplace(const RowMatrix<T>& y, T alpha);

// *flag = 0, then 1 if any element of x is inf or NaN (queued on the context stream).
template <typename T>
cudaError_t count_non_finite(const RowMatrix<T>& x, int* flag);

}  // namespace kernels
}  // namespace cuda
}  // namespace bcnn

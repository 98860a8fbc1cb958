#pragma once
// Internal to bcnn_cuda: the elementwise accumulation launcher over row views
// of device memory. Returns the launch's status; elementwise.cpp checks
// arguments and the status.

#include <cuda_runtime_api.h>

#include "bcnn/core/row_matrix.hpp"

namespace bcnn {
namespace cuda {
namespace kernels {

// y += x; x and y have the same rows and cols.
template <typename T>
cudaError_t add_inplace(const RowMatrix<T>& y, const RowMatrix<T>& x);

}  // namespace kernels
}  // namespace cuda
}  // namespace bcnn

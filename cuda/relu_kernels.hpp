#pragma once
// Internal to bcnn_cuda: ReLU kernel launchers over row views (rows x cols,
// row stride ld) of device memory. They return the launch's status
// (cudaGetLastError()); relu.cpp checks arguments and the status.

#include <cuda_runtime_api.h>

#include "bcnn/core/row_matrix.hpp"

namespace bcnn {
namespace cuda {
namespace kernels {

// y = x > 0 ? x : 0; x and y have the same rows and cols.
template <typename T>
cudaError_t relu_forward(const RowMatrix<T>& x, const RowMatrix<T>& y);

// dx = y > 0 ? dy : 0; all three have the same rows and cols.
template <typename T>
cudaError_t relu_backward(const RowMatrix<T>& y, const RowMatrix<T>& dy, const RowMatrix<T>& dx);

}  // namespace kernels
}  // namespace cuda
}  // namespace bcnn

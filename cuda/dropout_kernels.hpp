#pragma once
// Internal to bcnn_cuda: dropout kernel launchers over row views (rows x
// cols, row stride ld) of device memory; element (r, c) has the row-major
// index r * cols + c. They return the launch's status (cudaGetLastError()).

#include <cuda_runtime_api.h>

#include <cstdint>

#include "bcnn/core/row_matrix.hpp"

namespace bcnn {
namespace cuda {
namespace kernels {

// mask = uniform(seed, first + index) >= rate ? scale : 0; y = x * mask.
// All three have the same rows and cols; y may alias x.
template <typename T>
cudaError_t dropout_forward(const RowMatrix<T>& x, T rate, T scale, std::uint64_t seed, std::uint64_t first,
                            const RowMatrix<T>& mask, const RowMatrix<T>& y);

// dx = dy * mask; dx may alias dy.
template <typename T>
cudaError_t dropout_backward(const RowMatrix<T>& dy, const RowMatrix<T>& mask, const RowMatrix<T>& dx);

}  // namespace kernels
}  // namespace cuda
}  // namespace bcnn

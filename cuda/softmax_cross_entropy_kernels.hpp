#pragma once
// Internal to bcnn_cuda: softmax cross-entropy kernel launchers over row
// views (N rows of K classes, row stride ld) of device memory and int32
// labels (N). They return the launch's status (cudaGetLastError()).

#include <cuda_runtime_api.h>

#include <cstdint>

#include "bcnn/core/row_matrix.hpp"

namespace bcnn {
namespace cuda {
namespace kernels {

// The first rows with a bad entry, or -1: first_bad[0] = the smallest row
// whose label is outside [0, K); first_bad[1] (when logits is given) = the
// smallest row holding a non-finite logit. first_bad: 2 ints of device memory.
template <typename T>
cudaError_t find_bad_rows(const std::int32_t* labels, const RowMatrix<T>* logits, Index rows, Index classes,
                          int* first_bad);

// Per row r, as cpu::detail::softmax_row: p = exp(z - max) / sum (sum in
// double), row_loss[r] = max + log(sum) - z[label[r]] (double). p may alias z.
template <typename T>
cudaError_t softmax_cross_entropy_rows(const RowMatrix<T>& z, const std::int32_t* labels, const RowMatrix<T>& p,
                                       double* row_loss);

// d[r][j] = p[r][j] * inverse_n, minus inverse_n at j = label[r]. d may alias p.
template <typename T>
cudaError_t softmax_cross_entropy_gradient(const RowMatrix<T>& p, const std::int32_t* labels, T inverse_n,
                                           const RowMatrix<T>& d);

}  // namespace kernels
}  // namespace cuda
}  // namespace bcnn

#pragma once
// Internal to bcnn_cuda: deterministic per-column sums of row views of device
// memory (rows x cols, row stride ld), accumulated in double. Rows are split
// into segments of equal length (one per image for global average pooling,
// one in all for bias gradients); each segment into a number of chunks that
// depends only on the sizes. Chunks are summed in parallel, each in a fixed
// order, into `partials` (device memory of column_sums_partials() doubles),
// and the chunks of a column are then added in order: the same inputs give
// the same bits on every run. Launchers return the launch's status.

#include <cuda_runtime_api.h>

#include "bcnn/core/row_matrix.hpp"

namespace bcnn {
namespace cuda {
namespace kernels {

// The doubles of device memory `partials` must hold for these sizes.
Index column_sums_partials(Index rows_per_segment, Index cols, Index segments);

// out[s * out_ld + c] = scale * sum of m.row(r)[c] over the rows r of segment
// s (rows [s * m.rows / segments, (s + 1) * m.rows / segments)); m.rows must
// be a multiple of segments; segments <= 65535.
template <typename T>
cudaError_t column_sums(const RowMatrix<T>& m, Index segments, double scale, T* out, Index out_ld, double* partials);

// Batch norm with fixed statistics: out[c] = sum over rows of
// dy[c] * (x[c] - mean[c]) / sqrt(variance[c] + epsilon), in double;
// dy and x have the same rows and cols, mean and variance cols elements.
template <typename T>
cudaError_t normalized_product_sums(const RowMatrix<T>& dy, const RowMatrix<T>& x, const T* mean, const T* variance,
                                    double epsilon, T* out, double* partials);

}  // namespace kernels
}  // namespace cuda
}  // namespace bcnn

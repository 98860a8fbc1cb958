#pragma once
// Internal to bcnn_cuda: the batch norm kernels cuDNN has no call for. They
// return the launch's status; batchnorm.cpp checks arguments and the status.

#include <cuda_runtime_api.h>

#include "bcnn/core/row_matrix.hpp"

namespace bcnn {
namespace cuda {
namespace kernels {

// Keras' moving averages, in double, for c < channels:
//   moving_mean[c]     = moving_mean[c] * momentum + batch_mean[c] * (1 - momentum)
//   moving_variance[c] = moving_variance[c] * momentum + batch_variance[c] * variance_factor * (1 - momentum)
// variance_factor 0 stands for a batch variance of exactly 0 (one value per
// channel), whatever batch_variance holds there (cuDNN's m / (m - 1) is 0 / 0).
template <typename T>
cudaError_t update_moving_statistics(T* moving_mean, T* moving_variance, const T* batch_mean,
                                     const T* batch_variance, Index channels, double momentum, double variance_factor);

// Batch norm's input gradient with fixed statistics (inference mode):
// dx = T(gamma / sqrt(variance + epsilon)) * dy per channel (column); dx may be dy.
template <typename T>
cudaError_t frozen_batchnorm_input_gradient(const RowMatrix<T>& dy, const T* gamma, const T* variance, double epsilon,
                                            const RowMatrix<T>& dx);

// cpu::fold_batchnorm's arithmetic (kernels/cpu/batchnorm_folding.hpp), in
// double and in the same order, for weights of `size` elements whose last
// axis has `channels` (> 0) entries, all contiguous; bias may be nullptr:
//   scale[c] = gamma[c] / sqrt(moving_variance[c] + epsilon)
//   folded_weights[i] = T(weights[i] * scale[i % channels])
//   folded_bias[c] = T(bias[c] * scale[c] + (beta[c] - moving_mean[c] * scale[c]))
template <typename T>
cudaError_t fold_batchnorm(const T* weights, const T* bias, const T* gamma, const T* beta, const T* moving_mean,
                           const T* moving_variance, double epsilon, Index size, Index channels, T* folded_weights,
                           T* folded_bias);

}  // namespace kernels
}  // namespace cuda
}  // namespace bcnn

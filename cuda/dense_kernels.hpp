#pragma once
// Internal to bcnn_cuda: the dense layer's epilogue on a row view of device
// memory (rows x cols, row stride ld): y = activation(y + bias), the formula
// of cpu::add_bias_and_activate (relu keeps NaN). Returns the launch's status.

#include <cuda_runtime_api.h>

#include "bcnn/core/row_matrix.hpp"
#include "bcnn/kernels/cpu/activation_fn.hpp"

namespace bcnn {
namespace cuda {
namespace kernels {

// bias (y.cols) may be nullptr; nothing runs for no bias and a linear activation.
template <typename T>
cudaError_t add_bias_and_activate(const RowMatrix<T>& y, const T* bias, cpu::ActivationFn activation);

}  // namespace kernels
}  // namespace cuda
}  // namespace bcnn

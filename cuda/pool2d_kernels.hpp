#pragma once
// Internal to bcnn_cuda: the pooling kernels cuDNN has no call for. They
// return the launch's status; pool2d.cpp checks arguments and the status.

#include <cuda_runtime_api.h>

#include "bcnn/core/row_matrix.hpp"
#include "bcnn/kernels/cpu/window.hpp"

namespace bcnn {
namespace cuda {
namespace kernels {

// Average pooling's explicit count: on a packed (N, OH, OW, C) tensor,
// data[n, oh, ow, c] *= KH * KW / (the number of input pixels, padding
// excluded, that window (oh, ow) covers: cpu::detail::pool_cover). Turns a
// sum / (KH * KW) into the mean over valid pixels, and scales an output
// gradient for a backward pass that divides by KH * KW.
template <typename T>
cudaError_t scale_by_window_size_over_count(T* data, Index batch, Index channels, const WindowGeometry& geometry,
                                            const Window2D& window);

// Global average pooling's backward: dx (N * pixels rows, C) row r =
// dy (N rows, C) row r / pixels, times scale.
template <typename T>
cudaError_t broadcast_over_pixels(const RowMatrix<T>& dy, Index pixels, T scale, const RowMatrix<T>& dx);

}  // namespace kernels
}  // namespace cuda
}  // namespace bcnn

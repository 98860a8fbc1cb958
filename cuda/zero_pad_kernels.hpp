#pragma once
// Internal to bcnn_cuda: zero padding launchers over the row views (one row
// per pixel, C cols) of NHWC device tensors. They return the launch's status;
// zero_pad.cpp checks arguments and the status.

#include <cuda_runtime_api.h>

#include "bcnn/core/row_matrix.hpp"

namespace bcnn {
namespace cuda {
namespace kernels {

// The geometry of one padding: images (N, H, W) inside (N, OH, OW) at (top, left).
struct PadGeometry {
    Index n, h, w, oh, ow, top, left;
};

// x (N*H*W rows) -> y (N*OH*OW rows): x's pixels at their place, zeros elsewhere.
template <typename T>
cudaError_t zero_pad2d_forward(const RowMatrix<T>& x, const PadGeometry& g, const RowMatrix<T>& y);

// dy (N*OH*OW rows) -> dx (N*H*W rows): the crop of dy that x's pixels came to.
template <typename T>
cudaError_t zero_pad2d_backward(const RowMatrix<T>& dy, const PadGeometry& g, const RowMatrix<T>& dx);

}  // namespace kernels
}  // namespace cuda
}  // namespace bcnn

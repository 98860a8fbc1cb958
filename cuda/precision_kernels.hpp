#pragma once
// Internal to bcnn_cuda: conversions between float and the 16-bit types of
// mixed precision (bf16, fp16), between any two layouts of the same (n, h, w,
// c) extents, one kernel each (one read, one write per element):
//   - packing: a channel slice (pixel rows ld > c apart) or a strided view
//     into a packed tensor, or packed into a slice / the top-left part of a
//     padded image;
//   - Keras' HWIO weights viewed as (K, KH, KW, C) into cuDNN's packed KRSC
//     and back (the transpose is a layout like any other);
//   - dense matrices: rows x cols with row stride ld is (1, 1, rows, cols)
//     with w_stride = ld.
// float -> half rounds to nearest even; half -> float is exact, and may add
// a per-channel bias on the way (bias[c], c the innermost index).
// Half data is passed as void*: 2 bytes per element (bf16 or fp16 by `half`).
// Returns the launch's status; nothing runs for an empty layout.

#include <cuda_runtime_api.h>

#include <type_traits>

#include "bcnn/backend/cuda/precision.hpp"
#include "tensor_layout.hpp"

namespace bcnn {
namespace cuda {
namespace detail {

// The precision an op on T runs in: the thread's setting for float, fp32 for double.
template <typename T>
Precision effective_precision() {
    return std::is_same<T, float>::value ? compute_precision() : Precision::fp32;
}

// A row matrix (rows x cols, row stride ld) as a layout: (1, 1, rows, cols).
inline TensorLayout rows_layout(Index rows, Index cols, Index ld) { return strided_nhwc(1, 1, rows, cols, 1, rows, ld); }

}  // namespace detail

namespace kernels {

// Bytes per element of the 16-bit types.
constexpr int kHalfBytes = 2;

// to (half, to_layout) = from (float, from_layout); half is bf16 or fp16.
cudaError_t float_to_half(const detail::TensorLayout& from_layout, const float* from,
                          const detail::TensorLayout& to_layout, void* to, Precision half);

// to (float, to_layout) = from (half, from_layout) [+ bias[c]]; bias may be nullptr.
cudaError_t half_to_float(const detail::TensorLayout& from_layout, const void* from, Precision half,
                          const detail::TensorLayout& to_layout, float* to, const float* bias);

}  // namespace kernels
}  // namespace cuda
}  // namespace bcnn

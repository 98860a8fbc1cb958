// float <-> bf16/fp16 between layouts (precision_kernels.hpp). One thread per
// element (grid-stride): the linear index of the (n, h, w, c) extents is
// split into its coordinates, which give the offsets in both layouts.

#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <algorithm>

#include "precision_kernels.hpp"
#include "stream.hpp"

namespace bcnn {
namespace cuda {
namespace kernels {

namespace {

constexpr int kThreads = 256;
constexpr Index kMaxBlocks = Index(1) << 16;

__device__ float to_float(float v) { return v; }
__device__ float to_float(__nv_bfloat16 v) { return __bfloat162float(v); }
__device__ float to_float(__half v) { return __half2float(v); }

template <typename To>
__device__ To from_float(float v);
template <>
__device__ float from_float<float>(float v) { return v; }
template <>
__device__ __nv_bfloat16 from_float<__nv_bfloat16>(float v) { return __float2bfloat16_rn(v); }
template <>
__device__ __half from_float<__half>(float v) { return __float2half_rn(v); }

__device__ Index offset(const detail::TensorLayout& l, Index n, Index h, Index w, Index c) {
    return n * l.n_stride + h * l.h_stride + w * l.w_stride + c * l.c_stride;
}

template <typename From, typename To>
__global__ void convert_kernel(detail::TensorLayout from_layout, const From* from, detail::TensorLayout to_layout,
                               To* to, const float* bias, Index total) {
    for (Index i = blockIdx.x * Index(blockDim.x) + threadIdx.x; i < total; i += Index(gridDim.x) * blockDim.x) {
        Index rest = i;
        const Index c = rest % from_layout.c;
        rest /= from_layout.c;
        const Index w = rest % from_layout.w;
        rest /= from_layout.w;
        const Index h = rest % from_layout.h;
        const Index n = rest / from_layout.h;
        float value = to_float(from[offset(from_layout, n, h, w, c)]);
        if (bias) value += bias[c];
        to[offset(to_layout, n, h, w, c)] = from_float<To>(value);
    }
}

template <typename From, typename To>
cudaError_t launch(const detail::TensorLayout& from_layout, const From* from, const detail::TensorLayout& to_layout,
                   To* to, const float* bias) {
    const Index total = from_layout.n * from_layout.h * from_layout.w * from_layout.c;
    if (total == 0) return cudaSuccess;
    const Index blocks = std::min<Index>((total + kThreads - 1) / kThreads, kMaxBlocks);
    convert_kernel<<<static_cast<unsigned>(blocks), kThreads, 0, detail::context_stream()>>>(from_layout, from,
                                                                                           to_layout, to, bias, total);
    return cudaGetLastError();
}

}  // namespace

cudaError_t float_to_half(const detail::TensorLayout& from_layout, const float* from,
                          const detail::TensorLayout& to_layout, void* to, Precision half) {
    if (half == Precision::bf16)
        return launch(from_layout, from, to_layout, static_cast<__nv_bfloat16*>(to), nullptr);
    if (half == Precision::fp16) return launch(from_layout, from, to_layout, static_cast<__half*>(to), nullptr);
    return cudaErrorInvalidValue;
}

cudaError_t half_to_float(const detail::TensorLayout& from_layout, const void* from, Precision half,
                          const detail::TensorLayout& to_layout, float* to, const float* bias) {
    if (half == Precision::bf16)
        return launch(from_layout, static_cast<const __nv_bfloat16*>(from), to_layout, to, bias);
    if (half == Precision::fp16) return launch(from_layout, static_cast<const __half*>(from), to_layout, to, bias);
    return cudaErrorInvalidValue;
}

}  // namespace kernels
}  // namespace cuda
}  // namespace bcnn

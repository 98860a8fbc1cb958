// The optimiser update kernels of optimizer_updates_kernels.hpp: one thread
// per element (grid-stride), each element's formula written exactly as in
// optim/adam.hpp and optim/sgd.hpp, in T, without FMA contraction
// (exact_arithmetic.cuh). sqrt and division are IEEE round-to-nearest
// (nvcc's defaults -prec-sqrt=true -prec-div=true), as on the CPU.

#include <algorithm>
#include <cmath>

#include "exact_arithmetic.cuh"
#include "optimizer_updates_kernels.hpp"
#include "stream.hpp"

namespace bcnn {
namespace cuda {
namespace kernels {

namespace {

constexpr int kThreads = 256;
constexpr Index kMaxBlocks = 65535;

unsigned blocks_for(Index n) {
    return static_cast<unsigned>(std::min<Index>((n + kThreads - 1) / kThreads, kMaxBlocks));
}

__device__ inline float square_root(float x) { return sqrtf(x); }
__device__ inline double square_root(double x) { return sqrt(x); }

template <typename T>
__global__ void adam_kernel(T* p, const T* g, T* m, T* v, Index n, AdamConstants<T> k) {
    for (Index i = blockIdx.x * Index(blockDim.x) + threadIdx.x; i < n; i += Index(gridDim.x) * blockDim.x) {
        const T gi = g[i];
        const T mi = add_rn(m[i], mul_rn(sub_rn(gi, m[i]), k.one_minus_beta_1));
        const T vi = add_rn(v[i], mul_rn(sub_rn(mul_rn(gi, gi), v[i]), k.one_minus_beta_2));
        m[i] = mi;
        v[i] = vi;
        p[i] = sub_rn(p[i], mul_rn(mi, k.alpha) / add_rn(square_root(vi), k.epsilon));
    }
}

template <typename T>
__global__ void sgd_kernel(T* p, const T* g, T* velocity, Index n, T learning_rate, T momentum, bool nesterov) {
    for (Index i = blockIdx.x * Index(blockDim.x) + threadIdx.x; i < n; i += Index(gridDim.x) * blockDim.x) {
        const T step = mul_rn(g[i], learning_rate);
        if (!velocity) {
            p[i] = sub_rn(p[i], step);
            continue;
        }
        const T vi = sub_rn(mul_rn(velocity[i], momentum), step);
        velocity[i] = vi;
        p[i] = add_rn(p[i], nesterov ? sub_rn(mul_rn(vi, momentum), step) : vi);
    }
}

}  // namespace

template <typename T>
cudaError_t adam_update(T* p, const T* g, T* m, T* v, Index n, const AdamConstants<T>& k) {
    if (n == 0) return cudaSuccess;
    adam_kernel<<<blocks_for(n), kThreads, 0, detail::context_stream()>>>(p, g, m, v, n, k);
    return cudaGetLastError();
}

template <typename T>
cudaError_t sgd_update(T* p, const T* g, T* velocity, Index n, T learning_rate, T momentum, bool nesterov) {
    if (n == 0) return cudaSuccess;
    sgd_kernel<<<blocks_for(n), kThreads, 0, detail::context_stream()>>>(p, g, velocity, n, learning_rate, momentum,
                                                                         nesterov);
    return cudaGetLastError();
}

template cudaError_t adam_update<float>(float*, const float*, float*, float*, Index, const AdamConstants<float>&);
template cudaError_t adam_update<double>(double*, const double*, double*, double*, Index,
                                         const AdamConstants<double>&);
template cudaError_t sgd_update<float>(float*, const float*, float*, Index, float, float, bool);
template cudaError_t sgd_update<double>(double*, const double*, double*, Index, double, double, bool);

}  // namespace kernels
}  // namespace cuda
}  // namespace bcnn

// The direct weights gradient in double (filter_gradient_kernels.hpp): one
// thread per weight, grid-stride; consecutive threads take consecutive
// filters k, so their dy reads are contiguous and their x reads shared.

#include <algorithm>

#include "filter_gradient_kernels.hpp"
#include "stream.hpp"

namespace bcnn {
namespace cuda {
namespace kernels {

namespace {

constexpr int kThreads = 128;
constexpr Index kMaxGrid = 65535;

__global__ void filter_gradient_kernel(const FilterGradientGeometry g, const double* x, const double* dy,
                                       double* d_weights, Index weights) {
    for (Index w = blockIdx.x * Index(blockDim.x) + threadIdx.x; w < weights; w += Index(gridDim.x) * blockDim.x)
        d_weights[w] = filter_gradient_at(x, dy, g, w);
}

}  // namespace

cudaError_t filter_gradient(const FilterGradientGeometry& g, const double* x, const double* dy, double* d_weights) {
    const Index weights = g.kernel_h * g.kernel_w * (g.channels / g.groups) * g.filters;
    if (weights == 0) return cudaSuccess;
    const dim3 grid(static_cast<unsigned>(std::min<Index>((weights + kThreads - 1) / kThreads, kMaxGrid)));
    filter_gradient_kernel<<<grid, kThreads, 0, detail::context_stream()>>>(g, x, dy, d_weights, weights);
    return cudaGetLastError();
}

}  // namespace kernels
}  // namespace cuda
}  // namespace bcnn

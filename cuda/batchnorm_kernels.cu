// The batch norm kernels of batchnorm_kernels.hpp: one thread per channel for
// the moving statistics; one per element, grid-stride over the columns on x
// and the rows on y (as relu_kernels.cu), for the input gradient; one per
// weight, grid-stride, for the folding, whose threads i < channels also write
// the folded bias. The folding rounds like the CPU: one double operation at a
// time (exact_arithmetic.cuh: no FMA contraction), sqrt and division IEEE
// round-to-nearest (nvcc's defaults -prec-sqrt=true -prec-div=true).

#include <algorithm>

#include "batchnorm_kernels.hpp"
#include "exact_arithmetic.cuh"
#include "stream.hpp"

namespace bcnn {
namespace cuda {
namespace kernels {

namespace {

constexpr int kThreads = 256;
constexpr Index kMaxGrid = 65535;

template <typename T>
__global__ void update_moving_statistics_kernel(T* moving_mean, T* moving_variance, const T* batch_mean,
                                                const T* batch_variance, Index channels, double momentum,
                                                double variance_factor) {
    const Index c = Index(blockIdx.x) * blockDim.x + threadIdx.x;
    if (c >= channels) return;
    const double variance = variance_factor == 0 ? 0.0 : static_cast<double>(batch_variance[c]) * variance_factor;
    moving_mean[c] = static_cast<T>(static_cast<double>(moving_mean[c]) * momentum +
                                    static_cast<double>(batch_mean[c]) * (1 - momentum));
    moving_variance[c] = static_cast<T>(static_cast<double>(moving_variance[c]) * momentum + variance * (1 - momentum));
}

template <typename T>
__global__ void frozen_input_gradient_kernel(const T* dy, Index lddy, const T* gamma, const T* variance, double epsilon,
                                             T* dx, Index lddx, Index rows, Index cols) {
    for (Index c = blockIdx.x * Index(blockDim.x) + threadIdx.x; c < cols; c += Index(gridDim.x) * blockDim.x) {
        // gamma * inv_std as the CPU kernel rounds it: inv_std first, in double.
        const double inv_std = 1.0 / sqrt(static_cast<double>(variance[c]) + epsilon);
        const T scale = static_cast<T>(static_cast<double>(gamma[c]) * inv_std);
        for (Index r = blockIdx.y; r < rows; r += gridDim.y) dx[r * lddx + c] = scale * dy[r * lddy + c];
    }
}

template <typename T>
__global__ void fold_batchnorm_kernel(const T* weights, const T* bias, const T* gamma, const T* beta,
                                      const T* moving_mean, const T* moving_variance, double epsilon, Index size,
                                      Index channels, T* folded_weights, T* folded_bias) {
    for (Index i = blockIdx.x * Index(blockDim.x) + threadIdx.x; i < size; i += Index(gridDim.x) * blockDim.x) {
        const Index c = i % channels;
        const double scale =
            static_cast<double>(gamma[c]) / sqrt(add_rn(static_cast<double>(moving_variance[c]), epsilon));
        folded_weights[i] = static_cast<T>(mul_rn(static_cast<double>(weights[i]), scale));
        if (i < channels) {
            const double shift =
                sub_rn(static_cast<double>(beta[c]), mul_rn(static_cast<double>(moving_mean[c]), scale));
            const double b = bias ? static_cast<double>(bias[c]) : 0.0;
            folded_bias[c] = static_cast<T>(add_rn(mul_rn(b, scale), shift));
        }
    }
}

}  // namespace

template <typename T>
cudaError_t update_moving_statistics(T* moving_mean, T* moving_variance, const T* batch_mean,
                                     const T* batch_variance, Index channels, double momentum,
                                     double variance_factor) {
    if (channels == 0) return cudaSuccess;
    update_moving_statistics_kernel<<<static_cast<unsigned>((channels + kThreads - 1) / kThreads), kThreads, 0,
                                      detail::context_stream()>>>(
        moving_mean, moving_variance, batch_mean, batch_variance, channels, momentum, variance_factor);
    return cudaGetLastError();
}

template <typename T>
cudaError_t frozen_batchnorm_input_gradient(const RowMatrix<T>& dy, const T* gamma, const T* variance, double epsilon,
                                            const RowMatrix<T>& dx) {
    if (dx.rows * dx.cols == 0) return cudaSuccess;
    const dim3 grid(static_cast<unsigned>(std::min<Index>((dx.cols + kThreads - 1) / kThreads, kMaxGrid)),
                    static_cast<unsigned>(std::min<Index>(dx.rows, kMaxGrid)));
    frozen_input_gradient_kernel<<<grid, kThreads, 0, detail::context_stream()>>>(
        dy.data, dy.ld, gamma, variance, epsilon, dx.data, dx.ld, dx.rows, dx.cols);
    return cudaGetLastError();
}

template <typename T>
cudaError_t fold_batchnorm(const T* weights, const T* bias, const T* gamma, const T* beta, const T* moving_mean,
                           const T* moving_variance, double epsilon, Index size, Index channels, T* folded_weights,
                           T* folded_bias) {
    if (size == 0) return cudaSuccess;
    const unsigned blocks = static_cast<unsigned>(std::min<Index>((size + kThreads - 1) / kThreads, kMaxGrid));
    fold_batchnorm_kernel<<<blocks, kThreads, 0, detail::context_stream()>>>(
        weights, bias, gamma, beta, moving_mean, moving_variance, epsilon, size, channels, folded_weights,
        folded_bias);
    return cudaGetLastError();
}

template cudaError_t update_moving_statistics<float>(float*, float*, const float*, const float*, Index, double,
                                                     double);
template cudaError_t update_moving_statistics<double>(double*, double*, const double*, const double*, Index, double,
                                                      double);
template cudaError_t frozen_batchnorm_input_gradient<float>(const RowMatrix<float>&, const float*, const float*, double,
                                                            const RowMatrix<float>&);
template cudaError_t frozen_batchnorm_input_gradient<double>(const RowMatrix<double>&, const double*, const double*,
                                                             double, const RowMatrix<double>&);
template cudaError_t fold_batchnorm<float>(const float*, const float*, const float*, const float*, const float*,
                                           const float*, double, Index, Index, float*, float*);
template cudaError_t fold_batchnorm<double>(const double*, const double*, const double*, const double*,
                                            const double*, const double*, double, Index, Index, double*, double*);

}  // namespace kernels
}  // namespace cuda
}  // namespace bcnn

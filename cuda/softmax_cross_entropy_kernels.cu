// Softmax cross-entropy kernels (softmax_cross_entropy_kernels.hpp). One
// block of kThreads per row (grid-stride over rows): each thread takes the
// classes j = threadIdx.x + k * kThreads, then the block combines the
// threads' maxima and double sums in a fixed tree, so every result depends
// only on the inputs. The gradient is element-wise, its multiply and
// subtract rounded separately as the CPU's (exact_arithmetic.cuh).

#include <algorithm>
#include <cmath>

#include "exact_arithmetic.cuh"
#include "softmax_cross_entropy_kernels.hpp"
#include "stream.hpp"

namespace bcnn {
namespace cuda {
namespace kernels {

namespace {

constexpr int kThreads = 256;
constexpr Index kMaxGrid = 65535;

__device__ inline float exponential(float x) { return expf(x); }
__device__ inline double exponential(double x) { return exp(x); }
__device__ inline bool finite(float x) { return isfinite(x); }
__device__ inline bool finite(double x) { return isfinite(x); }

// The block's values in `shared` combined by `combine` in a fixed tree; all threads get the result.
template <typename V, typename Combine>
__device__ V block_combine(V* shared, V value, Combine combine) {
    shared[threadIdx.x] = value;
    __syncthreads();
    for (int half = kThreads / 2; half > 0; half /= 2) {
        if (threadIdx.x < half) shared[threadIdx.x] = combine(shared[threadIdx.x], shared[threadIdx.x + half]);
        __syncthreads();
    }
    const V result = shared[0];
    __syncthreads();  // shared is reused by the next call
    return result;
}

template <typename T>
__global__ void find_bad_rows_kernel(const std::int32_t* labels, const T* z, Index ld, Index rows, Index classes,
                                     int* first_bad) {
    for (Index r = blockIdx.x * Index(blockDim.x) + threadIdx.x; r < rows; r += Index(gridDim.x) * blockDim.x) {
        if (labels[r] < 0 || labels[r] >= classes) atomicMin(&first_bad[0], static_cast<int>(r));
        if (!z) continue;
        for (Index j = 0; j < classes; ++j)
            if (!finite(z[r * ld + j])) {
                atomicMin(&first_bad[1], static_cast<int>(r));
                break;
            }
    }
}

template <typename T>
__global__ void softmax_cross_entropy_rows_kernel(const T* z, Index ldz, const std::int32_t* labels, T* p, Index ldp,
                                                  Index rows, Index classes, double* row_loss) {
    __shared__ T shared_max[kThreads];
    __shared__ double shared_sum[kThreads];
    for (Index r = blockIdx.x; r < rows; r += gridDim.x) {
        const T* in = z + r * ldz;
        T* out = p + r * ldp;
        const double target = static_cast<double>(in[labels[r]]);  // read before out (maybe in) is written
        T max = in[0];
        for (Index j = threadIdx.x; j < classes; j += kThreads) max = in[j] > max ? in[j] : max;
        max = block_combine(shared_max, max, [](T a, T b) { return a > b ? a : b; });
        double sum = 0;
        for (Index j = threadIdx.x; j < classes; j += kThreads) {
            const T e = exponential(in[j] - max);
            out[j] = e;
            sum += static_cast<double>(e);
        }
        sum = block_combine(shared_sum, sum, [](double a, double b) { return a + b; });
        const T inverse = static_cast<T>(1.0 / sum);
        for (Index j = threadIdx.x; j < classes; j += kThreads) out[j] *= inverse;
        if (threadIdx.x == 0) row_loss[r] = static_cast<double>(max) + log(sum) - target;
    }
}

template <typename T>
__global__ void softmax_cross_entropy_gradient_kernel(const T* p, Index ldp, const std::int32_t* labels, T inverse_n,
                                                      T* d, Index ldd, Index rows, Index classes) {
    for (Index r = blockIdx.y; r < rows; r += gridDim.y)
        for (Index j = blockIdx.x * Index(blockDim.x) + threadIdx.x; j < classes; j += Index(gridDim.x) * blockDim.x) {
            const T scaled = mul_rn(p[r * ldp + j], inverse_n);
            d[r * ldd + j] = j == labels[r] ? sub_rn(scaled, inverse_n) : scaled;
        }
}

unsigned blocks(Index count, Index per_block) {
    return static_cast<unsigned>(std::min<Index>((count + per_block - 1) / per_block, kMaxGrid));
}

}  // namespace

template <typename T>
cudaError_t find_bad_rows(const std::int32_t* labels, const RowMatrix<T>* logits, Index rows, Index classes,
                          int* first_bad) {
    // -1 as "none" would win every atomicMin: start from INT_MAX, map back below.
    const int none[2] = {0x7fffffff, 0x7fffffff};
    cudaError_t status = cudaMemcpy(first_bad, none, sizeof(none), cudaMemcpyHostToDevice);
    if (status != cudaSuccess || rows == 0) return status;
    find_bad_rows_kernel<<<blocks(rows, kThreads), kThreads, 0, detail::context_stream()>>>(
        labels, logits ? logits->data : static_cast<T*>(nullptr), logits ? logits->ld : 0, rows, classes, first_bad);
    return cudaGetLastError();
}

template <typename T>
cudaError_t softmax_cross_entropy_rows(const RowMatrix<T>& z, const std::int32_t* labels, const RowMatrix<T>& p,
                                       double* row_loss) {
    if (z.rows * z.cols == 0) return cudaSuccess;
    softmax_cross_entropy_rows_kernel<<<static_cast<unsigned>(std::min(z.rows, kMaxGrid)), kThreads, 0,
                                        detail::context_stream()>>>(
        z.data, z.ld, labels, p.data, p.ld, z.rows, z.cols, row_loss);
    return cudaGetLastError();
}

template <typename T>
cudaError_t softmax_cross_entropy_gradient(const RowMatrix<T>& p, const std::int32_t* labels, T inverse_n,
                                           const RowMatrix<T>& d) {
    if (p.rows * p.cols == 0) return cudaSuccess;
    const dim3 grid(blocks(p.cols, kThreads), static_cast<unsigned>(std::min(p.rows, kMaxGrid)));
    softmax_cross_entropy_gradient_kernel<<<grid, kThreads, 0, detail::context_stream()>>>(
        p.data, p.ld, labels, inverse_n, d.data, d.ld, p.rows, p.cols);
    return cudaGetLastError();
}

template cudaError_t find_bad_rows<float>(const std::int32_t*, const RowMatrix<float>*, Index, Index, int*);
template cudaError_t find_bad_rows<double>(const std::int32_t*, const RowMatrix<double>*, Index, Index, int*);
template cudaError_t softmax_cross_entropy_rows<float>(const RowMatrix<float>&, const std::int32_t*,
                                                       const RowMatrix<float>&, double*);
template cudaError_t softmax_cross_entropy_rows<double>(const RowMatrix<double>&, const std::int32_t*,
                                                        const RowMatrix<double>&, double*);
template cudaError_t softmax_cross_entropy_gradient<float>(const RowMatrix<float>&, const std::int32_t*, float,
                                                           const RowMatrix<float>&);
template cudaError_t softmax_cross_entropy_gradient<double>(const RowMatrix<double>&, const std::int32_t*, double,
                                                            const RowMatrix<double>&);

}  // namespace kernels
}  // namespace cuda
}  // namespace bcnn

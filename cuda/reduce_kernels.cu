// The per-column sums of reduce_kernels.hpp. Pass 1: a block of 32 columns x
// 8 row lanes sums one chunk of one segment; each lane walks its rows in
// order, then lane 0 adds the 8 lanes in order and writes the chunk's partial
// sum. Pass 2: one thread per (segment, column) adds the chunks in order,
// scales and rounds to T.

#include <algorithm>

#include "reduce_kernels.hpp"
#include "stream.hpp"

namespace bcnn {
namespace cuda {
namespace kernels {

namespace {

constexpr int kColumnsPerBlock = 32;
constexpr int kRowLanes = 8;
constexpr Index kMinRowsPerChunk = 64;
constexpr Index kMaxChunks = 256;
constexpr int kFinishThreads = 256;

Index chunks_per_segment(Index rows_per_segment) {
    return std::max<Index>(1, std::min(kMaxChunks, rows_per_segment / kMinRowsPerChunk));
}

// Term: the value row r, column c contributes: m.row(r)[c].
template <typename T>
struct PlainTerm {
    const T* data;
    Index ld;
    __device__ double operator()(Index r, Index c) const { return static_cast<double>(data[r * ld + c]); }
};

// Term: dy * (x - mean) / sqrt(variance + epsilon), in double.
template <typename T>
struct NormalizedProductTerm {
    const T* dy;
    Index lddy;
    const T* x;
    Index ldx;
    const T* mean;
    const T* variance;
    double epsilon;
    __device__ double operator()(Index r, Index c) const {
        const double inv_std = 1.0 / sqrt(static_cast<double>(variance[c]) + epsilon);
        return static_cast<double>(dy[r * lddy + c]) *
               ((static_cast<double>(x[r * ldx + c]) - static_cast<double>(mean[c])) * inv_std);
    }
};

// grid (column blocks, chunks, segments), block (kColumnsPerBlock, kRowLanes)
template <typename Term>
__global__ void chunk_sums_kernel(Term term, Index rows_per_segment, Index cols, Index chunks, double* partials) {
    __shared__ double lanes[kRowLanes][kColumnsPerBlock];
    const Index c = Index(blockIdx.x) * kColumnsPerBlock + threadIdx.x;
    const Index chunk = blockIdx.y, segment = blockIdx.z;
    const Index first = segment * rows_per_segment + chunk * rows_per_segment / chunks;
    const Index last = segment * rows_per_segment + (chunk + 1) * rows_per_segment / chunks;
    double sum = 0;
    if (c < cols)
        for (Index r = first + threadIdx.y; r < last; r += kRowLanes) sum += term(r, c);
    lanes[threadIdx.y][threadIdx.x] = sum;
    __syncthreads();
    if (threadIdx.y == 0 && c < cols) {
        double total = 0;
        for (int lane = 0; lane < kRowLanes; ++lane) total += lanes[lane][threadIdx.x];
        partials[(segment * chunks + chunk) * cols + c] = total;
    }
}

// grid (column blocks of kFinishThreads, segments)
template <typename T>
__global__ void finish_sums_kernel(const double* partials, Index cols, Index chunks, double scale, T* out,
                                   Index out_ld) {
    const Index c = Index(blockIdx.x) * blockDim.x + threadIdx.x, segment = blockIdx.y;
    if (c >= cols) return;
    double total = 0;
    for (Index chunk = 0; chunk < chunks; ++chunk) total += partials[(segment * chunks + chunk) * cols + c];
    out[segment * out_ld + c] = static_cast<T>(scale * total);
}

template <typename T, typename Term>
cudaError_t launch_sums(const Term& term, Index rows, Index cols, Index segments, double scale, T* out, Index out_ld,
                        double* partials) {
    if (cols == 0 || segments == 0) return cudaSuccess;
    const Index rows_per_segment = rows / segments, chunks = chunks_per_segment(rows_per_segment);
    const dim3 grid(static_cast<unsigned>((cols + kColumnsPerBlock - 1) / kColumnsPerBlock),
                    static_cast<unsigned>(chunks), static_cast<unsigned>(segments));
    chunk_sums_kernel<<<grid, dim3(kColumnsPerBlock, kRowLanes), 0, detail::context_stream()>>>(term, rows_per_segment,
                                                                                                cols, chunks, partials);
    const cudaError_t status = cudaGetLastError();
    if (status != cudaSuccess) return status;
    const dim3 finish_grid(static_cast<unsigned>((cols + kFinishThreads - 1) / kFinishThreads),
                           static_cast<unsigned>(segments));
    finish_sums_kernel<<<finish_grid, kFinishThreads, 0, detail::context_stream()>>>(partials, cols, chunks, scale, out,
                                                                                     out_ld);
    return cudaGetLastError();
}

}  // namespace

Index column_sums_partials(Index rows_per_segment, Index cols, Index segments) {
    return chunks_per_segment(rows_per_segment) * cols * segments;
}

template <typename T>
cudaError_t column_sums(const RowMatrix<T>& m, Index segments, double scale, T* out, Index out_ld, double* partials) {
    return launch_sums(PlainTerm<T>{m.data, m.ld}, m.rows, m.cols, segments, scale, out, out_ld, partials);
}

template <typename T>
cudaError_t normalized_product_sums(const RowMatrix<T>& dy, const RowMatrix<T>& x, const T* mean, const T* variance,
                                    double epsilon, T* out, double* partials) {
    const NormalizedProductTerm<T> term{dy.data, dy.ld, x.data, x.ld, mean, variance, epsilon};
    return launch_sums(term, dy.rows, dy.cols, 1, 1.0, out, dy.cols, partials);
}

template cudaError_t column_sums<float>(const RowMatrix<float>&, Index, double, float*, Index, double*);
template cudaError_t column_sums<double>(const RowMatrix<double>&, Index, double, double*, Index, double*);
template cudaError_t normalized_product_sums<float>(const RowMatrix<float>&, const RowMatrix<float>&, const float*,
                                                   const float*, double, float*, double*);
template cudaError_t normalized_product_sums<double>(const RowMatrix<double>&, const RowMatrix<double>&,
                                                    const double*, const double*, double, double*, double*);

}  // namespace kernels
}  // namespace cuda
}  // namespace bcnn

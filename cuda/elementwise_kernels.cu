// y += x and y *= alpha over row views: one operation per element, as
// cpu::add_inplace / scale_inplace, so results agree bit for bit; the
// non-finite check raises a flag (every writer writes the same 1: no float
// atomics, no order). Each thread handles elements of one row (grid-stride
// over cols on x, over rows on y); contiguous tensors are launched as a
// single long row.

#include <algorithm>

#include "elementwise_kernels.hpp"
#include "stream.hpp"

namespace bcnn {
namespace cuda {
namespace kernels {

namespace {

constexpr int kThreads = 256;
constexpr Index kMaxGrid = 65535;

template <typename T>
__global__ void add_inplace_kernel(T* y, Index ldy, const T* x, Index ldx, Index rows, Index cols) {
    for (Index r = blockIdx.y; r < rows; r += gridDim.y)
        for (Index c = blockIdx.x * Index(blockDim.x) + threadIdx.x; c < cols; c += Index(gridDim.x) * blockDim.x)
            y[r * ldy + c] += x[r * ldx + c];
}

template <typename T>
__global__ void scale_inplace_kernel(T* y, Index ldy, T alpha, Index rows, Index cols) {
    for (Index r = blockIdx.y; r < rows; r += gridDim.y)
        for (Index c = blockIdx.x * Index(blockDim.x) + threadIdx.x; c < cols; c += Index(gridDim.x) * blockDim.x)
            y[r * ldy + c] *= alpha;
}

template <typename T>
__global__ void non_finite_kernel(const T* x, Index ldx, Index rows, Index cols, int* flag) {
    for (Index r = blockIdx.y; r < rows; r += gridDim.y)
        for (Index c = blockIdx.x * Index(blockDim.x) + threadIdx.x; c < cols; c += Index(gridDim.x) * blockDim.x)
            if (!isfinite(x[r * ldx + c])) *flag = 1;
}

// The rows and cols a launch covers: one long row when every view is contiguous.
struct Extent {
    Index rows, cols;
};
inline Extent extent(Index rows, Index cols, bool contiguous) {
    return contiguous ? Extent{1, rows * cols} : Extent{rows, cols};
}
inline dim3 grid_of(const Extent& e) {
    return dim3(static_cast<unsigned>(std::min<Index>((e.cols + kThreads - 1) / kThreads, kMaxGrid)),
                static_cast<unsigned>(std::min<Index>(e.rows, kMaxGrid)));
}

}  // namespace

template <typename T>
cudaError_t add_inplace(const RowMatrix<T>& y, const RowMatrix<T>& x) {
    const Extent e = extent(y.rows, y.cols, y.contiguous() && x.contiguous());
    if (e.rows * e.cols == 0) return cudaSuccess;
    add_inplace_kernel<<<grid_of(e), kThreads, 0, detail::context_stream()>>>(y.data, y.ld, x.data, x.ld, e.rows,
                                                                              e.cols);
    return cudaGetLastError();
}

template <typename T>
cudaError_t scale_inplace(const RowMatrix<T>& y, T alpha) {
    const Extent e = extent(y.rows, y.cols, y.contiguous());
    if (e.rows * e.cols == 0) return cudaSuccess;
    scale_inplace_kernel<<<grid_of(e), kThreads, 0, detail::context_stream()>>>(y.data, y.ld, alpha, e.rows, e.cols);
    return cudaGetLastError();
}

template <typename T>
cudaError_t count_non_finite(const RowMatrix<T>& x, int* flag) {
    const cudaError_t cleared = cudaMemsetAsync(flag, 0, sizeof(int), detail::context_stream());
    if (cleared != cudaSuccess) return cleared;
    const Extent e = extent(x.rows, x.cols, x.contiguous());
    if (e.rows * e.cols == 0) return cudaSuccess;
    non_finite_kernel<<<grid_of(e), kThreads, 0, detail::context_stream()>>>(x.data, x.ld, e.rows, e.cols, flag);
    return cudaGetLastError();
}

template cudaError_t add_inplace<float>(const RowMatrix<float>&, const RowMatrix<float>&);
template cudaError_t add_inplace<double>(const RowMatrix<double>&, const RowMatrix<double>&);
template cudaError_t scale_inplace<float>(const RowMatrix<float>&, float);
template cudaError_t scale_inplace<double>(const RowMatrix<double>&, double);
template cudaError_t count_non_finite<float>(const RowMatrix<float>&, int*);
template cudaError_t count_non_finite<double>(const RowMatrix<double>&, int*);

}  // namespace kernels
}  // namespace cuda
}  // namespace bcnn

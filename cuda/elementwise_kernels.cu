// y += x over row views: one addition per element, as cpu::add_inplace, so
// results agree bit for bit. Each thread handles elements of one row
// (grid-stride over cols on x, over rows on y); contiguous tensors are
// launched as a single long row.

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

}  // namespace

template <typename T>
cudaError_t add_inplace(const RowMatrix<T>& y, const RowMatrix<T>& x) {
    const bool contiguous = y.contiguous() && x.contiguous();
    const Index rows = contiguous ? 1 : y.rows, cols = contiguous ? y.rows * y.cols : y.cols;
    if (rows * cols == 0) return cudaSuccess;
    const dim3 grid(static_cast<unsigned>(std::min<Index>((cols + kThreads - 1) / kThreads, kMaxGrid)),
                    static_cast<unsigned>(std::min<Index>(rows, kMaxGrid)));
    add_inplace_kernel<<<grid, kThreads, 0, detail::context_stream()>>>(y.data, y.ld, x.data, x.ld, rows, cols);
    return cudaGetLastError();
}

template cudaError_t add_inplace<float>(const RowMatrix<float>&, const RowMatrix<float>&);
template cudaError_t add_inplace<double>(const RowMatrix<double>&, const RowMatrix<double>&);

}  // namespace kernels
}  // namespace cuda
}  // namespace bcnn

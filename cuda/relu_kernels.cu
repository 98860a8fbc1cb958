// ReLU forward and backward kernels, element for element the CPU kernels'
// formulas (kernels/cpu/activation.hpp), so results agree bit for bit. An
// output may alias its input exactly. Each thread handles elements of one row
// (grid-stride over cols on x, over rows on y), so row views need no division;
// a contiguous tensor is launched as a single long row.

#include <algorithm>

#include "relu_kernels.hpp"
#include "stream.hpp"

namespace bcnn {
namespace cuda {
namespace kernels {

namespace {

constexpr int kThreads = 256;
constexpr Index kMaxGrid = 65535;

template <typename T>
__global__ void relu_forward_kernel(const T* x, Index ldx, T* y, Index ldy, Index rows, Index cols) {
    for (Index r = blockIdx.y; r < rows; r += gridDim.y)
        for (Index c = blockIdx.x * Index(blockDim.x) + threadIdx.x; c < cols; c += Index(gridDim.x) * blockDim.x) {
            const T value = x[r * ldx + c];
            y[r * ldy + c] = value < T(0) ? T(0) : value;  // as the CPU kernel: NaN passes through
        }
}

template <typename T>
__global__ void relu_backward_kernel(const T* y, Index ldy, const T* dy, Index lddy, T* dx, Index lddx, Index rows,
                                     Index cols) {
    for (Index r = blockIdx.y; r < rows; r += gridDim.y)
        for (Index c = blockIdx.x * Index(blockDim.x) + threadIdx.x; c < cols; c += Index(gridDim.x) * blockDim.x)
            dx[r * lddx + c] = y[r * ldy + c] > T(0) ? dy[r * lddy + c] : T(0);
}

// Rows and cols to launch: one row of rows*cols when every view is contiguous.
struct Extent {
    Index rows, cols;
    dim3 grid() const {
        return dim3(static_cast<unsigned>(std::min<Index>((cols + kThreads - 1) / kThreads, kMaxGrid)),
                    static_cast<unsigned>(std::min<Index>(rows, kMaxGrid)));
    }
};

template <typename T>
Extent extent_of(const RowMatrix<T>& first, bool all_contiguous) {
    return all_contiguous ? Extent{1, first.rows * first.cols} : Extent{first.rows, first.cols};
}

}  // namespace

template <typename T>
cudaError_t relu_forward(const RowMatrix<T>& x, const RowMatrix<T>& y) {
    const bool contiguous = x.contiguous() && y.contiguous();
    const Extent e = extent_of(x, contiguous);
    if (e.rows * e.cols == 0) return cudaSuccess;
    relu_forward_kernel<<<e.grid(), kThreads, 0, detail::context_stream()>>>(x.data, x.ld, y.data, y.ld, e.rows,
                                                                             e.cols);
    return cudaGetLastError();
}

template <typename T>
cudaError_t relu_backward(const RowMatrix<T>& y, const RowMatrix<T>& dy, const RowMatrix<T>& dx) {
    const bool contiguous = y.contiguous() && dy.contiguous() && dx.contiguous();
    const Extent e = extent_of(y, contiguous);
    if (e.rows * e.cols == 0) return cudaSuccess;
    relu_backward_kernel<<<e.grid(), kThreads, 0, detail::context_stream()>>>(y.data, y.ld, dy.data, dy.ld, dx.data,
                                                                              dx.ld, e.rows, e.cols);
    return cudaGetLastError();
}

template cudaError_t relu_forward<float>(const RowMatrix<float>&, const RowMatrix<float>&);
template cudaError_t relu_forward<double>(const RowMatrix<double>&, const RowMatrix<double>&);
template cudaError_t relu_backward<float>(const RowMatrix<float>&, const RowMatrix<float>&, const RowMatrix<float>&);
template cudaError_t relu_backward<double>(const RowMatrix<double>&, const RowMatrix<double>&,
                                           const RowMatrix<double>&);

}  // namespace kernels
}  // namespace cuda
}  // namespace bcnn

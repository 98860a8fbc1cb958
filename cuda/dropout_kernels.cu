// Dropout kernels (dropout_kernels.hpp): grid-stride over the columns on x
// and the rows on y, as relu_kernels.cu; each element draws its own Philox
// block (philox.hpp), so the mask does not depend on the launch shape.

#include <algorithm>

#include "dropout_kernels.hpp"
#include "philox.hpp"
#include "stream.hpp"

namespace bcnn {
namespace cuda {
namespace kernels {

namespace {

constexpr int kThreads = 256;
constexpr Index kMaxGrid = 65535;

template <typename T>
__global__ void dropout_forward_kernel(const T* x, Index ldx, T* mask, Index ldm, T* y, Index ldy, Index rows,
                                       Index cols, T rate, T scale, std::uint64_t seed, std::uint64_t first) {
    for (Index r = blockIdx.y; r < rows; r += gridDim.y)
        for (Index c = blockIdx.x * Index(blockDim.x) + threadIdx.x; c < cols; c += Index(gridDim.x) * blockDim.x) {
            const std::uint64_t position = first + static_cast<std::uint64_t>(r * cols + c);
            const T keep =
                detail::philox_uniform(detail::philox_bits_at(position, seed), T(0)) >= rate ? scale : T(0);
            mask[r * ldm + c] = keep;
            y[r * ldy + c] = x[r * ldx + c] * keep;
        }
}

template <typename T>
__global__ void dropout_backward_kernel(const T* dy, Index lddy, const T* mask, Index ldm, T* dx, Index lddx,
                                        Index rows, Index cols) {
    for (Index r = blockIdx.y; r < rows; r += gridDim.y)
        for (Index c = blockIdx.x * Index(blockDim.x) + threadIdx.x; c < cols; c += Index(gridDim.x) * blockDim.x)
            dx[r * lddx + c] = dy[r * lddy + c] * mask[r * ldm + c];
}

dim3 grid_of(Index rows, Index cols) {
    return dim3(static_cast<unsigned>(std::min<Index>((cols + kThreads - 1) / kThreads, kMaxGrid)),
                static_cast<unsigned>(std::min<Index>(rows, kMaxGrid)));
}

}  // namespace

template <typename T>
cudaError_t dropout_forward(const RowMatrix<T>& x, T rate, T scale, std::uint64_t seed, std::uint64_t first,
                            const RowMatrix<T>& mask, const RowMatrix<T>& y) {
    // One long row when every view is contiguous: index r * cols + c is unchanged.
    const bool contiguous = x.contiguous() && mask.contiguous() && y.contiguous();
    const Index rows = contiguous ? 1 : x.rows, cols = contiguous ? x.rows * x.cols : x.cols;
    if (rows * cols == 0) return cudaSuccess;
    dropout_forward_kernel<<<grid_of(rows, cols), kThreads, 0, detail::context_stream()>>>(
        x.data, x.ld, mask.data, mask.ld, y.data, y.ld, rows, cols, rate, scale, seed, first);
    return cudaGetLastError();
}

template <typename T>
cudaError_t dropout_backward(const RowMatrix<T>& dy, const RowMatrix<T>& mask, const RowMatrix<T>& dx) {
    const bool contiguous = dy.contiguous() && mask.contiguous() && dx.contiguous();
    const Index rows = contiguous ? 1 : dy.rows, cols = contiguous ? dy.rows * dy.cols : dy.cols;
    if (rows * cols == 0) return cudaSuccess;
    dropout_backward_kernel<<<grid_of(rows, cols), kThreads, 0, detail::context_stream()>>>(
        dy.data, dy.ld, mask.data, mask.ld, dx.data, dx.ld, rows, cols);
    return cudaGetLastError();
}

template cudaError_t dropout_forward<float>(const RowMatrix<float>&, float, float, std::uint64_t, std::uint64_t,
                                            const RowMatrix<float>&, const RowMatrix<float>&);
template cudaError_t dropout_forward<double>(const RowMatrix<double>&, double, double, std::uint64_t, std::uint64_t,
                                             const RowMatrix<double>&, const RowMatrix<double>&);
template cudaError_t dropout_backward<float>(const RowMatrix<float>&, const RowMatrix<float>&,
                                             const RowMatrix<float>&);
template cudaError_t dropout_backward<double>(const RowMatrix<double>&, const RowMatrix<double>&,
                                              const RowMatrix<double>&);

}  // namespace kernels
}  // namespace cuda
}  // namespace bcnn

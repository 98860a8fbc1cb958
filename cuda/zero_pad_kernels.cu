// Zero padding kernels: pure copies (and zeros), so results equal
// cpu::zero_pad2d_* bit for bit. Each block row handles output pixels
// (grid-stride over rows on y), its threads the channels (over cols on x).

#include <algorithm>

#include "stream.hpp"
#include "zero_pad_kernels.hpp"

namespace bcnn {
namespace cuda {
namespace kernels {

namespace {

constexpr int kThreads = 128;
constexpr Index kMaxGrid = 65535;

// Output pixel p of the padded image -> its input pixel, or -1 inside the padding.
__device__ Index source_pixel(Index p, const PadGeometry g) {
    const Index n = p / (g.oh * g.ow), rest = p % (g.oh * g.ow);
    const Index i = rest / g.ow - g.top, j = rest % g.ow - g.left;
    return i >= 0 && i < g.h && j >= 0 && j < g.w ? (n * g.h + i) * g.w + j : Index(-1);
}

template <typename T>
__global__ void zero_pad_forward_kernel(const T* x, Index ldx, const PadGeometry g, T* y, Index ldy, Index rows,
                                        Index cols) {
    for (Index r = blockIdx.y; r < rows; r += gridDim.y) {
        const Index from = source_pixel(r, g);
        for (Index c = blockIdx.x * Index(blockDim.x) + threadIdx.x; c < cols; c += Index(gridDim.x) * blockDim.x)
            y[r * ldy + c] = from < 0 ? T(0) : x[from * ldx + c];
    }
}

template <typename T>
__global__ void zero_pad_backward_kernel(const T* dy, Index lddy, const PadGeometry g, T* dx, Index lddx, Index rows,
                                         Index cols) {
    for (Index r = blockIdx.y; r < rows; r += gridDim.y) {
        const Index n = r / (g.h * g.w), rest = r % (g.h * g.w);
        const Index from = (n * g.oh + rest / g.w + g.top) * g.ow + rest % g.w + g.left;
        for (Index c = blockIdx.x * Index(blockDim.x) + threadIdx.x; c < cols; c += Index(gridDim.x) * blockDim.x)
            dx[r * lddx + c] = dy[from * lddy + c];
    }
}

dim3 grid_for(Index rows, Index cols) {
    return dim3(static_cast<unsigned>(std::min<Index>((cols + kThreads - 1) / kThreads, kMaxGrid)),
                static_cast<unsigned>(std::min<Index>(rows, kMaxGrid)));
}

}  // namespace

template <typename T>
cudaError_t zero_pad2d_forward(const RowMatrix<T>& x, const PadGeometry& g, const RowMatrix<T>& y) {
    if (y.rows * y.cols == 0) return cudaSuccess;
    zero_pad_forward_kernel<<<grid_for(y.rows, y.cols), kThreads, 0, detail::context_stream()>>>(
        x.data, x.ld, g, y.data, y.ld, y.rows, y.cols);
    return cudaGetLastError();
}

template <typename T>
cudaError_t zero_pad2d_backward(const RowMatrix<T>& dy, const PadGeometry& g, const RowMatrix<T>& dx) {
    if (dx.rows * dx.cols == 0) return cudaSuccess;
    zero_pad_backward_kernel<<<grid_for(dx.rows, dx.cols), kThreads, 0, detail::context_stream()>>>(
        dy.data, dy.ld, g, dx.data, dx.ld, dx.rows, dx.cols);
    return cudaGetLastError();
}

template cudaError_t zero_pad2d_forward<float>(const RowMatrix<float>&, const PadGeometry&, const RowMatrix<float>&);
template cudaError_t zero_pad2d_forward<double>(const RowMatrix<double>&, const PadGeometry&,
                                                const RowMatrix<double>&);
template cudaError_t zero_pad2d_backward<float>(const RowMatrix<float>&, const PadGeometry&, const RowMatrix<float>&);
template cudaError_t zero_pad2d_backward<double>(const RowMatrix<double>&, const PadGeometry&,
                                                 const RowMatrix<double>&);

}  // namespace kernels
}  // namespace cuda
}  // namespace bcnn

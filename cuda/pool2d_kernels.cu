// The pooling kernels of pool2d_kernels.hpp: one thread per element,
// grid-stride over the columns on x and the rows on y (as relu_kernels.cu).

#include <algorithm>

#include "pool2d_kernels.hpp"
#include "stream.hpp"

namespace bcnn {
namespace cuda {
namespace kernels {

namespace {

constexpr int kThreads = 256;
constexpr Index kMaxGrid = 65535;

dim3 grid_for(Index rows, Index cols) {
    return dim3(static_cast<unsigned>(std::min<Index>((cols + kThreads - 1) / kThreads, kMaxGrid)),
                static_cast<unsigned>(std::min<Index>(rows, kMaxGrid)));
}

// The valid extent of the window starting at `start` along an axis of `in` pixels.
__device__ Index covered(Index start, Index kernel, Index in) {
    return (start + kernel < in ? start + kernel : in) - (start > 0 ? start : 0);
}

// rows = N * OH * OW output pixels of `channels` values each, packed.
template <typename T>
__global__ void scale_by_window_size_over_count_kernel(T* data, Index rows, Index channels, WindowGeometry g,
                                                       Window2D w) {
    for (Index r = blockIdx.y; r < rows; r += gridDim.y) {
        const Index ow = r % g.out_w, oh = r / g.out_w % g.out_h;
        const Index count = covered(oh * w.stride_h - g.pad_top, w.kernel_h, g.in_h) *
                            covered(ow * w.stride_w - g.pad_left, w.kernel_w, g.in_w);
        const double factor = static_cast<double>(w.kernel_h * w.kernel_w) / static_cast<double>(count);
        for (Index c = blockIdx.x * Index(blockDim.x) + threadIdx.x; c < channels; c += Index(gridDim.x) * blockDim.x)
            data[r * channels + c] = static_cast<T>(static_cast<double>(data[r * channels + c]) * factor);
    }
}

template <typename T>
__global__ void broadcast_over_pixels_kernel(const T* dy, Index lddy, Index pixels, T scale, T* dx, Index lddx,
                                             Index rows, Index cols) {
    for (Index r = blockIdx.y; r < rows; r += gridDim.y)
        for (Index c = blockIdx.x * Index(blockDim.x) + threadIdx.x; c < cols; c += Index(gridDim.x) * blockDim.x)
            dx[r * lddx + c] = dy[r / pixels * lddy + c] * scale;
}

}  // namespace

template <typename T>
cudaError_t scale_by_window_size_over_count(T* data, Index batch, Index channels, const WindowGeometry& geometry,
                                            const Window2D& window) {
    const Index rows = batch * geometry.out_h * geometry.out_w;
    if (rows * channels == 0) return cudaSuccess;
    scale_by_window_size_over_count_kernel<<<grid_for(rows, channels), kThreads, 0, detail::context_stream()>>>(
        data, rows, channels, geometry, window);
    return cudaGetLastError();
}

template <typename T>
cudaError_t broadcast_over_pixels(const RowMatrix<T>& dy, Index pixels, T scale, const RowMatrix<T>& dx) {
    if (dx.rows * dx.cols == 0) return cudaSuccess;
    broadcast_over_pixels_kernel<<<grid_for(dx.rows, dx.cols), kThreads, 0, detail::context_stream()>>>(
        dy.data, dy.ld, pixels, scale, dx.data, dx.ld, dx.rows, dx.cols);
    return cudaGetLastError();
}

template cudaError_t scale_by_window_size_over_count<float>(float*, Index, Index, const WindowGeometry&,
                                                            const Window2D&);
template cudaError_t scale_by_window_size_over_count<double>(double*, Index, Index, const WindowGeometry&,
                                                             const Window2D&);
template cudaError_t broadcast_over_pixels<float>(const RowMatrix<float>&, Index, float, const RowMatrix<float>&);
template cudaError_t broadcast_over_pixels<double>(const RowMatrix<double>&, Index, double, const RowMatrix<double>&);

}  // namespace kernels
}  // namespace cuda
}  // namespace bcnn

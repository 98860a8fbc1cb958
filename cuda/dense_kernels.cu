// The dense epilogue of dense_kernels.hpp: one thread per element, grid-stride
// over the columns on x and the rows on y (as relu_kernels.cu).

#include <algorithm>

#include "dense_kernels.hpp"
#include "stream.hpp"

namespace bcnn {
namespace cuda {
namespace kernels {

namespace {

constexpr int kThreads = 256;
constexpr Index kMaxGrid = 65535;

template <typename T>
__global__ void add_bias_and_activate_kernel(T* y, Index ld, Index rows, Index cols, const T* bias, bool relu) {
    for (Index r = blockIdx.y; r < rows; r += gridDim.y)
        for (Index c = blockIdx.x * Index(blockDim.x) + threadIdx.x; c < cols; c += Index(gridDim.x) * blockDim.x) {
            T value = y[r * ld + c];
            if (bias) value += bias[c];
            if (relu) value = value < T(0) ? T(0) : value;
            y[r * ld + c] = value;
        }
}

}  // namespace

template <typename T>
cudaError_t add_bias_and_activate(const RowMatrix<T>& y, const T* bias, cpu::ActivationFn activation) {
    const bool relu = activation == cpu::ActivationFn::relu;
    if ((!bias && !relu) || y.rows * y.cols == 0) return cudaSuccess;
    const dim3 grid(static_cast<unsigned>(std::min<Index>((y.cols + kThreads - 1) / kThreads, kMaxGrid)),
                    static_cast<unsigned>(std::min<Index>(y.rows, kMaxGrid)));
    add_bias_and_activate_kernel<<<grid, kThreads, 0, detail::context_stream()>>>(y.data, y.ld, y.rows, y.cols, bias,
                                                                                  relu);
    return cudaGetLastError();
}

template cudaError_t add_bias_and_activate<float>(const RowMatrix<float>&, const float*, cpu::ActivationFn);
template cudaError_t add_bias_and_activate<double>(const RowMatrix<double>&, const double*, cpu::ActivationFn);

}  // namespace kernels
}  // namespace cuda
}  // namespace bcnn

// cuda::zero_pad2d_forward / backward: argument checks (the CPU kernel's shape
// rules), then the kernels in zero_pad_kernels.cu. Shapes as in
// include/bcnn/backend/cuda/zero_pad.hpp.

#include "bcnn/backend/cuda/zero_pad.hpp"

#include "argument_checks.hpp"
#include "check.hpp"
#include "zero_pad_kernels.hpp"

namespace bcnn {
namespace cuda {

namespace {

// x (N, H, W, C) inside y (N, OH, OW, C).
kernels::PadGeometry geometry(const Shape& x, const Shape& y, const cpu::Padding2D& pad) {
    return kernels::PadGeometry{x[0], x[1], x[2], y[1], y[2], pad.top, pad.left};
}

// x (N, H, W, C) -> y (N, OH, OW, C)
template <typename T>
void forward_on_device(const Tensor<T>& x, const cpu::Padding2D& pad, Tensor<T>& y) {
    const char* op = "cuda::zero_pad2d_forward";
    detail::require_rank(x, 4, op, "input");
    detail::require_shape(y, cpu::zero_pad2d_output_shape(x.shape(), pad), op, "output");
    if (y.numel() == 0) return;
    const RowMatrix<T> xm = x.as_rows("cuda::zero_pad2d_forward input");
    const RowMatrix<T> ym = y.as_rows("cuda::zero_pad2d_forward output");
    BCNN_CUDA_CHECK(kernels::zero_pad2d_forward(xm, geometry(x.shape(), y.shape(), pad), ym),
                    op << " on input " << x.shape() << " with " << pad);
}

// dy (N, OH, OW, C) -> dx (N, H, W, C)
template <typename T>
void backward_on_device(const Tensor<T>& dy, const cpu::Padding2D& pad, Tensor<T>& dx) {
    const char* op = "cuda::zero_pad2d_backward";
    detail::require_rank(dx, 4, op, "input gradient");
    detail::require_shape(dy, cpu::zero_pad2d_output_shape(dx.shape(), pad), op, "output gradient");
    if (dx.numel() == 0) return;
    const RowMatrix<T> dym = dy.as_rows("cuda::zero_pad2d_backward output gradient");
    const RowMatrix<T> dxm = dx.as_rows("cuda::zero_pad2d_backward input gradient");
    BCNN_CUDA_CHECK(kernels::zero_pad2d_backward(dym, geometry(dx.shape(), dy.shape(), pad), dxm),
                    op << " on input gradient " << dx.shape() << " with " << pad);
}

}  // namespace

void zero_pad2d_forward(const Tensor<float>& x, const cpu::Padding2D& pad, Tensor<float>& y) {
    forward_on_device(x, pad, y);
}
void zero_pad2d_forward(const Tensor<double>& x, const cpu::Padding2D& pad, Tensor<double>& y) {
    forward_on_device(x, pad, y);
}
void zero_pad2d_backward(const Tensor<float>& dy, const cpu::Padding2D& pad, Tensor<float>& dx) {
    backward_on_device(dy, pad, dx);
}
void zero_pad2d_backward(const Tensor<double>& dy, const cpu::Padding2D& pad, Tensor<double>& dx) {
    backward_on_device(dy, pad, dx);
}

}  // namespace cuda
}  // namespace bcnn

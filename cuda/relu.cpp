// cuda::relu_forward / relu_backward: argument checks, then the kernels in
// relu_kernels.cu. Shapes as in include/bcnn/backend/cuda/relu.hpp.

#include "bcnn/backend/cuda/relu.hpp"

#include "argument_checks.hpp"
#include "check.hpp"
#include "relu_kernels.hpp"

namespace bcnn {
namespace cuda {

namespace {

// x (any shape) -> y (same shape)
template <typename T>
void relu_forward_on_device(const Tensor<T>& x, Tensor<T>& y) {
    const char* op = "cuda::relu_forward";
    detail::require_device(x, op, "input");
    detail::require_shape(y, x.shape(), op, "output");
    if (x.numel() == 0) return;
    const RowMatrix<T> xm = x.as_rows("cuda::relu_forward input"), ym = y.as_rows("cuda::relu_forward output");
    BCNN_CUDA_CHECK(kernels::relu_forward(xm, ym), op << " on input " << x.shape());
}

// y, dy -> dx (all the shape of y)
template <typename T>
void relu_backward_on_device(const Tensor<T>& y, const Tensor<T>& dy, Tensor<T>& dx) {
    const char* op = "cuda::relu_backward";
    detail::require_device(y, op, "output");
    detail::require_shape(dy, y.shape(), op, "output gradient");
    detail::require_shape(dx, y.shape(), op, "input gradient");
    if (y.numel() == 0) return;
    const RowMatrix<T> ym = y.as_rows("cuda::relu_backward output");
    const RowMatrix<T> dym = dy.as_rows("cuda::relu_backward output gradient");
    const RowMatrix<T> dxm = dx.as_rows("cuda::relu_backward input gradient");
    BCNN_CUDA_CHECK(kernels::relu_backward(ym, dym, dxm), op << " on output " << y.shape());
}

}  // namespace

void relu_forward(const Tensor<float>& x, Tensor<float>& y) { relu_forward_on_device(x, y); }
void relu_forward(const Tensor<double>& x, Tensor<double>& y) { relu_forward_on_device(x, y); }
void relu_backward(const Tensor<float>& y, const Tensor<float>& dy, Tensor<float>& dx) {
    relu_backward_on_device(y, dy, dx);
}
void relu_backward(const Tensor<double>& y, const Tensor<double>& dy, Tensor<double>& dx) {
    relu_backward_on_device(y, dy, dx);
}

}  // namespace cuda
}  // namespace bcnn

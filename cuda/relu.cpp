// cuda::relu_forward / relu_backward / relu_backward_bias_gradient: argument
// checks, then the kernels in relu_kernels.cu (and the column sums of
// reduce_kernels.cu for the bias gradient). Shapes as in
// include/bcnn/backend/cuda/relu.hpp.

#include "bcnn/backend/cuda/relu.hpp"

#include <sstream>

#include "argument_checks.hpp"
#include "check.hpp"
#include "cudnn_context.hpp"
#include "reduce_kernels.hpp"
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

// y, dy -> dx (all the shape of y), d_bias (C = y's last axis)
template <typename T>
void relu_backward_bias_gradient_on_device(const Tensor<T>& y, const Tensor<T>& dy, Tensor<T>& dx, Tensor<T>& d_bias) {
    const char* op = "cuda::relu_backward_bias_gradient";
    BCNN_CHECK(y.rank() >= 1, op << ": output has shape " << y.shape() << ", expected at least one axis (channels)");
    detail::require_shape(d_bias, Shape{y.dim(-1)}, op, "bias gradient");
    detail::require_contiguous(d_bias, op, "bias gradient");
    relu_backward_on_device(y, dy, dx);
    if (y.numel() == 0) {  // no rows: the sums are zero
        BCNN_CUDA_CHECK(cudaMemset(d_bias.data(), 0, sizeof(T) * static_cast<std::size_t>(d_bias.numel())),
                        op << " on an empty output " << y.shape());
        return;
    }
    const RowMatrix<T> dxm = dx.as_rows("cuda::relu_backward_bias_gradient input gradient");
    std::ostringstream where;
    where << op << " on output " << y.shape();
    double* partials = static_cast<double*>(detail::cudnn_context().scratch(
        detail::Scratch::workspace, sizeof(double) * kernels::column_sums_partials(dxm.rows, dxm.cols, 1),
        where.str()));
    BCNN_CUDA_CHECK(kernels::column_sums(dxm, 1, 1.0, d_bias.data(), dxm.cols, partials), where.str());
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

void relu_backward_bias_gradient(const Tensor<float>& y, const Tensor<float>& dy, Tensor<float>& dx,
                                 Tensor<float>& d_bias) {
    relu_backward_bias_gradient_on_device(y, dy, dx, d_bias);
}
void relu_backward_bias_gradient(const Tensor<double>& y, const Tensor<double>& dy, Tensor<double>& dx,
                                 Tensor<double>& d_bias) {
    relu_backward_bias_gradient_on_device(y, dy, dx, d_bias);
}

}  // namespace cuda
}  // namespace bcnn

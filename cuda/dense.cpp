// cuda::dense_forward / dense_backward with cuBLAS (declared in
// include/bcnn/backend/cuda/dense.hpp), the CPU kernel's semantics.
//
// Row-major trick. cuBLAS is column-major: a row-major (R, C) matrix with row
// stride ld is, to cuBLAS, its transpose (C, R) with leading dimension ld. So
// each row-major product P = A * B is computed as P^T = B^T * A^T:
//   y  (N, Out) = x (N, In) * W (In, Out)     ->  y^T  = W^T x^T    gemm(N, N, Out, N, In)
//   dx (N, In)  = dy (N, Out) * W^T           ->  dx^T = W dy^T     gemm(T, N, In, N, Out)
//   dW (In, Out) = x^T (In, N) * dy (N, Out)  ->  dW^T = dy^T x     gemm(N, T, Out, In, N)
// Row views need nothing more: their row stride is the leading dimension.
// Bias and activation: one kernel after the GEMM (dense_kernels.cu). The bias
// gradient: deterministic column sums of dy in double (reduce_kernels.cu).
// Empty extents (N, In or Out of 0) skip cuBLAS, which rejects leading
// dimensions of 0; the outputs they leave are zero-filled.

#include "bcnn/backend/cuda/dense.hpp"

#include <climits>
#include <sstream>
#include <string>

#include "argument_checks.hpp"
#include "check_libraries.hpp"
#include "cublas_context.hpp"
#include "cudnn_context.hpp"
#include "dense_kernels.hpp"
#include "reduce_kernels.hpp"

namespace bcnn {
namespace cuda {

namespace {

cublasStatus_t gemm(cublasHandle_t handle, cublasOperation_t a_op, cublasOperation_t b_op, int m, int n, int k,
                    const float* a, int lda, const float* b, int ldb, float* c, int ldc) {
    const float one = 1, zero = 0;
    return cublasSgemm(handle, a_op, b_op, m, n, k, &one, a, lda, b, ldb, &zero, c, ldc);
}
cublasStatus_t gemm(cublasHandle_t handle, cublasOperation_t a_op, cublasOperation_t b_op, int m, int n, int k,
                    const double* a, int lda, const double* b, int ldb, double* c, int ldc) {
    const double one = 1, zero = 0;
    return cublasDgemm(handle, a_op, b_op, m, n, k, &one, a, lda, b, ldb, &zero, c, ldc);
}

int to_cublas_int(Index value, const std::string& where) {
    BCNN_CHECK(value >= 0 && value <= INT_MAX, where << ": extent or row stride " << value
                                                     << " exceeds cuBLAS's int range");
    return static_cast<int>(value);
}

// A row view's leading dimension for cuBLAS (>= 1 and >= its cols).
template <typename T>
int leading_dimension(const RowMatrix<T>& m, const std::string& where) {
    return to_cublas_int(m.ld > m.cols ? m.ld : m.cols, where);
}

template <typename T>
void zero_rows(const RowMatrix<T>& m, const std::string& where) {
    if (m.rows * m.cols == 0) return;
    BCNN_CUDA_CHECK(cudaMemset2D(m.data, sizeof(T) * static_cast<std::size_t>(m.ld), 0,
                                 sizeof(T) * static_cast<std::size_t>(m.cols), static_cast<std::size_t>(m.rows)),
                    where);
}

template <typename T>
std::string describe(const char* op, const Tensor<T>& x, const Tensor<T>& weights) {
    std::ostringstream out;
    out << op << " on input " << x.shape() << ", weights " << weights.shape() << " ("
        << (sizeof(T) == sizeof(float) ? "float" : "double") << ")";
    return out.str();
}

// Checks x (N, In) and weights (In, Out) on the device; returns Out.
template <typename T>
Index checked_units(const Tensor<T>& x, const Tensor<T>& weights, const char* op) {
    detail::require_rank(x, 2, op, "input");
    detail::require_rank(weights, 2, op, "weights");
    BCNN_CHECK(weights.dim(0) == x.dim(1), op << ": input " << x.shape() << " does not match weights "
                                              << weights.shape() << " (expected (" << x.dim(1) << ", units))");
    return weights.dim(1);
}

// x (N, In), weights (In, Out), bias (Out) or nullptr  ->  y (N, Out)
template <typename T>
void dense_forward_on_device(const Tensor<T>& x, const Tensor<T>& weights, const Tensor<T>* bias, Tensor<T>& y,
                             cpu::ActivationFn activation) {
    const char* op = "cuda::dense_forward";
    const Index out = checked_units(x, weights, op), n = x.dim(0), in = x.dim(1);
    if (bias) detail::require_shape(*bias, Shape{out}, op, "bias");
    detail::require_shape(y, Shape{n, out}, op, "output");
    if (n * out == 0) return;
    const std::string where = describe(op, x, weights);
    const RowMatrix<T> xm = x.as_rows("cuda::dense_forward input");
    const RowMatrix<T> wm = weights.as_rows("cuda::dense_forward weights");
    const RowMatrix<T> ym = y.as_rows("cuda::dense_forward output");
    if (in == 0)
        zero_rows(ym, where);
    else
        BCNN_CUDA_CHECK(gemm(detail::cublas_handle(), CUBLAS_OP_N, CUBLAS_OP_N, to_cublas_int(out, where),
                             to_cublas_int(n, where), to_cublas_int(in, where), wm.data, leading_dimension(wm, where),
                             xm.data, leading_dimension(xm, where), ym.data, leading_dimension(ym, where)),
                        where);
    const T* bias_data = bias ? bias->as_rows("cuda::dense_forward bias").data : nullptr;
    BCNN_CUDA_CHECK(kernels::add_bias_and_activate(ym, bias_data, activation), where << ", bias and activation");
}

// x (N, In), weights (In, Out), dy (N, Out)  ->  dx (N, In), d_weights (In, Out), d_bias (Out), each optional
template <typename T>
void dense_backward_on_device(const Tensor<T>& x, const Tensor<T>& weights, const Tensor<T>& dy, Tensor<T>* dx,
                              Tensor<T>* d_weights, Tensor<T>* d_bias) {
    const char* op = "cuda::dense_backward";
    const Index out = checked_units(x, weights, op), n = x.dim(0), in = x.dim(1);
    detail::require_shape(dy, Shape{n, out}, op, "output gradient");
    if (dx) detail::require_shape(*dx, x.shape(), op, "input gradient");
    if (d_weights) detail::require_shape(*d_weights, weights.shape(), op, "weights gradient");
    if (d_bias) detail::require_shape(*d_bias, Shape{out}, op, "bias gradient");
    const std::string where = describe(op, x, weights);
    const RowMatrix<T> xm = x.as_rows("cuda::dense_backward input");
    const RowMatrix<T> wm = weights.as_rows("cuda::dense_backward weights");
    const RowMatrix<T> dym = dy.as_rows("cuda::dense_backward output gradient");
    const bool empty_product = n * in * out == 0;  // a GEMM over an empty extent: zeros (or nothing)
    if (dx) {
        const RowMatrix<T> dxm = dx->as_rows("cuda::dense_backward input gradient");
        if (empty_product)
            zero_rows(dxm, where + ", input gradient");
        else
            BCNN_CUDA_CHECK(gemm(detail::cublas_handle(), CUBLAS_OP_T, CUBLAS_OP_N, to_cublas_int(in, where),
                                 to_cublas_int(n, where), to_cublas_int(out, where), wm.data,
                                 leading_dimension(wm, where), dym.data, leading_dimension(dym, where), dxm.data,
                                 leading_dimension(dxm, where)),
                            where << ", input gradient");
    }
    if (d_weights) {
        const RowMatrix<T> dwm = d_weights->as_rows("cuda::dense_backward weights gradient");
        if (empty_product)
            zero_rows(dwm, where + ", weights gradient");
        else
            BCNN_CUDA_CHECK(gemm(detail::cublas_handle(), CUBLAS_OP_N, CUBLAS_OP_T, to_cublas_int(out, where),
                                 to_cublas_int(in, where), to_cublas_int(n, where), dym.data,
                                 leading_dimension(dym, where), xm.data, leading_dimension(xm, where), dwm.data,
                                 leading_dimension(dwm, where)),
                            where << ", weights gradient");
    }
    if (d_bias && out > 0) {
        double* partials = static_cast<double*>(detail::cudnn_context().scratch(
            detail::Scratch::workspace, sizeof(double) * kernels::column_sums_partials(n, out, 1), where));
        BCNN_CUDA_CHECK(kernels::column_sums(dym, 1, 1.0, d_bias->as_rows("cuda::dense_backward bias gradient").data,
                                             out, partials),
                        where << ", bias gradient");
    }
}

}  // namespace

void dense_forward(const Tensor<float>& x, const Tensor<float>& weights, const Tensor<float>* bias, Tensor<float>& y,
                   cpu::ActivationFn activation) {
    dense_forward_on_device(x, weights, bias, y, activation);
}
void dense_forward(const Tensor<double>& x, const Tensor<double>& weights, const Tensor<double>* bias,
                   Tensor<double>& y, cpu::ActivationFn activation) {
    dense_forward_on_device(x, weights, bias, y, activation);
}
void dense_backward(const Tensor<float>& x, const Tensor<float>& weights, const Tensor<float>& dy, Tensor<float>* dx,
                    Tensor<float>* d_weights, Tensor<float>* d_bias) {
    dense_backward_on_device(x, weights, dy, dx, d_weights, d_bias);
}
void dense_backward(const Tensor<double>& x, const Tensor<double>& weights, const Tensor<double>& dy,
                    Tensor<double>* dx, Tensor<double>* d_weights, Tensor<double>* d_bias) {
    dense_backward_on_device(x, weights, dy, dx, d_weights, d_bias);
}

}  // namespace cuda
}  // namespace bcnn

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
// Mixed precision (cuda::compute_precision() bf16 or fp16, float tensors
// only): the two operands of each product are converted to packed 16-bit
// copies in scratch (precision_kernels.hpp) and multiplied by cublasGemmEx
// on the tensor cores with float accumulation (CUBLAS_COMPUTE_32F) into the
// float result; bias, activation and the bias gradient stay float.

#include "bcnn/backend/cuda/dense.hpp"

#include <climits>
#include <sstream>
#include <string>

#include "argument_checks.hpp"
#include "check_libraries.hpp"
#include "cublas_context.hpp"
#include "cudnn_context.hpp"
#include "dense_kernels.hpp"
#include "precision_kernels.hpp"
#include "reduce_kernels.hpp"

namespace bcnn {
namespace cuda {

namespace {

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

// One operand of a product as cuBLAS reads it: a row matrix's data and
// leading dimension (its own, or a packed 16-bit copy's).
struct GemmOperand {
    const void* data;
    int ld;
};

// `m` for a product in `precision`: itself under fp32, else converted to a
// packed bf16/fp16 copy in the context's scratch slot `slot`.
GemmOperand gemm_operand(const RowMatrix<float>& m, Precision precision, detail::Scratch slot,
                         const std::string& where) {
    if (precision == Precision::fp32) return {m.data, leading_dimension(m, where)};
    void* packed = detail::cudnn_context().scratch(
        slot, std::size_t(kernels::kHalfBytes) * static_cast<std::size_t>(m.rows * m.cols), where);
    BCNN_CUDA_CHECK(kernels::float_to_half(detail::rows_layout(m.rows, m.cols, m.ld), m.data,
                                           detail::rows_layout(m.rows, m.cols, m.cols), packed, precision),
                    where << ": " << m.rows << " x " << m.cols << " operand to " << precision_name(precision));
    return {packed, to_cublas_int(m.cols > 1 ? m.cols : 1, where)};
}
GemmOperand gemm_operand(const RowMatrix<double>& m, Precision, detail::Scratch, const std::string& where) {
    return {m.data, leading_dimension(m, where)};
}

// c = op(a) op(b), column-major (m x n, inner extent k): Sgemm, Dgemm, or
// GemmEx on 16-bit operands with float accumulation and a float result.
cublasStatus_t gemm(cublasOperation_t a_op, cublasOperation_t b_op, int m, int n, int k, const GemmOperand& a,
                    const GemmOperand& b, float* c, int ldc, Precision precision) {
    const float one = 1, zero = 0;
    if (precision == Precision::fp32)
        return cublasSgemm(detail::cublas_handle(), a_op, b_op, m, n, k, &one, static_cast<const float*>(a.data), a.ld,
                           static_cast<const float*>(b.data), b.ld, &zero, c, ldc);
    const cudaDataType_t type = precision == Precision::bf16 ? CUDA_R_16BF : CUDA_R_16F;
    return cublasGemmEx(detail::cublas_handle(), a_op, b_op, m, n, k, &one, a.data, type, a.ld, b.data, type, b.ld,
                        &zero, c, CUDA_R_32F, ldc, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT);
}
cublasStatus_t gemm(cublasOperation_t a_op, cublasOperation_t b_op, int m, int n, int k, const GemmOperand& a,
                    const GemmOperand& b, double* c, int ldc, Precision) {
    const double one = 1, zero = 0;
    return cublasDgemm(detail::cublas_handle(), a_op, b_op, m, n, k, &one, static_cast<const double*>(a.data), a.ld,
                       static_cast<const double*>(b.data), b.ld, &zero, c, ldc);
}

template <typename T>
void zero_rows(const RowMatrix<T>& m, const std::string& where) {
    if (m.rows * m.cols == 0) return;
    BCNN_CUDA_CHECK(cudaMemset2D(m.data, sizeof(T) * static_cast<std::size_t>(m.ld), 0,
                                 sizeof(T) * static_cast<std::size_t>(m.cols), static_cast<std::size_t>(m.rows)),
                    where);
}

template <typename T>
std::string describe(const char* op, const Tensor<T>& x, const Tensor<T>& weights, Precision precision) {
    std::ostringstream out;
    out << op << " on input " << x.shape() << ", weights " << weights.shape() << " ("
        << (sizeof(T) == sizeof(float) ? "float" : "double");
    if (precision != Precision::fp32) out << ", " << precision_name(precision) << " compute";
    out << ")";
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
    const Precision precision = detail::effective_precision<T>();
    const std::string where = describe(op, x, weights, precision);
    const RowMatrix<T> xm = x.as_rows("cuda::dense_forward input");
    const RowMatrix<T> wm = weights.as_rows("cuda::dense_forward weights");
    const RowMatrix<T> ym = y.as_rows("cuda::dense_forward output");
    if (in == 0)
        zero_rows(ym, where);
    else
        BCNN_CUDA_CHECK(gemm(CUBLAS_OP_N, CUBLAS_OP_N, to_cublas_int(out, where), to_cublas_int(n, where),
                             to_cublas_int(in, where), gemm_operand(wm, precision, detail::Scratch::filter, where),
                             gemm_operand(xm, precision, detail::Scratch::input, where), ym.data,
                             leading_dimension(ym, where), precision),
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
    const Precision precision = detail::effective_precision<T>();
    const std::string where = describe(op, x, weights, precision);
    const RowMatrix<T> xm = x.as_rows("cuda::dense_backward input");
    const RowMatrix<T> wm = weights.as_rows("cuda::dense_backward weights");
    const RowMatrix<T> dym = dy.as_rows("cuda::dense_backward output gradient");
    const bool empty_product = n * in * out == 0;  // a GEMM over an empty extent: zeros (or nothing)
    if ((dx || d_weights) && !empty_product) {
        const GemmOperand dy_operand = gemm_operand(dym, precision, detail::Scratch::output_gradient, where);
        if (dx) {
            const RowMatrix<T> dxm = dx->as_rows("cuda::dense_backward input gradient");
            BCNN_CUDA_CHECK(gemm(CUBLAS_OP_T, CUBLAS_OP_N, to_cublas_int(in, where), to_cublas_int(n, where),
                                 to_cublas_int(out, where), gemm_operand(wm, precision, detail::Scratch::filter, where),
                                 dy_operand, dxm.data, leading_dimension(dxm, where), precision),
                            where << ", input gradient");
        }
        if (d_weights) {
            const RowMatrix<T> dwm = d_weights->as_rows("cuda::dense_backward weights gradient");
            BCNN_CUDA_CHECK(gemm(CUBLAS_OP_N, CUBLAS_OP_T, to_cublas_int(out, where), to_cublas_int(in, where),
                                 to_cublas_int(n, where), dy_operand,
                                 gemm_operand(xm, precision, detail::Scratch::input, where), dwm.data,
                                 leading_dimension(dwm, where), precision),
                            where << ", weights gradient");
        }
    } else {
        if (dx) zero_rows(dx->as_rows("cuda::dense_backward input gradient"), where + ", input gradient");
        if (d_weights) zero_rows(d_weights->as_rows("cuda::dense_backward weights gradient"), where + ", weights gradient");
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

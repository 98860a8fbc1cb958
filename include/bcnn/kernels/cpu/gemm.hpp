#pragma once
// Row-major GEMM on strided matrices through Eigen:
//   C (m x n, ldc) = alpha * op(A) * op(B) + beta * C
// op(A) is m x k (A stored m x k with lda, or k x m when transposed);
// op(B) is k x n (B stored k x n with ldb, or n x k when transposed).
// Eigen parallelises with OpenMP unless called from inside a parallel region.

#include <Eigen/Core>

#include "bcnn/core/shape.hpp"

namespace bcnn {
namespace cpu {

enum class Transpose { no, yes };

template <typename T>
void gemm(Transpose trans_a, Transpose trans_b, Index m, Index n, Index k, T alpha, const T* a, Index lda,
          const T* b, Index ldb, T beta, T* c, Index ldc) {
    using Matrix = Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
    using Stride = Eigen::OuterStride<>;
    using ConstMap = Eigen::Map<const Matrix, Eigen::Unaligned, Stride>;
    Eigen::Map<Matrix, Eigen::Unaligned, Stride> c_map(c, m, n, Stride(ldc));
    if (m == 0 || n == 0) return;
    if (beta == T(0))
        c_map.setZero();
    else if (beta != T(1))
        c_map *= beta;
    if (k == 0 || alpha == T(0)) return;
    const ConstMap a_map(a, trans_a == Transpose::no ? m : k, trans_a == Transpose::no ? k : m, Stride(lda));
    const ConstMap b_map(b, trans_b == Transpose::no ? k : n, trans_b == Transpose::no ? n : k, Stride(ldb));
    if (trans_a == Transpose::no && trans_b == Transpose::no)
        c_map.noalias() += alpha * a_map * b_map;
    else if (trans_a == Transpose::no)
        c_map.noalias() += alpha * a_map * b_map.transpose();
    else if (trans_b == Transpose::no)
        c_map.noalias() += alpha * a_map.transpose() * b_map;
    else
        c_map.noalias() += alpha * a_map.transpose() * b_map.transpose();
}

}  // namespace cpu
}  // namespace bcnn

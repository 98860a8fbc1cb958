#pragma once
// GEMM micro-kernels: the innermost MR x NR block of C from packed panels,
// chosen at compile time from the target's instruction set:
//   float, -mavx512f:       16-lane kernel, gemm_microkernel_avx512.hpp
//   float, -mavx2 -mfma:    8-lane kernel,  gemm_microkernel_avx2.hpp
//   otherwise (and double): the portable kernel below, which the compiler
//                           vectorises as far as the flags allow.
//
// The contract every kernel keeps (gemm.hpp's driver relies on it):
//   static constexpr Index mr, nr;
//   static void run(Index kc, const T* a, const T* b, T alpha, T beta, T* c, Index ldc);
// a: an A micro-panel, kc steps of mr values (column p of the panel = a[p*mr .. p*mr+mr));
// b: a B micro-panel, kc steps of nr values (row p = b[p*nr .. p*nr+nr)), 64-byte aligned;
// c: mr rows of nr values, row i at c + i*ldc;
//   c = alpha * (a-panel * b-panel) + beta * c, and c is never read when beta == 0.
// Within one call each element of C accumulates its kc products in order p = 0, 1, ...
// Optionally (has_pack_a8 = true) a faster packing of A stored by rows:
//   static void pack_a8(const T* src, Index ld, T* out);  // out[q*mr + i] = src[i*ld + q], q < 8, i < mr
// and (has_pack_b8 = true) of op(B) stored by lines (B transposed), 8 lines at a time:
//   static void pack_b8(const T* src, Index ld, T* out);  // out[q*nr + i] = src[i*ld + q], q < 8, i < 8

#include "bcnn/core/shape.hpp"

namespace bcnn {
namespace cpu {
namespace detail {

// Plain C++ kernel with an mr x nr accumulator array.
template <typename T, Index MR, Index NR>
struct PortableMicroKernel {
    static constexpr Index mr = MR, nr = NR;
    static constexpr bool has_pack_a8 = false;
    static constexpr bool has_pack_b8 = false;

    static void run(Index kc, const T* a, const T* b, T alpha, T beta, T* c, Index ldc) {
        T acc[MR][NR] = {};
        for (Index p = 0; p < kc; ++p, a += MR, b += NR)
            for (Index i = 0; i < MR; ++i) {
                const T ai = a[i];
                for (Index j = 0; j < NR; ++j) acc[i][j] += ai * b[j];
            }
        for (Index i = 0; i < MR; ++i) {
            T* row = c + i * ldc;
            if (beta == T(0))
                for (Index j = 0; j < NR; ++j) row[j] = alpha * acc[i][j];
            else
                for (Index j = 0; j < NR; ++j) row[j] = alpha * acc[i][j] + beta * row[j];
        }
    }
};

// The kernel gemm<T> uses. 4 x 8 keeps the accumulators in registers with
// SSE2 (8 xmm for float) and AVX2 (8 ymm for double).
template <typename T>
struct MicroKernel : PortableMicroKernel<T, 4, 8> {};

}  // namespace detail
}  // namespace cpu
}  // namespace bcnn

#if defined(__AVX512F__)
#include "bcnn/kernels/cpu/gemm_microkernel_avx512.hpp"
#elif defined(__AVX2__) && defined(__FMA__)
#include "bcnn/kernels/cpu/gemm_microkernel_avx2.hpp"
#endif

#pragma once
// AVX2 + FMA float micro-kernel for gemm.hpp: 6 x 16 block of C in 12 ymm
// accumulators; per step of k, 2 aligned loads of B, 6 broadcasts of A and
// 12 FMAs (15 of the 16 ymm registers); and register transposes that pack
// row-major A, and op(B) stored by lines, 8 depth steps at a time. Included by gemm_microkernel.hpp only
// when the compiler targets AVX2 and FMA; see there for the contract.

#include <immintrin.h>

#include "bcnn/kernels/cpu/gemm_microkernel.hpp"

namespace bcnn {
namespace cpu {
namespace detail {

struct MicroKernelAvx2Float {
    static constexpr Index mr = 6, nr = 16;

    static void run(Index kc, const float* a, const float* b, float alpha, float beta, float* c, Index ldc) {
        for (Index i = 0; i < mr; ++i) _mm_prefetch(reinterpret_cast<const char*>(c + i * ldc), _MM_HINT_T0);
        __m256 c00 = _mm256_setzero_ps(), c01 = _mm256_setzero_ps(), c10 = _mm256_setzero_ps(),
               c11 = _mm256_setzero_ps(), c20 = _mm256_setzero_ps(), c21 = _mm256_setzero_ps(),
               c30 = _mm256_setzero_ps(), c31 = _mm256_setzero_ps(), c40 = _mm256_setzero_ps(),
               c41 = _mm256_setzero_ps(), c50 = _mm256_setzero_ps(), c51 = _mm256_setzero_ps();
#pragma GCC unroll 4
        for (Index p = 0; p < kc; ++p, a += mr, b += nr) {
            const __m256 b0 = _mm256_load_ps(b), b1 = _mm256_load_ps(b + 8);
            __m256 ai = _mm256_broadcast_ss(a + 0);
            c00 = _mm256_fmadd_ps(ai, b0, c00);
            c01 = _mm256_fmadd_ps(ai, b1, c01);
            ai = _mm256_broadcast_ss(a + 1);
            c10 = _mm256_fmadd_ps(ai, b0, c10);
            c11 = _mm256_fmadd_ps(ai, b1, c11);
            ai = _mm256_broadcast_ss(a + 2);
            c20 = _mm256_fmadd_ps(ai, b0, c20);
            c21 = _mm256_fmadd_ps(ai, b1, c21);
            ai = _mm256_broadcast_ss(a + 3);
            c30 = _mm256_fmadd_ps(ai, b0, c30);
            c31 = _mm256_fmadd_ps(ai, b1, c31);
            ai = _mm256_broadcast_ss(a + 4);
            c40 = _mm256_fmadd_ps(ai, b0, c40);
            c41 = _mm256_fmadd_ps(ai, b1, c41);
            ai = _mm256_broadcast_ss(a + 5);
            c50 = _mm256_fmadd_ps(ai, b0, c50);
            c51 = _mm256_fmadd_ps(ai, b1, c51);
        }
        store_row(c00, c01, alpha, beta, c);
        store_row(c10, c11, alpha, beta, c + ldc);
        store_row(c20, c21, alpha, beta, c + 2 * ldc);
        store_row(c30, c31, alpha, beta, c + 3 * ldc);
        store_row(c40, c41, alpha, beta, c + 4 * ldc);
        store_row(c50, c51, alpha, beta, c + 5 * ldc);
    }

    // Packing helper for gemm.hpp: 8 depth steps of a full micro-panel of A
    // stored by rows (row i at src + i * ld): out[q * 6 + i] = src[i * ld + q]
    // for q < 8, i < 6. An 8 x 8 transpose in registers (rows 6 and 7 zero);
    // each 8-float store also writes 2 floats that the next one overwrites.
    static constexpr bool has_pack_a8 = true;
    static void pack_a8(const float* src, Index ld, float* out) {
        __m256 lines[8], steps[8];
#pragma GCC unroll 8
        for (int i = 0; i < 8; ++i) lines[i] = i < mr ? _mm256_loadu_ps(src + i * ld) : _mm256_setzero_ps();
        transpose8x8(lines, steps);
#pragma GCC unroll 8
        for (int q = 0; q < 7; ++q) _mm256_storeu_ps(out + q * mr, steps[q]);
        _mm256_maskstore_ps(out + 7 * mr, _mm256_setr_epi32(-1, -1, -1, -1, -1, -1, 0, 0), steps[7]);
    }

    // Packing helper for gemm.hpp: 8 depth steps of 8 lines of a full
    // micro-panel of op(B) stored by lines (op(B) transposed; line i at
    // src + i * ld): out[q * 16 + i] = src[i * ld + q] for q < 8, i < 8. An
    // 8 x 8 transpose in registers; two calls fill the panel's 16 lines. The
    // scalar loop it replaces took half of a dense layer's input gradient
    // (batch 32, 4096 -> 512: its weights transposed into the panels).
    static constexpr bool has_pack_b8 = true;
    static void pack_b8(const float* src, Index ld, float* out) {
        __m256 lines[8], steps[8];
#pragma GCC unroll 8
        for (int i = 0; i < 8; ++i) lines[i] = _mm256_loadu_ps(src + i * ld);
        transpose8x8(lines, steps);
#pragma GCC unroll 8
        for (int q = 0; q < 8; ++q) _mm256_storeu_ps(out + q * nr, steps[q]);
    }

private:
    // columns[q][i] = rows[i][q], for q, i < 8.
    static void transpose8x8(const __m256 (&rows)[8], __m256 (&columns)[8]) {
        // Pairs of rows interleaved: (r0[0] r1[0] r0[1] r1[1] | r0[4] r1[4] r0[5] r1[5]), ...
        const __m256 t0 = _mm256_unpacklo_ps(rows[0], rows[1]), t1 = _mm256_unpackhi_ps(rows[0], rows[1]);
        const __m256 t2 = _mm256_unpacklo_ps(rows[2], rows[3]), t3 = _mm256_unpackhi_ps(rows[2], rows[3]);
        const __m256 t4 = _mm256_unpacklo_ps(rows[4], rows[5]), t5 = _mm256_unpackhi_ps(rows[4], rows[5]);
        const __m256 t6 = _mm256_unpacklo_ps(rows[6], rows[7]), t7 = _mm256_unpackhi_ps(rows[6], rows[7]);
        // Rows 0-3 of columns (q | q + 4) in s0..s3, rows 4-7 in s4..s7.
        const __m256 s0 = _mm256_shuffle_ps(t0, t2, _MM_SHUFFLE(1, 0, 1, 0));
        const __m256 s1 = _mm256_shuffle_ps(t0, t2, _MM_SHUFFLE(3, 2, 3, 2));
        const __m256 s2 = _mm256_shuffle_ps(t1, t3, _MM_SHUFFLE(1, 0, 1, 0));
        const __m256 s3 = _mm256_shuffle_ps(t1, t3, _MM_SHUFFLE(3, 2, 3, 2));
        const __m256 s4 = _mm256_shuffle_ps(t4, t6, _MM_SHUFFLE(1, 0, 1, 0));
        const __m256 s5 = _mm256_shuffle_ps(t4, t6, _MM_SHUFFLE(3, 2, 3, 2));
        const __m256 s6 = _mm256_shuffle_ps(t5, t7, _MM_SHUFFLE(1, 0, 1, 0));
        const __m256 s7 = _mm256_shuffle_ps(t5, t7, _MM_SHUFFLE(3, 2, 3, 2));
        columns[0] = _mm256_permute2f128_ps(s0, s4, 0x20);
        columns[1] = _mm256_permute2f128_ps(s1, s5, 0x20);
        columns[2] = _mm256_permute2f128_ps(s2, s6, 0x20);
        columns[3] = _mm256_permute2f128_ps(s3, s7, 0x20);
        columns[4] = _mm256_permute2f128_ps(s0, s4, 0x31);
        columns[5] = _mm256_permute2f128_ps(s1, s5, 0x31);
        columns[6] = _mm256_permute2f128_ps(s2, s6, 0x31);
        columns[7] = _mm256_permute2f128_ps(s3, s7, 0x31);
    }

    // row[0..16) = alpha * (lo, hi) + beta * row, row not read when beta == 0.
    static void store_row(__m256 lo, __m256 hi, float alpha, float beta, float* row) {
        const __m256 va = _mm256_set1_ps(alpha);
        lo = _mm256_mul_ps(va, lo);
        hi = _mm256_mul_ps(va, hi);
        if (beta != 0.0f) {
            const __m256 vb = _mm256_set1_ps(beta);
            lo = _mm256_fmadd_ps(vb, _mm256_loadu_ps(row), lo);
            hi = _mm256_fmadd_ps(vb, _mm256_loadu_ps(row + 8), hi);
        }
        _mm256_storeu_ps(row, lo);
        _mm256_storeu_ps(row + 8, hi);
    }
};

template <>
struct MicroKernel<float> : MicroKernelAvx2Float {};

}  // namespace detail
}  // namespace cpu
}  // namespace bcnn

#pragma once
// AVX-512 float micro-kernel for gemm.hpp: 14 x 32 block of C in 28 zmm
// accumulators; per step of k, 2 aligned loads of B, 14 broadcasts of A and
// 28 FMAs (31 of the 32 zmm registers). Included by gemm_microkernel.hpp only
// when the compiler targets AVX-512F; see there for the contract.

#include <immintrin.h>

#include "bcnn/kernels/cpu/gemm_microkernel.hpp"

namespace bcnn {
namespace cpu {
namespace detail {

struct MicroKernelAvx512Float {
    static constexpr Index mr = 14, nr = 32;
    static constexpr bool has_pack_a8 = false;
    static constexpr bool has_pack_b8 = false;

    static void run(Index kc, const float* a, const float* b, float alpha, float beta, float* c, Index ldc) {
        __m512 lo[mr], hi[mr];
#pragma GCC unroll 14
        for (Index i = 0; i < mr; ++i) {
            _mm_prefetch(reinterpret_cast<const char*>(c + i * ldc), _MM_HINT_T0);
            lo[i] = _mm512_setzero_ps();
            hi[i] = _mm512_setzero_ps();
        }
        for (Index p = 0; p < kc; ++p, a += mr, b += nr) {
            const __m512 b0 = _mm512_load_ps(b), b1 = _mm512_load_ps(b + 16);
#pragma GCC unroll 14
            for (Index i = 0; i < mr; ++i) {
                const __m512 ai = _mm512_set1_ps(a[i]);
                lo[i] = _mm512_fmadd_ps(ai, b0, lo[i]);
                hi[i] = _mm512_fmadd_ps(ai, b1, hi[i]);
            }
        }
        const __m512 va = _mm512_set1_ps(alpha), vb = _mm512_set1_ps(beta);
#pragma GCC unroll 14
        for (Index i = 0; i < mr; ++i) {
            float* row = c + i * ldc;
            __m512 r0 = _mm512_mul_ps(va, lo[i]), r1 = _mm512_mul_ps(va, hi[i]);
            if (beta != 0.0f) {
                r0 = _mm512_fmadd_ps(vb, _mm512_loadu_ps(row), r0);
                r1 = _mm512_fmadd_ps(vb, _mm512_loadu_ps(row + 16), r1);
            }
            _mm512_storeu_ps(row, r0);
            _mm512_storeu_ps(row + 16, r1);
        }
    }
};

template <>
struct MicroKernel<float> : MicroKernelAvx512Float {};

}  // namespace detail
}  // namespace cpu
}  // namespace bcnn

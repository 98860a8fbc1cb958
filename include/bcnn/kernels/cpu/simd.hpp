#pragma once
// Native-width SIMD vectors for the register-blocked direct kernels
// (conv2d_direct.hpp, depthwise_conv2d.hpp), written with the GCC/Clang
// vector extensions instead of ISA intrinsics, so one source serves every
// target that -march selects:
//   -mavx512f: 64-byte vectors (zmm), 16 floats / 8 doubles
//   -mavx:     32-byte vectors (ymm),  8 floats / 4 doubles
//   otherwise: 16-byte vectors (xmm with SSE2; plain scalar code where the
//              target has no vector unit: the compiler lowers them).
// A kernel keeps an array of Vec<T> accumulators whose size is a compile-time
// constant, so the compiler assigns them to registers; `acc += x * w` becomes
// one fused multiply-add where the target has FMA (GCC contracts a * b + c).
//
//   Vec<T>                  simd::width<T> lanes of T
//   load(p), store(p, v)    unaligned, whole vector
//   load_part(p, n)         the first n lanes from p, zeros after
//   store_part(p, v, n)     the first n lanes of v to p
//   broadcast(x)            every lane = x
//   fma(a, b, c)            a * b + c, rounded alike in every kernel
//   sqrt(v)                 lane-wise square root, correctly rounded as std::sqrt
//   Lanes<T>                integer lanes as wide as T's (what comparing two Vec<T> gives)
//   widen_bytes<T>(p)       width<T> bytes from p, each zero-extended to a lane of Lanes<T>
//   narrow_to_bytes<T>(p, v)  the low byte of each lane of v (a Lanes<T>) to p
//   transpose(rows)         a width<T> x width<T> block, one Vec<T> per row, transposed in registers
//   hold(v)                 v stays in a register where it is used (see below)
//   stream(p, v)            a non-temporal store (p aligned to kVectorBytes); stream_fence() after the last

#include <cmath>
#include <cstdint>
#include <cstring>
#include <type_traits>
#include <utility>

#if defined(__SSE2__)
#include <immintrin.h>
#endif

namespace bcnn {
namespace cpu {
namespace simd {

// The vector width, and how many vector registers a kernel may plan its
// accumulators around (x86-64: 32 zmm with AVX-512, 16 ymm or xmm without).
#if defined(__AVX512F__)
constexpr int kVectorBytes = 64;
constexpr int kVectorRegisters = 32;
#elif defined(__AVX__)
constexpr int kVectorBytes = 32;
constexpr int kVectorRegisters = 16;
#else
constexpr int kVectorBytes = 16;
constexpr int kVectorRegisters = 16;
#endif

template <typename T>
struct VectorOf {
    typedef T type __attribute__((vector_size(kVectorBytes)));
};

template <typename T>
using Vec = typename VectorOf<T>::type;

// Lanes in one Vec<T>.
template <typename T>
constexpr int width = kVectorBytes / static_cast<int>(sizeof(T));

template <typename T>
inline Vec<T> load(const T* p) {
    Vec<T> v;
    std::memcpy(&v, p, sizeof(v));
    return v;
}

template <typename T>
inline void store(T* p, const Vec<T>& v) {
    std::memcpy(p, &v, sizeof(v));
}

template <typename T>
inline Vec<T> load_part(const T* p, int lanes) {
    Vec<T> v = {};
    std::memcpy(&v, p, sizeof(T) * static_cast<std::size_t>(lanes));
    return v;
}

template <typename T>
inline void store_part(T* p, const Vec<T>& v, int lanes) {
    std::memcpy(p, &v, sizeof(T) * static_cast<std::size_t>(lanes));
}

// x - 0 rather than 0 + x: the sum differs from x for x = -0, so GCC cannot
// fold it away and emits an add before each broadcast; x - 0 is x for every x.
template <typename T>
inline Vec<T> broadcast(T x) {
    return x - Vec<T>{};
}

// a * b + c, rounded once where the target has FMA (AVX-512, or AVX with
// -mfma), twice where it has none. GCC contracts a * b + c into an FMA in
// some inlined contexts and not in others (seen at -O2, not at -O3), so
// kernels that must agree bit for bit with another (batchnorm_max_pool.hpp
// recomputes batchnorm.hpp's values) call this instead.
template <typename T>
inline Vec<T> fma(const Vec<T>& a, const Vec<T>& b, const Vec<T>& c) {
#if defined(__AVX512F__)
    if constexpr (std::is_same_v<T, float>)
        return reinterpret_cast<Vec<T>>(_mm512_fmadd_ps(reinterpret_cast<__m512>(a), reinterpret_cast<__m512>(b),
                                                        reinterpret_cast<__m512>(c)));
    else
        return reinterpret_cast<Vec<T>>(_mm512_fmadd_pd(reinterpret_cast<__m512d>(a), reinterpret_cast<__m512d>(b),
                                                        reinterpret_cast<__m512d>(c)));
#elif defined(__AVX__) && defined(__FMA__)
    if constexpr (std::is_same_v<T, float>)
        return reinterpret_cast<Vec<T>>(_mm256_fmadd_ps(reinterpret_cast<__m256>(a), reinterpret_cast<__m256>(b),
                                                        reinterpret_cast<__m256>(c)));
    else
        return reinterpret_cast<Vec<T>>(_mm256_fmadd_pd(reinterpret_cast<__m256d>(a), reinterpret_cast<__m256d>(b),
                                                        reinterpret_cast<__m256d>(c)));
#else
    return a * b + c;  // no FMA instruction to contract into
#endif
}

// The square root of each lane, IEEE round-to-nearest like std::sqrt (which
// GCC does not vectorise where it may have to set errno).
template <typename T>
inline Vec<T> sqrt(const Vec<T>& v) {
    constexpr bool single = std::is_same_v<T, float>;
#if defined(__AVX512F__)
    // The masked forms with every lane set: GCC 12's _mm512_sqrt_p[sd] pass an
    // undefined vector that -Wuninitialized reports.
    if constexpr (single) {
        const __m512 x = reinterpret_cast<__m512>(v);
        return reinterpret_cast<Vec<T>>(_mm512_mask_sqrt_ps(x, static_cast<__mmask16>(0xFFFF), x));
    } else {
        const __m512d x = reinterpret_cast<__m512d>(v);
        return reinterpret_cast<Vec<T>>(_mm512_mask_sqrt_pd(x, static_cast<__mmask8>(0xFF), x));
    }
#elif defined(__AVX__)
    if constexpr (single)
        return reinterpret_cast<Vec<T>>(_mm256_sqrt_ps(reinterpret_cast<__m256>(v)));
    else
        return reinterpret_cast<Vec<T>>(_mm256_sqrt_pd(reinterpret_cast<__m256d>(v)));
#elif defined(__SSE2__)
    if constexpr (single)
        return reinterpret_cast<Vec<T>>(_mm_sqrt_ps(reinterpret_cast<__m128>(v)));
    else
        return reinterpret_cast<Vec<T>>(_mm_sqrt_pd(reinterpret_cast<__m128d>(v)));
#else
    Vec<T> root = v;
    for (int lane = 0; lane < width<T>; ++lane) root[lane] = std::sqrt(v[lane]);
    return root;
#endif
}

// Integer lanes as wide as T's, one per lane of a Vec<T>: what comparing two
// Vec<T> gives (-1 where true), or an index per lane.
template <typename T>
using Lanes = decltype(Vec<T>{} > Vec<T>{});

// GCC's __builtin_convertvector between bytes and 32-bit lanes moves each
// lane through a general register (about 30 instructions for 8 lanes);
// where the target has one instruction for it, that instead.
template <typename T>
inline Lanes<T> widen_bytes(const std::uint8_t* p) {
#if defined(__AVX512F__)
    if constexpr (std::is_same_v<T, float>)  // zero-masked forms with every lane set, as in sqrt
        return reinterpret_cast<Lanes<T>>(_mm512_maskz_cvtepu8_epi32(
            static_cast<__mmask16>(0xFFFF), _mm_loadu_si128(reinterpret_cast<const __m128i*>(p))));
#elif defined(__AVX2__)
    if constexpr (std::is_same_v<T, float>)
        return reinterpret_cast<Lanes<T>>(_mm256_cvtepu8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(p))));
#endif
    Lanes<T> v = {};
    for (int lane = 0; lane < width<T>; ++lane) v[lane] = p[lane];
    return v;
}

template <typename T>
inline void narrow_to_bytes(std::uint8_t* p, const Lanes<T>& v) {
#if defined(__AVX512F__)
    if constexpr (std::is_same_v<T, float>) {
        _mm_storeu_si128(reinterpret_cast<__m128i*>(p), _mm512_maskz_cvtepi32_epi8(static_cast<__mmask16>(0xFFFF),
                                                                                  reinterpret_cast<__m512i>(v)));
        return;
    }
#elif defined(__AVX2__)
    if constexpr (std::is_same_v<T, float>) {
        // The packs saturate: keep each lane's low byte first, as the cast below does.
        const __m256i low = _mm256_and_si256(reinterpret_cast<__m256i>(v), _mm256_set1_epi32(0xFF));
        const __m128i words = _mm_packus_epi32(_mm256_castsi256_si128(low), _mm256_extracti128_si256(low, 1));
        _mm_storel_epi64(reinterpret_cast<__m128i*>(p), _mm_packus_epi16(words, words));
        return;
    }
#endif
    for (int lane = 0; lane < width<T>; ++lane) p[lane] = static_cast<std::uint8_t>(v[lane]);
}

// Makes the compiler treat v as a value it cannot see through: a vector
// loaded once and multiplied G times is then held in a register, where GCC 12
// otherwise folds the load into each of the G FMAs as a memory operand. An
// unaligned 64-byte load crossing a cache line takes two load slots, so that
// made conv2d_planar.hpp's kernel load-bound (3x3 3->16 @150: 8 ms against 4).
template <typename T>
inline void hold(Vec<T>& v) {
#if defined(__AVX512F__)
    asm("" : "+v"(v));
#elif defined(__SSE2__)
    asm("" : "+x"(v));
#else
    (void)v;
#endif
}

// Stores v at p (aligned to kVectorBytes) past the caches: an output far
// larger than the caches is then written once, not first read for ownership.
// Such stores are weakly ordered: the thread that made them calls
// stream_fence() before other threads read p.
template <typename T>
inline void stream(T* p, const Vec<T>& v) {
#if defined(__AVX512F__)
    if constexpr (std::is_same_v<T, float>)
        _mm512_stream_ps(p, reinterpret_cast<__m512>(v));
    else
        _mm512_stream_pd(p, reinterpret_cast<__m512d>(v));
#elif defined(__AVX__)
    if constexpr (std::is_same_v<T, float>)
        _mm256_stream_ps(p, reinterpret_cast<__m256>(v));
    else
        _mm256_stream_pd(p, reinterpret_cast<__m256d>(v));
#elif defined(__SSE2__)
    if constexpr (std::is_same_v<T, float>)
        _mm_stream_ps(p, reinterpret_cast<__m128>(v));
    else
        _mm_stream_pd(p, reinterpret_cast<__m128d>(v));
#else
    store(p, v);
#endif
}

inline void stream_fence() {
#if defined(__SSE2__)
    _mm_sfence();
#endif
}

// One stage of transpose: for the pairs of rows (i, i + Block) with bit Block
// of i clear, the lanes with bit Block set of row i trade places with the
// lanes with it clear of row i + Block (two-source shuffles with constant
// indices: vpermt2ps / vshufps and vperm2f128 / unpck*).
template <typename T, int Block, std::size_t... Lane>
inline void transpose_stage(Vec<T> (&rows)[width<T>], std::index_sequence<Lane...>) {
    constexpr int L = width<T>;
    constexpr Lanes<T> low = {((Lane & Block) ? L + static_cast<int>(Lane) - Block : static_cast<int>(Lane))...};
    constexpr Lanes<T> high = {((Lane & Block) ? L + static_cast<int>(Lane) : static_cast<int>(Lane) + Block)...};
#pragma GCC unroll 16
    for (int i = 0; i < L; ++i)
        if ((i & Block) == 0) {
            const Vec<T> top = rows[i], bottom = rows[i + Block];
            rows[i] = __builtin_shuffle(top, bottom, low);
            rows[i + Block] = __builtin_shuffle(top, bottom, high);
        }
    if constexpr (Block > 1) transpose_stage<T, Block / 2>(rows, std::index_sequence<Lane...>());
}

// rows[i][j] becomes rows[j][i]: log2(width<T>) stages, each swapping one bit
// of the row index with the same bit of the lane index.
template <typename T>
inline void transpose(Vec<T> (&rows)[width<T>]) {
    if constexpr (width<T> > 1) transpose_stage<T, width<T> / 2>(rows, std::make_index_sequence<width<T>>());
}

}  // namespace simd
}  // namespace cpu
}  // namespace bcnn

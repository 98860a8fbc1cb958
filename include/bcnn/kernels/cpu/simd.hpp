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
//   stream(p, v)            a streaming store (p aligned to the vector), for
//                           outputs much larger than the caches;
//                           stream_fence() after a thread's last one

#include <cstdint>
#include <cstring>
#include <type_traits>

#if defined(__SSE2__)
#include <immintrin.h>
#endif

namespace bcnn {
namespace cpu {
namespace simd {

#if defined(__AVX512F__)
constexpr int kVectorBytes = 64;
#elif defined(__AVX__)
constexpr int kVectorBytes = 32;
#else
constexpr int kVectorBytes = 16;
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

// Outputs at least this large are written with stream() where the kernel
// can: the L3 cache of the machine the rule was measured on (32 MiB, Zen 3).
// Larger outputs leave the caches before they are read again, and a plain
// store first reads each line it writes: for a kernel that reads two
// tensors and writes one, a third more memory traffic.
constexpr std::size_t kStreamMinBytes = std::size_t(32) << 20;

// Whether p can take stream(): aligned to the vector.
template <typename T>
inline bool stream_aligned(const T* p) {
    return reinterpret_cast<std::uintptr_t>(p) % kVectorBytes == 0;
}

// Stores v at p (aligned to the vector) without bringing the line into the
// caches (a non-temporal store; a plain store where the target has none).
template <typename T>
inline void stream(T* p, const Vec<T>& v) {
    static_assert(std::is_same<T, float>::value || std::is_same<T, double>::value, "float or double");
#if defined(__AVX512F__)
    if constexpr (std::is_same<T, float>::value)
        _mm512_stream_ps(p, reinterpret_cast<const __m512&>(v));
    else
        _mm512_stream_pd(p, reinterpret_cast<const __m512d&>(v));
#elif defined(__AVX__)
    if constexpr (std::is_same<T, float>::value)
        _mm256_stream_ps(p, reinterpret_cast<const __m256&>(v));
    else
        _mm256_stream_pd(p, reinterpret_cast<const __m256d&>(v));
#elif defined(__SSE2__)
    if constexpr (std::is_same<T, float>::value)
        _mm_stream_ps(p, reinterpret_cast<const __m128&>(v));
    else
        _mm_stream_pd(p, reinterpret_cast<const __m128d&>(v));
#else
    store(p, v);
#endif
}

// Orders this thread's streaming stores before its later stores, so that
// another thread that sees those (the end of a parallel region) sees them too.
inline void stream_fence() {
#if defined(__SSE2__)
    _mm_sfence();
#endif
}

}  // namespace simd
}  // namespace cpu
}  // namespace bcnn

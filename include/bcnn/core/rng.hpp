#pragma once
// Rng: a counter-based generator (Philox4x32-10, Salmon et al. 2011). The
// value for element i of a draw is a pure function of (seed, counter + i), so
// the same seed gives the same numbers on any thread count, and the state to
// checkpoint is just (seed, counter).

#include <array>
#include <cmath>
#include <cstdint>

#include "bcnn/core/parallel.hpp"
#include "bcnn/core/tensor.hpp"

#ifdef __AVX2__
#include "bcnn/core/philox_avx2.hpp"
#endif

namespace bcnn {

namespace detail {

// One Philox4x32-10 block: 128 random bits for a 128-bit counter and a 64-bit key.
inline std::array<std::uint32_t, 4> philox4x32(std::uint64_t counter_lo, std::uint64_t counter_hi, std::uint64_t key) {
    constexpr std::uint32_t kMul0 = 0xD2511F53u, kMul1 = 0xCD9E8D57u;
    constexpr std::uint32_t kWeyl0 = 0x9E3779B9u, kWeyl1 = 0xBB67AE85u;
    std::uint32_t c0 = static_cast<std::uint32_t>(counter_lo), c1 = static_cast<std::uint32_t>(counter_lo >> 32);
    std::uint32_t c2 = static_cast<std::uint32_t>(counter_hi), c3 = static_cast<std::uint32_t>(counter_hi >> 32);
    std::uint32_t k0 = static_cast<std::uint32_t>(key), k1 = static_cast<std::uint32_t>(key >> 32);
    for (int round = 0; round < 10; ++round) {
        const std::uint64_t p0 = static_cast<std::uint64_t>(kMul0) * c0;
        const std::uint64_t p1 = static_cast<std::uint64_t>(kMul1) * c2;
        const std::uint32_t hi0 = static_cast<std::uint32_t>(p0 >> 32), lo0 = static_cast<std::uint32_t>(p0);
        const std::uint32_t hi1 = static_cast<std::uint32_t>(p1 >> 32), lo1 = static_cast<std::uint32_t>(p1);
        c0 = hi1 ^ c1 ^ k0;
        c1 = lo1;
        c2 = hi0 ^ c3 ^ k1;
        c3 = lo0;
        k0 += kWeyl0;
        k1 += kWeyl1;
    }
    return {c0, c1, c2, c3};
}

}  // namespace detail

class Rng {
public:
    explicit Rng(std::uint64_t seed = 0, std::uint64_t counter = 0) : seed_(seed), counter_(counter) {}

    std::uint64_t seed() const { return seed_; }
    std::uint64_t counter() const { return counter_; }

    // Reserves `count` consecutive stream positions and returns the first.
    std::uint64_t advance(std::uint64_t count) {
        const std::uint64_t first = counter_;
        counter_ += count;
        return first;
    }

    // 64 random bits at stream position `position` (no state change).
    std::uint64_t bits_at(std::uint64_t position) const {
        const auto block = detail::philox4x32(position, 0, seed_);
        return (static_cast<std::uint64_t>(block[1]) << 32) | block[0];
    }

    // Uniform in [0, 1) at stream position `position`, with T's full mantissa.
    template <typename T>
    T uniform_at(std::uint64_t position) const {
        const std::uint64_t bits = bits_at(position);
        if (sizeof(T) <= 4) return static_cast<T>(bits >> 40) * static_cast<T>(1.0 / 16777216.0);
        return static_cast<T>(static_cast<double>(bits >> 11) * (1.0 / 9007199254740992.0));
    }

    // out[i] = uniform_at<T>(first + i) for i < count. Floats take only the
    // top 24 bits of word 1 of each block, so with AVX2 eight blocks are
    // computed at once (philox_avx2.hpp): dropout's masks, 3.7x faster.
    template <typename T>
    void uniform_run(std::uint64_t first, Index count, T* out) const {
        Index i = 0;
#ifdef __AVX2__
        if constexpr (sizeof(T) == 4) {
            const __m256 scale = _mm256_set1_ps(static_cast<float>(1.0 / 16777216.0));
            for (; i + 8 <= count; i += 8) {
                const __m256i word1 = detail::philox4x32_word1_x8(first + static_cast<std::uint64_t>(i), seed_);
                const __m256 value = _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_srli_epi32(word1, 8)), scale);
                _mm256_storeu_ps(out + i, value);
            }
        }
#endif
        for (; i < count; ++i) out[i] = uniform_at<T>(first + static_cast<std::uint64_t>(i));
    }

    // One value in [0, bound), for shuffles (bias below 2^-32 for bound < 2^32).
    std::uint64_t next_below(std::uint64_t bound) {
        BCNN_CHECK(bound > 0, "Rng::next_below: bound must be positive");
        return bits_at(advance(1)) % bound;
    }

    // Fills `t` with uniform values in [low, high).
    template <typename T>
    void uniform(const Tensor<T>& t, T low, T high) {
        const std::uint64_t first = advance(static_cast<std::uint64_t>(t.numel()));
        for_each_element(t, [&](Index i, T& value) { value = low + (high - low) * uniform_at<T>(first + i); });
    }

    // Fills `t` with normal values (Box-Muller on one position per element).
    template <typename T>
    void normal(const Tensor<T>& t, T mean, T stddev) {
        const std::uint64_t first = advance(static_cast<std::uint64_t>(t.numel()));
        for_each_element(t, [&](Index i, T& value) {
            const std::uint64_t bits = bits_at(first + i);
            const double u1 = (static_cast<double>(bits >> 40) + 1.0) / 16777217.0;  // (0, 1)
            const double u2 = static_cast<double>(bits & 0xFFFFFFu) / 16777216.0;    // [0, 1)
            value = mean + stddev * static_cast<T>(std::sqrt(-2.0 * std::log(u1)) * std::cos(6.283185307179586 * u2));
        });
    }

private:
    // Calls fn(linear index, element) for every element, in parallel.
    template <typename T, typename Fn>
    static void for_each_element(const Tensor<T>& t, Fn fn) {
        t.require_cpu("Rng");
        if (t.numel() == 0) return;
        const RowMatrix<T> m = t.as_rows("Rng");
        parallel_for(0, m.rows, [&](Index r) {
            T* row = m.row(r);
            for (Index c = 0; c < m.cols; ++c) fn(r * m.cols + c, row[c]);
        });
    }

    std::uint64_t seed_;
    std::uint64_t counter_;
};

}  // namespace bcnn

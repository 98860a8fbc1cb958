#pragma once
// Internal to bcnn_cuda: bcnn's Philox4x32-10 (core/rng.hpp) as a function
// callable on the host and the device, and Rng::uniform_at's mapping of its
// bits to [0, 1). Same operations on the same 32/64-bit integers, so the
// device draws the host's numbers bit for bit for the same (seed, position).
// Plain C++ when not compiled by nvcc (host-side checks).

#include <cstdint>

#include "host_device.hpp"

namespace bcnn {
namespace cuda {
namespace detail {

// detail::philox4x32(position, 0, seed)'s words 0 and 1, as Rng::bits_at:
// (word1 << 32) | word0.
BCNN_HOST_DEVICE inline std::uint64_t philox_bits_at(std::uint64_t position, std::uint64_t seed) {
    constexpr std::uint32_t kMul0 = 0xD2511F53u, kMul1 = 0xCD9E8D57u;
    constexpr std::uint32_t kWeyl0 = 0x9E3779B9u, kWeyl1 = 0xBB67AE85u;
    std::uint32_t c0 = static_cast<std::uint32_t>(position), c1 = static_cast<std::uint32_t>(position >> 32);
    std::uint32_t c2 = 0, c3 = 0;
    std::uint32_t k0 = static_cast<std::uint32_t>(seed), k1 = static_cast<std::uint32_t>(seed >> 32);
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
    return (static_cast<std::uint64_t>(c1) << 32) | c0;
}

// Rng::uniform_at<float> / <double>: 24 or 53 high bits scaled into [0, 1), exactly.
BCNN_HOST_DEVICE inline float philox_uniform(std::uint64_t bits, float) {
    return static_cast<float>(bits >> 40) * static_cast<float>(1.0 / 16777216.0);
}
BCNN_HOST_DEVICE inline double philox_uniform(std::uint64_t bits, double) {
    return static_cast<double>(bits >> 11) * (1.0 / 9007199254740992.0);
}

}  // namespace detail
}  // namespace cuda
}  // namespace bcnn

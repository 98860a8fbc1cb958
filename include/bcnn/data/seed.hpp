#pragma once
// Seeds for the data pipeline's random choices, derived from one user seed so
// that each choice (the split of a class, the order of an epoch, the
// augmentation of one sample in one epoch) has its own independent stream
// and never depends on the order in which the others were made.

#include <cstdint>
#include <utility>
#include <vector>

#include "bcnn/core/rng.hpp"

namespace bcnn {
namespace data {

// Streams: which choice a derived seed is for.
enum class SeedStream : std::uint64_t { split = 1, epoch_order = 2, augmentation = 3 };

// A seed for (stream, a, b) under `seed`: one Philox block, so distinct
// arguments give unrelated seeds.
inline std::uint64_t derive_seed(std::uint64_t seed, SeedStream stream, std::uint64_t a, std::uint64_t b = 0) {
    const auto block = ::bcnn::detail::philox4x32(a, b ^ (static_cast<std::uint64_t>(stream) << 56), seed);
    return (static_cast<std::uint64_t>(block[1]) << 32) | block[0];
}

// Fisher-Yates shuffle drawing from `rng` (count - 1 draws).
template <typename T>
void shuffle_in_place(std::vector<T>& values, Rng& rng) {
    for (std::size_t i = values.size(); i > 1; --i) {
        const auto j = static_cast<std::size_t>(rng.next_below(i));
        std::swap(values[i - 1], values[j]);
    }
}

}  // namespace data
}  // namespace bcnn

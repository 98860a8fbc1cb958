#pragma once
// Seeded splits of a data set into parts (train / validation / test) by
// fractions. The same seed always gives the same split.
//
// - stratified_split: each class is shuffled and cut by the fractions on its
//   own, so every part keeps the class proportions (the held-out protocol's
//   90/10 train/validation split of TRAIN).
// - shuffled_split: the original study's pooled protocol: all samples
//   shuffled together, then cut by position (80/10/10 of TRAIN+TEST gives its
//   9,955 / 1,245 / 1,244). The study used scikit-learn's train_test_split
//   with random_state=10 (NumPy's Mersenne Twister); bcnn draws from its own
//   Philox generator, so the sizes match but the permutation, and hence which
//   images land in which part, cannot be reproduced.
//
// Part sizes: with cumulative fractions F_k, part k ends at round(n * F_k)
// (half away from zero), the last part at n.

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

#include "bcnn/core/error.hpp"
#include "bcnn/core/shape.hpp"
#include "bcnn/data/seed.hpp"

namespace bcnn {
namespace data {

namespace detail {

inline void check_fractions(const std::vector<double>& fractions, const char* what) {
    BCNN_CHECK(!fractions.empty(), what << ": no fractions given");
    double sum = 0;
    for (double f : fractions) {
        BCNN_CHECK(f >= 0 && f <= 1, what << ": fraction " << f << " is outside [0, 1]");
        sum += f;
    }
    BCNN_CHECK(std::abs(sum - 1.0) < 1e-6, what << ": fractions sum to " << sum << ", expected 1");
}

// Cuts `items` (already shuffled) into parts by fractions, appending to `parts`.
inline void cut_by_fractions(const std::vector<Index>& items, const std::vector<double>& fractions,
                             std::vector<std::vector<Index>>& parts) {
    const auto n = static_cast<Index>(items.size());
    Index begin = 0;
    double cumulative = 0;
    for (std::size_t k = 0; k < fractions.size(); ++k) {
        cumulative += fractions[k];
        const Index end = k + 1 == fractions.size() ? n : std::min<Index>(n, std::llround(n * cumulative));
        parts[k].insert(parts[k].end(), items.begin() + begin, items.begin() + std::max(begin, end));
        begin = std::max(begin, end);
    }
}

}  // namespace detail

// Splits the indices 0..labels.size()-1 class by class. Each part is sorted.
inline std::vector<std::vector<Index>> stratified_split(const std::vector<std::int32_t>& labels,
                                                        const std::vector<double>& fractions, std::uint64_t seed) {
    detail::check_fractions(fractions, "stratified_split");
    std::int32_t classes = 0;
    for (std::int32_t label : labels) {
        BCNN_CHECK(label >= 0, "stratified_split: negative label " << label);
        classes = std::max(classes, label + 1);
    }
    std::vector<std::vector<Index>> by_class(static_cast<std::size_t>(classes));
    for (std::size_t i = 0; i < labels.size(); ++i) by_class[static_cast<std::size_t>(labels[i])].push_back(static_cast<Index>(i));

    std::vector<std::vector<Index>> parts(fractions.size());
    for (std::size_t c = 0; c < by_class.size(); ++c) {
        Rng rng(derive_seed(seed, SeedStream::split, c));
        shuffle_in_place(by_class[c], rng);
        detail::cut_by_fractions(by_class[c], fractions, parts);
    }
    for (auto& part : parts) std::sort(part.begin(), part.end());
    return parts;
}

// Shuffles 0..count-1 and cuts the permutation by position. Each part keeps
// its shuffled order.
inline std::vector<std::vector<Index>> shuffled_split(Index count, const std::vector<double>& fractions, std::uint64_t seed) {
    detail::check_fractions(fractions, "shuffled_split");
    BCNN_CHECK(count >= 0, "shuffled_split: negative count " << count);
    std::vector<Index> order(static_cast<std::size_t>(count));
    for (Index i = 0; i < count; ++i) order[static_cast<std::size_t>(i)] = i;
    Rng rng(derive_seed(seed, SeedStream::split, 0, 1));
    shuffle_in_place(order, rng);
    std::vector<std::vector<Index>> parts(fractions.size());
    detail::cut_by_fractions(order, fractions, parts);
    return parts;
}

}  // namespace data
}  // namespace bcnn

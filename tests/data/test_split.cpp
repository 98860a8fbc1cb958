// Seeded splits: stratified per-class fractions, the study's pooled 80/10/10
// by position, determinism for a seed, and bad fractions.

#include <catch2/catch.hpp>

#include <algorithm>
#include <numeric>

#include <bcnn/data/split.hpp>

using namespace bcnn;
using namespace bcnn::data;

namespace {

// The real TRAIN split's labels: 2497, 2483, 2478, 2499 per class.
std::vector<std::int32_t> train_labels() {
    std::vector<std::int32_t> labels;
    const int counts[4] = {2497, 2483, 2478, 2499};
    for (int c = 0; c < 4; ++c) labels.insert(labels.end(), static_cast<std::size_t>(counts[c]), c);
    return labels;
}

std::vector<int> class_counts(const std::vector<Index>& part, const std::vector<std::int32_t>& labels) {
    std::vector<int> counts(4, 0);
    for (Index i : part) ++counts[static_cast<std::size_t>(labels[static_cast<std::size_t>(i)])];
    return counts;
}

// The parts together are exactly 0..n-1.
void check_partition(const std::vector<std::vector<Index>>& parts, Index n) {
    std::vector<Index> all;
    for (const auto& part : parts) all.insert(all.end(), part.begin(), part.end());
    std::sort(all.begin(), all.end());
    std::vector<Index> expected(static_cast<std::size_t>(n));
    std::iota(expected.begin(), expected.end(), Index{0});
    CHECK(all == expected);
}

}  // namespace

TEST_CASE("stratified_split keeps each class's proportions and is seeded", "[data][split]") {
    const auto labels = train_labels();
    const auto parts = stratified_split(labels, {0.9, 0.1}, 10);
    REQUIRE(parts.size() == 2);
    check_partition(parts, static_cast<Index>(labels.size()));
    // round(0.9 * n) of each class goes to the first part.
    CHECK(class_counts(parts[0], labels) == std::vector<int>{2247, 2235, 2230, 2249});
    CHECK(class_counts(parts[1], labels) == std::vector<int>{250, 248, 248, 250});
    CHECK(std::is_sorted(parts[0].begin(), parts[0].end()));
    CHECK(std::is_sorted(parts[1].begin(), parts[1].end()));

    CHECK(stratified_split(labels, {0.9, 0.1}, 10) == parts);  // same seed, same split
    const auto other = stratified_split(labels, {0.9, 0.1}, 11);
    CHECK(other[1] != parts[1]);
    CHECK(class_counts(other[1], labels) == class_counts(parts[1], labels));

    // Labels in any order; three parts; a class too small for every part.
    const std::vector<std::int32_t> mixed = {2, 0, 1, 0, 2, 0, 1, 0, 2, 2};
    const auto three = stratified_split(mixed, {0.5, 0.25, 0.25}, 3);
    check_partition(three, 10);
    CHECK(three[0].size() == 2 + 1 + 2);  // round(0.5 * {4, 2, 4})
    CHECK(three[1].size() == 1 + 1 + 1);  // round(0.75 * n) - round(0.5 * n)
    CHECK(three[2].size() == 1 + 0 + 1);
}

TEST_CASE("shuffled_split gives the study's pooled 80/10/10 sizes, by position", "[data][split]") {
    const Index pooled = 9957 + 2487;  // TRAIN + TEST
    const auto parts = shuffled_split(pooled, {0.8, 0.1, 0.1}, 10);
    REQUIRE(parts.size() == 3);
    CHECK(parts[0].size() == 9955);
    CHECK(parts[1].size() == 1245);
    CHECK(parts[2].size() == 1244);
    check_partition(parts, pooled);
    CHECK_FALSE(std::is_sorted(parts[0].begin(), parts[0].end()));  // shuffled
    CHECK(shuffled_split(pooled, {0.8, 0.1, 0.1}, 10) == parts);
    CHECK(shuffled_split(pooled, {0.8, 0.1, 0.1}, 11)[2] != parts[2]);
    // The parts are consecutive pieces of one permutation: same seed, other cuts.
    const auto halves = shuffled_split(pooled, {0.5, 0.5}, 10);
    std::vector<Index> joined = parts[0];
    for (int k = 1; k < 3; ++k) joined.insert(joined.end(), parts[k].begin(), parts[k].end());
    CHECK(std::equal(halves[0].begin(), halves[0].end(), joined.begin()));
}

TEST_CASE("splits reject bad fractions and labels", "[data][split]") {
    CHECK_THROWS_WITH(shuffled_split(10, {0.8, 0.1}, 0), Catch::Contains("shuffled_split: fractions sum to 0.9, expected 1"));
    CHECK_THROWS_WITH(shuffled_split(10, {1.5, -0.5}, 0), Catch::Contains("shuffled_split: fraction 1.5 is outside [0, 1]"));
    CHECK_THROWS_WITH(stratified_split({0, 1}, {}, 0), Catch::Contains("stratified_split: no fractions given"));
    CHECK_THROWS_WITH(stratified_split({0, -1}, {1.0}, 0), Catch::Contains("stratified_split: negative label -1"));
}

// Rng: Philox4x32-10 known-answer values, reproducibility, thread-count independence.

#include <catch2/catch.hpp>

#include <cmath>
#include <vector>

#include <bcnn/core/rng.hpp>

using namespace bcnn;

TEST_CASE("Philox4x32-10 matches the Random123 known-answer vectors", "[core][rng]") {
    // Known-answer tests published with Random123 (kat_vectors): counter, key -> output.
    const auto zero = detail::philox4x32(0, 0, 0);
    CHECK(zero == std::array<std::uint32_t, 4>{0x6627e8d5u, 0xe169c58du, 0xbc57ac4cu, 0x9b00dbd8u});
    const auto ones = detail::philox4x32(0xffffffffffffffffull, 0xffffffffffffffffull, 0xffffffffffffffffull);
    CHECK(ones == std::array<std::uint32_t, 4>{0x408f276du, 0x41c83b0eu, 0xa20bc7c6u, 0x6d5451fdu});
    const auto pi = detail::philox4x32(0x85a308d3243f6a88ull, 0x0370734413198a2eull, 0x299f31d0a4093822ull);
    CHECK(pi == std::array<std::uint32_t, 4>{0xd16cfe09u, 0x94fdccebu, 0x5001e420u, 0x24126ea1u});
}

TEMPLATE_TEST_CASE("uniform_run gives uniform_at's values, bit for bit", "[core][rng]", float, double) {
    // Seeds with both key words set; runs that cross 2^32 (the counter's high
    // word changes inside a block of eight) and 2^64 - 1; lengths around 8.
    for (const std::uint64_t seed : {std::uint64_t(0), std::uint64_t(42), std::uint64_t(0x299f31d0a4093822ull)})
        for (const std::uint64_t first :
             {std::uint64_t(0), std::uint64_t(5), std::uint64_t(0xFFFFFFFCull), ~std::uint64_t(0) - 20})
            for (const Index count : {Index(0), Index(1), Index(7), Index(8), Index(9), Index(23)}) {
                INFO("seed " << seed << ", first " << first << ", count " << count);
                const Rng rng(seed);
                std::vector<TestType> run(static_cast<std::size_t>(count) + 1, TestType(-1));
                rng.uniform_run(first, count, run.data());
                for (Index i = 0; i < count; ++i)
                    CHECK(run[static_cast<std::size_t>(i)] == rng.uniform_at<TestType>(first + std::uint64_t(i)));
                CHECK(run.back() == TestType(-1));  // nothing written past count
            }
}

TEST_CASE("Rng draws depend only on seed and position", "[core][rng]") {
    Rng a(42), b(42), c(43);
    Tensor<float> ta(Shape{1000}), tb(Shape{1000}), tc(Shape{1000});
    a.uniform(ta, -1.0f, 1.0f);
    b.uniform(tb, -1.0f, 1.0f);
    c.uniform(tc, -1.0f, 1.0f);
    CHECK(ta.to_vector() == tb.to_vector());
    CHECK(ta.to_vector() != tc.to_vector());
    CHECK(a.counter() == 1000);

    // Two draws of 500 give the same stream as one draw of 1000.
    Rng split(42);
    Tensor<float> whole(Shape{1000});
    split.uniform(whole.slice(0, 0, 500), -1.0f, 1.0f);
    split.uniform(whole.slice(0, 500, 1000), -1.0f, 1.0f);
    CHECK(whole.to_vector() == ta.to_vector());

    // Resuming from a saved (seed, counter) continues the stream.
    Rng resumed(42, 500);
    Tensor<float> tail(Shape{500});
    resumed.uniform(tail, -1.0f, 1.0f);
    CHECK(tail.to_vector() == whole.slice(0, 500, 1000).to_vector());
}

TEST_CASE("Rng gives the same numbers on any thread count", "[core][rng]") {
    const int saved = num_threads();
    Tensor<double> one(Shape{64, 33}), two(Shape{64, 33});
    set_num_threads(1);
    Rng(7).normal(one, 0.0, 1.0);
    set_num_threads(2);
    Rng(7).normal(two, 0.0, 1.0);
    set_num_threads(saved);
    CHECK(one.to_vector() == two.to_vector());
}

TEST_CASE("Rng uniform and normal have the right moments", "[core][rng]") {
    const Index n = 200000;
    Tensor<double> u(Shape{n}), g(Shape{n});
    Rng rng(3);
    rng.uniform(u, 2.0, 4.0);
    rng.normal(g, 1.0, 0.5);
    double u_sum = 0, u_min = 10, u_max = -10, g_sum = 0, g_sq = 0;
    for (double v : u.to_vector()) {
        u_sum += v;
        u_min = std::min(u_min, v);
        u_max = std::max(u_max, v);
    }
    for (double v : g.to_vector()) {
        g_sum += v;
        g_sq += v * v;
    }
    const double u_mean = u_sum / n, g_mean = g_sum / n, g_std = std::sqrt(g_sq / n - g_mean * g_mean);
    // Five standard errors: uniform(2,4) has std 1/sqrt(3); the normal's mean has std 0.5/sqrt(n).
    CHECK(std::abs(u_mean - 3.0) < 5 * (1 / std::sqrt(3.0)) / std::sqrt(double(n)));
    CHECK(u_min >= 2.0);
    CHECK(u_max < 4.0);
    CHECK(std::abs(g_mean - 1.0) < 5 * 0.5 / std::sqrt(double(n)));
    CHECK(std::abs(g_std - 0.5) < 5 * 0.5 / std::sqrt(2.0 * n));
}

TEST_CASE("next_below stays in range and covers it", "[core][rng]") {
    Rng rng(11);
    std::vector<int> counts(7, 0);
    for (int i = 0; i < 7000; ++i) ++counts[rng.next_below(7)];
    for (int count : counts) CHECK(count > 800);  // expected 1000, std ~29
    CHECK_THROWS_WITH(rng.next_below(0), Catch::Contains("bound must be positive"));
}

// dropout kernel: keep fraction, exact scaling, reproducibility, thread-count
// independence, views, gradients by finite differences with a fixed mask.

#include <catch2/catch.hpp>

#include <cmath>

#include <bcnn/kernels/cpu/dropout.hpp>

#include "support/gradcheck.hpp"
#include "support/random.hpp"

using namespace bcnn;
using bcnn::testing::random_tensor;

namespace {

Tensor<float> mask_for(const Tensor<float>& x, float rate, std::uint64_t seed) {
    Rng rng(seed);
    Tensor<float> mask(x.shape()), y(x.shape());
    cpu::dropout_forward(x, rate, rng, mask, y);
    return mask;
}

}  // namespace

TEST_CASE("dropout keeps about 1 - rate of the elements and scales them exactly", "[kernels][dropout]") {
    const Tensor<float> x = random_tensor<float>(Shape{8, 25, 25, 16}, 1);  // 80000 elements
    for (const float rate : {0.1f, 0.5f, 0.7f}) {
        Rng rng(42);
        Tensor<float> mask(x.shape()), y(x.shape());
        cpu::dropout_forward(x, rate, rng, mask, y);
        CHECK(rng.counter() == static_cast<std::uint64_t>(x.numel()));
        const float scale = 1.0f / (1.0f - rate);
        Index kept = 0;
        bool exact = true;
        for (Index i = 0; i < x.numel(); ++i) {
            const float m = mask.data()[i];
            exact = exact && (m == 0.0f || m == scale) && y.data()[i] == x.data()[i] * m;
            kept += m != 0.0f;
        }
        CHECK(exact);
        // The kept count is Binomial(n, 1 - rate): allow 5 standard deviations
        // (a correct kernel fails this with probability below 1e-6).
        const double n = static_cast<double>(x.numel()), p = 1.0 - rate;
        CHECK(std::abs(kept - n * p) < 5.0 * std::sqrt(n * p * (1 - p)));
    }
}

TEST_CASE("dropout keeps element i exactly when uniform_at(first + i) >= rate, also on views", "[kernels][dropout]") {
    Tensor<double> x_wide = random_tensor<double>(Shape{3, 4, 5, 6}, 2);
    Tensor<double> mask_wide(Shape{3, 4, 5, 9}, 7.0), y_wide(Shape{3, 4, 5, 8}, 7.0);
    const Tensor<double> x = x_wide.channels(1, 4);
    Tensor<double> mask = mask_wide.channels(4, 7), y = y_wide.channels(0, 3);
    Rng rng(3, 100);
    const double rate = 0.4;
    cpu::dropout_forward(x, rate, rng, mask, y);
    const Rng reference(3);
    Index i = 0;  // row-major index over the view's logical shape
    for (Index n = 0; n < 3; ++n)
        for (Index h = 0; h < 4; ++h)
            for (Index w = 0; w < 5; ++w) {
                for (Index c = 0; c < 3; ++c, ++i) {
                    const bool keep = reference.uniform_at<double>(100 + i) >= rate;
                    REQUIRE(mask(n, h, w, c) == (keep ? 1.0 / (1.0 - rate) : 0.0));
                    REQUIRE(y(n, h, w, c) == x(n, h, w, c) * mask(n, h, w, c));
                }
                for (Index c = 0; c < 9; ++c)
                    if (c < 4 || c >= 7) REQUIRE(mask_wide(n, h, w, c) == 7.0);
                for (Index c = 3; c < 8; ++c) REQUIRE(y_wide(n, h, w, c) == 7.0);
            }
}

TEST_CASE("dropout with rate 0 is the identity", "[kernels][dropout]") {
    const Tensor<float> x = random_tensor<float>(Shape{4, 7}, 4);
    Rng rng(5);
    Tensor<float> mask(x.shape()), y(x.shape());
    cpu::dropout_forward(x, 0.0f, rng, mask, y);
    CHECK(y.to_vector() == x.to_vector());
    CHECK(mask.to_vector() == std::vector<float>(28, 1.0f));
}

TEST_CASE("dropout masks are reproducible and depend on seed and stream position", "[kernels][dropout]") {
    const Tensor<float> x(Shape{16, 64}, 1.0f);
    CHECK(mask_for(x, 0.5f, 7).to_vector() == mask_for(x, 0.5f, 7).to_vector());
    CHECK(mask_for(x, 0.5f, 7).to_vector() != mask_for(x, 0.5f, 8).to_vector());
    // Two calls on one Rng draw from consecutive positions: different masks.
    Rng rng(7);
    Tensor<float> first(x.shape()), second(x.shape()), y(x.shape());
    cpu::dropout_forward(x, 0.5f, rng, first, y);
    cpu::dropout_forward(x, 0.5f, rng, second, y);
    CHECK(first.to_vector() != second.to_vector());
    CHECK(rng.counter() == 2 * static_cast<std::uint64_t>(x.numel()));
}

TEST_CASE("dropout masks do not depend on the thread count", "[kernels][dropout]") {
    // Large enough (above the serial threshold) that two threads really split the rows.
    const Tensor<float> x(Shape{4, 50, 50, 8}, 1.0f);
    const int threads = num_threads();
    set_num_threads(1);
    const std::vector<float> one_thread = mask_for(x, 0.3f, 11).to_vector();
    set_num_threads(2);
    const std::vector<float> two_threads = mask_for(x, 0.3f, 11).to_vector();
    set_num_threads(threads);
    CHECK(one_thread == two_threads);
}

TEST_CASE("dropout_backward matches finite differences with a fixed mask", "[kernels][dropout][gradcheck]") {
    auto x = random_tensor<double>(Shape{3, 4, 5}, 12);
    const auto upstream = random_tensor<double>(x.shape(), 13);
    Tensor<double> mask(x.shape());
    auto forward = [&] {
        Rng rng(14);  // the same mask every call
        Tensor<double> y(x.shape());
        cpu::dropout_forward(x, 0.25, rng, mask, y);
        return y;
    };
    forward();
    Tensor<double> dx(x.shape());
    cpu::dropout_backward(upstream, mask, dx);
    CHECK(testing::relative_error(dx, testing::numerical_gradient(x, forward, upstream)) < 1e-6);
    // In place: dx may be dy.
    Tensor<double> dy = upstream.clone();
    cpu::dropout_backward(dy, mask, dy);
    CHECK(testing::max_abs_diff(dy, dx) == 0);
}

TEST_CASE("dropout rejects a bad rate and mismatched shapes", "[kernels][dropout][errors]") {
    const Tensor<float> x(Shape{2, 3});
    Tensor<float> mask(Shape{2, 3}), y(Shape{2, 3});
    Rng rng(1);
    CHECK_THROWS_WITH(cpu::dropout_forward(x, 1.0f, rng, mask, y),
                      Catch::Contains("dropout_forward: rate 1 is outside [0, 1)"));
    CHECK_THROWS_WITH(cpu::dropout_forward(x, -0.5f, rng, mask, y),
                      Catch::Contains("dropout_forward: rate -0.5 is outside [0, 1)"));
    Tensor<float> bad(Shape{3, 2});
    CHECK_THROWS_WITH(cpu::dropout_forward(x, 0.5f, rng, bad, y),
                      Catch::Contains("dropout_forward: mask has shape (3, 2), expected (2, 3)"));
    CHECK_THROWS_WITH(cpu::dropout_backward(x, mask, bad),
                      Catch::Contains("dropout_backward: input gradient has shape (3, 2), expected (2, 3)"));
    CHECK(rng.counter() == 0);  // nothing drawn by the rejected calls
}

// global_avg_pool kernel: forward against a reference loop, gradient by finite differences.

#include <catch2/catch.hpp>

#include <algorithm>
#include <vector>

#include <bcnn/kernels/cpu/global_avg_pool.hpp>

#include "support/gradcheck.hpp"
#include "support/random.hpp"

using namespace bcnn;
using bcnn::testing::random_tensor;

namespace {

// y[n, c] = mean over h, w of x[n, h, w, c]
Tensor<double> global_avg_reference(const Tensor<double>& x) {
    Tensor<double> y(Shape{x.dim(0), x.dim(3)});
    for (Index n = 0; n < x.dim(0); ++n)
        for (Index c = 0; c < x.dim(3); ++c) {
            double sum = 0;
            for (Index h = 0; h < x.dim(1); ++h)
                for (Index w = 0; w < x.dim(2); ++w) sum += x(n, h, w, c);
            y(n, c) = sum / static_cast<double>(x.dim(1) * x.dim(2));
        }
    return y;
}

Tensor<double> to_double(const Tensor<float>& t) {
    Tensor<double> d(t.shape());
    const std::vector<float> values = t.to_vector();
    std::copy(values.begin(), values.end(), d.data());
    return d;
}

}  // namespace

TEST_CASE("global_avg_pool_forward matches a reference loop", "[kernels][global_avg_pool]") {
    std::uint64_t seed = 1;
    for (const Shape& shape : {Shape{1, 1, 1, 1}, Shape{2, 7, 5, 3}, Shape{3, 4, 9, 17}, Shape{1, 1, 6, 2}}) {
        const auto x = random_tensor<double>(shape, seed++);
        Tensor<double> y(Shape{shape[0], shape[3]}, 99.0);
        cpu::global_avg_pool_forward(x, y);
        CHECK(testing::max_abs_diff(y, global_avg_reference(x)) < 1e-12);
    }
}

TEST_CASE("global_avg_pool_forward in float matches the double reference", "[kernels][global_avg_pool]") {
    const auto x = random_tensor<float>(Shape{4, 13, 11, 33}, 10);
    Tensor<float> y(Shape{4, 33});
    cpu::global_avg_pool_forward(x, y);
    // A mean of 143 values in [-1, 1): float rounding stays below 1e-5.
    CHECK(testing::max_abs_diff(to_double(y), global_avg_reference(to_double(x))) < 1e-5);
}

TEST_CASE("global_avg_pool_backward matches finite differences", "[kernels][global_avg_pool][gradcheck]") {
    auto x = random_tensor<double>(Shape{2, 3, 5, 4}, 20);
    const auto upstream = random_tensor<double>(Shape{2, 4}, 21);
    auto forward = [&] {
        Tensor<double> y(Shape{2, 4});
        cpu::global_avg_pool_forward(x, y);
        return y;
    };
    Tensor<double> dx(x.shape(), 5.0);
    cpu::global_avg_pool_backward(upstream, dx);
    CHECK(testing::relative_error(dx, testing::numerical_gradient(x, forward, upstream)) < 1e-6);
}

TEST_CASE("global_avg_pool reads and writes channel slices of wider buffers", "[kernels][global_avg_pool]") {
    const auto wide_x = random_tensor<double>(Shape{3, 5, 4, 9}, 30);
    const Tensor<double> x = wide_x.channels(2, 6);
    Tensor<double> wide_y(Shape{3, 8}, -7.0);
    Tensor<double> y = wide_y.channels(1, 5);
    cpu::global_avg_pool_forward(x, y);
    CHECK(testing::max_abs_diff(y.clone(), global_avg_reference(x.clone())) < 1e-12);

    const auto wide_dy = random_tensor<double>(Shape{3, 7}, 31);
    const Tensor<double> dy = wide_dy.channels(3, 7);
    Tensor<double> wide_dx(Shape{3, 5, 4, 6}, -7.0);
    Tensor<double> dx = wide_dx.channels(1, 5);
    cpu::global_avg_pool_backward(dy, dx);
    Tensor<double> dx_ref(x.shape());
    cpu::global_avg_pool_backward(dy.clone(), dx_ref);
    CHECK(testing::max_abs_diff(dx.clone(), dx_ref) == 0);
    for (Index r = 0; r < 3; ++r) {
        CHECK(wide_y(r, 0) == -7.0);
        for (Index c = 5; c < 8; ++c) CHECK(wide_y(r, c) == -7.0);
    }
    for (Index i = 0; i < 3 * 5 * 4; ++i) {
        CHECK(wide_dx.data()[i * 6] == -7.0);
        CHECK(wide_dx.data()[i * 6 + 5] == -7.0);
    }
}

TEST_CASE("global_avg_pool rejects bad inputs naming the shapes", "[kernels][global_avg_pool][errors]") {
    const Tensor<float> x(Shape{2, 3, 3, 4});
    Tensor<float> y_bad(Shape{2, 3});
    CHECK_THROWS_WITH(cpu::global_avg_pool_forward(x, y_bad), Catch::Contains("output has shape (2, 3), expected (2, 4)"));
    const Tensor<float> x_rank2(Shape{2, 4});
    Tensor<float> y(Shape{2, 4});
    CHECK_THROWS_WITH(cpu::global_avg_pool_forward(x_rank2, y), Catch::Contains("input must have rank 4, got shape (2, 4)"));
    const Tensor<float> x_empty(Shape{2, 0, 3, 4});
    CHECK_THROWS_WITH(cpu::global_avg_pool_forward(x_empty, y),
                      Catch::Contains("input (2, 0, 3, 4) has no pixels to average"));
    const Tensor<float> dy_bad(Shape{3, 4});
    Tensor<float> dx(x.shape());
    CHECK_THROWS_WITH(cpu::global_avg_pool_backward(dy_bad, dx),
                      Catch::Contains("output gradient has shape (3, 4), expected (2, 4)"));
}

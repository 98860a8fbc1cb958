// zero_pad2d kernel: forward against a reference loop, backward by finite differences, views.

#include <catch2/catch.hpp>

#include <bcnn/kernels/cpu/zero_pad.hpp>

#include "support/gradcheck.hpp"
#include "support/random.hpp"

using namespace bcnn;
using bcnn::testing::random_tensor;

namespace {

// y[n][i][j][c] = x[n][i - top][j - left][c] inside x, 0 outside.
Tensor<double> zero_pad_reference(const Tensor<double>& x, const cpu::Padding2D& pad) {
    Tensor<double> y(Shape{x.dim(0), pad.top + x.dim(1) + pad.bottom, pad.left + x.dim(2) + pad.right, x.dim(3)});
    for (Index n = 0; n < y.dim(0); ++n)
        for (Index i = 0; i < y.dim(1); ++i)
            for (Index j = 0; j < y.dim(2); ++j)
                for (Index c = 0; c < y.dim(3); ++c) {
                    const Index si = i - pad.top, sj = j - pad.left;
                    const bool inside = si >= 0 && si < x.dim(1) && sj >= 0 && sj < x.dim(2);
                    y(n, i, j, c) = inside ? x(n, si, sj, c) : 0.0;
                }
    return y;
}

}  // namespace

TEST_CASE("zero_pad2d_forward matches a reference loop", "[kernels][zero_pad]") {
    const std::vector<std::pair<Shape, cpu::Padding2D>> cases = {
        {Shape{1, 1, 1, 1}, {1, 1, 1, 1}},    {Shape{2, 5, 7, 3}, {0, 0, 0, 0}},
        {Shape{2, 5, 7, 3}, {1, 2, 3, 0}},    {Shape{3, 4, 3, 5}, {3, 0, 0, 2}},
        {Shape{4, 57, 61, 3}, {1, 1, 1, 1}},  // large enough for the parallel path
    };
    for (const auto& [shape, pad] : cases) {
        const auto x = random_tensor<double>(shape, 1);
        Tensor<double> y(cpu::zero_pad2d_output_shape(shape, pad), -1.0);
        cpu::zero_pad2d_forward(x, pad, y);
        CHECK(testing::max_abs_diff(y, zero_pad_reference(x, pad)) == 0);
    }
}

TEST_CASE("zero_pad2d in float copies values exactly", "[kernels][zero_pad]") {
    const auto x = random_tensor<float>(Shape{2, 3, 4, 5}, 2);
    const cpu::Padding2D pad{2, 1, 0, 3};
    Tensor<float> y(cpu::zero_pad2d_output_shape(x.shape(), pad));
    cpu::zero_pad2d_forward(x, pad, y);
    const std::vector<float> xv = x.to_vector();
    const auto xd = Tensor<double>::from_vector(x.shape(), std::vector<double>(xv.begin(), xv.end()));
    const std::vector<float> yv = y.to_vector();
    const auto yd = Tensor<double>::from_vector(y.shape(), std::vector<double>(yv.begin(), yv.end()));
    CHECK(testing::max_abs_diff(yd, zero_pad_reference(xd, pad)) == 0);  // a copy: no rounding at all
}

TEST_CASE("zero_pad2d_backward matches finite differences", "[kernels][zero_pad][gradcheck]") {
    auto x = random_tensor<double>(Shape{2, 3, 4, 2}, 3);
    const cpu::Padding2D pad{1, 2, 2, 1};
    const auto upstream = random_tensor<double>(cpu::zero_pad2d_output_shape(x.shape(), pad), 4);
    auto forward = [&] {
        Tensor<double> y(upstream.shape());
        cpu::zero_pad2d_forward(x, pad, y);
        return y;
    };
    Tensor<double> dx(x.shape());
    cpu::zero_pad2d_backward(upstream, pad, dx);
    CHECK(testing::relative_error(dx, testing::numerical_gradient(x, forward, upstream)) < 1e-6);
}

TEST_CASE("zero_pad2d reads and writes channel slices, leaving neighbours alone", "[kernels][zero_pad]") {
    const auto x_wide = random_tensor<double>(Shape{2, 3, 3, 6}, 5);
    const Tensor<double> x = x_wide.channels(2, 5);
    const cpu::Padding2D pad{1, 0, 2, 1};
    Tensor<double> y_wide(Shape{2, 4, 6, 7}, 9.0);
    Tensor<double> y = y_wide.channels(1, 4);
    cpu::zero_pad2d_forward(x, pad, y);
    const auto expected = zero_pad_reference(x.clone(), pad);
    for (Index n = 0; n < 2; ++n)
        for (Index i = 0; i < 4; ++i)
            for (Index j = 0; j < 6; ++j)
                for (Index c = 0; c < 7; ++c)
                    CHECK(y_wide(n, i, j, c) == (c >= 1 && c < 4 ? expected(n, i, j, c - 1) : 9.0));
    // Backward: crop the slice y back into a slice of another buffer.
    Tensor<double> dx_wide(Shape{2, 3, 3, 5}, 9.0);
    Tensor<double> dx = dx_wide.channels(2, 5);
    cpu::zero_pad2d_backward(y, pad, dx);
    for (Index n = 0; n < 2; ++n)
        for (Index i = 0; i < 3; ++i)
            for (Index j = 0; j < 3; ++j)
                for (Index c = 0; c < 5; ++c) CHECK(dx_wide(n, i, j, c) == (c >= 2 ? x(n, i, j, c - 2) : 9.0));
}

TEST_CASE("zero_pad2d rejects bad padding and shapes naming them", "[kernels][zero_pad][errors]") {
    const Tensor<float> x(Shape{1, 3, 3, 2});
    Tensor<float> y(Shape{1, 5, 5, 2});
    CHECK_THROWS_WITH(cpu::zero_pad2d_forward(x, cpu::Padding2D{1, -1, 1, 1}, y),
                      Catch::Contains("zero_pad2d: negative padding (top 1, bottom -1, left 1, right 1)"));
    CHECK_THROWS_WITH(cpu::zero_pad2d_forward(x, cpu::Padding2D{1, 1, 0, 1}, y),
                      Catch::Contains("zero_pad2d_forward: output has shape (1, 5, 5, 2), expected (1, 5, 4, 2)"));
    const Tensor<float> x3(Shape{3, 3, 2});
    CHECK_THROWS_WITH(cpu::zero_pad2d_forward(x3, cpu::Padding2D{1, 1, 1, 1}, y),
                      Catch::Contains("zero_pad2d_forward: input must have rank 4, got shape (3, 3, 2)"));
    Tensor<float> dx(Shape{1, 3, 3, 2});
    CHECK_THROWS_WITH(cpu::zero_pad2d_backward(y, cpu::Padding2D{2, 2, 1, 1}, dx),
                      Catch::Contains("zero_pad2d_backward: output gradient has shape (1, 5, 5, 2), "
                                      "expected (1, 7, 5, 2)"));
}

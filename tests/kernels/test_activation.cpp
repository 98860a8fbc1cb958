// activation kernels: relu and softmax against reference loops, gradients by finite differences.

#include <catch2/catch.hpp>

#include <cmath>
#include <limits>

#include <bcnn/kernels/cpu/activation.hpp>

#include "support/gradcheck.hpp"
#include "support/random.hpp"

using namespace bcnn;
using bcnn::testing::random_tensor;

namespace {

Tensor<double> to_double(const Tensor<float>& t) {
    const std::vector<float> v = t.to_vector();
    return Tensor<double>::from_vector(t.shape(), std::vector<double>(v.begin(), v.end()));
}

Tensor<double> relu_reference(const Tensor<double>& x) {
    std::vector<double> v = x.to_vector();
    for (double& value : v) value = value > 0 ? value : 0;
    return Tensor<double>::from_vector(x.shape(), v);
}

// p[n][k] = exp(z[n][k]) / sum_j exp(z[n][j]), written naively (small logits only).
Tensor<double> softmax_reference(const Tensor<double>& z) {
    Tensor<double> p(z.shape());
    for (Index n = 0; n < z.dim(0); ++n) {
        double sum = 0;
        for (Index k = 0; k < z.dim(1); ++k) sum += std::exp(z(n, k));
        for (Index k = 0; k < z.dim(1); ++k) p(n, k) = std::exp(z(n, k)) / sum;
    }
    return p;
}

}  // namespace

TEST_CASE("relu_forward matches a reference loop", "[kernels][activation]") {
    for (const Shape& shape : {Shape{1}, Shape{5, 3}, Shape{3, 7, 5, 3}, Shape{2, 101, 103, 3}}) {
        const auto x = random_tensor<double>(shape, 1);
        Tensor<double> y(shape);
        cpu::relu_forward(x, y);
        CHECK(testing::max_abs_diff(y, relu_reference(x)) == 0);
    }
}

TEST_CASE("relu_forward in float matches the double reference exactly", "[kernels][activation]") {
    const auto x = random_tensor<float>(Shape{3, 9, 7, 5}, 2);
    Tensor<float> y(x.shape());
    cpu::relu_forward(x, y);
    CHECK(testing::max_abs_diff(to_double(y), relu_reference(to_double(x))) == 0);  // max() is exact
}

TEST_CASE("relu works in place and passes NaN through", "[kernels][activation]") {
    auto x = random_tensor<double>(Shape{4, 6}, 3);
    const auto expected = relu_reference(x);
    cpu::relu_forward(x, x);
    CHECK(testing::max_abs_diff(x, expected) == 0);
    const double nan = std::numeric_limits<double>::quiet_NaN();
    const auto with_nan = Tensor<double>::from_vector(Shape{3}, {nan, -1.0, 2.0});
    Tensor<double> y(Shape{3});
    cpu::relu_forward(with_nan, y);
    CHECK(std::isnan(y(0)));
    CHECK(y(1) == 0.0);
    CHECK(y(2) == 2.0);
}

TEST_CASE("relu reads and writes channel slices, leaving neighbours alone", "[kernels][activation]") {
    const auto x_wide = random_tensor<double>(Shape{2, 3, 4, 7}, 4);
    Tensor<double> y_wide(Shape{2, 3, 4, 6}, 5.0);
    const Tensor<double> x = x_wide.channels(1, 4);
    Tensor<double> y = y_wide.channels(2, 5);
    cpu::relu_forward(x, y);
    const auto expected = relu_reference(x.clone());
    for (Index n = 0; n < 2; ++n)
        for (Index h = 0; h < 3; ++h)
            for (Index w = 0; w < 4; ++w)
                for (Index c = 0; c < 6; ++c)
                    CHECK(y_wide(n, h, w, c) == (c >= 2 && c < 5 ? expected(n, h, w, c - 2) : 5.0));
    // Backward into a slice too: dx = dy where y > 0.
    const auto dy = random_tensor<double>(y.shape(), 6);
    Tensor<double> dx_wide(Shape{2, 3, 4, 5}, -3.0);
    Tensor<double> dx = dx_wide.channels(0, 3);
    cpu::relu_backward(y, dy, dx);
    for (Index n = 0; n < 2; ++n)
        for (Index h = 0; h < 3; ++h)
            for (Index w = 0; w < 4; ++w)
                for (Index c = 0; c < 5; ++c)
                    CHECK(dx_wide(n, h, w, c) == (c < 3 ? (y(n, h, w, c) > 0 ? dy(n, h, w, c) : 0.0) : -3.0));
}

TEST_CASE("relu_backward matches finite differences", "[kernels][activation][gradcheck]") {
    auto x = testing::random_tensor_away_from_zero<double>(Shape{2, 3, 4, 5}, 7);
    const auto upstream = random_tensor<double>(x.shape(), 8);
    auto forward = [&] {
        Tensor<double> y(x.shape());
        cpu::relu_forward(x, y);
        return y;
    };
    const Tensor<double> y = forward();
    Tensor<double> dx(x.shape());
    cpu::relu_backward(y, upstream, dx);
    CHECK(testing::relative_error(dx, testing::numerical_gradient(x, forward, upstream)) < 1e-6);
    // In place: dx may be dy.
    Tensor<double> dy = upstream.clone();
    cpu::relu_backward(y, dy, dy);
    CHECK(testing::max_abs_diff(dy, dx) == 0);
}

TEST_CASE("relu on large contiguous tensors matches reference loops in float and double", "[kernels][activation]") {
    // Contiguous tensors run in fixed-length spans across rows: sizes below one
    // span, several spans with a partial last one, odd channel counts.
    for (const Shape& shape : {Shape{3, 5, 7, 3}, Shape{2, 61, 67, 5}, Shape{3, 50, 50, 16}}) {
        const auto x = random_tensor<double>(shape, 20), dy = random_tensor<double>(shape, 21);
        const auto y_reference = relu_reference(x);
        std::vector<double> dx_reference = dy.to_vector();
        for (Index i = 0; i < x.numel(); ++i) dx_reference[i] = x.data()[i] > 0 ? dx_reference[i] : 0.0;
        Tensor<double> y(shape), dx(shape);
        cpu::relu_forward(x, y);
        cpu::relu_backward(y, dy, dx);
        CHECK(testing::max_abs_diff(y, y_reference) == 0);
        CHECK(dx.to_vector() == dx_reference);

        const std::vector<double> xv = x.to_vector(), dyv = dy.to_vector();
        const auto xf = Tensor<float>::from_vector(shape, std::vector<float>(xv.begin(), xv.end()));
        Tensor<float> dyf = Tensor<float>::from_vector(shape, std::vector<float>(dyv.begin(), dyv.end()));
        Tensor<float> yf(shape);
        cpu::relu_forward(xf, yf);
        CHECK(testing::max_abs_diff(to_double(yf), relu_reference(to_double(xf))) == 0);
        cpu::relu_backward(yf, dyf, dyf);  // in place: dx is dy
        CHECK(dyf.to_vector() == std::vector<float>(dx_reference.begin(), dx_reference.end()));
    }
}

TEST_CASE("softmax_forward matches a reference loop", "[kernels][activation]") {
    for (auto [n, k] : {std::pair<Index, Index>{1, 1}, {3, 7}, {33, 10}, {300, 129}}) {
        const auto z = random_tensor<double>(Shape{n, k}, 9, -4.0, 4.0);
        Tensor<double> p(z.shape());
        cpu::softmax_forward(z, p);
        CHECK(testing::max_abs_diff(p, softmax_reference(z)) < 1e-15);
    }
}

TEST_CASE("softmax_forward in float matches the double reference", "[kernels][activation]") {
    const auto z = random_tensor<float>(Shape{17, 11}, 10, -5.0f, 5.0f);
    Tensor<float> p(z.shape());
    cpu::softmax_forward(z, p);
    // Probabilities lie in [0, 1]; float carries about 7 significant digits.
    CHECK(testing::max_abs_diff(to_double(p), softmax_reference(to_double(z))) < 1e-6);
}

TEST_CASE("softmax_forward is stable for large logits and works in place", "[kernels][activation]") {
    auto z = Tensor<float>::from_vector(Shape{2, 3}, {1000.f, -1000.f, 1000.f, -1000.f, 0.f, 20.f});
    cpu::softmax_forward(z, z);
    const std::vector<float> p = z.to_vector();
    CHECK(p[0] == 0.5f);
    CHECK(p[1] == 0.0f);
    CHECK(p[2] == 0.5f);
    // Row 1: exp(-1020) underflows to 0, exp(-20) stays, the last class takes the rest.
    CHECK(p[3] == 0.0f);
    CHECK(p[4] == Approx(std::exp(-20.0)).epsilon(1e-5));
    CHECK(p[5] == Approx(1.0f));
}

TEST_CASE("softmax_backward matches finite differences", "[kernels][activation][gradcheck]") {
    auto z = random_tensor<double>(Shape{4, 6}, 11, -2.0, 2.0);
    const auto upstream = random_tensor<double>(z.shape(), 12);
    auto forward = [&] {
        Tensor<double> p(z.shape());
        cpu::softmax_forward(z, p);
        return p;
    };
    const Tensor<double> p = forward();
    Tensor<double> dz(z.shape());
    cpu::softmax_backward(p, upstream, dz);
    CHECK(testing::relative_error(dz, testing::numerical_gradient(z, forward, upstream)) < 1e-6);
}

TEST_CASE("activations reject mismatched shapes naming them", "[kernels][activation][errors]") {
    const Tensor<float> x(Shape{2, 3});
    Tensor<float> y(Shape{3, 2});
    CHECK_THROWS_WITH(cpu::relu_forward(x, y),
                      Catch::Contains("relu_forward: output has shape (3, 2), expected (2, 3)"));
    Tensor<float> dx(Shape{2, 3});
    CHECK_THROWS_WITH(cpu::relu_backward(x, y, dx),
                      Catch::Contains("relu_backward: output gradient has shape (3, 2), expected (2, 3)"));
    const Tensor<float> z3(Shape{2, 3, 4});
    Tensor<float> p3(Shape{2, 3, 4});
    CHECK_THROWS_WITH(cpu::softmax_forward(z3, p3),
                      Catch::Contains("softmax_forward: logits must have rank 2, got shape (2, 3, 4)"));
    CHECK_THROWS_WITH(cpu::softmax_forward(x, y),
                      Catch::Contains("softmax_forward: probabilities has shape (3, 2), expected (2, 3)"));
    CHECK_THROWS_WITH(cpu::softmax_backward(x, x, y),
                      Catch::Contains("softmax_backward: input gradient has shape (3, 2), expected (2, 3)"));
}

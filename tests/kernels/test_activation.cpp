// activation kernels: relu and softmax against reference loops, gradients by finite differences.

#include <catch2/catch.hpp>

#include <cmath>
#include <limits>

#include <bcnn/kernels/cpu/activation.hpp>
#include <bcnn/kernels/cpu/column_sums.hpp>

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

namespace {

// dx = y > 0 ? dy : 0 and d_bias[c] = sum of dx over the rows, in double.
void relu_bias_reference(const Tensor<double>& y, const Tensor<double>& dy, std::vector<double>& dx,
                         std::vector<double>& d_bias) {
    const Index channels = y.dim(-1), rows = y.numel() / channels;
    const std::vector<double> yv = y.to_vector(), dyv = dy.to_vector();
    dx.assign(yv.size(), 0.0);
    d_bias.assign(static_cast<std::size_t>(channels), 0.0);
    for (Index r = 0; r < rows; ++r)
        for (Index c = 0; c < channels; ++c) {
            const Index i = r * channels + c;
            dx[i] = yv[i] > 0 ? dyv[i] : 0.0;
            d_bias[c] += dx[i];
        }
}

}  // namespace

TEST_CASE("relu_backward_bias_gradient matches reference loops", "[kernels][activation]") {
    // Rank 2 (dense) and 4 (conv); channels below, at and past a vector's
    // width; more rows than one chunk (256) so several threads add partials.
    for (const Shape& shape : {Shape{1, 1}, Shape{7, 3}, Shape{33, 17}, Shape{2, 5, 7, 8}, Shape{3, 21, 19, 11},
                               Shape{2, 30, 30, 16}}) {
        const auto y = relu_reference(random_tensor<double>(shape, 40));
        const auto dy = random_tensor<double>(shape, 41);
        std::vector<double> dx_reference, bias_reference;
        relu_bias_reference(y, dy, dx_reference, bias_reference);
        Tensor<double> dx(shape), d_bias(Shape{shape[shape.rank() - 1]}, 99.0);
        cpu::relu_backward_bias_gradient(y, dy, dx, d_bias);
        CHECK(dx.to_vector() == dx_reference);
        const auto expected = Tensor<double>::from_vector(d_bias.shape(), bias_reference);
        CHECK(testing::max_abs_diff(d_bias, expected) < 1e-10);  // sums of up to 1,800 values in [-1, 1]
    }
}

TEST_CASE("relu_backward_bias_gradient in float is relu_backward then sum_rows, bit for bit",
          "[kernels][activation]") {
    for (const Shape& shape : {Shape{9, 5}, Shape{4, 37, 41, 16}, Shape{2, 23, 29, 13}}) {
        const auto y = relu_reference(to_double(random_tensor<float>(shape, 42)));
        const auto y_float = Tensor<float>::from_vector(shape, [&] {
            const std::vector<double> v = y.to_vector();
            return std::vector<float>(v.begin(), v.end());
        }());
        const auto dy = random_tensor<float>(shape, 43);
        Tensor<float> dx_expected(shape), bias_expected(Shape{shape[shape.rank() - 1]});
        cpu::relu_backward(y_float, dy, dx_expected);
        cpu::detail::sum_rows(dx_expected.as_rows("test"), bias_expected.data());
        Tensor<float> dx(shape), d_bias(Shape{shape[shape.rank() - 1]});
        cpu::relu_backward_bias_gradient(y_float, dy, dx, d_bias);
        CHECK(dx.to_vector() == dx_expected.to_vector());
        CHECK(d_bias.to_vector() == bias_expected.to_vector());
        // In place: dx may be dy.
        Tensor<float> dy_copy = dy.clone();
        cpu::relu_backward_bias_gradient(y_float, dy_copy, dy_copy, d_bias);
        CHECK(dy_copy.to_vector() == dx_expected.to_vector());
        CHECK(d_bias.to_vector() == bias_expected.to_vector());
    }
}

TEST_CASE("relu_backward_bias_gradient gives the bias gradient by finite differences",
          "[kernels][activation][gradcheck]") {
    // y = relu(z + bias) with bias broadcast over the rows.
    // |z| >= 0.1 and |bias| <= 0.05: no pre-activation is near ReLU's kink.
    const auto z = testing::random_tensor_away_from_zero<double>(Shape{3, 4, 5, 6}, 44, 0.1);
    auto bias = random_tensor<double>(Shape{6}, 45, -0.05, 0.05);
    const auto upstream = random_tensor<double>(z.shape(), 46);
    auto forward = [&] {
        Tensor<double> y = z.clone();
        for (Index i = 0; i < y.numel(); ++i) y.data()[i] += bias.data()[i % 6];
        cpu::relu_forward(y, y);
        return y;
    };
    const Tensor<double> y = forward();
    Tensor<double> dx(z.shape()), d_bias(Shape{6});
    cpu::relu_backward_bias_gradient(y, upstream, dx, d_bias);
    CHECK(testing::relative_error(d_bias, testing::numerical_gradient(bias, forward, upstream)) < 1e-6);
}

TEST_CASE("relu_backward_bias_gradient reads and writes channel slices, leaving neighbours alone",
          "[kernels][activation]") {
    const auto y_wide = relu_reference(random_tensor<double>(Shape{2, 9, 11, 12}, 47));
    const auto dy_wide = random_tensor<double>(Shape{2, 9, 11, 10}, 48);
    Tensor<double> dx_wide(Shape{2, 9, 11, 9}, -3.0);
    const Tensor<double> y = y_wide.channels(2, 7), dy = dy_wide.channels(5, 10);
    Tensor<double> dx = dx_wide.channels(1, 6), d_bias(Shape{5});
    cpu::relu_backward_bias_gradient(y, dy, dx, d_bias);
    std::vector<double> dx_reference, bias_reference;
    relu_bias_reference(y.clone(), dy.clone(), dx_reference, bias_reference);
    CHECK(dx.clone().to_vector() == dx_reference);
    CHECK(testing::max_abs_diff(d_bias, Tensor<double>::from_vector(Shape{5}, bias_reference)) < 1e-12);
    for (Index n = 0; n < 2; ++n)
        for (Index h = 0; h < 9; ++h)
            for (Index w = 0; w < 11; ++w)
                for (Index c = 0; c < 9; ++c)
                    if (c < 1 || c >= 6) CHECK(dx_wide(n, h, w, c) == -3.0);
}

TEST_CASE("relu_backward_bias_gradient of an empty batch is a zero bias gradient", "[kernels][activation]") {
    const Tensor<float> y(Shape{0, 4, 4, 3}), dy(Shape{0, 4, 4, 3});
    Tensor<float> dx(Shape{0, 4, 4, 3}), d_bias(Shape{3}, 7.0f);
    cpu::relu_backward_bias_gradient(y, dy, dx, d_bias);
    CHECK(d_bias.to_vector() == std::vector<float>{0.0f, 0.0f, 0.0f});
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
    Tensor<float> bias(Shape{2});
    CHECK_THROWS_WITH(cpu::relu_backward_bias_gradient(x, x, dx, bias),
                      Catch::Contains("relu_backward_bias_gradient: bias gradient has shape (2), expected (3)"));
    CHECK_THROWS_WITH(cpu::relu_backward_bias_gradient(x, y, dx, bias),
                      Catch::Contains("relu_backward_bias_gradient: output gradient has shape (3, 2), expected (2, 3)"));
    const Tensor<float> z3(Shape{2, 3, 4});
    Tensor<float> p3(Shape{2, 3, 4});
    CHECK_THROWS_WITH(cpu::softmax_forward(z3, p3),
                      Catch::Contains("softmax_forward: logits must have rank 2, got shape (2, 3, 4)"));
    CHECK_THROWS_WITH(cpu::softmax_forward(x, y),
                      Catch::Contains("softmax_forward: probabilities has shape (3, 2), expected (2, 3)"));
    CHECK_THROWS_WITH(cpu::softmax_backward(x, x, y),
                      Catch::Contains("softmax_backward: input gradient has shape (3, 2), expected (2, 3)"));
}

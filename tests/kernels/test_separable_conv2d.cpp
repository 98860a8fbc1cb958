// separable_conv2d kernel: forward against a reference loop, gradients by finite differences.

#include <catch2/catch.hpp>

#include <algorithm>
#include <vector>

#include <bcnn/kernels/cpu/separable_conv2d.hpp>

#include "support/gradcheck.hpp"
#include "support/random.hpp"

using namespace bcnn;
using bcnn::testing::random_tensor;

namespace {

struct Case {
    Index n, h, w, c, multiplier, filters, kh, kw, stride_h, stride_w;
    Padding padding;
};

// Keras rule on one axis: (output extent, padding before the first element).
std::pair<Index, Index> keras_axis(Index in, Index kernel, Index stride, Padding padding) {
    if (padding == Padding::valid) return {(in - kernel) / stride + 1, 0};
    const Index out = (in + stride - 1) / stride;
    const Index total = std::max<Index>((out - 1) * stride + kernel - in, 0);
    return {out, total / 2};
}

// y[n, oh, ow, k] = b[k] + sum_{c, m} pw[0, 0, c*M + m, k]
//                          * sum_{i, j} x[n, ih, iw, c] * dw[i, j, c, m]   (zero padding)
Tensor<double> separable_reference(const Tensor<double>& x, const Tensor<double>& dw, const Tensor<double>& pw,
                                   const Tensor<double>* b, const ConvParams& params) {
    const Index kh_size = dw.dim(0), kw_size = dw.dim(1), channels = dw.dim(2), mult = dw.dim(3);
    const Index filters = pw.dim(3);
    const auto [out_h, pad_top] = keras_axis(x.dim(1), kh_size, params.stride_h, params.padding);
    const auto [out_w, pad_left] = keras_axis(x.dim(2), kw_size, params.stride_w, params.padding);
    Tensor<double> y(Shape{x.dim(0), out_h, out_w, filters});
    std::vector<double> depthwise(static_cast<std::size_t>(channels * mult));
    for (Index n = 0; n < x.dim(0); ++n)
        for (Index oh = 0; oh < out_h; ++oh)
            for (Index ow = 0; ow < out_w; ++ow) {
                for (Index c = 0; c < channels; ++c)
                    for (Index m = 0; m < mult; ++m) {
                        double sum = 0;
                        for (Index i = 0; i < kh_size; ++i)
                            for (Index j = 0; j < kw_size; ++j) {
                                const Index ih = oh * params.stride_h - pad_top + i;
                                const Index iw = ow * params.stride_w - pad_left + j;
                                if (ih < 0 || ih >= x.dim(1) || iw < 0 || iw >= x.dim(2)) continue;
                                sum += x(n, ih, iw, c) * dw(i, j, c, m);
                            }
                        depthwise[static_cast<std::size_t>(c * mult + m)] = sum;
                    }
                for (Index k = 0; k < filters; ++k) {
                    double sum = b ? (*b)(k) : 0.0;
                    for (Index j = 0; j < channels * mult; ++j) sum += depthwise[static_cast<std::size_t>(j)] * pw(0, 0, j, k);
                    y(n, oh, ow, k) = sum;
                }
            }
    return y;
}

Tensor<double> to_double(const Tensor<float>& t) {
    Tensor<double> d(t.shape());
    const std::vector<float> values = t.to_vector();
    std::copy(values.begin(), values.end(), d.data());
    return d;
}

Shape depthwise_out_shape(const Shape& y, const Case& k) { return Shape{y[0], y[1], y[2], k.c * k.multiplier}; }

}  // namespace

TEST_CASE("separable_conv2d_forward matches a reference loop", "[kernels][separable_conv2d]") {
    const std::vector<Case> cases = {
        {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, Padding::valid},
        {2, 7, 5, 3, 1, 4, 3, 3, 1, 1, Padding::same},
        {2, 7, 9, 3, 2, 5, 3, 3, 2, 2, Padding::same},
        {1, 8, 7, 4, 2, 3, 3, 3, 2, 2, Padding::valid},
        {1, 3, 3, 2, 1, 6, 5, 5, 2, 2, Padding::same},  // kernel larger than the input
        {3, 6, 5, 5, 3, 2, 2, 3, 1, 2, Padding::same},
        {1, 8, 8, 2, 1, 3, 3, 3, 2, 2, Padding::same},  // odd padding: the extra row/col at the bottom/right
        // Multiplier 1 (the depthwise part's register-blocked kernels): channels
        // around the vector width, rows wider than a pixel block, stride 2.
        {2, 6, 13, 9, 1, 5, 3, 3, 1, 1, Padding::same},
        {1, 7, 11, 17, 1, 4, 3, 3, 2, 2, Padding::same},
        {1, 5, 10, 33, 1, 3, 3, 3, 1, 1, Padding::valid},
    };
    std::uint64_t seed = 1;
    for (const Case& k : cases) {
        const ConvParams params{k.stride_h, k.stride_w, k.padding};
        const auto x = random_tensor<double>(Shape{k.n, k.h, k.w, k.c}, seed++);
        const auto dw = random_tensor<double>(Shape{k.kh, k.kw, k.c, k.multiplier}, seed++);
        const auto pw = random_tensor<double>(Shape{1, 1, k.c * k.multiplier, k.filters}, seed++);
        const auto b = random_tensor<double>(Shape{k.filters}, seed++);
        const Shape out_shape = cpu::separable_conv2d_output_shape(x.shape(), dw.shape(), pw.shape(), params);
        const auto reference = separable_reference(x, dw, pw, &b, params);
        REQUIRE(out_shape == reference.shape());
        Tensor<double> depthwise_out(depthwise_out_shape(out_shape, k)), y(out_shape, 99.0);
        cpu::separable_conv2d_forward(x, dw, pw, &b, params, depthwise_out, y);
        CHECK(testing::max_abs_diff(y, reference) < 1e-12);
        cpu::separable_conv2d_forward(x, dw, pw, nullptr, params, depthwise_out, y);
        CHECK(testing::max_abs_diff(y, separable_reference(x, dw, pw, nullptr, params)) < 1e-12);
    }
}

TEST_CASE("separable_conv2d_forward in float matches the double reference", "[kernels][separable_conv2d]") {
    const ConvParams params{2, 2, Padding::same};
    const auto x = random_tensor<float>(Shape{2, 9, 11, 8}, 20), dw = random_tensor<float>(Shape{3, 3, 8, 2}, 21);
    const auto pw = random_tensor<float>(Shape{1, 1, 16, 12}, 22), b = random_tensor<float>(Shape{12}, 23);
    const Shape out_shape = cpu::separable_conv2d_output_shape(x.shape(), dw.shape(), pw.shape(), params);
    Tensor<float> depthwise_out(Shape{2, out_shape[1], out_shape[2], 16}), y(out_shape);
    cpu::separable_conv2d_forward(x, dw, pw, &b, params, depthwise_out, y);
    const Tensor<double> bd = to_double(b);
    const auto reference = separable_reference(to_double(x), to_double(dw), to_double(pw), &bd, params);
    // 9 then 16 products of magnitude <= 1 (intermediate sums <= 9) in float: error below 1e-4.
    CHECK(testing::max_abs_diff(to_double(y), reference) < 1e-4);
}

TEST_CASE("separable_conv2d_backward matches finite differences", "[kernels][separable_conv2d][gradcheck]") {
    const std::vector<Case> cases = {
        {2, 5, 6, 3, 2, 4, 3, 3, 2, 2, Padding::same},
        {1, 6, 5, 2, 1, 3, 3, 2, 1, 1, Padding::valid},
        {1, 4, 7, 9, 1, 2, 3, 3, 1, 1, Padding::same},  // multiplier 1: the blocked depthwise kernels
    };
    std::uint64_t seed = 100;
    for (const Case& k : cases) {
        const ConvParams params{k.stride_h, k.stride_w, k.padding};
        auto x = random_tensor<double>(Shape{k.n, k.h, k.w, k.c}, seed++);
        auto dw = random_tensor<double>(Shape{k.kh, k.kw, k.c, k.multiplier}, seed++);
        auto pw = random_tensor<double>(Shape{1, 1, k.c * k.multiplier, k.filters}, seed++);
        auto b = random_tensor<double>(Shape{k.filters}, seed++);
        const Shape out_shape = cpu::separable_conv2d_output_shape(x.shape(), dw.shape(), pw.shape(), params);
        const auto upstream = random_tensor<double>(out_shape, seed++);
        Tensor<double> depthwise_out(depthwise_out_shape(out_shape, k));
        auto forward = [&] {
            Tensor<double> y(out_shape);
            cpu::separable_conv2d_forward(x, dw, pw, &b, params, depthwise_out, y);
            return y;
        };
        forward();
        Tensor<double> d_depthwise_out(depthwise_out.shape());
        Tensor<double> dx(x.shape(), 5.0), ddw(dw.shape(), 5.0), dpw(pw.shape(), 5.0), db(b.shape(), 5.0);
        cpu::separable_conv2d_backward(x, dw, pw, depthwise_out, upstream, params, d_depthwise_out, &dx, &ddw, &dpw,
                                       &db);
        CHECK(testing::relative_error(dx, testing::numerical_gradient(x, forward, upstream)) < 1e-6);
        CHECK(testing::relative_error(ddw, testing::numerical_gradient(dw, forward, upstream)) < 1e-6);
        CHECK(testing::relative_error(dpw, testing::numerical_gradient(pw, forward, upstream)) < 1e-6);
        CHECK(testing::relative_error(db, testing::numerical_gradient(b, forward, upstream)) < 1e-6);
    }
}

TEST_CASE("separable_conv2d_backward skips gradients passed as nullptr", "[kernels][separable_conv2d]") {
    const ConvParams params{2, 2, Padding::same};
    const auto x = random_tensor<double>(Shape{2, 7, 6, 3}, 200), dw = random_tensor<double>(Shape{3, 3, 3, 2}, 201);
    const auto pw = random_tensor<double>(Shape{1, 1, 6, 4}, 202);
    const Shape out_shape = cpu::separable_conv2d_output_shape(x.shape(), dw.shape(), pw.shape(), params);
    Tensor<double> depthwise_out(Shape{2, out_shape[1], out_shape[2], 6}), y(out_shape);
    cpu::separable_conv2d_forward(x, dw, pw, nullptr, params, depthwise_out, y);
    const auto dy = random_tensor<double>(out_shape, 203);
    Tensor<double> scratch(depthwise_out.shape());
    Tensor<double> dx(x.shape()), ddw(dw.shape()), dpw(pw.shape()), db(Shape{4});
    cpu::separable_conv2d_backward(x, dw, pw, depthwise_out, dy, params, scratch, &dx, &ddw, &dpw, &db);

    // Frozen depthwise part and first layer: the depthwise backward never runs, the scratch stays untouched.
    Tensor<double> untouched(depthwise_out.shape(), -7.0), dpw_only(pw.shape()), db_only(Shape{4});
    cpu::separable_conv2d_backward(x, dw, pw, depthwise_out, dy, params, untouched, nullptr, nullptr, &dpw_only,
                                   &db_only);
    CHECK(testing::max_abs_diff(dpw_only, dpw) == 0);
    CHECK(testing::max_abs_diff(db_only, db) == 0);
    CHECK(untouched.to_vector() == std::vector<double>(static_cast<std::size_t>(untouched.numel()), -7.0));

    Tensor<double> dx_only(x.shape()), ddw_only(dw.shape());
    cpu::separable_conv2d_backward(x, dw, pw, depthwise_out, dy, params, scratch, &dx_only, nullptr, nullptr, nullptr);
    CHECK(testing::max_abs_diff(dx_only, dx) == 0);
    cpu::separable_conv2d_backward(x, dw, pw, depthwise_out, dy, params, scratch, nullptr, &ddw_only, nullptr, nullptr);
    CHECK(testing::max_abs_diff(ddw_only, ddw) == 0);
}

TEST_CASE("separable_conv2d reads and writes channel slices of wider buffers", "[kernels][separable_conv2d]") {
    const ConvParams params{1, 1, Padding::same};
    const Index n = 2, h = 5, w = 6, c = 3, mult = 2, filters = 4;
    const auto wide_x = random_tensor<double>(Shape{n, h, w, 7}, 300);
    const Tensor<double> x = wide_x.channels(1, 1 + c), x_copy = x.clone();
    const auto dw = random_tensor<double>(Shape{3, 3, c, mult}, 301);
    const auto pw = random_tensor<double>(Shape{1, 1, c * mult, filters}, 302);
    const auto b = random_tensor<double>(Shape{filters}, 303);
    Tensor<double> depthwise_out(Shape{n, h, w, c * mult});

    Tensor<double> wide_y(Shape{n, h, w, 9}, -7.0);
    Tensor<double> y = wide_y.channels(2, 2 + filters);
    cpu::separable_conv2d_forward(x, dw, pw, &b, params, depthwise_out, y);
    CHECK(testing::max_abs_diff(y.clone(), separable_reference(x_copy, dw, pw, &b, params)) < 1e-12);

    const auto wide_dy = random_tensor<double>(Shape{n, h, w, 6}, 304);
    const Tensor<double> dy = wide_dy.channels(2, 2 + filters);
    Tensor<double> wide_dx(Shape{n, h, w, 5}, -7.0);
    Tensor<double> dx = wide_dx.channels(2, 2 + c);
    Tensor<double> scratch(depthwise_out.shape()), dx_ref(x.shape());
    cpu::separable_conv2d_backward(x, dw, pw, depthwise_out, dy, params, scratch, &dx, nullptr, nullptr, nullptr);
    cpu::separable_conv2d_backward(x_copy, dw, pw, depthwise_out, dy.clone(), params, scratch, &dx_ref, nullptr,
                                   nullptr, nullptr);
    CHECK(testing::max_abs_diff(dx.clone(), dx_ref) < 1e-12);
    for (Index i = 0; i < n * h * w; ++i) {
        for (Index ch : {0, 1, 6, 7, 8}) CHECK(wide_y.data()[i * 9 + ch] == -7.0);
        for (Index ch : {0, 1}) CHECK(wide_dx.data()[i * 5 + ch] == -7.0);
    }
}

TEST_CASE("separable_conv2d rejects bad inputs naming the shapes", "[kernels][separable_conv2d][errors]") {
    const ConvParams params{1, 1, Padding::valid};
    const Tensor<float> x(Shape{2, 5, 5, 3}), dw(Shape{3, 3, 3, 2}), pw(Shape{1, 1, 6, 4});
    Tensor<float> depthwise_out(Shape{2, 3, 3, 6}), y(Shape{2, 3, 3, 4});
    const Tensor<float> pw_3x3(Shape{3, 3, 6, 4});
    CHECK_THROWS_WITH(cpu::separable_conv2d_forward(x, dw, pw_3x3, nullptr, params, depthwise_out, y),
                      Catch::Contains("pointwise weights have shape (3, 3, 6, 4), expected (1, 1, 6, filters)"));
    const Tensor<float> pw_channels(Shape{1, 1, 3, 4});
    CHECK_THROWS_WITH(cpu::separable_conv2d_forward(x, dw, pw_channels, nullptr, params, depthwise_out, y),
                      Catch::Contains("pointwise weights have shape (1, 1, 3, 4), expected (1, 1, 6, filters) after "
                                      "depthwise weights (3, 3, 3, 2)"));
    const Tensor<float> dw_channels(Shape{3, 3, 4, 2});
    CHECK_THROWS_WITH(cpu::separable_conv2d_forward(x, dw_channels, pw, nullptr, params, depthwise_out, y),
                      Catch::Contains("input (2, 5, 5, 3) does not match depthwise weights (3, 3, 4, 2)"));
    Tensor<float> depthwise_bad(Shape{2, 3, 3, 3});
    CHECK_THROWS_WITH(cpu::separable_conv2d_forward(x, dw, pw, nullptr, params, depthwise_bad, y),
                      Catch::Contains("depthwise output has shape (2, 3, 3, 3), expected (2, 3, 3, 6)"));
    Tensor<float> y_bad(Shape{2, 3, 3, 5});
    CHECK_THROWS_WITH(cpu::separable_conv2d_forward(x, dw, pw, nullptr, params, depthwise_out, y_bad),
                      Catch::Contains("separable_conv2d_forward: output has shape (2, 3, 3, 5), expected (2, 3, 3, 4)"));
    const Tensor<float> bias_bad(Shape{6});
    CHECK_THROWS_WITH(cpu::separable_conv2d_forward(x, dw, pw, &bias_bad, params, depthwise_out, y),
                      Catch::Contains("bias has shape (6), expected (4)"));
    const Tensor<float> dy(Shape{2, 3, 3, 4});
    Tensor<float> scratch_bad(Shape{2, 3, 3, 4}), dx(x.shape());
    CHECK_THROWS_WITH(
        cpu::separable_conv2d_backward(x, dw, pw, depthwise_out, dy, params, scratch_bad, &dx, nullptr, nullptr, nullptr),
        Catch::Contains("depthwise output gradient has shape (2, 3, 3, 4), expected (2, 3, 3, 6)"));
    const Tensor<float> dy_bad(Shape{2, 3, 3, 6});
    CHECK_THROWS_WITH(cpu::separable_conv2d_backward(x, dw, pw, depthwise_out, dy_bad, params, depthwise_out, &dx,
                                                     nullptr, nullptr, nullptr),
                      Catch::Contains("output gradient has shape (2, 3, 3, 6), expected (2, 3, 3, 4)"));
}

// separable_conv2d kernel: forward against a reference loop, gradients by finite differences.

#include <catch2/catch.hpp>

#include <algorithm>
#include <vector>

#include <bcnn/kernels/cpu/activation.hpp>
#include <bcnn/kernels/cpu/separable_conv2d.hpp>

#include "support/conv_support.hpp"
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

namespace {

// Gradients of one separable convolution, each filled with 5 before a call.
struct SeparableGradients {
    Tensor<double> dx, d_depthwise, d_pointwise, d_bias;
    SeparableGradients(const Shape& x, const Shape& depthwise, const Shape& pointwise, Index filters)
        : dx(x, 5.0), d_depthwise(depthwise, 5.0), d_pointwise(pointwise, 5.0), d_bias(Shape{filters}, 5.0) {}
};

void check_same_gradients(const SeparableGradients& got, const SeparableGradients& want, double tolerance) {
    CHECK(testing::max_abs_diff(got.dx, want.dx) < tolerance);
    CHECK(testing::max_abs_diff(got.d_depthwise, want.d_depthwise) < tolerance);
    CHECK(testing::max_abs_diff(got.d_pointwise, want.d_pointwise) < tolerance);
    CHECK(testing::max_abs_diff(got.d_bias, want.d_bias) < tolerance);
}

}  // namespace

TEST_CASE("the banded separable backward matches the whole-tensor steps, through a ReLU or not",
          "[kernels][separable_conv2d]") {
    struct BandCase {
        Index n, h, w, c, filters, kh, kw;
    };
    const std::vector<BandCase> cases = {
        {2, 7, 5, 3, 4, 3, 3},   {1, 9, 6, 9, 5, 3, 3},  {2, 6, 13, 17, 8, 3, 3},
        {1, 5, 4, 2, 3, 2, 2},   // even kernel: 0 rows of padding above, 1 below
        {1, 8, 7, 8, 16, 5, 5},  {3, 1, 5, 4, 3, 3, 3},  // one row per image
        {1, 3, 3, 2, 6, 5, 5},   // kernel larger than the image
        {2, 6, 9, 33, 7, 1, 3},  // 1x3: no rows of halo; a partial channel vector
        {1, 7, 4, 12, 9, 4, 2},
    };
    std::uint64_t seed = 400;
    for (const BandCase& k : cases)
        for (const bool relu : {false, true}) {
            CAPTURE(k.n, k.h, k.w, k.c, k.filters, k.kh, k.kw, relu);
            const ConvParams params{1, 1, Padding::same};
            const Shape x_shape{k.n, k.h, k.w, k.c}, dw_shape{k.kh, k.kw, k.c, 1}, pw_shape{1, 1, k.c, k.filters};
            const Shape y_shape{k.n, k.h, k.w, k.filters};
            const auto x = random_tensor<double>(x_shape, seed++), dw = random_tensor<double>(dw_shape, seed++);
            const auto pw = random_tensor<double>(pw_shape, seed++);
            const auto b = random_tensor<double>(Shape{k.filters}, seed++);
            const auto dy = random_tensor<double>(y_shape, seed++);
            Tensor<double> depthwise_out(Shape{k.n, k.h, k.w, k.c}), y(y_shape);
            cpu::separable_conv2d_forward(x, dw, pw, &b, params, depthwise_out, y,
                                          relu ? cpu::ActivationFn::relu : cpu::ActivationFn::linear);
            REQUIRE(cpu::separable_conv2d_relu_backward_applies(x_shape, dw_shape, params));

            // The steps one after the other over whole tensors.
            SeparableGradients want(x_shape, dw_shape, pw_shape, k.filters);
            Tensor<double> pre(y_shape), d_depthwise_out(depthwise_out.shape());
            if (relu)
                cpu::relu_backward(y, dy, pre);
            else
                pre = dy.clone();
            cpu::conv2d_backward(depthwise_out, pw, pre, cpu::detail::kPointwiseParams, &d_depthwise_out,
                                 &want.d_pointwise, &want.d_bias);
            cpu::depthwise_conv2d_backward(x, dw, d_depthwise_out, params, &want.dx, &want.d_depthwise, nullptr);

            const cpu::detail::DepthwiseDims d = cpu::detail::depthwise_dims(x_shape, dw_shape, params, "test");
            for (const Index band_rows : {Index(1), Index(2), Index(3), k.h}) {
                CAPTURE(band_rows);
                SeparableGradients got(x_shape, dw_shape, pw_shape, k.filters);
                const RowMatrix<double> mask = y.as_rows("y"), dx = got.dx.as_rows("dx");
                const cpu::detail::SeparableBandsArgs<double> args{
                    x.as_rows("x"), depthwise_out.as_rows("z"), dy.as_rows("dy"), relu ? &mask : nullptr,
                    dw.data(), pw.data(), &dx, got.d_depthwise.data(), got.d_pointwise.data(), got.d_bias.data()};
                cpu::detail::separable_bands_backward(d, k.filters, band_rows, args);
                check_same_gradients(got, want, 1e-12);
            }
            // The public entry points, bands of separable_band_rows.
            SeparableGradients got(x_shape, dw_shape, pw_shape, k.filters);
            Tensor<double> scratch(depthwise_out.shape(), -7.0);
            if (relu)
                cpu::separable_conv2d_relu_backward(x, dw, pw, depthwise_out, y, dy, params, &got.dx, &got.d_depthwise,
                                                    &got.d_pointwise, &got.d_bias);
            else
                cpu::separable_conv2d_backward(x, dw, pw, depthwise_out, dy, params, scratch, &got.dx, &got.d_depthwise,
                                               &got.d_pointwise, &got.d_bias);
            check_same_gradients(got, want, 1e-12);
        }
}

TEST_CASE("the banded separable backward computes only the gradients asked for", "[kernels][separable_conv2d]") {
    const ConvParams params{1, 1, Padding::same};
    const auto x = random_tensor<double>(Shape{2, 6, 5, 4}, 500), dw = random_tensor<double>(Shape{3, 3, 4, 1}, 501);
    const auto pw = random_tensor<double>(Shape{1, 1, 4, 3}, 502), b = random_tensor<double>(Shape{3}, 503);
    Tensor<double> depthwise_out(Shape{2, 6, 5, 4}), y(Shape{2, 6, 5, 3});
    cpu::separable_conv2d_forward(x, dw, pw, &b, params, depthwise_out, y, cpu::ActivationFn::relu);
    const auto dy = random_tensor<double>(y.shape(), 504);
    SeparableGradients all(x.shape(), dw.shape(), pw.shape(), 3);
    cpu::separable_conv2d_relu_backward(x, dw, pw, depthwise_out, y, dy, params, &all.dx, &all.d_depthwise,
                                        &all.d_pointwise, &all.d_bias);
    SeparableGradients some(x.shape(), dw.shape(), pw.shape(), 3);
    cpu::separable_conv2d_relu_backward(x, dw, pw, depthwise_out, y, dy, params, nullptr, nullptr, &some.d_pointwise,
                                        &some.d_bias);
    CHECK(testing::max_abs_diff(some.d_pointwise, all.d_pointwise) == 0);
    CHECK(testing::max_abs_diff(some.d_bias, all.d_bias) == 0);
    CHECK(some.dx.to_vector() == std::vector<double>(static_cast<std::size_t>(some.dx.numel()), 5.0));
    CHECK(some.d_depthwise.to_vector() == std::vector<double>(static_cast<std::size_t>(some.d_depthwise.numel()), 5.0));
    cpu::separable_conv2d_relu_backward(x, dw, pw, depthwise_out, y, dy, params, &some.dx, nullptr, nullptr, nullptr);
    cpu::separable_conv2d_relu_backward(x, dw, pw, depthwise_out, y, dy, params, nullptr, &some.d_depthwise, nullptr,
                                        nullptr);
    CHECK(testing::max_abs_diff(some.dx, all.dx) == 0);
    CHECK(testing::max_abs_diff(some.d_depthwise, all.d_depthwise) == 0);
}

TEST_CASE("the banded separable backward in float matches the double steps", "[kernels][separable_conv2d]") {
    const ConvParams params{1, 1, Padding::same};
    const Shape x_shape{2, 9, 10, 20}, dw_shape{3, 3, 20, 1}, pw_shape{1, 1, 20, 16}, y_shape{2, 9, 10, 16};
    const auto x = random_tensor<float>(x_shape, 700), dw = random_tensor<float>(dw_shape, 701);
    const auto pw = random_tensor<float>(pw_shape, 702), b = random_tensor<float>(Shape{16}, 703);
    const auto dy = random_tensor<float>(y_shape, 704);
    Tensor<float> depthwise_out(x_shape), y(y_shape);
    cpu::separable_conv2d_forward(x, dw, pw, &b, params, depthwise_out, y, cpu::ActivationFn::relu);
    Tensor<float> dx(x_shape), d_depthwise(dw_shape), d_pointwise(pw_shape), d_bias(Shape{16});
    cpu::separable_conv2d_relu_backward(x, dw, pw, depthwise_out, y, dy, params, &dx, &d_depthwise, &d_pointwise,
                                        &d_bias);

    // The double steps on the same float values (and the float forward's mask).
    const Tensor<double> xd = to_double(x), dwd = to_double(dw), pwd = to_double(pw), zd = to_double(depthwise_out);
    Tensor<double> pre = to_double(dy);
    const std::vector<float> mask = y.to_vector();
    for (Index i = 0; i < pre.numel(); ++i)
        if (!(mask[static_cast<std::size_t>(i)] > 0)) pre.data()[i] = 0;
    SeparableGradients want(x_shape, dw_shape, pw_shape, 16);
    Tensor<double> d_depthwise_out(x_shape);
    cpu::conv2d_backward(zd, pwd, pre, cpu::detail::kPointwiseParams, &d_depthwise_out, &want.d_pointwise,
                         &want.d_bias);
    cpu::depthwise_conv2d_backward(xd, dwd, d_depthwise_out, params, &want.dx, &want.d_depthwise, nullptr);
    // Float sums of at most 180 (weights gradients) or 144 (dx) products: within 1e-5 of each result's scale.
    const auto check_close = [](const Tensor<float>& got, const Tensor<double>& expected) {
        CHECK(testing::max_abs_diff(to_double(got), expected) < 1e-5 * testing::max_abs(expected));
    };
    check_close(dx, want.dx);
    check_close(d_depthwise, want.d_depthwise);
    check_close(d_pointwise, want.d_pointwise);
    check_close(d_bias, want.d_bias);
}

TEST_CASE("the banded separable backward reads and writes channel slices", "[kernels][separable_conv2d]") {
    const ConvParams params{1, 1, Padding::same};
    const Index n = 2, h = 7, w = 6, c = 5, filters = 4;
    const auto wide_x = random_tensor<double>(Shape{n, h, w, c + 3}, 800);
    const Tensor<double> x = wide_x.channels(2, 2 + c);
    const auto dw = random_tensor<double>(Shape{3, 3, c, 1}, 801);
    const auto pw = random_tensor<double>(Shape{1, 1, c, filters}, 802);
    const auto b = random_tensor<double>(Shape{filters}, 803);
    Tensor<double> depthwise_out(Shape{n, h, w, c});
    Tensor<double> wide_y(Shape{n, h, w, filters + 2});
    Tensor<double> y = wide_y.channels(1, 1 + filters);
    cpu::separable_conv2d_forward(x, dw, pw, &b, params, depthwise_out, y, cpu::ActivationFn::relu);
    const auto wide_dy = random_tensor<double>(Shape{n, h, w, filters + 3}, 804);
    const Tensor<double> dy = wide_dy.channels(3, 3 + filters);
    Tensor<double> wide_dx(Shape{n, h, w, c + 4}, -7.0);
    Tensor<double> dx = wide_dx.channels(1, 1 + c);

    SeparableGradients sliced(x.shape(), dw.shape(), pw.shape(), filters);
    SeparableGradients whole(x.shape(), dw.shape(), pw.shape(), filters);
    cpu::separable_conv2d_relu_backward(x, dw, pw, depthwise_out, y, dy, params, &dx, &sliced.d_depthwise,
                                        &sliced.d_pointwise, &sliced.d_bias);
    sliced.dx = dx.clone();
    cpu::separable_conv2d_relu_backward(x.clone(), dw, pw, depthwise_out, y.clone(), dy.clone(), params, &whole.dx,
                                        &whole.d_depthwise, &whole.d_pointwise, &whole.d_bias);
    check_same_gradients(sliced, whole, 1e-12);
    for (Index i = 0; i < n * h * w; ++i)
        for (Index ch : {0, 6, 7, 8}) CHECK(wide_dx.data()[i * (c + 4) + ch] == -7.0);
}

TEST_CASE("separable_conv2d_relu_backward matches finite differences", "[kernels][separable_conv2d][gradcheck]") {
    const ConvParams params{1, 1, Padding::same};
    auto x = random_tensor<double>(Shape{2, 5, 6, 9}, 600), dw = random_tensor<double>(Shape{3, 3, 9, 1}, 601);
    auto pw = random_tensor<double>(Shape{1, 1, 9, 4}, 602), b = random_tensor<double>(Shape{4}, 603);
    const Shape out_shape{2, 5, 6, 4};
    const auto upstream = random_tensor<double>(out_shape, 604);
    Tensor<double> depthwise_out(x.shape());
    auto forward = [&] {
        Tensor<double> y(out_shape);
        cpu::separable_conv2d_forward(x, dw, pw, &b, params, depthwise_out, y, cpu::ActivationFn::relu);
        return y;
    };
    const Tensor<double> y = forward();
    SeparableGradients got(x.shape(), dw.shape(), pw.shape(), 4);
    cpu::separable_conv2d_relu_backward(x, dw, pw, depthwise_out, y, upstream, params, &got.dx, &got.d_depthwise,
                                        &got.d_pointwise, &got.d_bias);
    CHECK(testing::relative_error(got.dx, testing::numerical_gradient(x, forward, upstream)) < 1e-6);
    CHECK(testing::relative_error(got.d_depthwise, testing::numerical_gradient(dw, forward, upstream)) < 1e-6);
    CHECK(testing::relative_error(got.d_pointwise, testing::numerical_gradient(pw, forward, upstream)) < 1e-6);
    CHECK(testing::relative_error(got.d_bias, testing::numerical_gradient(b, forward, upstream)) < 1e-6);
}

TEST_CASE("separable_conv2d_relu_backward names the cases it does not take", "[kernels][separable_conv2d][errors]") {
    const Tensor<float> x(Shape{1, 6, 6, 3}), dw(Shape{3, 3, 3, 1}), pw(Shape{1, 1, 3, 2});
    CHECK_FALSE(cpu::separable_conv2d_relu_backward_applies(x.shape(), dw.shape(), ConvParams{2, 2, Padding::same}));
    CHECK_FALSE(cpu::separable_conv2d_relu_backward_applies(x.shape(), dw.shape(), ConvParams{1, 1, Padding::valid}));
    CHECK_FALSE(
        cpu::separable_conv2d_relu_backward_applies(x.shape(), Shape{3, 3, 3, 2}, ConvParams{1, 1, Padding::same}));
    CHECK_FALSE(cpu::separable_conv2d_relu_backward_applies(Shape{1, 6, 6, 256}, Shape{3, 3, 256, 1},
                                                            ConvParams{1, 1, Padding::same}));
    const ConvParams strided{2, 2, Padding::same};
    Tensor<float> depthwise_out(Shape{1, 3, 3, 3}), y(Shape{1, 3, 3, 2}), dy(Shape{1, 3, 3, 2}), dx(x.shape());
    CHECK_THROWS_WITH(cpu::separable_conv2d_relu_backward(x, dw, pw, depthwise_out, y, dy, strided, &dx, nullptr,
                                                          nullptr, nullptr),
                      Catch::Contains("separable_conv2d_relu_backward: takes stride 1, 'same' padding") &&
                          Catch::Contains("strides (2, 2)"));
    const ConvParams same{1, 1, Padding::same};
    Tensor<float> z(Shape{1, 6, 6, 3}), y_bad(Shape{1, 6, 6, 3}), dy_ok(Shape{1, 6, 6, 2});
    CHECK_THROWS_WITH(cpu::separable_conv2d_relu_backward(x, dw, pw, z, y_bad, dy_ok, same, &dx, nullptr, nullptr,
                                                          nullptr),
                      Catch::Contains("output has shape (1, 6, 6, 3), expected (1, 6, 6, 2)"));
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

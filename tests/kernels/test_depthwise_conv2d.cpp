// depthwise_conv2d kernel: forward against a reference loop, gradients by finite differences.

#include <catch2/catch.hpp>

#include <algorithm>
#include <tuple>
#include <vector>

#include <bcnn/kernels/cpu/depthwise_conv2d.hpp>

#include "support/gradcheck.hpp"
#include "support/random.hpp"

using namespace bcnn;
using bcnn::testing::random_tensor;

namespace {

struct Case {
    Index n, h, w, c, multiplier, kh, kw, stride_h, stride_w;
    Padding padding;
};

// Keras rule on one axis: (output extent, padding before the first element).
std::pair<Index, Index> keras_axis(Index in, Index kernel, Index stride, Padding padding) {
    if (padding == Padding::valid) return {(in - kernel) / stride + 1, 0};
    const Index out = (in + stride - 1) / stride;
    const Index total = std::max<Index>((out - 1) * stride + kernel - in, 0);
    return {out, total / 2};
}

// y[n, oh, ow, c*M + m] = b[c*M + m] + sum x[n, ih, iw, c] * w[kh, kw, c, m]; zero padding.
Tensor<double> depthwise_reference(const Tensor<double>& x, const Tensor<double>& w, const Tensor<double>* b,
                                   const ConvParams& params) {
    const Index kh_size = w.dim(0), kw_size = w.dim(1), channels = w.dim(2), mult = w.dim(3);
    const auto [out_h, pad_top] = keras_axis(x.dim(1), kh_size, params.stride_h, params.padding);
    const auto [out_w, pad_left] = keras_axis(x.dim(2), kw_size, params.stride_w, params.padding);
    Tensor<double> y(Shape{x.dim(0), out_h, out_w, channels * mult});
    for (Index n = 0; n < x.dim(0); ++n)
        for (Index oh = 0; oh < out_h; ++oh)
            for (Index ow = 0; ow < out_w; ++ow)
                for (Index c = 0; c < channels; ++c)
                    for (Index m = 0; m < mult; ++m) {
                        double sum = b ? (*b)(c * mult + m) : 0.0;
                        for (Index i = 0; i < kh_size; ++i)
                            for (Index j = 0; j < kw_size; ++j) {
                                const Index ih = oh * params.stride_h - pad_top + i;
                                const Index iw = ow * params.stride_w - pad_left + j;
                                if (ih < 0 || ih >= x.dim(1) || iw < 0 || iw >= x.dim(2)) continue;
                                sum += x(n, ih, iw, c) * w(i, j, c, m);
                            }
                        y(n, oh, ow, c * mult + m) = sum;
                    }
    return y;
}

// Gradients of depthwise_reference for upstream dy, by the chain rule on the same loops.
struct DepthwiseGradients {
    Tensor<double> dx, dw, db;
};

DepthwiseGradients depthwise_reference_backward(const Tensor<double>& x, const Tensor<double>& w,
                                                const Tensor<double>& dy, const ConvParams& params) {
    const Index kh_size = w.dim(0), kw_size = w.dim(1), channels = w.dim(2), mult = w.dim(3);
    const Index pad_top = keras_axis(x.dim(1), kh_size, params.stride_h, params.padding).second;
    const Index pad_left = keras_axis(x.dim(2), kw_size, params.stride_w, params.padding).second;
    DepthwiseGradients g{Tensor<double>(x.shape(), 0.0), Tensor<double>(w.shape(), 0.0),
                         Tensor<double>(Shape{channels * mult}, 0.0)};
    for (Index n = 0; n < dy.dim(0); ++n)
        for (Index oh = 0; oh < dy.dim(1); ++oh)
            for (Index ow = 0; ow < dy.dim(2); ++ow)
                for (Index c = 0; c < channels; ++c)
                    for (Index m = 0; m < mult; ++m) {
                        const double up = dy(n, oh, ow, c * mult + m);
                        g.db(c * mult + m) += up;
                        for (Index i = 0; i < kh_size; ++i)
                            for (Index j = 0; j < kw_size; ++j) {
                                const Index ih = oh * params.stride_h - pad_top + i;
                                const Index iw = ow * params.stride_w - pad_left + j;
                                if (ih < 0 || ih >= x.dim(1) || iw < 0 || iw >= x.dim(2)) continue;
                                g.dx(n, ih, iw, c) += up * w(i, j, c, m);
                                g.dw(i, j, c, m) += up * x(n, ih, iw, c);
                            }
                    }
    return g;
}

Tensor<double> to_double(const Tensor<float>& t) {
    Tensor<double> d(t.shape());
    const std::vector<float> values = t.to_vector();
    std::copy(values.begin(), values.end(), d.data());
    return d;
}

const std::vector<Case> kCases = {
    {1, 1, 1, 1, 1, 1, 1, 1, 1, Padding::valid},  // 1x1 everything
    {2, 7, 5, 3, 1, 3, 3, 1, 1, Padding::same},
    {2, 7, 5, 3, 2, 3, 3, 2, 2, Padding::same},   // odd input, stride 2: more padding bottom/right
    {1, 9, 8, 4, 2, 3, 3, 2, 2, Padding::valid},
    {3, 6, 6, 5, 1, 5, 5, 1, 1, Padding::same},
    {1, 4, 7, 2, 3, 1, 2, 1, 2, Padding::valid},  // non-square kernel and strides
    {1, 3, 3, 2, 1, 5, 5, 2, 2, Padding::same},   // kernel larger than the input
    {2, 5, 6, 8, 1, 2, 2, 3, 3, Padding::same},   // stride larger than the kernel
    {1, 6, 5, 3, 2, 4, 2, 2, 1, Padding::same},   // even kernel
    {2, 8, 6, 3, 2, 3, 3, 2, 2, Padding::same},   // even input, stride 2: odd padding, the extra row/col at the end
};

// dx, d_weights and d_bias of case k against finite differences in double;
// the inputs are drawn from seed, seed + 1, ... (seed is advanced past them).
void check_gradients_by_finite_differences(const Case& k, std::uint64_t& seed) {
    CAPTURE(k.n, k.h, k.w, k.c, k.multiplier, k.kh, k.kw, k.stride_h, k.stride_w);
    const ConvParams params{k.stride_h, k.stride_w, k.padding};
    auto x = random_tensor<double>(Shape{k.n, k.h, k.w, k.c}, seed++);
    auto w = random_tensor<double>(Shape{k.kh, k.kw, k.c, k.multiplier}, seed++);
    auto b = random_tensor<double>(Shape{k.c * k.multiplier}, seed++);
    const Shape out_shape = cpu::depthwise_conv2d_output_shape(x.shape(), w.shape(), params);
    const auto upstream = random_tensor<double>(out_shape, seed++);
    auto forward = [&] {
        Tensor<double> y(out_shape);
        cpu::depthwise_conv2d_forward(x, w, &b, params, y);
        return y;
    };
    Tensor<double> dx(x.shape(), 5.0), dw(w.shape(), 5.0), db(b.shape(), 5.0);
    cpu::depthwise_conv2d_backward(x, w, upstream, params, &dx, &dw, &db);
    CHECK(testing::relative_error(dx, testing::numerical_gradient(x, forward, upstream)) < 1e-6);
    CHECK(testing::relative_error(dw, testing::numerical_gradient(w, forward, upstream)) < 1e-6);
    CHECK(testing::relative_error(db, testing::numerical_gradient(b, forward, upstream)) < 1e-6);
}

}  // namespace

TEST_CASE("depthwise_conv2d_forward matches a reference loop", "[kernels][depthwise_conv2d]") {
    std::uint64_t seed = 1;
    for (const Case& k : kCases) {
        const ConvParams params{k.stride_h, k.stride_w, k.padding};
        const auto x = random_tensor<double>(Shape{k.n, k.h, k.w, k.c}, seed++);
        const auto w = random_tensor<double>(Shape{k.kh, k.kw, k.c, k.multiplier}, seed++);
        const auto b = random_tensor<double>(Shape{k.c * k.multiplier}, seed++);
        const Shape out_shape = cpu::depthwise_conv2d_output_shape(x.shape(), w.shape(), params);
        const auto reference = depthwise_reference(x, w, &b, params);
        REQUIRE(out_shape == reference.shape());
        Tensor<double> y(out_shape, 99.0);
        cpu::depthwise_conv2d_forward(x, w, &b, params, y);
        CHECK(testing::max_abs_diff(y, reference) < 1e-12);
        cpu::depthwise_conv2d_forward(x, w, nullptr, params, y);
        CHECK(testing::max_abs_diff(y, depthwise_reference(x, w, nullptr, params)) < 1e-12);
    }
}

TEST_CASE("depthwise_conv2d_output_shape follows Keras", "[kernels][depthwise_conv2d]") {
    CHECK(cpu::depthwise_conv2d_output_shape(Shape{2, 7, 7, 3}, Shape{3, 3, 3, 2}, ConvParams{2, 2, Padding::same}) ==
          Shape{2, 4, 4, 6});
    CHECK(cpu::depthwise_conv2d_output_shape(Shape{2, 7, 7, 3}, Shape{3, 3, 3, 2}, ConvParams{2, 2, Padding::valid}) ==
          Shape{2, 3, 3, 6});
    CHECK(cpu::depthwise_conv2d_output_shape(Shape{1, 8, 5, 4}, Shape{3, 3, 4, 1}, ConvParams{1, 1, Padding::same}) ==
          Shape{1, 8, 5, 4});
}

TEST_CASE("depthwise_conv2d_forward in float matches the double reference", "[kernels][depthwise_conv2d]") {
    const ConvParams params{2, 2, Padding::same};
    const auto x = random_tensor<float>(Shape{2, 11, 9, 16}, 40), w = random_tensor<float>(Shape{3, 3, 16, 2}, 41);
    const auto b = random_tensor<float>(Shape{32}, 42);
    Tensor<float> y(cpu::depthwise_conv2d_output_shape(x.shape(), w.shape(), params));
    cpu::depthwise_conv2d_forward(x, w, &b, params, y);
    const Tensor<double> bd = to_double(b);
    const auto reference = depthwise_reference(to_double(x), to_double(w), &bd, params);
    // 10 products of magnitude <= 1 in float: error well below 1e-5.
    CHECK(testing::max_abs_diff(to_double(y), reference) < 1e-5);
}

TEST_CASE("depthwise_conv2d_backward matches finite differences", "[kernels][depthwise_conv2d][gradcheck]") {
    const std::vector<Case> cases = {
        {2, 5, 6, 3, 2, 3, 3, 2, 2, Padding::same},
        {1, 6, 5, 2, 1, 3, 2, 1, 1, Padding::valid},
        {2, 4, 5, 3, 1, 3, 3, 1, 2, Padding::same},
        {1, 5, 5, 2, 3, 2, 2, 3, 3, Padding::same},
        {1, 6, 4, 2, 1, 3, 3, 2, 2, Padding::same},  // odd padding: one more row/col at the bottom/right
    };
    std::uint64_t seed = 100;
    for (const Case& k : cases) check_gradients_by_finite_differences(k, seed);
}

TEST_CASE("depthwise_conv2d_backward skips gradients passed as nullptr", "[kernels][depthwise_conv2d]") {
    const ConvParams params{2, 2, Padding::same};
    const auto x = random_tensor<double>(Shape{2, 7, 6, 3}, 200), w = random_tensor<double>(Shape{3, 3, 3, 2}, 201);
    const auto dy = random_tensor<double>(cpu::depthwise_conv2d_output_shape(x.shape(), w.shape(), params), 202);
    Tensor<double> dx(x.shape()), dw(w.shape()), db(Shape{6});
    cpu::depthwise_conv2d_backward(x, w, dy, params, &dx, &dw, &db);

    Tensor<double> dx_only(x.shape()), dw_only(w.shape()), db_only(Shape{6});
    cpu::depthwise_conv2d_backward(x, w, dy, params, &dx_only, nullptr, nullptr);
    CHECK(testing::max_abs_diff(dx_only, dx) == 0);
    cpu::depthwise_conv2d_backward(x, w, dy, params, nullptr, &dw_only, nullptr);
    CHECK(testing::max_abs_diff(dw_only, dw) == 0);
    cpu::depthwise_conv2d_backward(x, w, dy, params, nullptr, nullptr, &db_only);
    CHECK(testing::max_abs_diff(db_only, db) == 0);
    CHECK_NOTHROW(cpu::depthwise_conv2d_backward(x, w, dy, params, nullptr, nullptr, nullptr));
}

TEST_CASE("depthwise_conv2d reads and writes channel slices of wider buffers", "[kernels][depthwise_conv2d]") {
    const ConvParams params{2, 2, Padding::same};
    const Index n = 2, h = 5, wd = 7, c = 3, mult = 2;
    const auto wide_x = random_tensor<double>(Shape{n, h, wd, 8}, 300);
    const Tensor<double> x = wide_x.channels(2, 2 + c);
    const auto w = random_tensor<double>(Shape{3, 3, c, mult}, 301), b = random_tensor<double>(Shape{c * mult}, 302);
    const Shape out_shape = cpu::depthwise_conv2d_output_shape(x.shape(), w.shape(), params);

    Tensor<double> wide_y(Shape{n, out_shape[1], out_shape[2], 10}, -7.0);
    Tensor<double> y = wide_y.channels(3, 3 + c * mult);
    cpu::depthwise_conv2d_forward(x, w, &b, params, y);
    const Tensor<double> x_copy = x.clone();
    CHECK(testing::max_abs_diff(y.clone(), depthwise_reference(x_copy, w, &b, params)) < 1e-12);

    // Backward: dy read from a slice, dx written into a slice; compare with contiguous copies.
    const auto wide_dy = random_tensor<double>(Shape{n, out_shape[1], out_shape[2], 9}, 303);
    const Tensor<double> dy = wide_dy.channels(1, 1 + c * mult);
    Tensor<double> wide_dx(Shape{n, h, wd, 5}, -7.0);
    Tensor<double> dx = wide_dx.channels(1, 1 + c);
    Tensor<double> dw(w.shape()), db(b.shape());
    cpu::depthwise_conv2d_backward(x, w, dy, params, &dx, &dw, &db);
    Tensor<double> dx_ref(x.shape()), dw_ref(w.shape()), db_ref(b.shape());
    cpu::depthwise_conv2d_backward(x_copy, w, dy.clone(), params, &dx_ref, &dw_ref, &db_ref);
    CHECK(testing::max_abs_diff(dx.clone(), dx_ref) == 0);
    CHECK(testing::max_abs_diff(dw, dw_ref) == 0);
    CHECK(testing::max_abs_diff(db, db_ref) == 0);

    for (const Tensor<double>* wide : {&wide_y, &wide_dx}) {
        const Index used_begin = wide == &wide_y ? 3 : 1, used_end = wide == &wide_y ? 3 + c * mult : 1 + c;
        const std::vector<double> values = wide->to_vector();
        const Index width = wide->dim(3);
        for (std::size_t i = 0; i < values.size(); ++i) {
            const Index channel = static_cast<Index>(i) % width;
            if (channel < used_begin || channel >= used_end) CHECK(values[i] == -7.0);
        }
    }
}

TEST_CASE("depthwise_conv2d rejects bad inputs naming the shapes", "[kernels][depthwise_conv2d][errors]") {
    const ConvParams params{1, 1, Padding::valid};
    const Tensor<float> x(Shape{2, 5, 5, 3}), w(Shape{3, 3, 3, 2});
    Tensor<float> y(Shape{2, 3, 3, 6});
    const Tensor<float> w_bad(Shape{3, 3, 4, 1});
    CHECK_THROWS_WITH(cpu::depthwise_conv2d_forward(x, w_bad, nullptr, params, y),
                      Catch::Contains("input (2, 5, 5, 3) does not match depthwise weights (3, 3, 4, 1)"));
    const Tensor<float> bias_bad(Shape{3});
    CHECK_THROWS_WITH(cpu::depthwise_conv2d_forward(x, w, &bias_bad, params, y),
                      Catch::Contains("bias has shape (3), expected (6)"));
    Tensor<float> y_bad(Shape{2, 5, 5, 6});
    CHECK_THROWS_WITH(cpu::depthwise_conv2d_forward(x, w, nullptr, params, y_bad),
                      Catch::Contains("output has shape (2, 5, 5, 6), expected (2, 3, 3, 6)"));
    const Tensor<float> x_rank3(Shape{5, 5, 3});
    CHECK_THROWS_WITH(cpu::depthwise_conv2d_forward(x_rank3, w, nullptr, params, y),
                      Catch::Contains("input must have rank 4, got shape (5, 5, 3)"));
    const Tensor<float> w_zero_mult(Shape{3, 3, 3, 0});
    CHECK_THROWS_WITH(cpu::depthwise_conv2d_output_shape(x.shape(), w_zero_mult.shape(), params),
                      Catch::Contains("depthwise weights (3, 3, 3, 0) have a depth multiplier below 1"));
    const Tensor<float> w_big(Shape{7, 7, 3, 1});
    CHECK_THROWS_WITH(cpu::depthwise_conv2d_output_shape(x.shape(), w_big.shape(), params),
                      Catch::Contains("input 5x5 is smaller than the window (kernel 7x7"));
    CHECK_THROWS_WITH(cpu::depthwise_conv2d_output_shape(x.shape(), w.shape(), ConvParams{0, 1, Padding::same}),
                      Catch::Contains("invalid window (kernel 3x3, strides 0x1"));
    const Tensor<float> dy_bad(Shape{2, 3, 3, 3});
    Tensor<float> dx(x.shape());
    CHECK_THROWS_WITH(cpu::depthwise_conv2d_backward(x, w, dy_bad, params, &dx, nullptr, nullptr),
                      Catch::Contains("output gradient has shape (2, 3, 3, 3), expected (2, 3, 3, 6)"));
    const Tensor<float> dy(Shape{2, 3, 3, 6});
    Tensor<float> dw_bad(Shape{3, 3, 3, 1});
    CHECK_THROWS_WITH(cpu::depthwise_conv2d_backward(x, w, dy, params, nullptr, &dw_bad, nullptr),
                      Catch::Contains("depthwise weights gradient has shape (3, 3, 3, 1), expected (3, 3, 3, 2)"));
}

namespace {

// Multiplier 1 takes the register-blocked kernels: 3x3 at stride 1 along
// the width those of depthwise_3x3.hpp (see the 3x3 test below), the others
// channel groups of 4, 2 or 1 vectors (8 floats or 4 doubles on AVX2) plus
// a partial vector, blocks of pixels inside the image, edge pixels with
// clipped columns, and for stride 1 the input gradient as a flipped-kernel
// convolution. These shapes cover channel counts around the vector widths,
// widths below the pixel block, stride 2, 'valid' and 'same', 1x1 inputs
// and 3-wide and other kernels.
const std::vector<Case> kBlockedCases = {
    {2, 5, 11, 1, 1, 3, 3, 1, 1, Padding::same},   {1, 6, 9, 7, 1, 3, 3, 1, 1, Padding::same},
    {2, 7, 19, 8, 1, 3, 3, 1, 1, Padding::same},   {1, 4, 3, 9, 1, 3, 3, 1, 1, Padding::same},
    {1, 6, 13, 17, 1, 3, 3, 1, 1, Padding::valid}, {2, 3, 2, 33, 1, 3, 3, 1, 1, Padding::same},
    {1, 5, 21, 33, 1, 3, 3, 1, 1, Padding::same},  {1, 9, 17, 40, 1, 3, 3, 1, 1, Padding::same},
    {2, 8, 11, 9, 1, 3, 3, 2, 2, Padding::same},   {1, 9, 12, 17, 1, 3, 3, 2, 2, Padding::valid},
    {1, 7, 10, 33, 1, 3, 3, 2, 1, Padding::same},  {1, 1, 1, 9, 1, 3, 3, 1, 1, Padding::same},
    {1, 1, 1, 17, 1, 1, 1, 1, 1, Padding::valid},  {1, 6, 7, 9, 1, 5, 5, 1, 1, Padding::same},
    {1, 8, 9, 17, 1, 2, 4, 1, 1, Padding::same},   {1, 5, 6, 8, 1, 1, 3, 1, 2, Padding::valid},
    {1, 4, 4, 16, 1, 5, 5, 1, 1, Padding::same},   {1, 3, 5, 7, 1, 3, 3, 3, 3, Padding::same},
    {1, 3, 4, 257, 1, 3, 3, 2, 2, Padding::same},  // 256 channels or more take the channel-innermost loops
};

// Forward (with and without bias), all gradients and the bias gradient
// alone of multiplier-1 case k against the reference loops, in double and
// in float; the inputs are drawn from seed, seed + 1, ... (seed is advanced).
void check_multiplier_one_against_reference(const Case& k, std::uint64_t& seed) {
    CAPTURE(k.n, k.h, k.w, k.c, k.kh, k.kw, k.stride_h, k.stride_w, padding_name(k.padding));
    const ConvParams params{k.stride_h, k.stride_w, k.padding};
    const auto x = random_tensor<double>(Shape{k.n, k.h, k.w, k.c}, seed++);
    const auto w = random_tensor<double>(Shape{k.kh, k.kw, k.c, 1}, seed++);
    const auto b = random_tensor<double>(Shape{k.c}, seed++);
    const Shape out_shape = cpu::depthwise_conv2d_output_shape(x.shape(), w.shape(), params);
    const auto dy = random_tensor<double>(out_shape, seed++);

    Tensor<double> y(out_shape, 99.0);
    cpu::depthwise_conv2d_forward(x, w, &b, params, y);
    CHECK(testing::max_abs_diff(y, depthwise_reference(x, w, &b, params)) < 1e-12);
    cpu::depthwise_conv2d_forward(x, w, nullptr, params, y);
    CHECK(testing::max_abs_diff(y, depthwise_reference(x, w, nullptr, params)) < 1e-12);

    const DepthwiseGradients ref = depthwise_reference_backward(x, w, dy, params);
    Tensor<double> dx(x.shape(), 5.0), dw(w.shape(), 5.0), db(b.shape(), 5.0);
    cpu::depthwise_conv2d_backward(x, w, dy, params, &dx, &dw, &db);
    CHECK(testing::max_abs_diff(dx, ref.dx) < 1e-12);
    CHECK(testing::max_abs_diff(dw, ref.dw) < 1e-11);
    CHECK(testing::max_abs_diff(db, ref.db) < 1e-11);
    Tensor<double> db_only(b.shape(), 5.0);  // the bias gradient alone takes its own loop
    cpu::depthwise_conv2d_backward(x, w, dy, params, nullptr, nullptr, &db_only);
    CHECK(testing::max_abs_diff(db_only, ref.db) < 1e-11);

    // Float against the double reference: at most 25 products of magnitude <= 1
    // per output and input gradient, a few hundred per weight gradient.
    const Tensor<float> xf = testing::random_tensor<float>(x.shape(), seed),
                        wf = testing::random_tensor<float>(w.shape(), seed + 1);
    const Tensor<float> bf = testing::random_tensor<float>(b.shape(), seed + 2),
                        dyf = testing::random_tensor<float>(out_shape, seed + 3);
    seed += 4;
    Tensor<float> yf(out_shape), dxf(x.shape()), dwf(w.shape()), dbf(b.shape());
    cpu::depthwise_conv2d_forward(xf, wf, &bf, params, yf);
    cpu::depthwise_conv2d_backward(xf, wf, dyf, params, &dxf, &dwf, &dbf);
    const Tensor<double> bd = to_double(bf);
    CHECK(testing::max_abs_diff(to_double(yf), depthwise_reference(to_double(xf), to_double(wf), &bd, params)) <
          1e-5);
    const DepthwiseGradients reff =
        depthwise_reference_backward(to_double(xf), to_double(wf), to_double(dyf), params);
    CHECK(testing::max_abs_diff(to_double(dxf), reff.dx) < 1e-5);
    CHECK(testing::max_abs_diff(to_double(dwf), reff.dw) < 1e-4);
    CHECK(testing::max_abs_diff(to_double(dbf), reff.db) < 1e-4);
}

}  // namespace

TEST_CASE("depthwise_conv2d multiplier 1 matches the reference loops", "[kernels][depthwise_conv2d]") {
    std::uint64_t seed = 500;
    for (const Case& k : kBlockedCases) check_multiplier_one_against_reference(k, seed);
}

TEST_CASE("depthwise_conv2d multiplier 1 matches finite differences", "[kernels][depthwise_conv2d][gradcheck]") {
    const std::vector<Case> cases = {
        {2, 4, 11, 9, 1, 3, 3, 1, 1, Padding::same},
        {1, 4, 9, 17, 1, 3, 3, 2, 2, Padding::same},
        {1, 5, 7, 7, 1, 3, 3, 1, 1, Padding::valid},
        {1, 4, 6, 9, 1, 2, 4, 1, 1, Padding::same},
    };
    std::uint64_t seed = 700;
    for (const Case& k : cases) check_gradients_by_finite_differences(k, seed);
}

TEST_CASE("depthwise_conv2d multiplier 1 reads and writes channel slices", "[kernels][depthwise_conv2d]") {
    for (const ConvParams params : {ConvParams{1, 1, Padding::same}, ConvParams{2, 2, Padding::same}}) {
        const Index n = 2, h = 5, wd = 11, c = 9;
        const auto wide_x = random_tensor<double>(Shape{n, h, wd, 13}, 800);
        const Tensor<double> x = wide_x.channels(3, 3 + c);
        const Tensor<double> x_copy = x.clone();
        const auto w = random_tensor<double>(Shape{3, 3, c, 1}, 801), b = random_tensor<double>(Shape{c}, 802);
        const Shape out_shape = cpu::depthwise_conv2d_output_shape(x.shape(), w.shape(), params);

        Tensor<double> wide_y(Shape{n, out_shape[1], out_shape[2], 12}, -7.0);
        Tensor<double> y = wide_y.channels(2, 2 + c);
        cpu::depthwise_conv2d_forward(x, w, &b, params, y);
        CHECK(testing::max_abs_diff(y.clone(), depthwise_reference(x_copy, w, &b, params)) < 1e-12);

        const auto wide_dy = random_tensor<double>(Shape{n, out_shape[1], out_shape[2], 10}, 803);
        const Tensor<double> dy = wide_dy.channels(1, 1 + c);
        Tensor<double> wide_dx(Shape{n, h, wd, 14}, -7.0);
        Tensor<double> dx = wide_dx.channels(4, 4 + c);
        Tensor<double> dw(w.shape()), db(b.shape());
        cpu::depthwise_conv2d_backward(x, w, dy, params, &dx, &dw, &db);
        const DepthwiseGradients ref = depthwise_reference_backward(x_copy, w, dy.clone(), params);
        CHECK(testing::max_abs_diff(dx.clone(), ref.dx) < 1e-12);
        CHECK(testing::max_abs_diff(dw, ref.dw) < 1e-12);
        CHECK(testing::max_abs_diff(db, ref.db) < 1e-12);

        for (const Tensor<double>* wide : {&wide_y, &wide_dx}) {
            const Index used_begin = wide == &wide_y ? 2 : 4, used_end = used_begin + c;
            const std::vector<double> values = wide->to_vector();
            const Index width = wide->dim(3);
            for (std::size_t i = 0; i < values.size(); ++i) {
                const Index channel = static_cast<Index>(i) % width;
                if (channel < used_begin || channel >= used_end) CHECK(values[i] == -7.0);
            }
        }
    }
}

namespace {

// 3x3 kernels at stride 1 along the width, any channel count: the weights
// gradient of depthwise_3x3.hpp, the rest through the blocked kernels or,
// at 256 channels and more, the loops. Channel counts not a multiple of the
// vector width (8 floats, 4 doubles on AVX2; 16 / 8 with AVX-512) and 256 or
// more, widths 1 and 2, 1x1 inputs, 'valid', stride 2 along the height,
// and weights-gradient tiles of one row (W * C large) or of a few rows,
// with thread chunks that split an image.
const std::vector<Case> k3x3Cases = {
    {2, 5, 11, 3, 1, 3, 3, 1, 1, Padding::same},    {1, 4, 1, 13, 1, 3, 3, 1, 1, Padding::same},
    {1, 3, 2, 5, 1, 3, 3, 1, 1, Padding::same},     {2, 1, 1, 11, 1, 3, 3, 1, 1, Padding::same},
    {1, 2, 7, 19, 1, 3, 3, 1, 1, Padding::same},    {1, 5, 3, 9, 1, 3, 3, 1, 1, Padding::valid},
    {1, 6, 9, 21, 1, 3, 3, 1, 1, Padding::valid},   {2, 7, 6, 12, 1, 3, 3, 2, 1, Padding::same},
    {1, 8, 5, 7, 1, 3, 3, 2, 1, Padding::valid},    {1, 3, 4, 257, 1, 3, 3, 1, 1, Padding::same},
    {2, 3, 9, 264, 1, 3, 3, 1, 1, Padding::same},   {3, 4, 24, 300, 1, 3, 3, 1, 1, Padding::same},
    {2, 7, 20, 125, 1, 3, 3, 1, 1, Padding::same},  // tiles of 2 (double) or 5 (float) rows of 7
};

}  // namespace

TEST_CASE("depthwise_conv2d 3x3 stride-1 matches the reference loops", "[kernels][depthwise_conv2d]") {
    std::uint64_t seed = 900;
    for (const Case& k : k3x3Cases) check_multiplier_one_against_reference(k, seed);
}

TEST_CASE("depthwise_conv2d 3x3 stride-1 matches finite differences",
          "[kernels][depthwise_conv2d][gradcheck]") {
    const std::vector<Case> cases = {
        {1, 4, 5, 11, 1, 3, 3, 1, 1, Padding::same},  {1, 3, 1, 5, 1, 3, 3, 1, 1, Padding::same},
        {1, 2, 2, 3, 1, 3, 3, 1, 1, Padding::same},   {1, 5, 4, 6, 1, 3, 3, 1, 1, Padding::valid},
        {1, 6, 5, 9, 1, 3, 3, 2, 1, Padding::same},
    };
    std::uint64_t seed = 1000;
    for (const Case& k : cases) check_gradients_by_finite_differences(k, seed);
}

TEST_CASE("depthwise_conv2d 3x3 stride-1 reads and writes channel slices", "[kernels][depthwise_conv2d]") {
    const ConvParams params{1, 1, Padding::same};
    const Index n = 2, h = 4, wd = 6, c = 11;
    const auto wide_x = random_tensor<float>(Shape{n, h, wd, 16}, 1100);
    const Tensor<float> x = wide_x.channels(2, 2 + c);
    const Tensor<float> x_copy = x.clone();
    const auto w = random_tensor<float>(Shape{3, 3, c, 1}, 1101), b = random_tensor<float>(Shape{c}, 1102);

    Tensor<float> wide_y(Shape{n, h, wd, 15}, -7.0f);
    Tensor<float> y = wide_y.channels(3, 3 + c);
    cpu::depthwise_conv2d_forward(x, w, &b, params, y);
    Tensor<float> y_ref(x.shape());
    cpu::depthwise_conv2d_forward(x_copy, w, &b, params, y_ref);
    CHECK(testing::max_abs_diff(y.clone(), y_ref) == 0);

    const auto wide_dy = random_tensor<float>(Shape{n, h, wd, 13}, 1103);
    const Tensor<float> dy = wide_dy.channels(1, 1 + c);
    Tensor<float> wide_dx(Shape{n, h, wd, 12}, -7.0f);
    Tensor<float> dx = wide_dx.channels(0, c);
    Tensor<float> dw(w.shape()), db(b.shape());
    cpu::depthwise_conv2d_backward(x, w, dy, params, &dx, &dw, &db);
    Tensor<float> dx_ref(x.shape()), dw_ref(w.shape()), db_ref(b.shape());
    cpu::depthwise_conv2d_backward(x_copy, w, dy.clone(), params, &dx_ref, &dw_ref, &db_ref);
    CHECK(testing::max_abs_diff(dx.clone(), dx_ref) == 0);
    CHECK(testing::max_abs_diff(dw, dw_ref) == 0);
    CHECK(testing::max_abs_diff(db, db_ref) == 0);
    const Tensor<double> bd = to_double(b);
    CHECK(testing::max_abs_diff(to_double(y_ref), depthwise_reference(to_double(x_copy), to_double(w), &bd, params)) <
          1e-5);

    for (const Tensor<float>* wide : {&wide_y, &wide_dx}) {
        const Index used_begin = wide == &wide_y ? 3 : 0, used_end = used_begin + c;
        const std::vector<float> values = wide->to_vector();
        const Index width = wide->dim(3);
        for (std::size_t i = 0; i < values.size(); ++i) {
            const Index channel = static_cast<Index>(i) % width;
            if (channel < used_begin || channel >= used_end) CHECK(values[i] == -7.0f);
        }
    }
}

// max and average pooling kernels: forward against reference loops, gradients
// by finite differences, the first-maximum rule on ties, slices and errors.

#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <numeric>
#include <vector>

#include <bcnn/kernels/cpu/pool2d.hpp>

#include "support/gradcheck.hpp"
#include "support/random.hpp"

using namespace bcnn;
using bcnn::testing::distinct_tensor;
using bcnn::testing::random_tensor;

namespace {

struct Case {
    Index n, h, w, c;
    Window2D window;
};

// Keras rule on one axis: (output extent, padding before the first element).
std::pair<Index, Index> keras_axis(Index in, Index kernel, Index stride, Padding padding) {
    if (padding == Padding::valid) return {(in - kernel) / stride + 1, 0};
    const Index out = (in + stride - 1) / stride;
    const Index total = std::max<Index>((out - 1) * stride + kernel - in, 0);
    return {out, total / 2};
}

enum class Pool { max, avg };

// Calls visit(n, oh, ow, c, ih, iw) for every valid input element of every
// window, in row-major scan order within each window.
template <typename Visit, typename Finish>
Tensor<double> pool_reference_loops(const Shape& x, const Window2D& win, Visit visit, Finish finish) {
    const auto [out_h, pad_top] = keras_axis(x[1], win.kernel_h, win.stride_h, win.padding);
    const auto [out_w, pad_left] = keras_axis(x[2], win.kernel_w, win.stride_w, win.padding);
    Tensor<double> y(Shape{x[0], out_h, out_w, x[3]});
    for (Index n = 0; n < x[0]; ++n)
        for (Index oh = 0; oh < out_h; ++oh)
            for (Index ow = 0; ow < out_w; ++ow)
                for (Index c = 0; c < x[3]; ++c) {
                    for (Index i = 0; i < win.kernel_h; ++i)
                        for (Index j = 0; j < win.kernel_w; ++j) {
                            const Index ih = oh * win.stride_h - pad_top + i, iw = ow * win.stride_w - pad_left + j;
                            if (ih < 0 || ih >= x[1] || iw < 0 || iw >= x[2]) continue;  // padding never counts
                            visit(n, oh, ow, c, ih, iw);
                        }
                    y(n, oh, ow, c) = finish();
                }
    return y;
}

// Max (padding is -inf) or mean over the valid elements of each window.
Tensor<double> pool_reference(const Tensor<double>& x, const Window2D& win, Pool pool) {
    double acc = 0;
    Index count = 0;
    return pool_reference_loops(
        x.shape(), win,
        [&](Index n, Index, Index, Index c, Index ih, Index iw) {
            const double v = x(n, ih, iw, c);
            acc = count == 0 ? v : (pool == Pool::max ? std::max(acc, v) : acc + v);
            ++count;
        },
        [&] {
            const double result = pool == Pool::max ? acc : acc / count;
            acc = 0;
            count = 0;
            return result;
        });
}

// dx of max pooling: each window's dy goes to its first maximum (row-major).
Tensor<double> max_pool_backward_reference(const Tensor<double>& x, const Tensor<double>& dy, const Window2D& win) {
    Tensor<double> dx(x.shape());
    double best = 0;
    Index best_h = -1, best_w = -1, n_now = 0, oh_now = 0, ow_now = 0, c_now = 0;
    pool_reference_loops(
        x.shape(), win,
        [&](Index n, Index oh, Index ow, Index c, Index ih, Index iw) {
            if (best_h < 0 || x(n, ih, iw, c) > best) {
                best = x(n, ih, iw, c);
                best_h = ih;
                best_w = iw;
            }
            n_now = n, oh_now = oh, ow_now = ow, c_now = c;
        },
        [&] {
            dx(n_now, best_h, best_w, c_now) += dy(n_now, oh_now, ow_now, c_now);
            best_h = -1;
            return 0.0;
        });
    return dx;
}

Tensor<double> to_double(const Tensor<float>& t) {
    Tensor<double> d(t.shape());
    const std::vector<float> values = t.to_vector();
    std::copy(values.begin(), values.end(), d.data());
    return d;
}

Window2D window(Index k_h, Index k_w, Index s_h, Index s_w, Padding padding) {
    return Window2D{k_h, k_w, s_h, s_w, padding};
}

const std::vector<Case> kCases = {
    {2, 7, 5, 3, window(2, 2, 2, 2, Padding::valid)},   // Keras MaxPool2D default on odd input: drops last row/col
    {2, 7, 9, 4, window(3, 3, 2, 2, Padding::same)},    // overlapping windows, more padding bottom/right
    {1, 6, 6, 2, window(3, 3, 1, 1, Padding::same)},
    {1, 5, 4, 3, window(2, 2, 1, 1, Padding::valid)},
    {1, 1, 1, 2, window(1, 1, 1, 1, Padding::valid)},   // 1x1 input
    {2, 5, 7, 3, window(3, 2, 1, 2, Padding::same)},    // non-square
    {1, 7, 7, 2, window(2, 2, 3, 3, Padding::same)},    // stride larger than the pool
    {1, 3, 3, 2, window(5, 5, 2, 2, Padding::same)},    // pool larger than the input
    {2, 5, 5, 70, window(3, 3, 2, 2, Padding::same)},   // more than one channel block
    {2, 8, 6, 3, window(3, 3, 2, 2, Padding::same)},    // even input: odd padding, the extra row/col at the end
    {1, 7, 5, 2, window(2, 2, 2, 2, Padding::same)},    // odd input: one padded row/col at the bottom/right only
};

}  // namespace

TEST_CASE("pool2d_output_shape follows Keras", "[kernels][pool2d]") {
    CHECK(cpu::pool2d_output_shape(Shape{2, 7, 5, 3}, window(2, 2, 2, 2, Padding::valid)) == Shape{2, 3, 2, 3});
    CHECK(cpu::pool2d_output_shape(Shape{2, 7, 5, 3}, window(2, 2, 2, 2, Padding::same)) == Shape{2, 4, 3, 3});
    CHECK(cpu::pool2d_output_shape(Shape{1, 9, 9, 1}, window(3, 3, 2, 2, Padding::same)) == Shape{1, 5, 5, 1});
    CHECK(cpu::pool2d_output_shape(Shape{1, 9, 9, 1}, window(3, 3, 2, 2, Padding::valid)) == Shape{1, 4, 4, 1});
}

TEST_CASE("max and avg pool forward match reference loops", "[kernels][pool2d]") {
    std::uint64_t seed = 1;
    for (const Case& k : kCases) {
        const auto x = random_tensor<double>(Shape{k.n, k.h, k.w, k.c}, seed++, -2.0, -1.0);  // negative: 0-padding would win
        const Shape out_shape = cpu::pool2d_output_shape(x.shape(), k.window);
        Tensor<double> y(out_shape, 99.0);
        cpu::max_pool2d_forward(x, k.window, y);
        const auto max_reference = pool_reference(x, k.window, Pool::max);
        REQUIRE(out_shape == max_reference.shape());
        CHECK(testing::max_abs_diff(y, max_reference) == 0);
        cpu::avg_pool2d_forward(x, k.window, y);
        CHECK(testing::max_abs_diff(y, pool_reference(x, k.window, Pool::avg)) < 1e-12);
    }
}

TEST_CASE("pool forward in float matches the double reference", "[kernels][pool2d]") {
    const Window2D win = window(3, 3, 2, 2, Padding::same);
    const auto x = random_tensor<float>(Shape{2, 9, 11, 19}, 20);
    Tensor<float> y(cpu::pool2d_output_shape(x.shape(), win));
    cpu::max_pool2d_forward(x, win, y);
    CHECK(testing::max_abs_diff(to_double(y), pool_reference(to_double(x), win, Pool::max)) == 0);  // max is exact
    cpu::avg_pool2d_forward(x, win, y);
    // A mean of at most 9 values in [-1, 1): float rounding stays below 1e-6.
    CHECK(testing::max_abs_diff(to_double(y), pool_reference(to_double(x), win, Pool::avg)) < 1e-6);
}

TEST_CASE("max_pool2d_backward matches the first-maximum reference", "[kernels][pool2d]") {
    std::uint64_t seed = 30;
    for (const Case& k : kCases) {
        // Few distinct values, so many windows hold ties.
        auto x = random_tensor<double>(Shape{k.n, k.h, k.w, k.c}, seed++, 0.0, 3.0);
        for (Index i = 0; i < x.numel(); ++i) x.data()[i] = std::floor(x.data()[i]) - 5.0;
        const auto dy = random_tensor<double>(cpu::pool2d_output_shape(x.shape(), k.window), seed++);
        Tensor<double> dx(x.shape(), 99.0);
        cpu::max_pool2d_backward(x, dy, k.window, dx);
        CHECK(testing::max_abs_diff(dx, max_pool_backward_reference(x, dy, k.window)) < 1e-12);
    }
}

TEST_CASE("max_pool2d_backward sends a tie's gradient to the first maximum", "[kernels][pool2d]") {
    // One 2x2 window over [[1, 3], [3, 2]]: the maximum 3 appears at (0, 1) and (1, 0).
    const auto x = Tensor<double>::from_vector(Shape{1, 2, 2, 1}, {1, 3, 3, 2});
    const auto dy = Tensor<double>::from_vector(Shape{1, 1, 1, 1}, {0.5});
    Tensor<double> dx(x.shape());
    cpu::max_pool2d_backward(x, dy, window(2, 2, 2, 2, Padding::valid), dx);
    CHECK(dx.to_vector() == std::vector<double>{0, 0.5, 0, 0});

    // A constant negative 5x5 input, 3x3 stride 2 'same' (padding 1 on each side):
    // padding never wins, so each window's gradient lands on its first valid pixel,
    // rows/cols {0, 1, 3} for windows starting at -1, 1, 3.
    const Tensor<double> flat(Shape{1, 5, 5, 1}, -2.0);
    const Window2D win = window(3, 3, 2, 2, Padding::same);
    Tensor<double> y(Shape{1, 3, 3, 1});
    cpu::max_pool2d_forward(flat, win, y);
    CHECK(y.to_vector() == std::vector<double>(9, -2.0));
    const auto dy3 = random_tensor<double>(Shape{1, 3, 3, 1}, 40);
    Tensor<double> dx5(flat.shape());
    cpu::max_pool2d_backward(flat, dy3, win, dx5);
    const Index first_valid[] = {0, 1, 3};
    Tensor<double> expected(flat.shape());
    for (Index i = 0; i < 3; ++i)
        for (Index j = 0; j < 3; ++j) expected(0, first_valid[i], first_valid[j], 0) = dy3(0, i, j, 0);
    CHECK(testing::max_abs_diff(dx5, expected) == 0);
}

TEST_CASE("pool backward matches finite differences", "[kernels][pool2d][gradcheck]") {
    const std::vector<Case> cases = {
        {2, 5, 5, 3, window(2, 2, 2, 2, Padding::valid)},
        {1, 7, 6, 2, window(3, 3, 2, 2, Padding::same)},
        {2, 4, 5, 2, window(3, 2, 1, 1, Padding::same)},
        {1, 5, 5, 2, window(2, 2, 3, 3, Padding::same)},
        {1, 6, 5, 2, window(3, 3, 2, 2, Padding::same)},  // odd padding along the height
    };
    std::uint64_t seed = 50;
    for (const Case& k : cases) {
        auto x = distinct_tensor(Shape{k.n, k.h, k.w, k.c}, seed++);
        const auto upstream = random_tensor<double>(cpu::pool2d_output_shape(x.shape(), k.window), seed++);
        auto max_forward = [&] {
            Tensor<double> y(upstream.shape());
            cpu::max_pool2d_forward(x, k.window, y);
            return y;
        };
        auto avg_forward = [&] {
            Tensor<double> y(upstream.shape());
            cpu::avg_pool2d_forward(x, k.window, y);
            return y;
        };
        Tensor<double> dx(x.shape(), 5.0);
        cpu::max_pool2d_backward(x, upstream, k.window, dx);
        CHECK(testing::relative_error(dx, testing::numerical_gradient(x, max_forward, upstream)) < 1e-6);
        cpu::avg_pool2d_backward(upstream, k.window, dx);
        CHECK(testing::relative_error(dx, testing::numerical_gradient(x, avg_forward, upstream)) < 1e-6);
    }
}

TEST_CASE("pooling reads and writes channel slices of wider buffers", "[kernels][pool2d]") {
    const Window2D win = window(3, 3, 2, 2, Padding::same);
    const Index n = 2, h = 7, w = 6, c = 3;
    const Tensor<double> wide_x = distinct_tensor(Shape{n, h, w, 8}, 60);
    const Tensor<double> x = wide_x.channels(2, 2 + c), x_copy = x.clone();
    const Shape out_shape = cpu::pool2d_output_shape(x.shape(), win);
    const auto wide_dy = random_tensor<double>(Shape{n, out_shape[1], out_shape[2], 6}, 61);
    const Tensor<double> dy = wide_dy.channels(3, 3 + c), dy_copy = dy.clone();

    for (Pool pool : {Pool::max, Pool::avg}) {
        Tensor<double> wide_y(Shape{n, out_shape[1], out_shape[2], 5}, -7.0);
        Tensor<double> y = wide_y.channels(1, 1 + c);
        Tensor<double> wide_dx(Shape{n, h, w, 7}, -7.0);
        Tensor<double> dx = wide_dx.channels(4, 4 + c);
        Tensor<double> dx_ref(x.shape());
        if (pool == Pool::max) {
            cpu::max_pool2d_forward(x, win, y);
            cpu::max_pool2d_backward(x, dy, win, dx);
            cpu::max_pool2d_backward(x_copy, dy_copy, win, dx_ref);
        } else {
            cpu::avg_pool2d_forward(x, win, y);
            cpu::avg_pool2d_backward(dy, win, dx);
            cpu::avg_pool2d_backward(dy_copy, win, dx_ref);
        }
        CHECK(testing::max_abs_diff(y.clone(), pool_reference(x_copy, win, pool)) < 1e-12);
        CHECK(testing::max_abs_diff(dx.clone(), dx_ref) == 0);
        for (Index i = 0; i < n * out_shape[1] * out_shape[2]; ++i) {
            CHECK(wide_y.data()[i * 5] == -7.0);
            CHECK(wide_y.data()[i * 5 + 4] == -7.0);
        }
        for (Index i = 0; i < n * h * w; ++i)
            for (Index ch = 0; ch < 4; ++ch) CHECK(wide_dx.data()[i * 7 + ch] == -7.0);
    }
}

TEST_CASE("max pooling with disjoint windows matches the references in float and double", "[kernels][pool2d]") {
    // Strides >= pool size: the backward writes dx in one pass (no scatter). Channel
    // counts around the vector widths (4 doubles, 8 floats; 16/8 with AVX-512) and
    // inputs that leave uncovered rows/columns ('valid' remainders, stride > pool).
    const std::vector<Case> cases = {
        {2, 7, 9, 13, window(2, 2, 2, 2, Padding::valid)},  // last row and column in no window
        {1, 6, 6, 16, window(2, 2, 2, 2, Padding::valid)},  // whole vectors only
        {2, 5, 8, 19, window(2, 2, 2, 2, Padding::same)},   // one padded row at the bottom
        {1, 9, 10, 1, window(2, 2, 3, 3, Padding::valid)},  // gaps between windows, one channel
        {1, 8, 7, 9, window(3, 2, 3, 4, Padding::same)},    // non-square, gaps along the width
        {2, 5, 5, 33, window(5, 5, 5, 5, Padding::valid)},  // one window per image
        {1, 1, 1, 7, window(1, 1, 1, 1, Padding::valid)},   // 1x1 input
        {1, 3, 11, 5, window(1, 3, 1, 3, Padding::valid)},  // windows along the width only
    };
    std::uint64_t seed = 70;
    for (const Case& k : cases) {
        // Few distinct values: ties in most windows, so the first-maximum rule decides.
        auto x = random_tensor<double>(Shape{k.n, k.h, k.w, k.c}, seed++, 0.0, 3.0);
        for (Index i = 0; i < x.numel(); ++i) x.data()[i] = std::floor(x.data()[i]) - 1.0;
        const Shape out_shape = cpu::pool2d_output_shape(x.shape(), k.window);
        const auto dy = random_tensor<double>(out_shape, seed++);
        const auto y_reference = pool_reference(x, k.window, Pool::max);
        const auto dx_reference = max_pool_backward_reference(x, dy, k.window);

        Tensor<double> y(out_shape, 99.0), dx(x.shape(), 99.0);
        cpu::max_pool2d_forward(x, k.window, y);
        cpu::max_pool2d_backward(x, dy, k.window, dx);
        CHECK(testing::max_abs_diff(y, y_reference) == 0);
        CHECK(testing::max_abs_diff(dx, dx_reference) == 0);  // each dx is one dy or zero: exact

        // Float: the same values (small integers and float-rounded dy), so the same choices.
        Tensor<float> xf(x.shape()), dyf(out_shape), yf(out_shape, 99.0f), dxf(x.shape(), 99.0f);
        for (Index i = 0; i < x.numel(); ++i) xf.data()[i] = static_cast<float>(x.data()[i]);
        for (Index i = 0; i < dy.numel(); ++i) dyf.data()[i] = static_cast<float>(dy.data()[i]);
        cpu::max_pool2d_forward(xf, k.window, yf);
        cpu::max_pool2d_backward(xf, dyf, k.window, dxf);
        CHECK(testing::max_abs_diff(to_double(yf), y_reference) == 0);
        CHECK(testing::max_abs_diff(to_double(dxf), max_pool_backward_reference(x, to_double(dyf), k.window)) == 0);
    }
}

TEST_CASE("max_pool2d_relu_backward is max_pool2d_backward then the ReLU's mask", "[kernels][pool2d]") {
    // x: a ReLU's output, with many zeros (whole windows of them too) and ties among the positive values.
    const std::vector<Case> cases = {
        {2, 7, 9, 13, window(2, 2, 2, 2, Padding::valid)},  // disjoint, last row and column in no window
        {1, 8, 7, 9, window(3, 2, 3, 4, Padding::same)},    // disjoint with gaps and padding
        {2, 9, 8, 21, window(3, 3, 2, 2, Padding::valid)},  // overlapping
    };
    std::uint64_t seed = 85;
    for (const Case& k : cases) {
        INFO("window " << k.window);
        auto x = random_tensor<double>(Shape{k.n, k.h, k.w, k.c}, seed++, -3.0, 2.0);
        for (Index i = 0; i < x.numel(); ++i) x.data()[i] = std::max(0.0, std::floor(x.data()[i]));
        const auto dy = random_tensor<double>(cpu::pool2d_output_shape(x.shape(), k.window), seed++);
        auto expected = max_pool_backward_reference(x, dy, k.window);
        for (Index i = 0; i < x.numel(); ++i)
            if (!(x.data()[i] > 0)) expected.data()[i] = 0;
        Tensor<double> dx(x.shape(), 99.0);
        cpu::max_pool2d_relu_backward(x, dy, k.window, dx);
        CHECK(testing::max_abs_diff(dx, expected) == 0);
        Tensor<double> unmasked(x.shape(), 99.0);
        cpu::max_pool2d_backward(x, dy, k.window, unmasked);
        CHECK(testing::max_abs_diff(unmasked, expected) > 0);  // the mask removed some gradient
    }
    const Tensor<float> x(Shape{1, 4, 4, 2}), dy_bad(Shape{1, 2, 2, 3});
    Tensor<float> dx(x.shape());
    CHECK_THROWS_WITH(cpu::max_pool2d_relu_backward(x, dy_bad, window(2, 2, 2, 2, Padding::valid), dx),
                      Catch::Contains("max_pool2d_relu_backward: output gradient has shape (1, 2, 2, 3), "
                                      "expected (1, 2, 2, 2)"));
}

TEST_CASE("max_pool2d_relu_backward_from_positions gives max_pool2d_relu_backward's gradient",
          "[kernels][pool2d]") {
    // Positions by a plain loop: each window's first maximum (row-major, strictly
    // greater wins), where it is > 0; kNoPoolGradient elsewhere.
    const auto relu_positions = [](const Tensor<double>& x, const Window2D& win) {
        const Shape out = cpu::pool2d_output_shape(x.shape(), win);
        Tensor<std::uint8_t> positions(out);
        for (Index n = 0; n < out[0]; ++n)
            for (Index oh = 0; oh < out[1]; ++oh)
                for (Index ow = 0; ow < out[2]; ++ow)
                    for (Index c = 0; c < out[3]; ++c) {
                        Index best = 0;
                        for (Index q = 1; q < win.kernel_h * win.kernel_w; ++q)
                            if (x(n, oh * win.stride_h + q / win.kernel_w, ow * win.stride_w + q % win.kernel_w, c) >
                                x(n, oh * win.stride_h + best / win.kernel_w, ow * win.stride_w + best % win.kernel_w,
                                  c))
                                best = q;
                        const double value =
                            x(n, oh * win.stride_h + best / win.kernel_w, ow * win.stride_w + best % win.kernel_w, c);
                        positions(n, oh, ow, c) = value > 0 ? static_cast<std::uint8_t>(best) : cpu::kNoPoolGradient;
                    }
        return positions;
    };
    // 'valid' windows that do not overlap: odd sizes (pixels in no window), gaps,
    // channel counts around the vector widths, whole windows of zeros and ties.
    const std::vector<Case> cases = {
        {2, 7, 9, 13, window(2, 2, 2, 2, Padding::valid)},
        {1, 6, 6, 16, window(2, 2, 2, 2, Padding::valid)},
        {1, 9, 10, 3, window(2, 2, 3, 3, Padding::valid)},
        {2, 7, 8, 5, window(3, 2, 3, 2, Padding::valid)},
    };
    std::uint64_t seed = 120;
    for (const Case& k : cases) {
        INFO("window " << k.window << ", " << k.c << " channels");
        auto x = random_tensor<double>(Shape{k.n, k.h, k.w, k.c}, seed++, -3.0, 2.0);
        for (Index i = 0; i < x.numel(); ++i) x.data()[i] = std::max(0.0, std::floor(x.data()[i]));
        x(0, 0, 0, 0) = std::numeric_limits<double>::quiet_NaN();  // a NaN first in its window: no gradient
        const auto dy = random_tensor<double>(cpu::pool2d_output_shape(x.shape(), k.window), seed++);
        const Tensor<std::uint8_t> positions = relu_positions(x, k.window);
        Tensor<double> expected(x.shape(), 99.0), dx(x.shape(), 99.0);
        cpu::max_pool2d_relu_backward(x, dy, k.window, expected);
        cpu::max_pool2d_relu_backward_from_positions(positions, dy, k.window, dx);
        CHECK(testing::max_abs_diff(dx, expected) == 0);
        CHECK(dx(0, 0, 0, 0) == 0);

        Tensor<float> dyf(dy.shape()), dxf(x.shape(), 99.0f);
        for (Index i = 0; i < dy.numel(); ++i) dyf.data()[i] = static_cast<float>(dy.data()[i]);
        cpu::max_pool2d_relu_backward_from_positions(positions, dyf, k.window, dxf);
        for (Index i = 0; i < dx.numel(); ++i)
            REQUIRE(dxf.data()[i] == static_cast<float>(dx.data()[i]));
    }
    const Tensor<float> dy(Shape{1, 2, 2, 3});
    Tensor<float> dx(Shape{1, 4, 4, 3});
    const Tensor<std::uint8_t> positions(Shape{1, 2, 2, 3}), wrong(Shape{1, 2, 2, 2});
    CHECK_THROWS_WITH(cpu::max_pool2d_relu_backward_from_positions(wrong, dy, window(2, 2, 2, 2, Padding::valid), dx),
                      Catch::Contains("max_pool2d_relu_backward_from_positions: positions has shape (1, 2, 2, 2), "
                                      "expected (1, 2, 2, 3)"));
    CHECK_THROWS_WITH(cpu::max_pool2d_relu_backward_from_positions(positions, dy, window(3, 3, 1, 1, Padding::valid),
                                                                   dx),
                      Catch::Contains("max_pool2d_relu_backward_from_positions: takes windows that do not overlap"));
}

TEST_CASE("max_pool2d_backward with overlapping windows in float matches the reference", "[kernels][pool2d]") {
    const Window2D win = window(3, 3, 2, 2, Padding::valid);
    auto x = random_tensor<float>(Shape{2, 9, 8, 21}, 80, 0.0f, 4.0f);
    for (Index i = 0; i < x.numel(); ++i) x.data()[i] = std::floor(x.data()[i]);  // ties
    const auto dy = random_tensor<float>(cpu::pool2d_output_shape(x.shape(), win), 81);
    Tensor<float> dx(x.shape(), 99.0f);
    cpu::max_pool2d_backward(x, dy, win, dx);
    // A pixel in up to four windows sums up to four float values: rounding below 1e-6.
    CHECK(testing::max_abs_diff(to_double(dx), max_pool_backward_reference(to_double(x), to_double(dy), win)) <
          1e-6);
}

TEST_CASE("max pooling with disjoint windows matches finite differences", "[kernels][pool2d][gradcheck]") {
    const std::vector<Case> cases = {
        {2, 5, 7, 5, window(2, 2, 2, 2, Padding::valid)},
        {1, 7, 7, 6, window(2, 2, 3, 3, Padding::same)},
        {1, 5, 6, 9, window(2, 3, 2, 3, Padding::same)},
    };
    std::uint64_t seed = 90;
    for (const Case& k : cases) {
        auto x = distinct_tensor(Shape{k.n, k.h, k.w, k.c}, seed++);
        const auto upstream = random_tensor<double>(cpu::pool2d_output_shape(x.shape(), k.window), seed++);
        auto forward = [&] {
            Tensor<double> y(upstream.shape());
            cpu::max_pool2d_forward(x, k.window, y);
            return y;
        };
        Tensor<double> dx(x.shape(), 5.0);
        cpu::max_pool2d_backward(x, upstream, k.window, dx);
        CHECK(testing::relative_error(dx, testing::numerical_gradient(x, forward, upstream)) < 1e-6);
    }
}

TEST_CASE("max pooling with disjoint windows reads and writes channel slices", "[kernels][pool2d]") {
    // 2x2/2 'valid' on 7x5: the last row and column are in no window and must be
    // zeroed inside the slice only.
    const Window2D win = window(2, 2, 2, 2, Padding::valid);
    const Index n = 2, h = 7, w = 5, c = 11;
    const Tensor<float> wide_x = random_tensor<float>(Shape{n, h, w, 16}, 100);
    const Tensor<float> x = wide_x.channels(3, 3 + c), x_copy = x.clone();
    const Shape out_shape = cpu::pool2d_output_shape(x.shape(), win);
    const auto wide_dy = random_tensor<float>(Shape{n, out_shape[1], out_shape[2], 13}, 101);
    const Tensor<float> dy = wide_dy.channels(1, 1 + c), dy_copy = dy.clone();
    Tensor<float> wide_y(Shape{n, out_shape[1], out_shape[2], 14}, -7.0f);
    Tensor<float> y = wide_y.channels(2, 2 + c);
    Tensor<float> wide_dx(Shape{n, h, w, 15}, -7.0f);
    Tensor<float> dx = wide_dx.channels(4, 4 + c);
    cpu::max_pool2d_forward(x, win, y);
    cpu::max_pool2d_backward(x, dy, win, dx);
    CHECK(testing::max_abs_diff(to_double(y.clone()), pool_reference(to_double(x_copy), win, Pool::max)) == 0);
    CHECK(testing::max_abs_diff(to_double(dx.clone()),
                                max_pool_backward_reference(to_double(x_copy), to_double(dy_copy), win)) == 0);
    for (Index i = 0; i < n * out_shape[1] * out_shape[2]; ++i)
        for (Index ch = 0; ch < 14; ++ch)
            if (ch < 2 || ch >= 2 + c) CHECK(wide_y.data()[i * 14 + ch] == -7.0f);
    for (Index i = 0; i < n * h * w; ++i)
        for (Index ch = 0; ch < 15; ++ch)
            if (ch < 4 || ch >= 4 + c) CHECK(wide_dx.data()[i * 15 + ch] == -7.0f);
}

TEST_CASE("pooling rejects bad inputs naming the shapes", "[kernels][pool2d][errors]") {
    const Tensor<float> x(Shape{2, 3, 3, 4});
    Tensor<float> y(Shape{2, 1, 1, 4});
    CHECK_THROWS_WITH(cpu::max_pool2d_forward(x, window(4, 4, 1, 1, Padding::valid), y),
                      Catch::Contains("max_pool2d_forward: input 3x3 is smaller than the window (kernel 4x4, "
                                      "strides 1x1, padding 'valid')"));
    CHECK_THROWS_WITH(cpu::avg_pool2d_forward(x, window(2, 2, 0, 2, Padding::valid), y),
                      Catch::Contains("avg_pool2d_forward: invalid window (kernel 2x2, strides 0x2"));
    CHECK_THROWS_WITH(cpu::max_pool2d_forward(x, window(2, 2, 2, 2, Padding::same), y),
                      Catch::Contains("output has shape (2, 1, 1, 4), expected (2, 2, 2, 4)"));
    const Tensor<float> x_rank3(Shape{3, 3, 4});
    CHECK_THROWS_WITH(cpu::avg_pool2d_forward(x_rank3, window(2, 2, 2, 2, Padding::valid), y),
                      Catch::Contains("input must have rank 4, got shape (3, 3, 4)"));
    const Tensor<float> dy_bad(Shape{2, 1, 1, 3});
    Tensor<float> dx(x.shape());
    CHECK_THROWS_WITH(cpu::max_pool2d_backward(x, dy_bad, window(2, 2, 2, 2, Padding::valid), dx),
                      Catch::Contains("output gradient has shape (2, 1, 1, 3), expected (2, 1, 1, 4)"));
    CHECK_THROWS_WITH(cpu::avg_pool2d_backward(dy_bad, window(2, 2, 2, 2, Padding::valid), dx),
                      Catch::Contains("output gradient has shape (2, 1, 1, 3), expected (2, 1, 1, 4)"));
    const Tensor<float> dy(Shape{2, 1, 1, 4});
    Tensor<float> dx_bad(Shape{2, 3, 3, 5});
    CHECK_THROWS_WITH(cpu::max_pool2d_backward(x, dy, window(2, 2, 2, 2, Padding::valid), dx_bad),
                      Catch::Contains("input gradient has shape (2, 3, 3, 5), expected (2, 3, 3, 4)"));
    CHECK_THROWS_WITH(cpu::pool2d_output_shape(Shape{3, 3, 4}, window(2, 2, 2, 2, Padding::valid)),
                      Catch::Contains("pool2d: input must be NHWC (rank 4), got shape (3, 3, 4)"));
}

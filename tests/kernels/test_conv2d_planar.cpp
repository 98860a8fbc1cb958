// The planar input gradient (conv2d_planar.hpp) for few input channels:
// against the nested-loop reference in double and float over every filter
// group size (1 to 7 channels), kernel shapes, filter counts whole and not
// whole vectors (the register transpose and the scalar one), widths around
// and across the pixel blocks; through a ReLU mask (NaN outputs too) and
// with channel slices; finite differences through conv2d_backward; the same
// bits for every thread count; which layers it takes. Also simd::transpose.

#include <catch2/catch.hpp>

#include <cmath>
#include <limits>
#include <vector>

#include <bcnn/core/parallel.hpp>
#include <bcnn/kernels/cpu/conv2d.hpp>
#include <bcnn/kernels/cpu/conv2d_planar.hpp>
#include <bcnn/kernels/cpu/simd.hpp>

#include "support/conv_reference.hpp"
#include "support/conv_support.hpp"
#include "support/gradcheck.hpp"
#include "support/random.hpp"

using namespace bcnn;
using bcnn::testing::converted;
using bcnn::testing::max_abs;
using bcnn::testing::max_abs_diff;
using bcnn::testing::random_tensor;
using bcnn::testing::reference_input_gradient;
using bcnn::testing::relu_masked;

namespace {

template <typename T>
void check_transpose() {
    constexpr int L = cpu::simd::width<T>;
    cpu::simd::Vec<T> rows[L];
    for (int i = 0; i < L; ++i)
        for (int j = 0; j < L; ++j) rows[i][j] = T(100 * i + j);
    cpu::simd::transpose<T>(rows);
    for (int i = 0; i < L; ++i)
        for (int j = 0; j < L; ++j) CHECK(rows[i][j] == T(100 * j + i));
}

const ConvParams kSame{1, 1, Padding::same};

cpu::detail::Conv2DDims dims(const Shape& x, const Shape& w, const ConvParams& p = kSame) {
    return cpu::detail::conv2d_dims(x, w, p, "test");
}

template <typename T>
void planar_input_gradient(const Tensor<T>& w, const Tensor<T>& dy, Tensor<T>& dx,
                           const Tensor<T>* relu_output = nullptr) {
    const cpu::detail::Conv2DDims d = dims(dx.shape(), w.shape());
    REQUIRE(cpu::detail::planar_pays_input_gradient(d));
    const RowMatrix<T> mask = relu_output ? relu_output->as_rows("relu_output") : RowMatrix<T>{};
    cpu::detail::conv2d_planar_input_gradient(d, dy.as_rows("dy"), w.data(), dx.as_rows("dx"),
                                              relu_output ? &mask : nullptr);
}

struct Case {
    Index batch, h, w, c, k, kh, kw;
};

// Channels 1 to 7 (groups of 1 to 4 filters of the turned convolution: 5 is
// 3 + 2, 6 is 3 + 3, 7 is 4 + 3); filters whole vectors of floats and
// doubles (16, 32, 64) and not (1, 5, 17, 24); widths of one pixel, below,
// at and across a vector and a block of pixel vectors (up to 15 x 16 floats
// with AVX-512), 150 as in the study; 3x3, 5x5, 7x7, 1x3 and 3x1 kernels.
const Case kCases[] = {{2, 9, 13, 3, 16, 3, 3},  {1, 5, 150, 3, 16, 3, 3}, {1, 4, 130, 1, 5, 3, 3},
                       {2, 3, 17, 2, 32, 5, 5},  {1, 6, 1, 7, 9, 3, 3},    {1, 1, 1, 4, 1, 3, 3},
                       {1, 7, 33, 5, 64, 1, 3},  {1, 5, 40, 6, 17, 3, 1},  {1, 8, 250, 3, 16, 7, 7},
                       {3, 4, 16, 3, 24, 3, 3},  {1, 3, 241, 1, 32, 3, 3}, {2, 4, 64, 4, 8, 3, 3}};

}  // namespace

TEMPLATE_TEST_CASE("simd::transpose transposes a block of lanes", "[kernels][simd]", float, double) {
    check_transpose<TestType>();
}

TEST_CASE("conv2d_planar_input_gradient matches the reference in double and float", "[kernels][conv2d_planar]") {
    std::uint64_t seed = 1500;
    for (const Case& t : kCases) {
        INFO("x (" << t.batch << ", " << t.h << ", " << t.w << ", " << t.c << "), " << t.k << " filters, kernel "
                   << t.kh << 'x' << t.kw);
        const Shape x{t.batch, t.h, t.w, t.c};
        const Tensor<double> w = random_tensor<double>(Shape{t.kh, t.kw, t.c, t.k}, seed++);
        const Tensor<double> dy = random_tensor<double>(cpu::conv2d_output_shape(x, w.shape(), kSame), seed++);
        const Tensor<double> expected = reference_input_gradient(x, w, dy, kSame);
        Tensor<double> dx(x, 1e9);  // overwritten
        planar_input_gradient(w, dy, dx);
        CHECK(max_abs_diff(dx, expected) < 1e-12);
        Tensor<float> dxf(x, 1e9f);
        planar_input_gradient(converted<float>(w), converted<float>(dy), dxf);
        // at most 7 * 7 * 64 products of magnitude <= 1 per value
        CHECK(max_abs_diff(converted<double>(dxf), expected) < 1e-5 * std::max(1.0, max_abs(expected)));
    }
}

TEST_CASE("conv2d_planar_input_gradient reads dy through the ReLU mask and channel slices",
          "[kernels][conv2d_planar]") {
    const Index channels = 3;
    for (const Index filters : {16, 13}) {  // the register transpose (whole vectors of floats) and the scalar one
        INFO(filters << " filters");
        const Tensor<double> w = random_tensor<double>(Shape{3, 3, channels, filters}, 51);
        const Tensor<double> wide_dy = random_tensor<double>(Shape{2, 5, 37, filters + 16}, 52);
        const Tensor<double> dy = wide_dy.channels(16, 16 + filters);
        Tensor<double> wide_y = random_tensor<double>(Shape{2, 5, 37, filters + 3}, 53);
        wide_y.data()[0 + 1] = std::numeric_limits<double>::quiet_NaN();  // y's first value: its dy reads as 0
        const Tensor<double> y = wide_y.channels(1, 1 + filters);
        Tensor<double> wide_dx(Shape{2, 5, 37, channels + 2}, 7.0);
        Tensor<double> dx = wide_dx.channels(1, 1 + channels);
        planar_input_gradient(w, dy, dx, &y);
        const Tensor<double> expected = reference_input_gradient(dx.shape(), w, relu_masked(dy, y), kSame);
        CHECK(max_abs_diff(dx.clone(), expected) < 1e-12);
        for (const Index c : {0, 4})  // the neighbours keep their 7s
            CHECK(wide_dx.channels(c, c + 1).to_vector() == std::vector<double>(2 * 5 * 37, 7.0));

        Tensor<float> wide_dxf(wide_dx.shape(), 7.0f);
        Tensor<float> dxf = wide_dxf.channels(1, 1 + channels);
        const Tensor<float> wide_dyf = converted<float>(wide_dy), wide_yf = converted<float>(wide_y);
        const Tensor<float> yf = wide_yf.channels(1, 1 + filters);
        planar_input_gradient(converted<float>(w), wide_dyf.channels(16, 16 + filters), dxf, &yf);
        CHECK(max_abs_diff(converted<double>(dxf.clone()), expected) < 1e-5 * std::max(1.0, max_abs(expected)));
    }
}

TEST_CASE("conv2d_backward's planar input gradient agrees with finite differences",
          "[kernels][conv2d_planar][gradcheck]") {
    Tensor<double> x = random_tensor<double>(Shape{2, 6, 19, 3}, 61);
    const Tensor<double> w = random_tensor<double>(Shape{3, 3, 3, 16}, 62);
    const Tensor<double> dy = random_tensor<double>(cpu::conv2d_output_shape(x.shape(), w.shape(), kSame), 63);
    REQUIRE(cpu::detail::planar_pays_input_gradient(dims(x.shape(), w.shape())));
    Tensor<double> dx(x.shape());
    cpu::conv2d_backward(x, w, dy, kSame, &dx, nullptr, nullptr);
    const auto forward = [&] {
        Tensor<double> y(dy.shape());
        cpu::conv2d_forward(x, w, nullptr, kSame, y);
        return y;
    };
    CHECK(testing::relative_error(dx, testing::numerical_gradient(x, forward, dy)) < 1e-6);
}

TEST_CASE("conv2d_planar_input_gradient gives the same bits for every thread count", "[kernels][conv2d_planar]") {
    const Tensor<float> w = random_tensor<float>(Shape{3, 3, 3, 16}, 71);
    const Tensor<float> dy = random_tensor<float>(Shape{4, 40, 60, 16}, 72);
    const int saved = num_threads();
    set_num_threads(1);
    Tensor<float> expected(Shape{4, 40, 60, 3});
    planar_input_gradient(w, dy, expected);
    for (const int threads : {2, 3, 5}) {
        INFO(threads << " threads");
        set_num_threads(threads);
        REQUIRE(cpu::detail::direct_chunks(cpu::detail::direct_input_gradient_dims(dims(expected.shape(), w.shape()))) >
                1);
        Tensor<float> dx(expected.shape());
        planar_input_gradient(w, dy, dx);
        CHECK(max_abs_diff(converted<double>(dx), converted<double>(expected)) == 0);
    }
    set_num_threads(saved);
}

TEST_CASE("planar_pays_input_gradient takes stride-1 'same' odd kernels with fewer than 8 channels",
          "[kernels][conv2d_planar]") {
    const auto pays = [](Index channels, Index filters, Index kernel, Index stride, Padding padding) {
        return cpu::detail::planar_pays_input_gradient(cpu::detail::conv2d_dims(
            Shape{32, 150, 150, channels}, Shape{kernel, kernel, channels, filters}, ConvParams{stride, stride, padding},
            "test"));
    };
    CHECK(pays(3, 16, 3, 1, Padding::same));  // the custom CNN's first layer
    CHECK(pays(3, 64, 3, 1, Padding::same));  // VGG16's
    CHECK(pays(1, 8, 5, 1, Padding::same));
    CHECK(pays(7, 3, 3, 1, Padding::same));
    CHECK_FALSE(pays(8, 16, 3, 1, Padding::same));  // direct_pays_input_gradient's
    CHECK_FALSE(pays(3, 16, 3, 2, Padding::same));
    CHECK_FALSE(pays(3, 16, 3, 1, Padding::valid));
    CHECK_FALSE(pays(3, 16, 2, 1, Padding::same));
    CHECK_FALSE(pays(3, 16, 1, 1, Padding::same));
}

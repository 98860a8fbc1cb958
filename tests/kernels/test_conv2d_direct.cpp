// Direct convolution (conv2d_direct.hpp): forward against a nested-loop
// reference with its own Keras padding rule, in double and float, over
// kernel sizes, strides, paddings, odd image sizes and filter counts that are
// not multiples of the vector blocks; channel-slice views; agreement with
// conv2d_forward on the custom CNN's first layers.

#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <vector>

#include <bcnn/kernels/cpu/conv2d.hpp>
#include <bcnn/kernels/cpu/conv2d_direct.hpp>

#include "support/conv_reference.hpp"
#include "support/conv_support.hpp"
#include "support/gradcheck.hpp"
#include "support/random.hpp"

using namespace bcnn;
using bcnn::testing::max_abs_diff;
using bcnn::testing::random_tensor;
using bcnn::testing::converted;
using bcnn::testing::max_abs;
using bcnn::testing::for_each_tap_inside;
using bcnn::testing::reference_forward;
using bcnn::testing::reference_input_gradient;

namespace {

template <typename T>
void direct_forward(const Tensor<T>& x, const Tensor<T>& w, const Tensor<T>* b, const ConvParams& p,
                    cpu::ActivationFn activation, Tensor<T>& y) {
    const cpu::detail::Conv2DDims d = cpu::detail::conv2d_dims(x.shape(), w.shape(), p, "test");
    cpu::detail::conv2d_direct_forward(d, x.as_rows("x"), w.data(), b ? b->data() : nullptr, activation,
                                       y.as_rows("y"));
}

template <typename T>
Tensor<T> direct_forward(const Tensor<T>& x, const Tensor<T>& w, const Tensor<T>* b, const ConvParams& p,
                         cpu::ActivationFn activation) {
    Tensor<T> y(cpu::conv2d_output_shape(x.shape(), w.shape(), p));
    direct_forward(x, w, b, p, activation, y);
    return y;
}

struct Case {
    Index batch, h, w, c, k, kh, kw, sh, sw;
    Padding padding;
};

// Every kernel shape x stride x padding x image size, with channel and
// filter counts, batch, bias and activation cycling through their values.
std::vector<Case> forward_cases() {
    const Index kernels[][2] = {{3, 3}, {5, 5}, {1, 3}, {7, 7}, {1, 1}, {3, 1}};
    const Index strides[][2] = {{1, 1}, {2, 2}, {1, 2}, {3, 3}};
    const Index sizes[][2] = {{1, 1}, {2, 2}, {5, 5}, {13, 13}, {37, 37}, {5, 13}, {1, 37}, {13, 2}};
    const Index channels[] = {1, 3, 5, 16};
    const Index filters[] = {8, 16, 24, 32, 5, 40, 64, 1, 17};
    std::vector<Case> cases;
    int i = 0;
    for (const auto& kernel : kernels)
        for (const auto& stride : strides)
            for (const Padding padding : {Padding::same, Padding::valid})
                for (const auto& size : sizes) {
                    if (padding == Padding::valid && (size[0] < kernel[0] || size[1] < kernel[1])) continue;
                    ++i;
                    cases.push_back(Case{1 + i % 3, size[0], size[1], channels[i % 4], filters[i % 9], kernel[0],
                                         kernel[1], stride[0], stride[1], padding});
                }
    return cases;
}

}  // namespace

TEST_CASE("conv2d_direct_forward matches the nested-loop reference in double and float",
          "[kernels][conv2d_direct]") {
    int seed = 0;
    for (const Case& t : forward_cases()) {
        ++seed;
        const ConvParams p{t.sh, t.sw, t.padding};
        const bool with_bias = seed % 2 == 0;
        const cpu::ActivationFn activation = seed % 3 == 0 ? cpu::ActivationFn::relu : cpu::ActivationFn::linear;
        INFO("x (" << t.batch << ", " << t.h << ", " << t.w << ", " << t.c << "), kernel " << t.kh << 'x' << t.kw
                   << ", " << t.k << " filters, strides " << t.sh << 'x' << t.sw << ", "
                   << padding_name(t.padding) << ", bias " << with_bias << ", relu "
                   << (activation == cpu::ActivationFn::relu));
        const Tensor<double> x = random_tensor<double>(Shape{t.batch, t.h, t.w, t.c}, 100 + seed);
        const Tensor<double> w = random_tensor<double>(Shape{t.kh, t.kw, t.c, t.k}, 200 + seed);
        const Tensor<double> b = random_tensor<double>(Shape{t.k}, 300 + seed);
        const Tensor<double>* bias = with_bias ? &b : nullptr;
        const Tensor<double> expected = reference_forward(x, w, bias, p, activation);

        const Tensor<double> y = direct_forward(x, w, bias, p, activation);
        REQUIRE(y.shape() == expected.shape());
        CHECK(max_abs_diff(y, expected) < 1e-12);

        // float: each output sums at most 7*7*16 products of values in [-1, 1]
        // (plus a bias); float rounding leaves them within 1e-5 of their scale.
        const Tensor<float> xf = converted<float>(x), wf = converted<float>(w), bf = converted<float>(b);
        const Tensor<float> yf = direct_forward(xf, wf, with_bias ? &bf : nullptr, p, activation);
        CHECK(max_abs_diff(converted<double>(yf), expected) < 1e-5 * std::max(1.0, max_abs(expected)));
    }
}

TEST_CASE("conv2d_direct_forward overwrites the output and keeps relu's NaN", "[kernels][conv2d_direct]") {
    const ConvParams p{1, 1, Padding::same};
    Tensor<double> x = random_tensor<double>(Shape{1, 5, 9, 3}, 1);
    const Tensor<double> w = random_tensor<double>(Shape{3, 3, 3, 16}, 2);
    x(0, 2, 4, 1) = std::nan("");
    Tensor<double> y(cpu::conv2d_output_shape(x.shape(), w.shape(), p));
    y.fill(1e9);
    direct_forward<double>(x, w, nullptr, p, cpu::ActivationFn::relu, y);
    for (Index h = 0; h < 5; ++h)
        for (Index col = 0; col < 9; ++col)
            for (Index k = 0; k < 16; ++k) {
                const bool touched = std::abs(h - 2) <= 1 && std::abs(col - 4) <= 1;
                INFO("pixel " << h << ", " << col << ", filter " << k);
                CHECK(std::isnan(y(0, h, col, k)) == touched);
                if (!touched) CHECK((y(0, h, col, k) >= 0 && y(0, h, col, k) < 1e9));
            }
}

TEST_CASE("conv2d_direct_forward reads and writes channel slices of wider buffers", "[kernels][conv2d_direct]") {
    for (const Index filters : {8, 24, 5}) {
        for (const ConvParams p : {ConvParams{1, 1, Padding::same}, ConvParams{2, 2, Padding::valid}}) {
            const Index channels = 3;
            INFO(filters << " filters, strides " << p.stride_h);
            const Tensor<double> wide_x = random_tensor<double>(Shape{2, 11, 9, channels + 4}, 5);
            const Tensor<double> x = wide_x.channels(2, 2 + channels);
            const Tensor<double> w = random_tensor<double>(Shape{3, 3, channels, filters}, 6);
            const Tensor<double> b = random_tensor<double>(Shape{filters}, 7);
            const Shape out = cpu::conv2d_output_shape(x.shape(), w.shape(), p);
            Tensor<double> wide_y = random_tensor<double>(Shape{out[0], out[1], out[2], filters + 5}, 8);
            const Tensor<double> before = wide_y.clone();
            Tensor<double> y = wide_y.channels(3, 3 + filters);
            direct_forward(x, w, &b, p, cpu::ActivationFn::relu, y);
            CHECK(max_abs_diff(y.clone(), reference_forward(x.clone(), w, &b, p, cpu::ActivationFn::relu)) < 1e-12);
            CHECK(max_abs_diff(wide_y.channels(0, 3).clone(), before.channels(0, 3).clone()) == 0);
            CHECK(max_abs_diff(wide_y.channels(3 + filters, filters + 5).clone(),
                               before.channels(3 + filters, filters + 5).clone()) == 0);
        }
    }
}

TEST_CASE("conv2d_direct_forward agrees with conv2d_forward on the custom CNN's first layers",
          "[kernels][conv2d_direct]") {
    const ConvParams p{1, 1, Padding::same};
    for (const Index channels : {3, 16}) {
        INFO(channels << " -> 16 channels @150x150");
        const Tensor<float> x = random_tensor<float>(Shape{2, 150, 150, channels}, 11);
        const Tensor<float> w = random_tensor<float>(Shape{3, 3, channels, 16}, 12);
        const Tensor<float> b = random_tensor<float>(Shape{16}, 13);
        Tensor<float> expected(cpu::conv2d_output_shape(x.shape(), w.shape(), p));
        cpu::conv2d_forward(x, w, &b, p, expected, cpu::ActivationFn::relu);
        const Tensor<float> y = direct_forward(x, w, &b, p, cpu::ActivationFn::relu);
        // Both sum 9 * C + 1 terms of magnitude <= 1 in float, in different orders
        // (conv2d_forward takes Winograd for 16 -> 16, within ~1e-5 of the scale).
        const Tensor<double> yd = converted<double>(y), ed = converted<double>(expected);
        CHECK(max_abs_diff(yd, ed) < 2e-5 * std::max(1.0, max_abs(ed)));
    }
}

TEST_CASE("conv2d_direct_forward streams a large aligned output: the same bits as plain stores",
          "[kernels][conv2d_direct]") {
    const ConvParams p{1, 1, Padding::same};
    const Index filters = 64;  // 1 x 260 x 256 x 64 floats: 17 MB, over kDirectStreamBytes
    const Tensor<float> x = random_tensor<float>(Shape{1, 260, 256, 3}, 14);
    const Tensor<float> w = random_tensor<float>(Shape{3, 3, 3, filters}, 15);
    const Tensor<float> b = random_tensor<float>(Shape{filters}, 16);
    const cpu::detail::Conv2DDims d = cpu::detail::conv2d_dims(x.shape(), w.shape(), p, "test");
    Tensor<float> streamed(d.output_shape(), 1e9f);
    REQUIRE(cpu::detail::direct_streams_output(d, streamed.as_rows("y")));
    direct_forward(x, w, &b, p, cpu::ActivationFn::relu, streamed);
    Tensor<float> wide(Shape{1, 260, 256, filters + 1}, 1e9f);  // rows one float apart from whole vectors
    Tensor<float> stored = wide.channels(1, 1 + filters);
    REQUIRE_FALSE(cpu::detail::direct_streams_output(d, stored.as_rows("y")));
    direct_forward(x, w, &b, p, cpu::ActivationFn::relu, stored);
    CHECK(max_abs_diff(converted<double>(streamed), converted<double>(stored.clone())) == 0);
}

TEST_CASE("direct_pays picks the layers with few input channels", "[kernels][conv2d_direct]") {
    const auto dims = [](Index channels, Index filters, Index kernel, Index stride) {
        return cpu::detail::conv2d_dims(Shape{32, 150, 150, channels}, Shape{kernel, kernel, channels, filters},
                                        ConvParams{stride, stride, Padding::same}, "test");
    };
    CHECK(cpu::detail::direct_pays(dims(3, 16, 3, 1)));
    CHECK(cpu::detail::direct_pays(dims(3, 64, 3, 1)));
    CHECK(cpu::detail::direct_pays(dims(8, 32, 5, 2)));
    CHECK(cpu::detail::direct_pays(dims(3, 64, 7, 2)));
    CHECK_FALSE(cpu::detail::direct_pays(dims(3, 64, 9, 1)));
    CHECK(cpu::detail::direct_pays(dims(16, 16, 3, 1)));
    CHECK(cpu::detail::direct_pays(dims(24, 64, 3, 1)));
    CHECK_FALSE(cpu::detail::direct_pays(dims(16, 96, 3, 1)));
    CHECK_FALSE(cpu::detail::direct_pays(dims(32, 32, 3, 1)));
    CHECK_FALSE(cpu::detail::direct_pays(dims(32, 64, 3, 1)));
    CHECK_FALSE(cpu::detail::direct_pays(dims(3, 16, 1, 1)));
    CHECK(cpu::detail::direct_pays_weights_gradient(dims(3, 16, 3, 1)));
    CHECK(cpu::detail::direct_pays_weights_gradient(dims(16, 16, 3, 1)));
    CHECK(cpu::detail::direct_pays_weights_gradient(dims(3, 32, 3, 2)));
    CHECK(cpu::detail::direct_pays_weights_gradient(dims(3, 64, 3, 1)));
    CHECK(cpu::detail::direct_pays_weights_gradient(dims(3, 64, 7, 2)));
    CHECK(cpu::detail::direct_pays_weights_gradient(dims(3, 96, 3, 1)));
    CHECK(cpu::detail::direct_pays_weights_gradient(dims(16, 32, 3, 1)));
    CHECK(cpu::detail::direct_pays_weights_gradient(dims(64, 128, 3, 1)));
    CHECK_FALSE(cpu::detail::direct_pays_weights_gradient(dims(128, 128, 3, 1)));
    CHECK_FALSE(cpu::detail::direct_pays_weights_gradient(dims(64, 256, 3, 1)));
    CHECK_FALSE(cpu::detail::direct_pays_weights_gradient(dims(16, 16, 1, 1)));
    CHECK_FALSE(cpu::detail::direct_pays_weights_gradient(dims(3, 4, 3, 1)));
}

TEST_CASE("direct_pays_small_map takes small maps with few filters, where Winograd's tiles are mostly padding",
          "[kernels][conv2d_direct]") {
    const auto dims = [](Index size, Index channels, Index filters) {
        return cpu::detail::conv2d_dims(Shape{32, size, size, channels}, Shape{3, 3, channels, filters},
                                        ConvParams{1, 1, Padding::same}, "test");
    };
    for (const Index size : {3, 4, 5, 6, 9, 10}) CHECK(cpu::detail::direct_pays_small_map(dims(size, 128, 32)));
    CHECK(cpu::detail::direct_pays_small_map(dims(9, 512, 64)));
    CHECK_FALSE(cpu::detail::direct_pays_small_map(dims(9, 512, 65)));  // too many filters
    CHECK_FALSE(cpu::detail::direct_pays_small_map(dims(7, 128, 32)));  // 49 of 64 tile outputs used
    CHECK_FALSE(cpu::detail::direct_pays_small_map(dims(8, 128, 32)));
    CHECK_FALSE(cpu::detail::direct_pays_small_map(dims(18, 128, 32)));
    CHECK_FALSE(cpu::detail::direct_pays_small_map(dims(2, 128, 32)));  // 4 outputs
    CHECK_FALSE(cpu::detail::direct_pays_small_map(cpu::detail::conv2d_dims(
        Shape{32, 9, 9, 128}, Shape{1, 1, 128, 32}, ConvParams{1, 1, Padding::same}, "test")));  // a plain GEMM
}

TEST_CASE("conv2d_forward on small maps with many channels (the direct kernels) matches the reference",
          "[kernels][conv2d_direct]") {
    const ConvParams p{1, 1, Padding::same};
    std::uint64_t seed = 700;
    for (const Index size : {4, 9, 10})
        for (const Index filters : {32, 17}) {
            INFO(size << "x" << size << ", 128 -> " << filters);
            const Tensor<double> x = random_tensor<double>(Shape{3, size, size, 128}, seed++);
            const Tensor<double> w = random_tensor<double>(Shape{3, 3, 128, filters}, seed++);
            const Tensor<double> b = random_tensor<double>(Shape{filters}, seed++);
            REQUIRE(cpu::detail::direct_pays_small_map(cpu::detail::conv2d_dims(x.shape(), w.shape(), p, "test")));
            const Tensor<double> expected = reference_forward(x, w, &b, p, cpu::ActivationFn::relu);
            Tensor<double> y(expected.shape());
            cpu::conv2d_forward(x, w, &b, p, y, cpu::ActivationFn::relu);
            CHECK(max_abs_diff(y, expected) < 1e-12);
            Tensor<float> yf(expected.shape());
            const Tensor<float> bf = converted<float>(b);
            cpu::conv2d_forward(converted<float>(x), converted<float>(w), &bf, p, yf, cpu::ActivationFn::relu);
            // 3 * 3 * 128 products of magnitude <= 1 and a bias per value
            CHECK(max_abs_diff(converted<double>(yf), expected) < 1e-5 * std::max(1.0, max_abs(expected)));
        }
}

namespace {

// d_weights[kh, kw, c, k] = sum over output pixels of x[n, ih, iw, c] * dy[n, oh, ow, k]
// (the input pixel of tap (kh, kw), skipped when it lies in the padding).
Tensor<double> reference_weights_gradient(const Tensor<double>& x, const Shape& w, const Tensor<double>& dy,
                                          const ConvParams& p) {
    Tensor<double> dw(w);
    // Raw pointers into contiguous copies: Tensor::operator() is too slow for these loops.
    const Tensor<double> xc = x.clone(), dyc = dy.clone();
    const double *xd = xc.data(), *dyd = dyc.data();
    double* dwd = dw.data();
    const Index channels = w[2], filters = w[3], out_h = dy.dim(1), out_w = dy.dim(2);
    const auto add_tap = [&](Index n, Index oh, Index ow, Index kh, Index kw, Index ih, Index iw) {
        const double* xp = xd + ((n * x.dim(1) + ih) * x.dim(2) + iw) * channels;
        const double* dyp = dyd + ((n * out_h + oh) * out_w + ow) * filters;
        double* dwp = dwd + (kh * w[1] + kw) * channels * filters;
        for (Index c = 0; c < channels; ++c)
            for (Index k = 0; k < filters; ++k) dwp[c * filters + k] += xp[c] * dyp[k];
    };
    for_each_tap_inside(x.shape(), w[0], w[1], p, add_tap);
    return dw;
}

template <typename T>
Tensor<T> direct_weights_gradient(const Tensor<T>& x, const Shape& w, const Tensor<T>& dy, const ConvParams& p) {
    const cpu::detail::Conv2DDims d = cpu::detail::conv2d_dims(x.shape(), w, p, "test");
    Tensor<T> dw(w, T(1e9));  // overwritten
    cpu::detail::conv2d_direct_weights_gradient(d, x.as_rows("x"), dy.as_rows("dy"), dw.data());
    return dw;
}

}  // namespace

TEST_CASE("conv2d_direct_weights_gradient matches the reference in double and float",
          "[kernels][conv2d_direct]") {
    int seed = 0;
    for (const Case& t : forward_cases()) {
        ++seed;
        const ConvParams p{t.sh, t.sw, t.padding};
        INFO("x (" << t.batch << ", " << t.h << ", " << t.w << ", " << t.c << "), kernel " << t.kh << 'x' << t.kw
                   << ", " << t.k << " filters, strides " << t.sh << 'x' << t.sw << ", "
                   << padding_name(t.padding));
        const Shape w{t.kh, t.kw, t.c, t.k};
        const Tensor<double> x = random_tensor<double>(Shape{t.batch, t.h, t.w, t.c}, 400 + seed);
        const Tensor<double> dy = random_tensor<double>(cpu::conv2d_output_shape(x.shape(), w, p), 500 + seed);
        const Tensor<double> expected = reference_weights_gradient(x, w, dy, p);
        CHECK(max_abs_diff(direct_weights_gradient(x, w, dy, p), expected) < 1e-12);
        // float: each sums at most batch * OH * OW <= 3 * 37 * 37 products of magnitude <= 1.
        const Tensor<float> dwf = direct_weights_gradient(converted<float>(x), w, converted<float>(dy), p);
        CHECK(max_abs_diff(converted<double>(dwf), expected) < 1e-5 * std::max(1.0, max_abs(expected)));
    }
}

TEST_CASE("conv2d_direct_weights_gradient agrees with finite differences and reads channel slices",
          "[kernels][conv2d_direct][gradcheck]") {
    for (const ConvParams p : {ConvParams{1, 1, Padding::same}, ConvParams{2, 1, Padding::valid}}) {
        INFO("strides " << p.stride_h << 'x' << p.stride_w << ", " << padding_name(p.padding));
        const Index channels = 3, filters = 10;
        const Tensor<double> wide_x = random_tensor<double>(Shape{2, 7, 6, channels + 3}, 21);
        const Tensor<double> x = wide_x.channels(1, 1 + channels);
        const Tensor<double> w = random_tensor<double>(Shape{3, 2, channels, filters}, 22);
        const Shape out = cpu::conv2d_output_shape(x.shape(), w.shape(), p);
        const Tensor<double> wide_dy = random_tensor<double>(Shape{out[0], out[1], out[2], filters + 4}, 23);
        const Tensor<double> dy = wide_dy.channels(2, 2 + filters);
        const Tensor<double> dw = direct_weights_gradient(x, w.shape(), dy, p);
        const auto forward = [&] { return direct_forward<double>(x, w, nullptr, p, cpu::ActivationFn::linear); };
        CHECK(testing::relative_error(dw, testing::numerical_gradient(w, forward, dy.clone())) < 1e-6);
    }
}

TEST_CASE("conv2d_direct_weights_gradient is deterministic for each thread count",
          "[kernels][conv2d_direct]") {
    const ConvParams p{1, 1, Padding::same};
    // 4 * 64 * 64 pixels x 3 * 3 * 5 x 32 = 23.6M multiply-adds: enough work
    // for the chunks of 5 threads (kChunksPerThread each).
    const Tensor<double> x = random_tensor<double>(Shape{4, 64, 64, 5}, 31);
    const Shape w{3, 3, 5, 32};
    const Tensor<double> dy = random_tensor<double>(cpu::conv2d_output_shape(x.shape(), w, p), 32);
    const Tensor<double> expected = reference_weights_gradient(x, w, dy, p);
    const int saved = num_threads();
    for (const int threads : {1, 2, 3, 5}) {
        INFO(threads << " threads");
        set_num_threads(threads);
        REQUIRE(cpu::detail::direct_chunks(cpu::detail::conv2d_dims(x.shape(), w, p, "test")) == chunks_per_team());
        const Tensor<double> first = direct_weights_gradient(x, w, dy, p);
        CHECK(testing::relative_error(first, expected) < 1e-12);
        CHECK(max_abs_diff(direct_weights_gradient(x, w, dy, p), first) == 0);
    }
    set_num_threads(saved);
}

namespace {

// Filter counts around the vector blocks (8 and 16 floats, 4 and 8 doubles
// on AVX2; 16 and 32 floats on AVX-512): one, partial and full vectors,
// partial second vectors, several blocks; widths around and below the pixel
// blocks (6 and 12 pixels); the 7x7/2 'valid' stem and 'same' strided windows.
struct BlockCase {
    Index kh, kw, sh, sw;
    Padding padding;
};

const Index kBlockFilters[] = {1, 7, 8, 9, 17, 33, 64, 65};
const Index kBlockWidths[] = {1, 2, 5, 6, 7, 11, 12, 13, 25};
const BlockCase kBlockCases[] = {{3, 3, 1, 1, Padding::same}, {3, 3, 2, 2, Padding::same},
                                 {7, 7, 2, 2, Padding::valid}, {7, 7, 2, 2, Padding::same},
                                 {5, 3, 1, 2, Padding::valid}};

}  // namespace

TEST_CASE("conv2d_direct forward and weights gradient cover the filter and pixel blocks",
          "[kernels][conv2d_direct]") {
    int seed = 0;
    for (const BlockCase& b : kBlockCases)
        for (const Index filters : kBlockFilters)
            for (const Index width : kBlockWidths) {
                ++seed;
                const Index channels = 1 + seed % 4;
                const ConvParams p{b.sh, b.sw, b.padding};
                // 'valid' needs the kernel inside the image: at least kw columns.
                const Index in_w = b.padding == Padding::valid ? width + b.kw - 1 : width;
                const Index in_h = b.kh + seed % 3;
                INFO("x (2, " << in_h << ", " << in_w << ", " << channels << "), kernel " << b.kh << 'x' << b.kw
                              << ", " << filters << " filters, strides " << b.sh << 'x' << b.sw << ", "
                              << padding_name(b.padding));
                const Tensor<double> x = random_tensor<double>(Shape{2, in_h, in_w, channels}, 600 + seed);
                const Tensor<double> w = random_tensor<double>(Shape{b.kh, b.kw, channels, filters}, 700 + seed);
                const Tensor<double> bias = random_tensor<double>(Shape{filters}, 800 + seed);
                const cpu::ActivationFn activation =
                    seed % 2 ? cpu::ActivationFn::relu : cpu::ActivationFn::linear;
                const Tensor<double> expected = reference_forward(x, w, &bias, p, activation);
                CHECK(max_abs_diff(direct_forward(x, w, &bias, p, activation), expected) < 1e-12);
                const Tensor<float> bf = converted<float>(bias);
                const Tensor<float> yf = direct_forward(converted<float>(x), converted<float>(w), &bf, p, activation);
                CHECK(max_abs_diff(converted<double>(yf), expected) < 1e-5 * std::max(1.0, max_abs(expected)));

                const Tensor<double> dy = random_tensor<double>(expected.shape(), 900 + seed);
                const Tensor<double> dw = reference_weights_gradient(x, w.shape(), dy, p);
                CHECK(max_abs_diff(direct_weights_gradient(x, w.shape(), dy, p), dw) < 1e-12);
                const Tensor<float> dwf = direct_weights_gradient(converted<float>(x), w.shape(), converted<float>(dy), p);
                CHECK(max_abs_diff(converted<double>(dwf), dw) < 1e-5 * std::max(1.0, max_abs(dw)));
            }
}

TEST_CASE("conv2d_direct reads x and dy from and writes y into channel slices, any filter count",
          "[kernels][conv2d_direct]") {
    for (const Index filters : {7, 16, 17, 33, 65}) {
        for (const ConvParams p : {ConvParams{1, 1, Padding::same}, ConvParams{2, 2, Padding::valid}}) {
            const Index channels = 3, kernel = p.stride_h == 2 ? 7 : 3;
            INFO(filters << " filters, kernel " << kernel << ", strides " << p.stride_h);
            const Tensor<float> wide_x = random_tensor<float>(Shape{2, 15, 14, channels + 5}, 41);
            const Tensor<float> x = wide_x.channels(4, 4 + channels);
            const Tensor<float> w = random_tensor<float>(Shape{kernel, kernel, channels, filters}, 42);
            const Tensor<float> b = random_tensor<float>(Shape{filters}, 43);
            const Shape out = cpu::conv2d_output_shape(x.shape(), w.shape(), p);
            Tensor<float> wide_y = random_tensor<float>(Shape{out[0], out[1], out[2], filters + 6}, 44);
            const Tensor<float> before = wide_y.clone();
            Tensor<float> y = wide_y.channels(1, 1 + filters);
            direct_forward(x, w, &b, p, cpu::ActivationFn::linear, y);
            const Tensor<double> expected = reference_forward(converted<double>(x.clone()), converted<double>(w),
                                                              nullptr, p, cpu::ActivationFn::linear);
            Tensor<double> with_bias = expected.clone();
            for (Index i = 0; i < with_bias.numel() / filters; ++i)
                for (Index k = 0; k < filters; ++k) with_bias.data()[i * filters + k] += b(k);
            CHECK(max_abs_diff(converted<double>(y.clone()), with_bias) < 1e-5 * std::max(1.0, max_abs(with_bias)));
            CHECK(max_abs_diff(wide_y.channels(0, 1).clone(), before.channels(0, 1).clone()) == 0);
            CHECK(max_abs_diff(wide_y.channels(1 + filters, filters + 6).clone(),
                               before.channels(1 + filters, filters + 6).clone()) == 0);

            const Tensor<float> dy = wide_y.channels(2, 2 + filters);
            const Tensor<double> dw =
                reference_weights_gradient(converted<double>(x.clone()), w.shape(), converted<double>(dy.clone()), p);
            const Tensor<float> dwf = direct_weights_gradient(x, w.shape(), dy, p);
            CHECK(max_abs_diff(converted<double>(dwf), dw) < 1e-5 * std::max(1.0, max_abs(dw)));
        }
    }
}

TEST_CASE("conv2d_direct_weights_gradient agrees with finite differences on the 7x7/2 stem and odd filters",
          "[kernels][conv2d_direct][gradcheck]") {
    for (const Index filters : {4, 9, 17}) {
        for (const ConvParams p : {ConvParams{2, 2, Padding::valid}, ConvParams{2, 2, Padding::same}}) {
            INFO(filters << " filters, 7x7 strides 2, " << padding_name(p.padding));
            const Tensor<double> x = random_tensor<double>(Shape{1, 11, 10, 3}, 51);
            const Tensor<double> w = random_tensor<double>(Shape{7, 7, 3, filters}, 52);
            const Tensor<double> dy =
                random_tensor<double>(cpu::conv2d_output_shape(x.shape(), w.shape(), p), 53);
            const Tensor<double> dw = direct_weights_gradient(x, w.shape(), dy, p);
            const auto forward = [&] { return direct_forward<double>(x, w, nullptr, p, cpu::ActivationFn::linear); };
            CHECK(testing::relative_error(dw, testing::numerical_gradient(w, forward, dy)) < 1e-6);
        }
    }
}

namespace {

template <typename T>
void direct_input_gradient(const Tensor<T>& w, const Tensor<T>& dy, const ConvParams& p, Tensor<T>& dx) {
    const cpu::detail::Conv2DDims d = cpu::detail::conv2d_dims(dx.shape(), w.shape(), p, "test");
    REQUIRE(cpu::detail::direct_pays_input_gradient(d));
    cpu::detail::conv2d_direct_input_gradient(d, dy.as_rows("dy"), w.data(), dx.as_rows("dx"));
}

}  // namespace

TEST_CASE("conv2d_direct_input_gradient matches the reference in double and float",
          "[kernels][conv2d_direct]") {
    const ConvParams p{1, 1, Padding::same};
    // (batch, h, w, channels, filters, kernel): channel and filter counts around
    // the vector blocks, images narrower than a pixel block, odd kernels.
    const Index cases[][6] = {{2, 9, 13, 16, 16, 3}, {1, 5, 4, 9, 17, 3},  {2, 7, 1, 24, 8, 3},
                              {1, 1, 1, 8, 12, 3},   {1, 11, 6, 33, 17, 5}, {3, 4, 20, 64, 12, 3}};
    std::uint64_t seed = 900;
    for (const auto& t : cases) {
        INFO("x (" << t[0] << ", " << t[1] << ", " << t[2] << ", " << t[3] << "), " << t[4] << " filters, kernel "
                   << t[5]);
        const Shape x{t[0], t[1], t[2], t[3]};
        const Tensor<double> w = random_tensor<double>(Shape{t[5], t[5], t[3], t[4]}, seed++);
        const Tensor<double> dy = random_tensor<double>(cpu::conv2d_output_shape(x, w.shape(), p), seed++);
        const Tensor<double> expected = reference_input_gradient(x, w, dy, p);
        Tensor<double> dx(x, 1e9);  // overwritten
        direct_input_gradient(w, dy, p, dx);
        CHECK(max_abs_diff(dx, expected) < 1e-12);
        Tensor<float> dxf(x, 1e9f);
        direct_input_gradient(converted<float>(w), converted<float>(dy), p, dxf);
        // at most 5 * 5 * 64 products of magnitude <= 1 per value
        CHECK(max_abs_diff(converted<double>(dxf), expected) < 1e-5 * std::max(1.0, max_abs(expected)));
    }
}

TEST_CASE("conv2d_backward's direct input gradient agrees with finite differences and channel slices",
          "[kernels][conv2d_direct][gradcheck]") {
    const ConvParams p{1, 1, Padding::same};
    const Index channels = 9, filters = 10;
    const Tensor<double> wide_x = random_tensor<double>(Shape{2, 6, 7, channels + 3}, 41);
    const Tensor<double> x = wide_x.channels(1, 1 + channels);
    const Tensor<double> w = random_tensor<double>(Shape{3, 3, channels, filters}, 42);
    const Shape out = cpu::conv2d_output_shape(x.shape(), w.shape(), p);
    const Tensor<double> wide_dy = random_tensor<double>(Shape{out[0], out[1], out[2], filters + 4}, 43);
    const Tensor<double> dy = wide_dy.channels(2, 2 + filters);
    Tensor<double> wide_dx(Shape{2, 6, 7, channels + 5}, 7.0);
    Tensor<double> dx = wide_dx.channels(3, 3 + channels);
    REQUIRE(cpu::detail::direct_pays_input_gradient(cpu::detail::conv2d_dims(x.shape(), w.shape(), p, "test")));
    cpu::conv2d_backward(x, w, dy, p, &dx, nullptr, nullptr);
    Tensor<double> x_contiguous = x.clone();
    const auto forward = [&] {
        return direct_forward<double>(x_contiguous, w, nullptr, p, cpu::ActivationFn::linear);
    };
    CHECK(testing::relative_error(dx.clone(), testing::numerical_gradient(x_contiguous, forward, dy.clone())) <
          1e-6);
    for (const Index c : {0, 1, 2, 12, 13})  // the neighbours keep their 7s
        CHECK(wide_dx.channels(c, c + 1).to_vector() == std::vector<double>(2 * 6 * 7, 7.0));
}

TEST_CASE("direct_pays_input_gradient takes stride-1 'same' odd kernels only", "[kernels][conv2d_direct]") {
    const auto dims = [](Index channels, Index filters, Index kernel, Index stride, Padding padding) {
        return cpu::detail::conv2d_dims(Shape{32, 150, 150, channels}, Shape{kernel, kernel, channels, filters},
                                        ConvParams{stride, stride, padding}, "test");
    };
    CHECK(cpu::detail::direct_pays_input_gradient(dims(16, 16, 3, 1, Padding::same)));
    CHECK(cpu::detail::direct_pays_input_gradient(dims(32, 16, 5, 1, Padding::same)));
    CHECK_FALSE(cpu::detail::direct_pays_input_gradient(dims(16, 16, 3, 2, Padding::same)));
    CHECK_FALSE(cpu::detail::direct_pays_input_gradient(dims(16, 16, 3, 1, Padding::valid)));
    CHECK_FALSE(cpu::detail::direct_pays_input_gradient(dims(16, 16, 2, 1, Padding::same)));
    CHECK_FALSE(cpu::detail::direct_pays_input_gradient(dims(3, 16, 3, 1, Padding::same)));   // 3 filters turned
    CHECK_FALSE(cpu::detail::direct_pays_input_gradient(dims(64, 64, 3, 1, Padding::same)));  // 64 channels turned
    CHECK_FALSE(cpu::detail::direct_pays_input_gradient(dims(16, 16, 1, 1, Padding::same)));
}

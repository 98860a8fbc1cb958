// conv2d_relu_max_pool_forward (conv2d_max_pool.hpp): narrow Winograd's
// ReLU convolution with its 2x2 max pooling in one pass, without the
// convolution's output: the pooled output against conv2d_forward then
// max_pool2d_forward bit for bit (NaN included) and against a plain loop,
// and the positions it keeps through the gradient they give
// (max_pool2d_relu_backward_from_positions against max_pool2d_relu_backward
// of the convolution's output), in float and double over odd sizes; finite
// differences of the pooled output against the layer pair's backward; which
// convolutions and poolings it takes; errors.

#include <catch2/catch.hpp>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <vector>

#include <bcnn/kernels/cpu/conv2d_max_pool.hpp>

#include "support/conv_support.hpp"
#include "support/gradcheck.hpp"
#include "support/random.hpp"

using namespace bcnn;
using bcnn::testing::ConvAlgorithmScope;
using bcnn::testing::random_tensor;

namespace {

const ConvParams kSame{1, 1, Padding::same};
const Window2D kPool{2, 2, 2, 2, Padding::valid};

template <typename T>
bool same_bits(const Tensor<T>& a, const Tensor<T>& b) {
    return a.shape() == b.shape() &&
           std::memcmp(a.data(), b.data(), static_cast<std::size_t>(a.numel()) * sizeof(T)) == 0;
}

// The fused forward's outputs.
template <typename T>
struct Fused {
    Tensor<T> pooled;
    Tensor<std::uint8_t> positions;
};

template <typename T>
Fused<T> fused(const Tensor<T>& x, const Tensor<T>& w, const Tensor<T>& b) {
    const Shape pooled = cpu::pool2d_output_shape(cpu::conv2d_output_shape(x.shape(), w.shape(), kSame), kPool);
    Fused<T> o{Tensor<T>::uninitialized(pooled), Tensor<std::uint8_t>::uninitialized(pooled)};
    cpu::conv2d_relu_max_pool_forward(x, w, &b, kSame, kPool, o.pooled, o.positions);
    return o;
}

// The two kernels apart: the convolution's output and its pooling.
template <typename T>
struct Apart {
    Tensor<T> y, pooled;
};

template <typename T>
Apart<T> apart(const Tensor<T>& x, const Tensor<T>& w, const Tensor<T>& b) {
    Apart<T> o{Tensor<T>(cpu::conv2d_output_shape(x.shape(), w.shape(), kSame)), Tensor<T>()};
    cpu::conv2d_forward(x, w, &b, kSame, o.y, cpu::ActivationFn::relu);
    o.pooled = Tensor<T>(cpu::pool2d_output_shape(o.y.shape(), kPool));
    cpu::max_pool2d_forward(o.y, kPool, o.pooled);
    return o;
}

// The gradient before the ReLU from the fused forward's positions equals
// max_pool2d_relu_backward's from the convolution's output, bit for bit, for
// an output gradient with no zeros; the positions are window places or
// kNoPoolGradient. Returns how many are kNoPoolGradient.
template <typename T>
Index check_positions(const Fused<T>& got, const Apart<T>& expected, std::uint64_t seed) {
    const auto dy = random_tensor<T>(got.pooled.shape(), seed, T(0.5), T(1.5));
    Tensor<T> from_positions(expected.y.shape(), T(99)), from_output(expected.y.shape(), T(99));
    cpu::max_pool2d_relu_backward_from_positions(got.positions, dy, kPool, from_positions);
    cpu::max_pool2d_relu_backward(expected.y, dy, kPool, from_output);
    CHECK(same_bits(from_positions, from_output));
    Index inactive = 0;
    for (Index i = 0; i < got.positions.numel(); ++i) {
        const std::uint8_t position = got.positions.data()[i];
        REQUIRE((position < 4 || position == cpu::kNoPoolGradient));
        inactive += position == cpu::kNoPoolGradient;
    }
    return inactive;
}

// The 2x2/2 'valid' max pooling of y by a plain loop.
template <typename T>
Tensor<T> reference_pool(const Tensor<T>& y) {
    Tensor<T> pooled(Shape{y.dim(0), y.dim(1) / 2, y.dim(2) / 2, y.dim(3)});
    for (Index n = 0; n < pooled.dim(0); ++n)
        for (Index i = 0; i < pooled.dim(1); ++i)
            for (Index j = 0; j < pooled.dim(2); ++j)
                for (Index k = 0; k < pooled.dim(3); ++k) {
                    T best = y(n, 2 * i, 2 * j, k);
                    for (Index r = 0; r < 2; ++r)
                        for (Index s = 0; s < 2; ++s) best = std::max(best, y(n, 2 * i + r, 2 * j + s, k));
                    pooled(n, i, j, k) = best;
                }
    return pooled;
}

// (batch, height, width, channels, filters) of the convolutions checked.
struct Case {
    Index batch, height, width, channels, filters;
};

template <typename T>
std::vector<Case> cases() {
    const Index v = cpu::simd::width<T>;
    // The custom CNN's conv2d_1 (a cut batch), odd sizes (a last row and column
    // no window takes, tiles crossing the edges), the smallest image.
    return {{2, 150, 150, 16, 16}, {3, 37, 23, v, 2 * v}, {2, 9, 8, 2 * v, v}, {1, 3, 5, v, v}, {2, 2, 2, v, v}};
}

template <typename T>
void check_against_kernels_apart(std::uint64_t seed) {
    Index inactive = 0;
    for (const Case& c : cases<T>()) {
        CAPTURE(c.batch, c.height, c.width, c.channels, c.filters);
        const auto x = random_tensor<T>(Shape{c.batch, c.height, c.width, c.channels}, ++seed);
        const auto w = random_tensor<T>(Shape{3, 3, c.channels, c.filters}, ++seed);
        const auto b = random_tensor<T>(Shape{c.filters}, ++seed, T(-0.5), T(0.5));
        REQUIRE(cpu::conv2d_relu_max_pool_applies<T>(x.shape(), w.shape(), kSame, kPool));
        const Fused<T> got = fused(x, w, b);
        const Apart<T> expected = apart(x, w, b);
        CHECK(same_bits(got.pooled, expected.pooled));
        CHECK(same_bits(got.pooled, reference_pool(expected.y)));
        inactive += check_positions(got, expected, ++seed);
    }
    CHECK(inactive > 0);  // some windows the ReLU closed: their gradient is dropped
}

}  // namespace

TEST_CASE("conv2d_relu_max_pool_forward pools as conv2d_forward then max_pool2d_forward, bit for bit, "
          "and keeps where each gradient goes",
          "[kernels][conv2d_max_pool]") {
    check_against_kernels_apart<float>(100);
    check_against_kernels_apart<double>(200);
}

TEST_CASE("conv2d_relu_max_pool_forward keeps NaNs where the pooling does", "[kernels][conv2d_max_pool]") {
    const Index v = cpu::simd::width<float>;
    auto x = random_tensor<float>(Shape{1, 8, 8, v}, 301);
    const auto w = random_tensor<float>(Shape{3, 3, v, v}, 302);
    const auto b = random_tensor<float>(Shape{v}, 303);
    x(0, 3, 5, 0) = std::numeric_limits<float>::quiet_NaN();  // NaN in every output whose tiles read it
    const Fused<float> got = fused(x, w, b);
    const Apart<float> expected = apart(x, w, b);
    REQUIRE(std::isnan(expected.y(0, 3, 5, 0)));
    CHECK(std::isnan(got.pooled(0, 1, 2, 0)));
    CHECK(same_bits(got.pooled, expected.pooled));
    CHECK(check_positions(got, expected, 304) > 0);  // the NaN's windows among them
}

TEST_CASE("conv2d_relu_max_pool_forward's pooled output has the gradients of the pair's backward",
          "[kernels][conv2d_max_pool][gradcheck]") {
    // L = sum(pooled .* upstream): its gradients from the positions
    // (max_pool2d_relu_backward_from_positions) then conv2d_backward, the
    // layer pair's backward, against finite differences.
    const Index v = cpu::simd::width<double>;
    for (const Case& c : std::vector<Case>{{2, 5, 6, v, v}, {1, 4, 7, 2 * v, v}}) {
        CAPTURE(c.height, c.width, c.channels, c.filters);
        // Inputs away from the ReLU's and the pooling's kinks for these seeds.
        Tensor<double> x = random_tensor<double>(Shape{c.batch, c.height, c.width, c.channels}, 401);
        Tensor<double> w = random_tensor<double>(Shape{3, 3, c.channels, c.filters}, 402);
        Tensor<double> b = random_tensor<double>(Shape{c.filters}, 403, 0.0, 0.5);
        const Fused<double> out = fused(x, w, b);
        const auto upstream = random_tensor<double>(out.pooled.shape(), 404);
        Tensor<double> pre(cpu::conv2d_output_shape(x.shape(), w.shape(), kSame)), dx(x.shape()), dw(w.shape()),
            db(b.shape());
        cpu::max_pool2d_relu_backward_from_positions(out.positions, upstream, kPool, pre);
        cpu::conv2d_backward(x, w, pre, kSame, &dx, &dw, &db);
        const auto pooled = [&] { return fused(x, w, b).pooled; };
        CHECK(testing::relative_error(dx, testing::numerical_gradient(x, pooled, upstream)) < 1e-6);
        CHECK(testing::relative_error(dw, testing::numerical_gradient(w, pooled, upstream)) < 1e-6);
        CHECK(testing::relative_error(db, testing::numerical_gradient(b, pooled, upstream)) < 1e-6);
    }
}

TEST_CASE("conv2d_relu_max_pool_forward takes narrow Winograd's 'same' convolutions and 2x2/2 'valid' pooling",
          "[kernels][conv2d_max_pool]") {
    const Index v = cpu::simd::width<float>;
    const Shape x{4, 150, 150, 16}, w{3, 3, 16, 16};
    CHECK(cpu::conv2d_relu_max_pool_applies<float>(x, w, kSame, kPool));
    CHECK(cpu::conv2d_relu_max_pool_applies<float>(Shape{150, 150, 16}, w, kSame, kPool));  // a layer's (H, W, C)
    CHECK(cpu::conv2d_relu_max_pool_applies<double>(x, w, kSame, kPool));
    CHECK_FALSE(cpu::conv2d_relu_max_pool_applies<float>(x, w, ConvParams{1, 1, Padding::valid}, kPool));
    CHECK_FALSE(cpu::conv2d_relu_max_pool_applies<float>(x, w, ConvParams{2, 2, Padding::same}, kPool));
    CHECK_FALSE(cpu::conv2d_relu_max_pool_applies<float>(x, Shape{5, 5, 16, 16}, kSame, kPool));
    CHECK_FALSE(cpu::conv2d_relu_max_pool_applies<float>(Shape{4, 150, 150, 64}, Shape{3, 3, 64, 64}, kSame, kPool));
    CHECK_FALSE(cpu::conv2d_relu_max_pool_applies<float>(Shape{4, 150, 150, 3}, Shape{3, 3, 3, 16}, kSame, kPool));
    CHECK_FALSE(cpu::conv2d_relu_max_pool_applies<float>(Shape{4, 9, 9, v}, Shape{3, 3, v, v + 1}, kSame, kPool));
    CHECK_FALSE(cpu::conv2d_relu_max_pool_applies<float>(x, w, kSame, Window2D{3, 3, 2, 2, Padding::valid}));
    CHECK_FALSE(cpu::conv2d_relu_max_pool_applies<float>(x, w, kSame, Window2D{2, 2, 1, 1, Padding::valid}));
    CHECK_FALSE(cpu::conv2d_relu_max_pool_applies<float>(x, w, kSame, Window2D{2, 2, 2, 2, Padding::same}));
    CHECK_FALSE(cpu::conv2d_relu_max_pool_applies<float>(Shape{4, 1, 9, v}, Shape{3, 3, v, v}, kSame, kPool));
    ConvAlgorithmScope gemm_only(cpu::ConvAlgorithm::gemm_only);
    CHECK_FALSE(cpu::conv2d_relu_max_pool_applies<float>(x, w, kSame, kPool));
}

TEST_CASE("conv2d_relu_max_pool_forward refuses what it does not take, naming the shapes",
          "[kernels][conv2d_max_pool][errors]") {
    const Index v = cpu::simd::width<float>;
    const Tensor<float> x(Shape{1, 8, 8, v}), w(Shape{3, 3, v, v}), b(Shape{v});
    Tensor<float> pooled(Shape{1, 4, 4, v});
    Tensor<std::uint8_t> positions(Shape{1, 4, 4, v});
    CHECK_THROWS_WITH(cpu::conv2d_relu_max_pool_forward(x, w, &b, kSame, Window2D{3, 3, 3, 3, Padding::valid},
                                                        pooled, positions),
                      Catch::Contains("conv2d_relu_max_pool_forward") && Catch::Contains("(1, 8, 8, ") &&
                          Catch::Contains("kernel 3x3, strides 3x3"));
    Tensor<float> wrong_pooled(Shape{1, 8, 8, v});
    CHECK_THROWS_WITH(cpu::conv2d_relu_max_pool_forward(x, w, &b, kSame, kPool, wrong_pooled, positions),
                      Catch::Contains("conv2d_relu_max_pool_forward") && Catch::Contains("pooled output"));
    Tensor<std::uint8_t> wrong_positions(Shape{1, 4, 4, v + 1});
    CHECK_THROWS_WITH(cpu::conv2d_relu_max_pool_forward(x, w, &b, kSame, kPool, pooled, wrong_positions),
                      Catch::Contains("conv2d_relu_max_pool_forward: positions has shape"));
    const Tensor<float> wrong_bias(Shape{v + 1});
    CHECK_THROWS_WITH(cpu::conv2d_relu_max_pool_forward(x, w, &wrong_bias, kSame, kPool, pooled, positions),
                      Catch::Contains("bias"));
}

// conv2d_relu_backward (conv2d.hpp): the gradients of relu(conv(x, w) + b)
// from dy after the ReLU, against a plain masking loop followed by the
// im2col + GEMM conv2d_backward, in double and float, on the direct kernels'
// fused path (dy read through the mask; pre never written) and the fallback;
// channel slices, filter counts around the vector blocks, finite differences
// in double, determinism, errors.

#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <vector>

#include <bcnn/kernels/cpu/conv2d.hpp>

#include "support/conv_reference.hpp"
#include "support/conv_support.hpp"
#include "support/gradcheck.hpp"
#include "support/random.hpp"

using namespace bcnn;
using bcnn::testing::max_abs_diff;
using bcnn::testing::random_tensor;
using bcnn::testing::converted;
using bcnn::testing::max_abs;
using bcnn::testing::ConvAlgorithmScope;
using bcnn::testing::relu_masked;

namespace {

// Gradients of one call: dx, d_weights, d_bias.
template <typename T>
struct Gradients {
    Tensor<T> dx, dw, db;
};

// pre[i] = dy[i] where y[i] > 0, else 0; then conv2d_backward by im2col + GEMM,
// and d_bias as the plain sum of pre over the pixels.
template <typename T>
Gradients<T> masked_then_gemm(const Tensor<T>& x, const Tensor<T>& w, const Tensor<T>& y, const Tensor<T>& dy,
                              const ConvParams& p) {
    const Tensor<T> pre = relu_masked(dy, y);
    Gradients<T> g{Tensor<T>(x.shape()), Tensor<T>(w.shape()), Tensor<T>(Shape{w.dim(3)})};
    const ConvAlgorithmScope gemm_only(cpu::ConvAlgorithm::gemm_only);
    cpu::conv2d_backward(x, w, pre, p, &g.dx, &g.dw, nullptr);
    for (Index r = 0; r < pre.numel() / w.dim(3); ++r)
        for (Index k = 0; k < w.dim(3); ++k) g.db.data()[k] += pre.data()[r * w.dim(3) + k];
    return g;
}

// y = relu(conv(x, w) + b)
template <typename T>
Tensor<T> relu_conv(const Tensor<T>& x, const Tensor<T>& w, const Tensor<T>& b, const ConvParams& p) {
    Tensor<T> y(cpu::conv2d_output_shape(x.shape(), w.shape(), p));
    cpu::conv2d_forward(x, w, &b, p, y, cpu::ActivationFn::relu);
    return y;
}

bool all_equal(const Tensor<double>& t, double value) {
    for (const double v : t.to_vector())
        if (v != value) return false;
    return true;
}

struct Case {
    Index batch, h, w, c, k, kernel, stride;
    Padding padding;
    bool fused_with_dx;  // the direct kernels take both gradients
};

// Around the direct kernels' blocks: the custom CNN's first two layers,
// 2-block filter counts (20 = 16 + 4, 33), one vector of filters (8 on AVX2
// doubles), 'valid', images narrower than a pixel block. Fewer than 8
// channels (3->16, 5->33) take the planar input gradient through the mask
// (conv2d_planar.hpp); stride 2 has no direct input gradient (the fallback
// when dx is wanted). Of the other fused cases with dx, whole vectors of
// filters (16, 8, and 20 doubles on AVX2) take both gradients in one pass over dy (conv2d_direct_relu_backward)
// unless narrow Winograd takes them (whole vectors of channels and filters,
// at most 32: 16->16, 8->8, 16->32), reading dy through the mask as well;
// 20 floats take the weights gradient, then the input gradient.
const Case kCases[] = {
    {2, 9, 11, 3, 16, 3, 1, Padding::same, true},  {2, 8, 13, 16, 16, 3, 1, Padding::same, true},
    {1, 7, 5, 9, 20, 3, 1, Padding::same, true},   {2, 6, 9, 5, 33, 5, 1, Padding::same, true},
    {3, 5, 4, 8, 8, 3, 1, Padding::same, true},    {2, 9, 10, 5, 12, 3, 2, Padding::valid, false},
    {1, 1, 1, 16, 16, 3, 1, Padding::same, true},  {2, 9, 7, 16, 32, 3, 1, Padding::same, true},
};

}  // namespace

TEST_CASE("conv2d_relu_backward equals the ReLU mask then conv2d_backward, fused or not",
          "[kernels][conv2d][relu]") {
    std::uint64_t seed = 1200;
    for (const Case& t : kCases)
        for (const bool want_dx : {false, true}) {
            const ConvParams p{t.stride, t.stride, t.padding};
            INFO("x (" << t.batch << ", " << t.h << ", " << t.w << ", " << t.c << "), " << t.k << " filters, kernel "
                       << t.kernel << ", stride " << t.stride << ", dx " << want_dx);
            const Tensor<double> x = random_tensor<double>(Shape{t.batch, t.h, t.w, t.c}, seed++);
            const Tensor<double> w = random_tensor<double>(Shape{t.kernel, t.kernel, t.c, t.k}, seed++);
            const Tensor<double> b = random_tensor<double>(Shape{t.k}, seed++, -0.5, 0.5);
            const Tensor<double> y = relu_conv(x, w, b, p);
            const Tensor<double> dy = random_tensor<double>(y.shape(), seed++);
            const Gradients<double> expected = masked_then_gemm(x, w, y, dy, p);
            const double scale = std::max({1.0, max_abs(expected.dx), max_abs(expected.dw)});

            Tensor<double> pre(y.shape(), 5.0), dx(x.shape(), 1e9), dw(w.shape(), 1e9), db(Shape{t.k}, 1e9);
            cpu::conv2d_relu_backward(x, w, y, dy, p, pre, want_dx ? &dx : nullptr, &dw, &db);
            // The fused path never writes pre; the fallback leaves the masked gradient there.
            const bool fused = !want_dx || t.fused_with_dx;
            if (fused)
                CHECK(all_equal(pre, 5.0));
            else
                CHECK(max_abs_diff(pre, relu_masked(dy, y)) == 0);
            CHECK(max_abs_diff(dw, expected.dw) < 1e-12 * scale);
            CHECK(max_abs_diff(db, expected.db) < 1e-12 * scale);
            if (want_dx) CHECK(max_abs_diff(dx, expected.dx) < 1e-12 * scale);

            // float: sums of at most batch * OH * OW <= 3 * 13 * 13 products of magnitude <= 1
            Tensor<float> pref(y.shape()), dxf(x.shape(), 1e9f), dwf(w.shape(), 1e9f), dbf(Shape{t.k}, 1e9f);
            cpu::conv2d_relu_backward(converted<float>(x), converted<float>(w), converted<float>(y),
                                      converted<float>(dy), p, pref, want_dx ? &dxf : nullptr, &dwf, &dbf);
            CHECK(max_abs_diff(converted<double>(dwf), expected.dw) < 1e-5 * scale);
            CHECK(max_abs_diff(converted<double>(dbf), expected.db) < 1e-5 * scale);
            if (want_dx) CHECK(max_abs_diff(converted<double>(dxf), expected.dx) < 1e-5 * scale);
        }
}

TEST_CASE("conv2d_relu_backward takes both gradients in one pass over dy for whole vectors of filters",
          "[kernels][conv2d][relu]") {
    const auto dims = [](Index channels, Index filters) {
        return cpu::detail::conv2d_dims(Shape{2, 8, 8, channels}, Shape{3, 3, channels, filters},
                                        ConvParams{1, 1, Padding::same}, "test");
    };
    // Whole vectors of filters at this build's width (4, 8 or 16 floats), at least 8 filters.
    constexpr Index width = cpu::simd::width<float>, whole = (std::max<Index>(width, 8) + width - 1) / width * width;
    CHECK(cpu::detail::direct_relu_backward_applies<float>(dims(16, 16)));
    // ... though conv2d_relu_backward takes narrow Winograd's two gradients there
    // (the custom CNN's conv2d_1), as for any whole vectors of at most 32.
    CHECK(cpu::detail::winograd_narrow_applicable<float>(dims(16, 16)));
    CHECK(cpu::detail::direct_relu_backward_applies<float>(dims(9, whole)));
    CHECK_FALSE(cpu::detail::direct_relu_backward_applies<float>(dims(9, whole + width / 2)));  // a partial vector
    CHECK_FALSE(cpu::detail::direct_relu_backward_applies<float>(dims(16, 3)));  // no direct input gradient
}

TEST_CASE("conv2d_relu_backward reads and writes channel slices and leaves their neighbours",
          "[kernels][conv2d][relu]") {
    const ConvParams p{1, 1, Padding::same};
    const Index channels = 16, filters = 16;
    const Tensor<double> wide_x = random_tensor<double>(Shape{2, 7, 9, channels + 3}, 71);
    const Tensor<double> x = wide_x.channels(1, 1 + channels);
    const Tensor<double> w = random_tensor<double>(Shape{3, 3, channels, filters}, 72);
    const Tensor<double> b = random_tensor<double>(Shape{filters}, 73, -0.5, 0.5);
    Tensor<double> wide_y(Shape{2, 7, 9, filters + 5}, -3.0);
    Tensor<double> y = wide_y.channels(2, 2 + filters);
    cpu::conv2d_forward(x, w, &b, p, y, cpu::ActivationFn::relu);
    const Tensor<double> wide_dy = random_tensor<double>(Shape{2, 7, 9, filters + 4}, 74);
    const Tensor<double> dy = wide_dy.channels(3, 3 + filters);
    Tensor<double> wide_dx(Shape{2, 7, 9, channels + 5}, 7.0);
    Tensor<double> dx = wide_dx.channels(4, 4 + channels);
    Tensor<double> pre(y.shape(), 5.0), dw(w.shape()), db(Shape{filters});
    cpu::conv2d_relu_backward(x, w, y, dy, p, pre, &dx, &dw, &db);
    CHECK(all_equal(pre, 5.0));  // the fused path
    const Gradients<double> expected = masked_then_gemm(x, w, y, dy, p);
    CHECK(max_abs_diff(dx.clone(), expected.dx) < 1e-12);
    CHECK(max_abs_diff(dw, expected.dw) < 1e-12);
    CHECK(max_abs_diff(db, expected.db) < 1e-12);
    for (const Index c : {0, 1, 2, 3, 20})  // dx's neighbours keep their 7s
        CHECK(wide_dx.channels(c, c + 1).to_vector() == std::vector<double>(2 * 7 * 9, 7.0));
}

TEST_CASE("conv2d_relu_backward without the weights gradient (frozen) masks then runs conv2d_backward",
          "[kernels][conv2d][relu]") {
    const ConvParams p{1, 1, Padding::same};
    const Tensor<double> x = random_tensor<double>(Shape{2, 6, 7, 16}, 61);
    const Tensor<double> w = random_tensor<double>(Shape{3, 3, 16, 16}, 62);
    const Tensor<double> y = relu_conv(x, w, random_tensor<double>(Shape{16}, 63, -0.5, 0.5), p);
    const Tensor<double> dy = random_tensor<double>(y.shape(), 64);
    Tensor<double> pre(y.shape(), 5.0), dx(x.shape(), 1e9);
    cpu::conv2d_relu_backward(x, w, y, dy, p, pre, &dx, nullptr, nullptr);
    CHECK_FALSE(all_equal(pre, 5.0));
    CHECK(max_abs_diff(dx, masked_then_gemm(x, w, y, dy, p).dx) < 1e-12);
}

TEST_CASE("conv2d_relu_backward agrees with finite differences of relu(conv + b) in double",
          "[kernels][conv2d][relu][gradcheck]") {
    const ConvParams p{1, 1, Padding::same};
    Tensor<double> x = random_tensor<double>(Shape{2, 5, 6, 9}, 81);
    Tensor<double> w = random_tensor<double>(Shape{3, 3, 9, 10}, 82);
    Tensor<double> b = random_tensor<double>(Shape{10}, 83, -0.5, 0.5);
    const Tensor<double> y = relu_conv(x, w, b, p);
    const Tensor<double> dy = random_tensor<double>(y.shape(), 84);
    Tensor<double> pre(y.shape(), 5.0), dx(x.shape()), dw(w.shape()), db(Shape{10});
    cpu::conv2d_relu_backward(x, w, y, dy, p, pre, &dx, &dw, &db);
    REQUIRE(all_equal(pre, 5.0));  // the fused path
    const auto forward = [&] { return relu_conv(x, w, b, p); };
    CHECK(testing::relative_error(dx, testing::numerical_gradient(x, forward, dy)) < 1e-6);
    CHECK(testing::relative_error(dw, testing::numerical_gradient(w, forward, dy)) < 1e-6);
    CHECK(testing::relative_error(db, testing::numerical_gradient(b, forward, dy)) < 1e-6);
}

TEST_CASE("conv2d_relu_backward is deterministic for each thread count", "[kernels][conv2d][relu]") {
    const ConvParams p{1, 1, Padding::same};
    const Tensor<float> x = random_tensor<float>(Shape{2, 40, 40, 16}, 91);
    const Tensor<float> w = random_tensor<float>(Shape{3, 3, 16, 16}, 92);
    const Tensor<float> b = random_tensor<float>(Shape{16}, 93, -0.5f, 0.5f);
    const Tensor<float> y = relu_conv(x, w, b, p);
    const Tensor<float> dy = random_tensor<float>(y.shape(), 94);
    const int saved = num_threads();
    for (const int threads : {1, 2, 3}) {
        INFO(threads << " threads");
        set_num_threads(threads);
        std::vector<float> first;
        for (int run = 0; run < 2; ++run) {
            Tensor<float> pre(y.shape()), dx(x.shape()), dw(w.shape()), db(Shape{16});
            cpu::conv2d_relu_backward(x, w, y, dy, p, pre, &dx, &dw, &db);
            std::vector<float> all = dx.to_vector();
            for (const Tensor<float>* t : {&dw, &db})
                for (const float v : t->to_vector()) all.push_back(v);
            if (run == 0)
                first = all;
            else
                CHECK(all == first);
        }
    }
    set_num_threads(saved);
}

TEST_CASE("conv2d_relu_backward names the tensor of the wrong shape", "[kernels][conv2d][relu]") {
    const ConvParams p{1, 1, Padding::same};
    const Tensor<float> x(Shape{1, 4, 4, 3}), w(Shape{3, 3, 3, 8}), y(Shape{1, 4, 4, 8}), dy(Shape{1, 4, 4, 8});
    Tensor<float> pre(Shape{1, 4, 4, 8}), dw(w.shape()), db(Shape{8});
    Tensor<float> bad_y(Shape{1, 4, 4, 7}), bad_pre(Shape{1, 4, 5, 8}), bad_db(Shape{9});
    CHECK_THROWS_WITH(cpu::conv2d_relu_backward(x, w, bad_y, dy, p, pre, nullptr, &dw, &db),
                      Catch::Contains("conv2d_relu_backward: output has shape (1, 4, 4, 7)"));
    CHECK_THROWS_WITH(cpu::conv2d_relu_backward(x, w, y, dy, p, bad_pre, nullptr, &dw, &db),
                      Catch::Contains("pre-activation gradient has shape (1, 4, 5, 8)"));
    CHECK_THROWS_WITH(cpu::conv2d_relu_backward(x, w, y, dy, p, pre, nullptr, &dw, &bad_db),
                      Catch::Contains("bias gradient has shape (9)"));
}

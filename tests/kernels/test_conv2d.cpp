// conv2d kernel: forward against a nested-loop reference (with its own Keras
// padding rule), backward against the reference's adjoint and by finite
// differences, tiling, channel-slice views, determinism and error messages.

#include <catch2/catch.hpp>

#include <algorithm>
#include <cstring>
#include <vector>

#include <bcnn/kernels/cpu/conv2d.hpp>

#include "support/conv_support.hpp"
#include "support/gradcheck.hpp"
#include "support/random.hpp"

using namespace bcnn;
using bcnn::testing::max_abs_diff;
using bcnn::testing::random_tensor;
using bcnn::testing::converted;
using bcnn::testing::max_abs;
using bcnn::testing::ConvAlgorithmScope;

namespace {

// Where the window lands along one axis: output extent and padding before the first input.
struct Axis {
    Index out = 0, pad_before = 0;
};

// Keras/TensorFlow rule as TensorFlow documents it, independent of window.hpp:
// 'valid' keeps whole windows; 'same' gives ceil(in / stride) outputs and pads
// max(kernel - stride, 0) in total when stride divides in, else
// max(kernel - in % stride, 0); the smaller half goes before (top/left).
Axis keras_axis(Index in, Index kernel, Index stride, Padding padding) {
    if (padding == Padding::valid) return {(in - kernel) / stride + 1, 0};
    const Index total = in % stride == 0 ? std::max<Index>(kernel - stride, 0) : std::max<Index>(kernel - in % stride, 0);
    return {(in + stride - 1) / stride, total / 2};
}

struct Geometry {
    Index stride_h, stride_w;
    Axis h, w;
};

Geometry keras_geometry(const Shape& x, const Shape& weights, const ConvParams& p) {
    return {p.stride_h, p.stride_w, keras_axis(x[1], weights[0], p.stride_h, p.padding),
            keras_axis(x[2], weights[1], p.stride_w, p.padding)};
}

// Calls f(y_index, x_index, w_index) for every product term
// x[n, ih, iw, c] * w[kh, kw, c, k] of output y[n, oh, ow, k] whose input pixel
// lies inside the image; indices are flat, row-major, for contiguous tensors.
template <typename F>
void for_each_term(const Shape& x, const Shape& w, const Geometry& g, F f) {
    const Index in_h = x[1], in_w = x[2], channels = x[3], kernel_h = w[0], kernel_w = w[1], filters = w[3];
    for (Index n = 0; n < x[0]; ++n)
        for (Index oh = 0; oh < g.h.out; ++oh)
            for (Index ow = 0; ow < g.w.out; ++ow)
                for (Index kh = 0; kh < kernel_h; ++kh)
                    for (Index kw = 0; kw < kernel_w; ++kw) {
                        const Index ih = oh * g.stride_h - g.h.pad_before + kh, iw = ow * g.stride_w - g.w.pad_before + kw;
                        if (ih < 0 || ih >= in_h || iw < 0 || iw >= in_w) continue;
                        const Index y_pixel = (n * g.h.out + oh) * g.w.out + ow, x_pixel = (n * in_h + ih) * in_w + iw;
                        for (Index c = 0; c < channels; ++c)
                            for (Index k = 0; k < filters; ++k)
                                f(y_pixel * filters + k, x_pixel * channels + c, ((kh * kernel_w + kw) * channels + c) * filters + k);
                    }
}

// y[n, oh, ow, k] = b[k] + sum x[n, oh*sh - top + kh, ow*sw - left + kw, c] * w[kh, kw, c, k]
Tensor<double> reference_forward(const Tensor<double>& x, const Tensor<double>& w, const Tensor<double>* b,
                                 const Geometry& g) {
    Tensor<double> y(Shape{x.dim(0), g.h.out, g.w.out, w.dim(3)});
    const Tensor<double> xc = x.clone(), wc = w.clone();
    const double *xd = xc.data(), *wd = wc.data();
    double* yd = y.data();
    for_each_term(x.shape(), w.shape(), g, [&](Index yi, Index xi, Index wi) { yd[yi] += xd[xi] * wd[wi]; });
    if (b)
        for (Index i = 0; i < y.numel(); ++i) yd[i] += (*b)(i % w.dim(3));
    return y;
}

Tensor<double> reference_forward(const Tensor<double>& x, const Tensor<double>& w, const Tensor<double>* b,
                                 const ConvParams& p) {
    return reference_forward(x, w, b, keras_geometry(x.shape(), w.shape(), p));
}

// The adjoint of reference_forward: gradients of sum(y .* dy).
struct Gradients {
    Tensor<double> dx, dw, db;
};

Gradients reference_backward(const Tensor<double>& x, const Tensor<double>& w, const Tensor<double>& dy,
                             const ConvParams& p) {
    Gradients r{Tensor<double>(x.shape()), Tensor<double>(w.shape()), Tensor<double>(Shape{w.dim(3)})};
    const Tensor<double> xc = x.clone(), wc = w.clone(), dyc = dy.clone();
    const double *xd = xc.data(), *wd = wc.data(), *dyd = dyc.data();
    double *dxd = r.dx.data(), *dwd = r.dw.data();
    for_each_term(x.shape(), w.shape(), keras_geometry(x.shape(), w.shape(), p), [&](Index yi, Index xi, Index wi) {
        dxd[xi] += dyd[yi] * wd[wi];
        dwd[wi] += dyd[yi] * xd[xi];
    });
    for (Index i = 0; i < dy.numel(); ++i) r.db.data()[i % w.dim(3)] += dyd[i];
    return r;
}

template <typename T>
Tensor<T> forward(const Tensor<T>& x, const Tensor<T>& w, OptionalInput<T> b, const ConvParams& p) {
    Tensor<T> y(cpu::conv2d_output_shape(x.shape(), w.shape(), p));
    cpu::conv2d_forward(x, w, b, p, y);
    return y;
}

Gradients backward(const Tensor<double>& x, const Tensor<double>& w, const Tensor<double>& dy, const ConvParams& p) {
    Gradients r{Tensor<double>(x.shape()), Tensor<double>(w.shape()), Tensor<double>(Shape{w.dim(3)})};
    cpu::conv2d_backward(x, w, dy, p, &r.dx, &r.dw, &r.db);
    return r;
}

bool bitwise_equal(const Tensor<double>& a, const Tensor<double>& b) {
    const std::vector<double> av = a.to_vector(), bv = b.to_vector();
    return a.shape() == b.shape() && std::memcmp(av.data(), bv.data(), av.size() * sizeof(double)) == 0;
}

// Number of tiles conv2d uses for these shapes with the current thread count.
Index tile_count(const Shape& x, const Shape& w, const ConvParams& p) {
    const Shape y = cpu::conv2d_output_shape(x, w, p);
    const Index pixels = y[0] * y[1] * y[2];
    const Index tile = cpu::detail::conv2d_tile_pixels<double>(pixels, w[0] * w[1] * w[2], num_threads());
    return (pixels + tile - 1) / tile;
}

// Sets the OpenMP thread count for one scope.
class ThreadCount {
public:
    explicit ThreadCount(int threads) : saved_(num_threads()) { set_num_threads(threads); }
    ~ThreadCount() { set_num_threads(saved_); }

private:
    int saved_;
};

struct Case {
    Shape x;
    Index kernel_h, kernel_w, filters;
    ConvParams params;
};

const Padding same = Padding::same, valid = Padding::valid;

}  // namespace

TEST_CASE("conv2d_forward matches a reference loop", "[kernels][conv2d]") {
    const std::vector<Case> cases = {
        {Shape{1, 7, 5, 1}, 3, 3, 1, {1, 1, same}},    // odd sizes, C = K = 1
        {Shape{2, 7, 5, 3}, 3, 3, 4, {1, 1, valid}},
        {Shape{2, 7, 5, 3}, 3, 3, 4, {2, 2, same}},     // odd input, stride 2
        {Shape{2, 7, 5, 3}, 3, 3, 4, {2, 2, valid}},
        {Shape{3, 6, 5, 4}, 1, 1, 5, {1, 1, same}},     // pointwise GEMM
        {Shape{3, 6, 5, 4}, 1, 1, 5, {1, 1, valid}},
        {Shape{2, 7, 5, 3}, 1, 1, 2, {2, 2, valid}},    // strided 1x1: im2col
        {Shape{2, 7, 5, 3}, 1, 1, 2, {2, 2, same}},
        {Shape{2, 9, 8, 2}, 5, 5, 3, {1, 1, same}},
        {Shape{1, 9, 8, 2}, 5, 5, 3, {2, 2, valid}},
        {Shape{1, 9, 8, 2}, 5, 5, 3, {2, 2, same}},
        {Shape{2, 6, 7, 3}, 2, 2, 3, {2, 2, valid}},
        {Shape{2, 6, 7, 3}, 2, 2, 3, {1, 1, same}},     // even kernel: the odd pad at bottom/right
        {Shape{2, 7, 6, 3}, 3, 3, 2, {1, 2, same}},     // asymmetric strides
        {Shape{2, 7, 6, 3}, 3, 2, 2, {2, 1, valid}},    // non-square kernel
        {Shape{1, 2, 3, 2}, 5, 5, 3, {1, 1, same}},     // kernel larger than the input
        {Shape{2, 2, 3, 2}, 5, 4, 3, {2, 2, same}},
        {Shape{2, 1, 1, 3}, 3, 3, 2, {1, 1, same}},     // 1x1 input
        {Shape{1, 3, 3, 2}, 3, 3, 2, {1, 1, valid}},    // a single output pixel
    };
    std::uint64_t seed = 100;
    for (const Case& c : cases) {
        CAPTURE(c.x, c.kernel_h, c.kernel_w, c.params.stride_h, c.params.stride_w, padding_name(c.params.padding));
        const auto x = random_tensor<double>(c.x, ++seed);
        const auto w = random_tensor<double>(Shape{c.kernel_h, c.kernel_w, c.x[3], c.filters}, ++seed);
        const auto b = random_tensor<double>(Shape{c.filters}, ++seed);
        const Geometry g = keras_geometry(x.shape(), w.shape(), c.params);
        REQUIRE(cpu::conv2d_output_shape(x.shape(), w.shape(), c.params) ==
                Shape{c.x[0], g.h.out, g.w.out, c.filters});
        CHECK(max_abs_diff(forward(x, w, &b, c.params), reference_forward(x, w, &b, g)) < 1e-12);
        CHECK(max_abs_diff(forward(x, w, nullptr, c.params), reference_forward(x, w, nullptr, g)) < 1e-12);
    }
}

TEST_CASE("conv2d_forward with a fused relu is relu of the reference", "[kernels][conv2d]") {
    // An im2col case over several tiles, a pointwise case, a Winograd case.
    const std::vector<Case> cases = {
        {Shape{2, 23, 19, 3}, 3, 3, 5, {1, 1, same}},
        {Shape{2, 19, 21, 16}, 3, 3, 16, {1, 1, same}},  // 60 tiles of 4x4: Winograd
        {Shape{3, 6, 5, 4}, 1, 1, 5, {1, 1, valid}},
        {Shape{1, 9, 8, 2}, 5, 5, 3, {2, 2, same}},
    };
    std::uint64_t seed = 700;
    for (const Case& c : cases) {
        CAPTURE(c.x, c.kernel_h, c.kernel_w, padding_name(c.params.padding));
        const Shape w_shape{c.kernel_h, c.kernel_w, c.x[3], c.filters};
        CAPTURE(cpu::detail::winograd_pays_forward(cpu::detail::conv2d_dims(c.x, w_shape, c.params, "test")));
        const auto x = random_tensor<double>(c.x, ++seed);
        const auto w = random_tensor<double>(Shape{c.kernel_h, c.kernel_w, c.x[3], c.filters}, ++seed);
        const auto b = random_tensor<double>(Shape{c.filters}, ++seed);
        for (const Tensor<double>* bias : {&b, static_cast<const Tensor<double>*>(nullptr)}) {
            Tensor<double> expected = reference_forward(x, w, bias, c.params);
            Index negatives = 0;
            for (Index i = 0; i < expected.numel(); ++i)
                if (expected.data()[i] < 0) {
                    expected.data()[i] = 0;
                    ++negatives;
                }
            REQUIRE(negatives > 0);  // the relu has something to do
            Tensor<double> y(expected.shape());
            cpu::conv2d_forward(x, w, bias, c.params, y, cpu::ActivationFn::relu);
            CHECK(max_abs_diff(y, expected) < 1e-12);
        }
    }
}

TEST_CASE("conv2d 'same' puts the odd padding pixel at the bottom/right (Keras)", "[kernels][conv2d]") {
    // 6x6 input, 3x3 kernel, stride 2: 3x3 output, total padding 1 per axis: top/left 0, bottom/right 1.
    const ConvParams params{2, 2, same};
    const auto x = random_tensor<double>(Shape{1, 6, 6, 2}, 1), w = random_tensor<double>(Shape{3, 3, 2, 3}, 2);
    const Tensor<double> y = forward(x, w, nullptr, params);
    REQUIRE(y.shape() == Shape{1, 3, 3, 3});
    const Geometry keras{2, 2, {3, 0}, {3, 0}};
    CHECK(max_abs_diff(y, reference_forward(x, w, nullptr, keras)) < 1e-12);
    // The top/left-heavy split (PyTorch-style padding=1) reads other pixels: it must not match.
    const Geometry top_heavy{2, 2, {3, 1}, {3, 1}};
    CHECK(max_abs_diff(y, reference_forward(x, w, nullptr, top_heavy)) > 0.1);
    const Geometry left_only{2, 2, {3, 0}, {3, 1}};
    CHECK(max_abs_diff(y, reference_forward(x, w, nullptr, left_only)) > 0.1);

    // 2x2 kernel, stride 1, 5x5 input: total padding 1, all of it at the bottom/right.
    const ConvParams stride1{1, 1, same};
    const auto x5 = random_tensor<double>(Shape{1, 5, 5, 1}, 3), w2 = random_tensor<double>(Shape{2, 2, 1, 1}, 4);
    const Tensor<double> y5 = forward(x5, w2, nullptr, stride1);
    REQUIRE(y5.shape() == Shape{1, 5, 5, 1});
    CHECK(max_abs_diff(y5, reference_forward(x5, w2, nullptr, Geometry{1, 1, {5, 0}, {5, 0}})) < 1e-12);
    CHECK(max_abs_diff(y5, reference_forward(x5, w2, nullptr, Geometry{1, 1, {5, 1}, {5, 1}})) > 0.1);
}

TEST_CASE("conv2d over several tiles matches the reference", "[kernels][conv2d]") {
    // Tile boundaries fall mid-row and mid-image; the input gradient's scatter
    // runs over several bands of output rows per image.
    const cpu::ConvAlgorithm algorithm = GENERATE(cpu::ConvAlgorithm::gemm_only, cpu::ConvAlgorithm::automatic);
    const ConvAlgorithmScope scope(algorithm);
    CAPTURE(cpu::conv_algorithm_name(algorithm));
    const std::vector<Case> cases = {
        {Shape{2, 25, 23, 16}, 3, 3, 8, {1, 1, same}},
        {Shape{2, 31, 29, 16}, 5, 5, 6, {2, 2, same}},
        {Shape{2, 40, 27, 16}, 3, 3, 5, {2, 1, valid}},
        {Shape{3, 40, 30, 40}, 1, 1, 7, {1, 1, same}},
    };
    std::uint64_t seed = 200;
    for (const Case& c : cases) {
        CAPTURE(c.x, c.kernel_h, c.kernel_w, c.params.stride_h, c.params.stride_w, padding_name(c.params.padding));
        const auto x = random_tensor<double>(c.x, ++seed);
        const auto w = random_tensor<double>(Shape{c.kernel_h, c.kernel_w, c.x[3], c.filters}, ++seed);
        const auto b = random_tensor<double>(Shape{c.filters}, ++seed);
        REQUIRE(tile_count(x.shape(), w.shape(), c.params) >= 3);
        const Tensor<double> y = forward(x, w, &b, c.params);
        CHECK(max_abs_diff(y, reference_forward(x, w, &b, c.params)) < 1e-12);
        const auto dy = random_tensor<double>(y.shape(), ++seed);
        const Gradients got = backward(x, w, dy, c.params), expected = reference_backward(x, w, dy, c.params);
        CHECK(max_abs_diff(got.dx, expected.dx) < 1e-11);
        CHECK(max_abs_diff(got.dw, expected.dw) < 1e-10);
        CHECK(max_abs_diff(got.db, expected.db) < 1e-10);
    }
}

TEST_CASE("conv2d_forward in float matches the double reference", "[kernels][conv2d]") {
    // im2col + GEMM: 144-term dot products of values in [-1, 1), float
    // rounding near sqrt(144) * 2^-24 * |y|, far below 2e-5. The automatic
    // choice for 16 -> 8 is narrow Winograd (winograd_narrow.hpp), whose
    // transforms cost a few more bits: within 2e-5 of the output's scale
    // (test_winograd.cpp measures it).
    const cpu::ConvAlgorithm algorithm = GENERATE(cpu::ConvAlgorithm::gemm_only, cpu::ConvAlgorithm::automatic);
    const ConvAlgorithmScope scope(algorithm);
    CAPTURE(cpu::conv_algorithm_name(algorithm));
    const ConvParams params{1, 1, same};
    const auto x = random_tensor<float>(Shape{2, 25, 23, 16}, 5), w = random_tensor<float>(Shape{3, 3, 16, 8}, 6);
    const auto b = random_tensor<float>(Shape{8}, 7);
    REQUIRE(tile_count(x.shape(), w.shape(), params) >= 3);
    const Tensor<float> y = forward(x, w, &b, params);
    const Tensor<double> xd = converted<double>(x), wd = converted<double>(w), bd = converted<double>(b);
    const Tensor<double> expected = reference_forward(xd, wd, &bd, params);
    const double tolerance = algorithm == cpu::ConvAlgorithm::gemm_only ? 2e-5 : 2e-5 * max_abs(expected);
    CHECK(max_abs_diff(converted<double>(y), expected) < tolerance);
}

TEST_CASE("conv2d 1x1 GEMM path and im2col path agree", "[kernels][conv2d]") {
    // A 3x3 'same' kernel that is zero except at its centre is the 1x1 kernel.
    const ConvParams params{1, 1, same};
    const auto x = random_tensor<double>(Shape{2, 6, 5, 4}, 8), w1 = random_tensor<double>(Shape{1, 1, 4, 3}, 9);
    const auto b = random_tensor<double>(Shape{3}, 10);
    Tensor<double> w3(Shape{3, 3, 4, 3});
    w3.slice(0, 1, 2).slice(1, 1, 2).copy_from(w1);
    const Tensor<double> y1 = forward(x, w1, &b, params);
    CHECK(max_abs_diff(y1, forward(x, w3, &b, params)) < 1e-13);

    const auto dy = random_tensor<double>(y1.shape(), 11);
    const Gradients g1 = backward(x, w1, dy, params), g3 = backward(x, w3, dy, params);
    CHECK(max_abs_diff(g1.dx, g3.dx) < 1e-13);
    CHECK(max_abs_diff(g1.dw, g3.dw.slice(0, 1, 2).slice(1, 1, 2).clone()) < 1e-12);
    CHECK(max_abs_diff(g1.db, g3.db) == 0);
}

TEST_CASE("conv2d_backward matches finite differences", "[kernels][conv2d][gradcheck]") {
    const std::vector<Case> cases = {
        {Shape{2, 5, 4, 3}, 3, 3, 2, {1, 1, same}},
        {Shape{1, 7, 5, 2}, 3, 3, 3, {2, 2, same}},   // stride 2 on an odd input
        {Shape{2, 3, 4, 3}, 1, 1, 4, {1, 1, same}},   // pointwise
        {Shape{1, 6, 5, 2}, 2, 2, 2, {2, 2, valid}},
        {Shape{1, 4, 5, 2}, 5, 5, 2, {1, 1, same}},   // kernel larger than the input
        {Shape{1, 6, 5, 2}, 1, 1, 2, {2, 2, same}},   // strided 1x1
        {Shape{1, 5, 6, 2}, 3, 3, 2, {1, 2, same}},   // asymmetric strides
    };
    std::uint64_t seed = 300;
    for (const Case& c : cases) {
        CAPTURE(c.x, c.kernel_h, c.kernel_w, c.params.stride_h, c.params.stride_w, padding_name(c.params.padding));
        auto x = random_tensor<double>(c.x, ++seed);
        auto w = random_tensor<double>(Shape{c.kernel_h, c.kernel_w, c.x[3], c.filters}, ++seed);
        auto b = random_tensor<double>(Shape{c.filters}, ++seed);
        auto run = [&] { return forward(x, w, &b, c.params); };
        const auto upstream = random_tensor<double>(run().shape(), ++seed);
        const Gradients g = backward(x, w, upstream, c.params);
        CHECK(testing::relative_error(g.dx, testing::numerical_gradient(x, run, upstream)) < 1e-6);
        CHECK(testing::relative_error(g.dw, testing::numerical_gradient(w, run, upstream)) < 1e-6);
        CHECK(testing::relative_error(g.db, testing::numerical_gradient(b, run, upstream)) < 1e-6);
    }
}

TEST_CASE("conv2d reads and writes channel slices of wider buffers", "[kernels][conv2d]") {
    const double sentinel = -7.0;
    for (const Case& c : std::vector<Case>{{Shape{2, 7, 5, 3}, 1, 1, 4, {1, 1, same}},
                                           {Shape{2, 7, 5, 3}, 3, 3, 4, {2, 2, same}},
                                           {Shape{2, 7, 5, 3}, 1, 1, 4, {2, 1, valid}}}) {
        CAPTURE(c.kernel_h, c.kernel_w, c.params.stride_h, c.params.stride_w);
        const Index channels = c.x[3], filters = c.filters;
        // x: channels [2, 5) of an 8-channel buffer.
        const auto wide_x = random_tensor<double>(Shape{c.x[0], c.x[1], c.x[2], channels + 5}, 400);
        const Tensor<double> x = wide_x.channels(2, 2 + channels);
        const auto w = random_tensor<double>(Shape{c.kernel_h, c.kernel_w, channels, filters}, 401);
        const auto b = random_tensor<double>(Shape{filters}, 402);
        const Shape ys = cpu::conv2d_output_shape(x.shape(), w.shape(), c.params);

        // y: channels [3, 7) of a 9-channel buffer; the rest must stay untouched.
        Tensor<double> wide_y(Shape{ys[0], ys[1], ys[2], filters + 5}, sentinel);
        Tensor<double> y = wide_y.channels(3, 3 + filters);
        cpu::conv2d_forward(x, w, &b, c.params, y);
        CHECK(max_abs_diff(y, reference_forward(x.clone(), w, &b, c.params)) < 1e-12);
        for (Index r = 0; r < ys[0] * ys[1] * ys[2]; ++r)
            for (Index k : {Index(0), Index(1), Index(2), filters + 3, filters + 4})
                REQUIRE(wide_y.data()[r * (filters + 5) + k] == sentinel);

        // Backward: dy a slice, dx written into a slice; compare with contiguous tensors.
        const auto wide_dy = random_tensor<double>(Shape{ys[0], ys[1], ys[2], filters + 2}, 403);
        const Tensor<double> dy = wide_dy.channels(1, 1 + filters);
        Tensor<double> wide_dx(Shape{c.x[0], c.x[1], c.x[2], channels + 3}, sentinel);
        Tensor<double> dx = wide_dx.channels(1, 1 + channels), dw(w.shape()), db(Shape{filters});
        cpu::conv2d_backward(x, w, dy, c.params, &dx, &dw, &db);
        const Gradients expected = reference_backward(x.clone(), w, dy.clone(), c.params);
        CHECK(max_abs_diff(dx, expected.dx) < 1e-12);
        CHECK(max_abs_diff(dw, expected.dw) < 1e-12);
        CHECK(max_abs_diff(db, expected.db) < 1e-12);
        for (Index r = 0; r < c.x[0] * c.x[1] * c.x[2]; ++r)
            for (Index k : {Index(0), channels + 1, channels + 2})
                REQUIRE(wide_dx.data()[r * (channels + 3) + k] == sentinel);
    }
}

TEST_CASE("conv2d 1x1 over several micro-panels: slices, float and double, 1 and 2 threads", "[kernels][conv2d]") {
    // Pointwise GEMMs with channels and filters across several micro-tiles and
    // not a multiple of the vector width (37 -> 35), 3 * 7 * 9 = 189 pixels
    // (not a multiple of the micro-tile's rows), x, y, dy and dx channel slices.
    const cpu::ConvAlgorithm algorithm = GENERATE(cpu::ConvAlgorithm::gemm_only, cpu::ConvAlgorithm::automatic);
    const ConvAlgorithmScope scope(algorithm);
    CAPTURE(cpu::conv_algorithm_name(algorithm));
    const ConvParams params{1, 1, same};
    const Index channels = 37, filters = 35;
    const double sentinel = -7.0;
    const auto wide_x = random_tensor<double>(Shape{3, 7, 9, channels + 4}, 450);
    const Tensor<double> x = wide_x.channels(3, 3 + channels);
    const auto w = random_tensor<double>(Shape{1, 1, channels, filters}, 451);
    const auto b = random_tensor<double>(Shape{filters}, 452);
    const auto wide_dy = random_tensor<double>(Shape{3, 7, 9, filters + 3}, 453);
    const Tensor<double> dy = wide_dy.channels(2, 2 + filters);
    Tensor<double> expected_y = reference_forward(x.clone(), w, &b, params);
    for (Index i = 0; i < expected_y.numel(); ++i) expected_y.data()[i] = std::max(expected_y.data()[i], 0.0);
    const Gradients expected = reference_backward(x.clone(), w, dy.clone(), params);

    Tensor<double> results[2][4];  // [threads - 1]: y, dx, dw, db
    for (int threads : {1, 2}) {
        const ThreadCount scope_threads(threads);
        Tensor<double> wide_y(Shape{3, 7, 9, filters + 5}, sentinel), wide_dx(Shape{3, 7, 9, channels + 2}, sentinel);
        Tensor<double> y = wide_y.channels(4, 4 + filters), dx = wide_dx.channels(1, 1 + channels);
        Tensor<double> dw(w.shape()), db(Shape{filters});
        cpu::conv2d_forward(x, w, &b, params, y, cpu::ActivationFn::relu);
        cpu::conv2d_backward(x, w, dy, params, &dx, &dw, &db);
        CHECK(max_abs_diff(y, expected_y) < 1e-12);
        CHECK(max_abs_diff(dx, expected.dx) < 1e-12);
        CHECK(max_abs_diff(dw, expected.dw) < 1e-11);
        CHECK(max_abs_diff(db, expected.db) < 1e-12);
        for (Index r = 0; r < 3 * 7 * 9; ++r) {
            for (Index k : {Index(0), Index(3), filters + 4})
                REQUIRE(wide_y.data()[r * (filters + 5) + k] == sentinel);
            for (Index c : {Index(0), channels + 1}) REQUIRE(wide_dx.data()[r * (channels + 2) + c] == sentinel);
        }
        results[threads - 1][0] = y.clone(), results[threads - 1][1] = dx.clone();
        results[threads - 1][2] = dw, results[threads - 1][3] = db;
    }
    // The forward and the input gradient split only rows across threads: same bits.
    CHECK(bitwise_equal(results[0][0], results[1][0]));
    CHECK(bitwise_equal(results[0][1], results[1][1]));

    // Float against the double reference (relative to the terms' size: 37 products of values below 1).
    const Tensor<float> xf = converted<float>(x.clone()), wf = converted<float>(w), bf = converted<float>(b);
    const Tensor<float> dyf = converted<float>(dy.clone());
    Tensor<float> yf(expected_y.shape()), dxf(x.shape()), dwf(w.shape()), dbf(Shape{filters});
    cpu::conv2d_forward(xf, wf, &bf, params, yf, cpu::ActivationFn::relu);
    cpu::conv2d_backward(xf, wf, dyf, params, &dxf, &dwf, &dbf);
    CHECK(max_abs_diff(converted<double>(yf), expected_y) < 2e-5);
    CHECK(max_abs_diff(converted<double>(dxf), expected.dx) < 2e-5);
    CHECK(max_abs_diff(converted<double>(dwf), expected.dw) < 2e-4);  // sums of 189 products
    CHECK(max_abs_diff(converted<double>(dbf), expected.db) < 2e-4);
}

TEST_CASE("conv2d_backward computes only the gradients asked for", "[kernels][conv2d]") {
    const ConvParams params{2, 2, same};
    const auto x = random_tensor<double>(Shape{2, 7, 6, 3}, 500), w = random_tensor<double>(Shape{3, 3, 3, 4}, 501);
    const auto dy = random_tensor<double>(cpu::conv2d_output_shape(x.shape(), w.shape(), params), 502);
    const Gradients all = backward(x, w, dy, params);
    Tensor<double> dx(x.shape()), dw(w.shape()), db(Shape{4});
    cpu::conv2d_backward(x, w, dy, params, &dx, nullptr, nullptr);
    cpu::conv2d_backward(x, w, dy, params, nullptr, &dw, nullptr);
    cpu::conv2d_backward(x, w, dy, params, nullptr, nullptr, &db);
    CHECK_NOTHROW(cpu::conv2d_backward(x, w, dy, params, nullptr, nullptr, nullptr));
    CHECK(bitwise_equal(dx, all.dx));
    CHECK(bitwise_equal(dw, all.dw));
    CHECK(bitwise_equal(db, all.db));
}

TEST_CASE("conv2d_backward weight gradients are deterministic", "[kernels][conv2d]") {
    // Three threads on several tiles: per-chunk partial sums must combine in a fixed order.
    const cpu::ConvAlgorithm algorithm = GENERATE(cpu::ConvAlgorithm::gemm_only, cpu::ConvAlgorithm::automatic);
    const ConvAlgorithmScope scope(algorithm);
    CAPTURE(cpu::conv_algorithm_name(algorithm));
    const ThreadCount threads(3);
    const ConvParams params{1, 1, same};
    const auto x = random_tensor<double>(Shape{2, 25, 23, 16}, 600), w = random_tensor<double>(Shape{3, 3, 16, 8}, 601);
    REQUIRE(tile_count(x.shape(), w.shape(), params) >= 3);
    const auto dy = random_tensor<double>(cpu::conv2d_output_shape(x.shape(), w.shape(), params), 602);
    const Gradients first = backward(x, w, dy, params), second = backward(x, w, dy, params);
    CHECK(bitwise_equal(first.dw, second.dw));
    CHECK(bitwise_equal(first.db, second.db));
    CHECK(bitwise_equal(first.dx, second.dx));
    const Gradients expected = reference_backward(x, w, dy, params);
    CHECK(max_abs_diff(first.dw, expected.dw) < 1e-10);
    CHECK(max_abs_diff(first.dx, expected.dx) < 1e-11);
}

TEST_CASE("conv2d handles an empty batch", "[kernels][conv2d]") {
    const ConvParams params{2, 2, same};
    const Tensor<double> x(Shape{0, 5, 5, 2}), w = random_tensor<double>(Shape{3, 3, 2, 3}, 700);
    Tensor<double> y(Shape{0, 3, 3, 3});
    CHECK_NOTHROW(cpu::conv2d_forward(x, w, nullptr, params, y));
    Tensor<double> dx(x.shape()), dw(w.shape(), 5.0), db(Shape{3}, 5.0);
    cpu::conv2d_backward(x, w, y, params, &dx, &dw, &db);
    CHECK(max_abs_diff(dw, Tensor<double>(w.shape())) == 0);
    CHECK(max_abs_diff(db, Tensor<double>(Shape{3})) == 0);
}

TEST_CASE("conv2d rejects bad arguments naming the shapes", "[kernels][conv2d][errors]") {
    const ConvParams params{1, 1, same};
    const Tensor<float> x(Shape{2, 5, 5, 3}), w(Shape{3, 3, 3, 16});
    Tensor<float> y(Shape{2, 5, 5, 16});
    const Tensor<float> w_bad(Shape{3, 3, 8, 16});
    CHECK_THROWS_WITH(cpu::conv2d_forward(x, w_bad, nullptr, params, y),
                      Catch::Contains("conv2d_forward: weights (3, 3, 8, 16) expect 8 input channels, "
                                      "input (2, 5, 5, 3) has 3"));
    CHECK_THROWS_WITH(cpu::conv2d_forward(Tensor<float>(Shape{5, 5, 3}), w, nullptr, params, y),
                      Catch::Contains("conv2d_forward: input must have rank 4, got shape (5, 5, 3)"));
    CHECK_THROWS_WITH(cpu::conv2d_forward(x, Tensor<float>(Shape{3, 3, 3}), nullptr, params, y),
                      Catch::Contains("conv2d_forward: weights must have rank 4, got shape (3, 3, 3)"));
    CHECK_THROWS_WITH(cpu::conv2d_forward(x, Tensor<float>(Shape{3, 0, 3, 16}), nullptr, params, y),
                      Catch::Contains("weights (3, 0, 3, 16) have an empty axis"));
    const Tensor<float> bias(Shape{4});
    CHECK_THROWS_WITH(cpu::conv2d_forward(x, w, &bias, params, y),
                      Catch::Contains("conv2d_forward: bias has shape (4), expected (16)"));
    Tensor<float> y_bad(Shape{2, 3, 3, 16});
    CHECK_THROWS_WITH(cpu::conv2d_forward(x, w, nullptr, params, y_bad),
                      Catch::Contains("conv2d_forward: output has shape (2, 3, 3, 16), expected (2, 5, 5, 16)"));
    const Tensor<float> w_wide(Shape{3, 3, 3, 20});
    CHECK_THROWS_WITH(cpu::conv2d_forward(x, w_wide.channels(0, 16), nullptr, params, y),
                      Catch::Contains("conv2d_forward: weights of shape (3, 3, 3, 16) must be contiguous"));
    CHECK_THROWS_WITH(cpu::conv2d_output_shape(Shape{1, 2, 2, 3}, Shape{3, 3, 3, 4}, ConvParams{1, 1, valid}),
                      Catch::Contains("conv2d_output_shape: input 2x2 is smaller than the window (kernel 3x3"));
    CHECK_THROWS_WITH(cpu::conv2d_output_shape(Shape{1, 5, 5, 3}, Shape{3, 3, 3, 4}, ConvParams{0, 1, same}),
                      Catch::Contains("conv2d_output_shape: invalid window (kernel 3x3, strides 0x1"));

    Tensor<float> dx(x.shape()), dw(w.shape()), db(Shape{16});
    CHECK_THROWS_WITH(cpu::conv2d_backward(x, w, y_bad, params, &dx, &dw, &db),
                      Catch::Contains("conv2d_backward: output gradient has shape (2, 3, 3, 16), expected (2, 5, 5, 16)"));
    Tensor<float> dx_bad(Shape{2, 5, 5, 4});
    CHECK_THROWS_WITH(cpu::conv2d_backward(x, w, y, params, &dx_bad, &dw, &db),
                      Catch::Contains("conv2d_backward: input gradient has shape (2, 5, 5, 4), expected (2, 5, 5, 3)"));
    Tensor<float> dw_bad(Shape{3, 3, 3, 15});
    CHECK_THROWS_WITH(cpu::conv2d_backward(x, w, y, params, &dx, &dw_bad, &db),
                      Catch::Contains("conv2d_backward: weights gradient has shape (3, 3, 3, 15), expected (3, 3, 3, 16)"));
    Tensor<float> db_bad(Shape{15});
    CHECK_THROWS_WITH(cpu::conv2d_backward(x, w, y, params, &dx, &dw, &db_bad),
                      Catch::Contains("conv2d_backward: bias gradient has shape (15), expected (16)"));
    CHECK_THROWS_WITH(cpu::conv2d_backward(x, w_bad, y, params, &dx, &dw, &db),
                      Catch::Contains("conv2d_backward: weights (3, 3, 8, 16) expect 8 input channels"));
}

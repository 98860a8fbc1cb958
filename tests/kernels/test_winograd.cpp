// Winograd F(4x4, 3x3) convolution, winograd.hpp's general path and
// winograd_narrow.hpp's: forward and input gradient against nested-loop
// references over many shapes, float accuracy, finite differences, channel
// slices, agreement with the im2col path on real layer shapes, the
// applicability rules and their error messages; the narrow path also with
// its ReLU (forward) and ReLU mask (input gradient).

#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <utility>
#include <vector>

#include <bcnn/kernels/cpu/conv2d.hpp>
#include <bcnn/kernels/cpu/winograd.hpp>
#include <bcnn/kernels/cpu/winograd_narrow.hpp>
#include <bcnn/kernels/cpu/winograd_narrow_weights.hpp>

#include "support/conv_support.hpp"
#include "support/gradcheck.hpp"
#include "support/random.hpp"

using namespace bcnn;
using bcnn::testing::max_abs_diff;
using bcnn::testing::random_tensor;
using bcnn::testing::converted;
using bcnn::testing::max_abs;

namespace {

const Padding same = Padding::same, valid = Padding::valid;

// Largest error of a float Winograd result relative to the output's scale
// (max |y|): see "winograd in float matches the double reference".
const double kFloatTolerance = 2e-5;

// Padding before the first input along one axis for a 3x3 stride-1 kernel,
// as Keras documents it: 'same' pads 2 in total, 1 before; 'valid' none.
Index pad_before(Padding padding) { return padding == same ? 1 : 0; }
Index out_extent(Index in, Padding padding) { return padding == same ? in : in - 2; }

// Calls f(y_index, x_index, w_index) for every product x * w of the
// convolution whose input pixel lies in the image (flat, contiguous indices).
template <typename F>
void for_each_term(const Shape& x, Index filters, Padding padding, F f) {
    const Index in_h = x[1], in_w = x[2], channels = x[3], pad = pad_before(padding);
    const Index out_h = out_extent(in_h, padding), out_w = out_extent(in_w, padding);
    for (Index n = 0; n < x[0]; ++n)
        for (Index oh = 0; oh < out_h; ++oh)
            for (Index ow = 0; ow < out_w; ++ow)
                for (Index kh = 0; kh < 3; ++kh)
                    for (Index kw = 0; kw < 3; ++kw) {
                        const Index ih = oh - pad + kh, iw = ow - pad + kw;
                        if (ih < 0 || ih >= in_h || iw < 0 || iw >= in_w) continue;
                        const Index y_pixel = (n * out_h + oh) * out_w + ow, x_pixel = (n * in_h + ih) * in_w + iw;
                        for (Index c = 0; c < channels; ++c)
                            for (Index k = 0; k < filters; ++k)
                                f(y_pixel * filters + k, x_pixel * channels + c,
                                  ((kh * 3 + kw) * channels + c) * filters + k);
                    }
}

Shape output_shape(const Shape& x, Index filters, Padding padding) {
    return Shape{x[0], out_extent(x[1], padding), out_extent(x[2], padding), filters};
}

Tensor<double> reference_forward(const Tensor<double>& x, const Tensor<double>& w, const Tensor<double>* b,
                                 Padding padding) {
    const Index filters = w.dim(3);
    Tensor<double> y(output_shape(x.shape(), filters, padding));
    const Tensor<double> xc = x.clone(), wc = w.clone();
    const double *xd = xc.data(), *wd = wc.data();
    double* yd = y.data();
    for_each_term(x.shape(), filters, padding, [&](Index yi, Index xi, Index wi) { yd[yi] += xd[xi] * wd[wi]; });
    if (b)
        for (Index i = 0; i < y.numel(); ++i) yd[i] += (*b)(i % filters);
    return y;
}

// The adjoint of reference_forward in x: d/dx of sum(y .* dy).
Tensor<double> reference_input_gradient(const Shape& x, const Tensor<double>& w, const Tensor<double>& dy,
                                        Padding padding) {
    Tensor<double> dx(x);
    const Tensor<double> wc = w.clone(), dyc = dy.clone();
    const double *wd = wc.data(), *dyd = dyc.data();
    double* dxd = dx.data();
    for_each_term(x, w.dim(3), padding, [&](Index yi, Index xi, Index wi) { dxd[xi] += dyd[yi] * wd[wi]; });
    return dx;
}

// d/dw of sum(y .* dy).
Tensor<double> reference_weights_gradient(const Tensor<double>& x, const Tensor<double>& dy, Index filters,
                                          Padding padding) {
    Tensor<double> dw(Shape{3, 3, x.dim(3), filters});
    const Tensor<double> xc = x.clone(), dyc = dy.clone();
    const double *xd = xc.data(), *dyd = dyc.data();
    double* dwd = dw.data();
    for_each_term(x.shape(), filters, padding, [&](Index yi, Index xi, Index wi) { dwd[wi] += xd[xi] * dyd[yi]; });
    return dw;
}

cpu::detail::Conv2DDims dims(const Shape& x, const Shape& w, Padding padding) {
    return cpu::detail::conv2d_dims(x, w, ConvParams{1, 1, padding}, "test");
}

template <typename T>
void winograd_forward(const Tensor<T>& x, const Tensor<T>& w, OptionalInput<T> b, Padding padding, Tensor<T>& y) {
    cpu::detail::conv2d_winograd_forward(dims(x.shape(), w.shape(), padding), x.as_rows(), w.data(),
                                         b ? b->data() : nullptr, y.as_rows());
}

template <typename T>
Tensor<T> winograd_forward(const Tensor<T>& x, const Tensor<T>& w, OptionalInput<T> b, Padding padding) {
    Tensor<T> y = Tensor<T>::uninitialized(output_shape(x.shape(), w.dim(3), padding));
    winograd_forward(x, w, b, padding, y);
    return y;
}

template <typename T>
void winograd_input_gradient(const Tensor<T>& w, const Tensor<T>& dy, Padding padding, Tensor<T>& dx) {
    cpu::detail::conv2d_winograd_input_gradient(dims(dx.shape(), w.shape(), padding), dy.as_rows(), w.data(),
                                                dx.as_rows());
}

template <typename T>
Tensor<T> winograd_input_gradient(const Shape& x, const Tensor<T>& w, const Tensor<T>& dy, Padding padding) {
    Tensor<T> dx = Tensor<T>::uninitialized(x);
    winograd_input_gradient(w, dy, padding, dx);
    return dx;
}

template <typename T>
void narrow_forward(const Tensor<T>& x, const Tensor<T>& w, OptionalInput<T> b, Padding padding, Tensor<T>& y,
                    cpu::ActivationFn activation = cpu::ActivationFn::linear) {
    cpu::detail::conv2d_winograd_narrow_forward(dims(x.shape(), w.shape(), padding), x.as_rows(), w.data(),
                                                b ? b->data() : nullptr, y.as_rows(), activation);
}

template <typename T>
Tensor<T> narrow_forward(const Tensor<T>& x, const Tensor<T>& w, OptionalInput<T> b, Padding padding,
                         cpu::ActivationFn activation = cpu::ActivationFn::linear) {
    Tensor<T> y = Tensor<T>::uninitialized(output_shape(x.shape(), w.dim(3), padding));
    narrow_forward(x, w, b, padding, y, activation);
    return y;
}

// dx of the narrow path, dy read where relu_output > 0 when it is given.
template <typename T>
void narrow_input_gradient(const Tensor<T>& w, const Tensor<T>& dy, Padding padding, Tensor<T>& dx,
                           const Tensor<T>* relu_output = nullptr) {
    const RowMatrix<T> mask = relu_output ? relu_output->as_rows() : RowMatrix<T>{};
    cpu::detail::conv2d_winograd_narrow_input_gradient(dims(dx.shape(), w.shape(), padding), dy.as_rows(), w.data(),
                                                       dx.as_rows(), relu_output ? &mask : nullptr);
}

template <typename T>
Tensor<T> narrow_input_gradient(const Shape& x, const Tensor<T>& w, const Tensor<T>& dy, Padding padding,
                                const Tensor<T>* relu_output = nullptr) {
    Tensor<T> dx = Tensor<T>::uninitialized(x);
    narrow_input_gradient(w, dy, padding, dx, relu_output);
    return dx;
}

// d_weights (and, through a ReLU, d_bias) of the narrow path; dy read where
// relu_output > 0 when it is given.
template <typename T>
void narrow_weights_gradient(const Tensor<T>& x, const Tensor<T>& dy, Padding padding, Tensor<T>& dw,
                             const Tensor<T>* relu_output = nullptr, Tensor<T>* db = nullptr) {
    const RowMatrix<T> mask = relu_output ? relu_output->as_rows() : RowMatrix<T>{};
    cpu::detail::conv2d_winograd_narrow_weights_gradient(dims(x.shape(), dw.shape(), padding), x.as_rows(),
                                                         dy.as_rows(), dw.data(), relu_output ? &mask : nullptr,
                                                         db ? db->data() : nullptr);
}

template <typename T>
Tensor<T> narrow_weights_gradient(const Tensor<T>& x, const Tensor<T>& dy, Padding padding,
                                  const Tensor<T>* relu_output = nullptr, Tensor<T>* db = nullptr) {
    Tensor<T> dw = Tensor<T>::uninitialized(Shape{3, 3, x.dim(3), dy.dim(3)});
    narrow_weights_gradient(x, dy, padding, dw, relu_output, db);
    return dw;
}

// The sum of t over all but its last axis.
Tensor<double> channel_sums(const Tensor<double>& t) {
    const Index channels = t.dim(t.rank() - 1);
    Tensor<double> sums(Shape{channels});
    const Tensor<double> c = t.clone();
    for (Index i = 0; i < c.numel(); ++i) sums.data()[i % channels] += c.data()[i];
    return sums;
}

// max(t, 0) and t where mask > 0 (else 0), elementwise.
Tensor<double> relu_of(const Tensor<double>& t) {
    Tensor<double> out = t.clone();
    for (Index i = 0; i < out.numel(); ++i) out.data()[i] = std::max(out.data()[i], 0.0);
    return out;
}

Tensor<double> masked(const Tensor<double>& t, const Tensor<double>& mask) {
    Tensor<double> out = t.clone();
    const Tensor<double> m = mask.clone();
    for (Index i = 0; i < out.numel(); ++i)
        if (!(m.data()[i] > 0)) out.data()[i] = 0;
    return out;
}

bool bitwise_equal(const Tensor<double>& a, const Tensor<double>& b) {
    const std::vector<double> av = a.to_vector(), bv = b.to_vector();
    return a.shape() == b.shape() && std::memcmp(av.data(), bv.data(), av.size() * sizeof(double)) == 0;
}

class ThreadCount {
public:
    explicit ThreadCount(int threads) : saved_(num_threads()) { set_num_threads(threads); }
    ~ThreadCount() { set_num_threads(saved_); }

private:
    int saved_;
};

struct Case {
    Shape x;
    Index filters;
    Padding padding;
    bool bias;
};

// Odd and tiny extents (partial and single tiles), C and K in {1, 3, 17},
// batch 1 to 3, both paddings, with and without bias.
std::vector<Case> shape_cases() {
    const Index extents[] = {1, 2, 3, 5, 7, 9, 13, 37};
    const Index widths[] = {1, 3, 17};
    std::vector<Case> cases;
    int i = 0;
    for (Index h : extents)
        for (Index w : {extents[(i + 3) % 8], h}) {
            for (Padding padding : {same, valid}) {
                if (padding == valid && (h < 3 || w < 3)) continue;
                const Index batch = 1 + i % 3, channels = widths[i % 3], filters = widths[(i / 3 + i) % 3];
                cases.push_back({Shape{batch, h, w, channels}, filters, padding, i % 2 == 0});
                ++i;
            }
            ++i;
        }
    return cases;
}

// The narrow path's channel and filter counts for T: one vector, three
// (or two, when three exceed 32 values), and 32 values.
template <typename T>
std::vector<Index> narrow_widths() {
    const Index w = cpu::simd::width<T>;
    return {w, 3 * w <= 32 ? 3 * w : 2 * w, 32};
}

// shape_cases' extents, paddings and bias with narrow widths of T.
template <typename T>
std::vector<Case> narrow_cases() {
    const std::vector<Index> widths = narrow_widths<T>();
    std::vector<Case> cases = shape_cases();
    for (std::size_t i = 0; i < cases.size(); ++i) {
        cases[i].x = Shape{cases[i].x[0], cases[i].x[1], cases[i].x[2], widths[i % 3]};
        cases[i].filters = widths[(i / 3 + i + 1) % 3];
    }
    return cases;
}

// Random x, w and (where the case has one) bias of a case, in double, from
// the seeds after `seed` (which it advances).
struct Operands {
    Tensor<double> x, w, b;
    const Tensor<double>* bias;
};

Operands random_operands(const Case& c, std::uint64_t& seed) {
    Operands o{random_tensor<double>(c.x, ++seed), random_tensor<double>(Shape{3, 3, c.x[3], c.filters}, ++seed),
               random_tensor<double>(Shape{c.filters}, ++seed), nullptr};
    if (c.bias) o.bias = &o.b;
    return o;
}

// The two paths' forward (x, w, bias or nullptr, padding) and input
// gradient (x shape, w, dy, padding), for the shared checks below.
const auto general_forward = [](const auto& x, const auto& w, auto b, Padding p) {
    return winograd_forward(x, w, b, p);
};
const auto general_input_gradient = [](const Shape& x, const auto& w, const auto& dy, Padding p) {
    return winograd_input_gradient(x, w, dy, p);
};
const auto narrow_plain_forward = [](const auto& x, const auto& w, auto b, Padding p) {
    return narrow_forward(x, w, b, p);
};
const auto narrow_plain_input_gradient = [](const Shape& x, const auto& w, const auto& dy, Padding p) {
    return narrow_input_gradient(x, w, dy, p);
};

// Checks shared by the general and the narrow path. A path is given by
// forward(x, w, bias or nullptr, padding) and input_gradient(x shape, w,
// dy, padding), returning new tensors, and for slices by the same writing
// into a given tensor.

// Float results against the double reference, relative to the output's scale.
template <typename Forward, typename InputGradient>
void check_float_accuracy(const std::vector<Case>& cases, std::uint64_t seed, Forward forward,
                          InputGradient input_gradient) {
    for (const Case& c : cases) {
        CAPTURE(c.x, c.filters, padding_name(c.padding));
        const auto x = random_tensor<float>(c.x, ++seed);
        const auto w = random_tensor<float>(Shape{3, 3, c.x[3], c.filters}, ++seed);
        const auto b = random_tensor<float>(Shape{c.filters}, ++seed);
        const Tensor<float>* bias = c.bias ? &b : nullptr;
        const Tensor<double> xd = converted<double>(x), wd = converted<double>(w), bd = converted<double>(b);
        const Tensor<double> expected = reference_forward(xd, wd, c.bias ? &bd : nullptr, c.padding);
        const double forward_error =
            max_abs_diff(converted<double>(forward(x, w, bias, c.padding)), expected) / max_abs(expected);
        CAPTURE(forward_error);
        CHECK(forward_error < kFloatTolerance);

        const auto dy = random_tensor<float>(expected.shape(), ++seed);
        const Tensor<double> expected_dx = reference_input_gradient(x.shape(), wd, converted<double>(dy), c.padding);
        const double gradient_error =
            max_abs_diff(converted<double>(input_gradient(x.shape(), w, dy, c.padding)), expected_dx) /
            max_abs(expected_dx);
        CAPTURE(gradient_error);
        CHECK(gradient_error < kFloatTolerance);
    }
}

// The input gradient against finite differences of the forward, in double.
template <typename Forward, typename InputGradient>
void check_input_gradient_numerically(const std::vector<Case>& cases, std::uint64_t seed, Forward forward,
                                      InputGradient input_gradient) {
    for (const Case& c : cases) {
        CAPTURE(c.x, c.filters, padding_name(c.padding));
        auto x = random_tensor<double>(c.x, ++seed);
        const auto w = random_tensor<double>(Shape{3, 3, c.x[3], c.filters}, ++seed);
        const auto b = random_tensor<double>(Shape{c.filters}, ++seed);
        auto run = [&] { return forward(x, w, c.bias ? &b : nullptr, c.padding); };
        const auto upstream = random_tensor<double>(run().shape(), ++seed);
        const Tensor<double> dx = input_gradient(x.shape(), w, upstream, c.padding);
        CHECK(testing::relative_error(dx, testing::numerical_gradient(x, run, upstream)) < 1e-6);
    }
}

// x, y, dy and dx as channel slices of wider buffers, in double; the
// neighbouring channels stay untouched. forward_into(x, w, bias, padding, y)
// and input_gradient_into(w, dy, padding, dx, y) (y: the forward's output,
// for a path that reads dy through its ReLU) write into slices; expected_y
// and expected_dy turn the plain reference's y and dy into what the path
// computes.
template <typename ForwardInto, typename InputGradientInto, typename ExpectedY, typename ExpectedDy>
void check_slices(Index channels, Index filters, std::uint64_t seed, ForwardInto forward_into,
                  InputGradientInto input_gradient_into, ExpectedY expected_y, ExpectedDy expected_dy) {
    const double sentinel = -7.0;
    for (Padding padding : {same, valid}) {
        CAPTURE(padding_name(padding));
        const Shape xs{2, 11, 9, channels};
        // x: channels [2, 2 + C) of a wider buffer.
        const auto wide_x = random_tensor<double>(Shape{xs[0], xs[1], xs[2], channels + 5}, seed);
        const Tensor<double> x = wide_x.channels(2, 2 + channels);
        const auto w = random_tensor<double>(Shape{3, 3, channels, filters}, seed + 1);
        const auto b = random_tensor<double>(Shape{filters}, seed + 2);
        const Shape ys = output_shape(xs, filters, padding);

        // y: channels [3, 3 + K) of a wider buffer; the rest stays untouched.
        Tensor<double> wide_y(Shape{ys[0], ys[1], ys[2], filters + 5}, sentinel);
        Tensor<double> y = wide_y.channels(3, 3 + filters);
        forward_into(x, w, &b, padding, y);
        CHECK(max_abs_diff(y, expected_y(reference_forward(x.clone(), w, &b, padding))) < 1e-12);
        for (Index r = 0; r < ys[0] * ys[1] * ys[2]; ++r)
            for (Index k : {Index(0), Index(1), Index(2), filters + 3, filters + 4})
                REQUIRE(wide_y.data()[r * (filters + 5) + k] == sentinel);

        // dy: channels [1, 1 + K) of a wider buffer; dx into channels [1, 1 + C) of another.
        const auto wide_dy = random_tensor<double>(Shape{ys[0], ys[1], ys[2], filters + 2}, seed + 3);
        const Tensor<double> dy = wide_dy.channels(1, 1 + filters);
        Tensor<double> wide_dx(Shape{xs[0], xs[1], xs[2], channels + 3}, sentinel);
        Tensor<double> dx = wide_dx.channels(1, 1 + channels);
        input_gradient_into(w, dy, padding, dx, y);
        CHECK(max_abs_diff(dx, reference_input_gradient(xs, w, expected_dy(dy.clone(), y.clone()), padding)) < 1e-12);
        for (Index r = 0; r < xs[0] * xs[1] * xs[2]; ++r)
            for (Index k : {Index(0), channels + 1, channels + 2})
                REQUIRE(wide_dx.data()[r * (channels + 3) + k] == sentinel);
    }
}

// Three threads: the same bits twice, and the reference's values.
template <typename Forward, typename InputGradient>
void check_timing_independence(const Shape& x_shape, Index filters, std::uint64_t seed, Forward forward,
                               InputGradient input_gradient) {
    const ThreadCount threads(3);
    const auto x = random_tensor<double>(x_shape, seed),
               w = random_tensor<double>(Shape{3, 3, x_shape[3], filters}, seed + 1);
    const auto dy = random_tensor<double>(Shape{x_shape[0], x_shape[1], x_shape[2], filters}, seed + 2);
    CHECK(bitwise_equal(forward(x, w, nullptr, same), forward(x, w, nullptr, same)));
    CHECK(bitwise_equal(input_gradient(x.shape(), w, dy, same), input_gradient(x.shape(), w, dy, same)));
    CHECK(max_abs_diff(forward(x, w, nullptr, same), reference_forward(x, w, nullptr, same)) < 1e-11);
}

}  // namespace

TEST_CASE("winograd applies to 3x3 stride-1 convolutions only", "[kernels][winograd]") {
    const Shape x{2, 9, 9, 32};
    CHECK(cpu::detail::winograd_applicable(dims(x, Shape{3, 3, 32, 32}, same)));
    CHECK(cpu::detail::winograd_applicable(dims(x, Shape{3, 3, 32, 32}, valid)));
    CHECK_FALSE(cpu::detail::winograd_applicable(dims(x, Shape{1, 1, 32, 32}, same)));
    CHECK_FALSE(cpu::detail::winograd_applicable(dims(x, Shape{5, 5, 32, 32}, same)));
    CHECK_FALSE(cpu::detail::winograd_applicable(dims(x, Shape{3, 1, 32, 32}, same)));
    const auto strided = cpu::detail::conv2d_dims(x, Shape{3, 3, 32, 32}, ConvParams{2, 1, same}, "test");
    CHECK_FALSE(cpu::detail::winograd_applicable(strided));
    CHECK_FALSE(cpu::detail::winograd_pays_forward(strided));
    CHECK_FALSE(cpu::detail::winograd_pays_input_gradient(strided));
    // The measured rules (winograd.hpp): C, K >= 16, enough tiles, and for the
    // forward at least half of the tiles' outputs inside the image.
    const auto pays = [](const Shape& input, Index filters) {
        const auto d = dims(input, Shape{3, 3, input[3], filters}, same);
        return std::make_pair(cpu::detail::winograd_pays_forward(d), cpu::detail::winograd_pays_input_gradient(d));
    };
    CHECK(pays(Shape{32, 37, 37, 64}, 64) == std::make_pair(true, true));
    CHECK(pays(Shape{32, 150, 150, 16}, 16) == std::make_pair(true, true));
    CHECK(pays(Shape{32, 150, 150, 3}, 16) == std::make_pair(false, false));
    CHECK(pays(Shape{32, 150, 150, 16}, 8) == std::make_pair(false, false));
    CHECK(pays(Shape{32, 4, 4, 512}, 512) == std::make_pair(true, true));     // 32 tiles, all outputs used
    CHECK(pays(Shape{32, 5, 5, 256}, 256) == std::make_pair(false, true));    // 25 of 64 outputs used
    CHECK(pays(Shape{32, 9, 9, 512}, 512) == std::make_pair(true, true));     // 81 of 144
    CHECK(pays(Shape{32, 18, 18, 512}, 512) == std::make_pair(true, true));   // 324 of 400
    CHECK(pays(Shape{2, 16, 16, 512}, 512) == std::make_pair(true, true));    // 32 tiles
    CHECK(pays(Shape{1, 16, 16, 512}, 512) == std::make_pair(false, true));   // 16 tiles
    CHECK(pays(Shape{1, 9, 9, 512}, 512) == std::make_pair(false, false));    // 9 tiles

    const Tensor<double> xt(Shape{1, 5, 5, 2}), w(Shape{5, 5, 2, 3});
    Tensor<double> y(Shape{1, 5, 5, 3});
    CHECK_THROWS_WITH(winograd_forward(xt, w, nullptr, same, y),
                      Catch::Contains("conv2d_winograd_forward: needs a 3x3 kernel with stride 1, got kernel 5x5"));
    Tensor<double> dx(xt.shape());
    CHECK_THROWS_WITH(
        winograd_input_gradient(w, y, same, dx),
        Catch::Contains("conv2d_winograd_input_gradient: needs a 3x3 kernel with stride 1, got kernel 5x5"));
}

TEST_CASE("winograd forward and input gradient match reference loops", "[kernels][winograd]") {
    std::uint64_t seed = 1000;
    const std::vector<Case> cases = shape_cases();
    REQUIRE(cases.size() >= 20);
    for (const Case& c : cases) {
        CAPTURE(c.x, c.filters, padding_name(c.padding), c.bias);
        const Operands o = random_operands(c, seed);
        const Tensor<double>&x = o.x, &w = o.w, *bias = o.bias;
        const Tensor<double> y = winograd_forward(x, w, bias, c.padding);
        const Tensor<double> expected = reference_forward(x, w, bias, c.padding);
        CHECK(max_abs_diff(y, expected) < 1e-12 * std::max(1.0, max_abs(expected)));

        const auto dy = random_tensor<double>(y.shape(), ++seed);
        const Tensor<double> dx = winograd_input_gradient(x.shape(), w, dy, c.padding);
        const Tensor<double> expected_dx = reference_input_gradient(x.shape(), w, dy, c.padding);
        CHECK(max_abs_diff(dx, expected_dx) < 1e-12 * std::max(1.0, max_abs(expected_dx)));
    }
}

TEST_CASE("winograd in float matches the double reference", "[kernels][winograd]") {
    // The transforms multiply values by up to 32 before the 36 GEMMs and divide
    // by up to 24 in the kernel transform, so float loses a few more bits than
    // a direct 9 * C term dot product (~1e-7 of the output scale here).
    // Measured: max error / max |y| 3.6e-6 to 6.2e-6 (forward) and 3.9e-6 to
    // 4.4e-6 (input gradient) on these shapes; against float im2col on the real
    // layers below 2.9e-6 (C = 3) to 1.2e-5 (C = K = 256). Tolerance: 2e-5.
    check_float_accuracy({{Shape{2, 37, 29, 17}, 33, same, true},
                          {Shape{1, 13, 18, 64}, 48, valid, false},
                          {Shape{2, 9, 9, 128}, 32, same, true}},
                         2000, general_forward, general_input_gradient);
}

TEST_CASE("winograd input gradient matches finite differences", "[kernels][winograd][gradcheck]") {
    check_input_gradient_numerically({{Shape{2, 5, 6, 3}, 2, same, true},
                                      {Shape{1, 7, 9, 2}, 3, valid, false},
                                      {Shape{1, 2, 1, 3}, 2, same, true}},
                                     3000, general_forward, general_input_gradient);
}

TEST_CASE("winograd reads and writes channel slices of wider buffers", "[kernels][winograd]") {
    check_slices(
        5, 6, 4000, [](const auto& x, const auto& w, auto b, Padding p, auto& y) { winograd_forward(x, w, b, p, y); },
        [](const auto& w, const auto& dy, Padding p, auto& dx, const auto&) { winograd_input_gradient(w, dy, p, dx); },
        [](const Tensor<double>& y) { return y; }, [](const Tensor<double>& dy, const Tensor<double>&) { return dy; });
}

TEST_CASE("winograd equals the im2col path on real layer shapes", "[kernels][winograd]") {
    // (H, C, K) of the layers Winograd is meant for, 'same' padding, batch 1-2,
    // in float as trained (double would make the test too slow): both paths
    // against each other, to the float tolerance of the test above.
    struct Layer {
        Index batch, size, channels, filters;
    };
    const std::vector<Layer> layers = {{1, 150, 16, 16}, {2, 37, 64, 64},   {1, 37, 256, 256},
                                       {2, 18, 128, 32}, {1, 148, 32, 32}, {1, 150, 3, 16}};
    std::uint64_t seed = 5000;
    for (const Layer& l : layers) {
        CAPTURE(l.size, l.channels, l.filters);
        const ConvParams params{1, 1, same};
        const auto x = random_tensor<float>(Shape{l.batch, l.size, l.size, l.channels}, ++seed);
        const auto w = random_tensor<float>(Shape{3, 3, l.channels, l.filters}, ++seed);
        const auto b = random_tensor<float>(Shape{l.filters}, ++seed);
        Tensor<float> expected(cpu::conv2d_output_shape(x.shape(), w.shape(), params));
        cpu::conv2d_forward(x, w, &b, params, expected);
        const double forward_error =
            max_abs_diff(winograd_forward(x, w, &b, same), expected) / max_abs(converted<double>(expected));
        CAPTURE(forward_error);
        CHECK(forward_error < kFloatTolerance);

        const auto dy = random_tensor<float>(expected.shape(), ++seed);
        Tensor<float> expected_dx(x.shape());
        cpu::conv2d_backward(x, w, dy, params, &expected_dx, nullptr, nullptr);
        const double gradient_error = max_abs_diff(winograd_input_gradient(x.shape(), w, dy, same), expected_dx) /
                                      max_abs(converted<double>(expected_dx));
        CAPTURE(gradient_error);
        CHECK(gradient_error < kFloatTolerance);
    }
}

TEST_CASE("winograd results do not depend on timing", "[kernels][winograd]") {
    check_timing_independence(Shape{3, 21, 19, 24}, 20, 6000, general_forward, general_input_gradient);
}
TEST_CASE("narrow winograd takes whole vectors of at most 32 channels and filters", "[kernels][winograd]") {
    const Index w = cpu::simd::width<float>;
    const auto applicable = [](const Shape& x, const Shape& weights, const ConvParams& params) {
        return cpu::detail::winograd_narrow_applicable<float>(cpu::detail::conv2d_dims(x, weights, params, "test"));
    };
    const ConvParams same_1{1, 1, same};
    CHECK(applicable(Shape{2, 9, 9, w}, Shape{3, 3, w, w}, same_1));
    CHECK(applicable(Shape{2, 9, 9, 32}, Shape{3, 3, 32, 32}, ConvParams{1, 1, valid}));
    CHECK(applicable(Shape{32, 150, 150, 16}, Shape{3, 3, 16, 16}, same_1));  // the custom CNN's conv2d_1
    CHECK_FALSE(applicable(Shape{2, 9, 9, 32 + w}, Shape{3, 3, 32 + w, w}, same_1));
    CHECK_FALSE(applicable(Shape{2, 9, 9, w}, Shape{3, 3, w, 32 + w}, same_1));
    CHECK_FALSE(applicable(Shape{2, 9, 9, w + 1}, Shape{3, 3, w + 1, w}, same_1));
    CHECK_FALSE(applicable(Shape{2, 9, 9, w}, Shape{3, 3, w, w - 1}, same_1));
    CHECK_FALSE(applicable(Shape{2, 9, 9, 3}, Shape{3, 3, 3, 16}, same_1));
    CHECK_FALSE(applicable(Shape{2, 9, 9, w}, Shape{1, 1, w, w}, same_1));
    CHECK_FALSE(applicable(Shape{2, 9, 9, w}, Shape{3, 3, w, w}, ConvParams{2, 2, same}));

    const Tensor<float> x(Shape{1, 5, 5, 3}), weights(Shape{3, 3, 3, w});
    Tensor<float> y(Shape{1, 5, 5, w});
    CHECK_THROWS_WITH(narrow_forward(x, weights, nullptr, same, y),
                      Catch::Contains("conv2d_winograd_narrow_forward: needs a 3x3 stride-1 kernel and channels "
                                      "and filters whole vectors up to 32, got kernel 3x3") &&
                          Catch::Contains("3 -> " + std::to_string(w)));
    Tensor<float> dx(x.shape());
    CHECK_THROWS_WITH(narrow_input_gradient(weights, y, same, dx),
                      Catch::Contains("conv2d_winograd_narrow_input_gradient: needs a 3x3 stride-1 kernel"));
}

TEST_CASE("narrow winograd matches reference loops, with its ReLU and ReLU mask", "[kernels][winograd]") {
    std::uint64_t seed = 7000;
    const std::vector<Case> cases = narrow_cases<double>();
    REQUIRE(cases.size() >= 20);
    for (const Case& c : cases) {
        CAPTURE(c.x, c.filters, padding_name(c.padding), c.bias);
        const Operands o = random_operands(c, seed);
        const Tensor<double>&x = o.x, &w = o.w, *bias = o.bias;
        const Tensor<double> expected = reference_forward(x, w, bias, c.padding);
        const double scale = std::max(1.0, max_abs(expected));
        CHECK(max_abs_diff(narrow_forward(x, w, bias, c.padding), expected) < 1e-12 * scale);
        const Tensor<double> y = narrow_forward(x, w, bias, c.padding, cpu::ActivationFn::relu);
        CHECK(max_abs_diff(y, relu_of(expected)) < 1e-12 * scale);

        const auto dy = random_tensor<double>(y.shape(), ++seed);
        const Tensor<double> expected_dx = reference_input_gradient(x.shape(), w, dy, c.padding);
        CHECK(max_abs_diff(narrow_input_gradient(x.shape(), w, dy, c.padding), expected_dx) <
              1e-12 * std::max(1.0, max_abs(expected_dx)));
        // Through the ReLU: dy where y > 0.
        const Tensor<double> expected_masked = reference_input_gradient(x.shape(), w, masked(dy, y), c.padding);
        CHECK(max_abs_diff(narrow_input_gradient(x.shape(), w, dy, c.padding, &y), expected_masked) <
              1e-12 * std::max(1.0, max_abs(expected_masked)));
    }
}

TEST_CASE("narrow winograd in float matches the double reference", "[kernels][winograd]") {
    // The same transforms as the general path, so its float bound (kFloatTolerance).
    // Measured 2.6e-6 to 5.5e-6 of the scale on these shapes (AVX2, 2026-11-27).
    const Index w = cpu::simd::width<float>;
    check_float_accuracy({{Shape{2, 37, 29, 32}, 32, same, true},
                          {Shape{1, 13, 18, w}, 32, valid, false},
                          {Shape{3, 21, 22, 16}, 16, same, true}},
                         7500, narrow_plain_forward, narrow_plain_input_gradient);
}

TEST_CASE("narrow winograd input gradient matches finite differences", "[kernels][winograd][gradcheck]") {
    const Index w = cpu::simd::width<double>;
    check_input_gradient_numerically({{Shape{2, 5, 6, w}, w, same, true},
                                      {Shape{1, 7, 9, 2 * w}, w, valid, false},
                                      {Shape{1, 2, 1, w}, 2 * w, same, true}},
                                     8000, narrow_plain_forward, narrow_plain_input_gradient);
}

TEST_CASE("narrow winograd reads and writes channel slices of wider buffers", "[kernels][winograd]") {
    // With its ReLU: y = relu(conv), and dy read where y > 0.
    check_slices(
        cpu::simd::width<double>, 2 * cpu::simd::width<double>, 9000,
        [](const auto& x, const auto& w, auto b, Padding p, auto& y) {
            narrow_forward(x, w, b, p, y, cpu::ActivationFn::relu);
        },
        [](const auto& w, const auto& dy, Padding p, auto& dx, const auto& y) {
            narrow_input_gradient(w, dy, p, dx, &y);
        },
        relu_of, masked);
}

TEST_CASE("narrow winograd results do not depend on timing", "[kernels][winograd]") {
    const Index w = cpu::simd::width<double>;
    check_timing_independence(Shape{3, 21, 19, 2 * w}, 3 * w, 9500, narrow_plain_forward, narrow_plain_input_gradient);
}

TEST_CASE("narrow winograd weights gradient matches reference loops, through a ReLU too", "[kernels][winograd]") {
    std::uint64_t seed = 10000;
    for (const Case& c : narrow_cases<double>()) {
        CAPTURE(c.x, c.filters, padding_name(c.padding));
        const auto x = random_tensor<double>(c.x, ++seed);
        const auto w = random_tensor<double>(Shape{3, 3, c.x[3], c.filters}, ++seed);
        const auto b = random_tensor<double>(Shape{c.filters}, ++seed);
        const Tensor<double> y = narrow_forward(x, w, &b, c.padding, cpu::ActivationFn::relu);
        const auto dy = random_tensor<double>(y.shape(), ++seed);
        const Tensor<double> expected = reference_weights_gradient(x, dy, c.filters, c.padding);
        CHECK(max_abs_diff(narrow_weights_gradient(x, dy, c.padding), expected) <
              1e-12 * std::max(1.0, max_abs(expected)));
        // Through the ReLU: dy where y > 0, and d_bias its sum.
        const Tensor<double> dy_pre = masked(dy, y);
        const Tensor<double> expected_masked = reference_weights_gradient(x, dy_pre, c.filters, c.padding);
        Tensor<double> db(Shape{c.filters}, 1e9);
        CHECK(max_abs_diff(narrow_weights_gradient(x, dy, c.padding, &y, &db), expected_masked) <
              1e-12 * std::max(1.0, max_abs(expected_masked)));
        CHECK(max_abs_diff(db, channel_sums(dy_pre)) < 1e-12 * std::max(1.0, max_abs(db)));
    }
}

TEST_CASE("narrow winograd weights gradient in float matches the double reference", "[kernels][winograd]") {
    // The gradient transforms scale values by up to 8 * 8 (A) and 1/24 (G^T):
    // the forward's float bound (kFloatTolerance) of d_weights' scale.
    // Measured 2.6e-6 to 3.3e-6 on these shapes (AVX2, 2026-11-27); 5.6e-6 on
    // the custom CNN's conv2d_1 at batch 32 (1.4 million terms a weight).
    const Index w = cpu::simd::width<float>;
    const std::vector<Case> cases = {{Shape{2, 37, 29, 32}, 32, same, true},
                                     {Shape{1, 13, 18, w}, 32, valid, false},
                                     {Shape{3, 21, 22, 16}, 16, same, true}};
    std::uint64_t seed = 10500;
    for (const Case& c : cases) {
        CAPTURE(c.x, c.filters, padding_name(c.padding));
        const auto x = random_tensor<float>(c.x, ++seed);
        const auto dy = random_tensor<float>(output_shape(c.x, c.filters, c.padding), ++seed);
        const Tensor<double> expected =
            reference_weights_gradient(converted<double>(x), converted<double>(dy), c.filters, c.padding);
        const double error =
            max_abs_diff(converted<double>(narrow_weights_gradient(x, dy, c.padding)), expected) / max_abs(expected);
        CAPTURE(error);
        CHECK(error < kFloatTolerance);
    }
}

TEST_CASE("narrow winograd weights gradient matches finite differences", "[kernels][winograd][gradcheck]") {
    const Index w = cpu::simd::width<double>;
    const std::vector<Case> cases = {{Shape{2, 5, 6, w}, w, same, true},
                                     {Shape{1, 7, 9, 2 * w}, w, valid, false},
                                     {Shape{1, 2, 1, w}, 2 * w, same, true}};
    std::uint64_t seed = 11000;
    for (const Case& c : cases) {
        CAPTURE(c.x, c.filters, padding_name(c.padding));
        const auto x = random_tensor<double>(c.x, ++seed);
        auto wt = random_tensor<double>(Shape{3, 3, c.x[3], c.filters}, ++seed);
        const auto b = random_tensor<double>(Shape{c.filters}, ++seed);
        auto run = [&] { return narrow_forward(x, wt, c.bias ? &b : nullptr, c.padding); };
        const auto upstream = random_tensor<double>(run().shape(), ++seed);
        const Tensor<double> dw = narrow_weights_gradient(x, upstream, c.padding);
        CHECK(testing::relative_error(dw, testing::numerical_gradient(wt, run, upstream)) < 1e-6);
    }
}

TEST_CASE("narrow winograd weights gradient reads channel slices; depends on the thread count only",
          "[kernels][winograd]") {
    const Index channels = cpu::simd::width<double>, filters = 2 * cpu::simd::width<double>;
    for (Padding padding : {same, valid}) {
        CAPTURE(padding_name(padding));
        const Shape xs{2, 11, 9, channels};
        const auto wide_x = random_tensor<double>(Shape{xs[0], xs[1], xs[2], channels + 5}, 12000);
        const Tensor<double> x = wide_x.channels(2, 2 + channels);
        const Shape ys = output_shape(xs, filters, padding);
        const auto wide_dy = random_tensor<double>(Shape{ys[0], ys[1], ys[2], filters + 2}, 12001);
        const Tensor<double> dy = wide_dy.channels(1, 1 + filters);
        const auto wide_y = random_tensor<double>(Shape{ys[0], ys[1], ys[2], filters + 3}, 12002);
        const Tensor<double> y = wide_y.channels(3, 3 + filters);
        Tensor<double> db(Shape{filters});
        const Tensor<double> dw = narrow_weights_gradient(x, dy, padding, &y, &db);
        const Tensor<double> dy_pre = masked(dy.clone(), y.clone());
        CHECK(max_abs_diff(dw, reference_weights_gradient(x.clone(), dy_pre, filters, padding)) < 1e-12);
        CHECK(max_abs_diff(db, channel_sums(dy_pre)) < 1e-12);
    }
    const ThreadCount threads(3);
    const auto x = random_tensor<double>(Shape{3, 21, 19, channels}, 12003);
    const auto dy = random_tensor<double>(Shape{3, 21, 19, filters}, 12004);
    CHECK(bitwise_equal(narrow_weights_gradient(x, dy, same), narrow_weights_gradient(x, dy, same)));
}

TEST_CASE("narrow winograd backward gives its two gradients and the bias's, in one pass over the blocks",
          "[kernels][winograd]") {
    // Same padding: the same blocks and chunks as the two calls, so the same
    // bits; valid: dx has more tiles than dy, the chunks differ. With and
    // without a ReLU before dy.
    std::uint64_t seed = 13000;
    for (const Case& c : narrow_cases<double>())
        for (const bool relu : {true, false}) {
            CAPTURE(c.x, c.filters, padding_name(c.padding), relu);
            const Operands o = random_operands(c, seed);
            const Tensor<double> y = narrow_forward(o.x, o.w, &o.b, c.padding, cpu::ActivationFn::relu);
            const Tensor<double>* relu_output = relu ? &y : nullptr;
            const auto dy = random_tensor<double>(y.shape(), ++seed);
            Tensor<double> db(Shape{c.filters}), separate_db(Shape{c.filters});
            const Tensor<double> separate_dw = narrow_weights_gradient(o.x, dy, c.padding, relu_output, &separate_db);
            const Tensor<double> separate_dx = narrow_input_gradient(o.x.shape(), o.w, dy, c.padding, relu_output);
            Tensor<double> dw(o.w.shape()), dx(o.x.shape());
            const RowMatrix<double> mask = y.as_rows();
            cpu::detail::conv2d_winograd_narrow_backward(dims(o.x.shape(), o.w.shape(), c.padding), o.x.as_rows(),
                                                         dy.as_rows(), relu ? &mask : nullptr, o.w.data(),
                                                         dx.as_rows(), dw.data(), db.data());
            if (c.padding == same) {
                CHECK(bitwise_equal(dw, separate_dw));
                CHECK(bitwise_equal(db, separate_db));
            }
            CHECK(bitwise_equal(dx, separate_dx));
            const Tensor<double> dy_read = relu ? masked(dy, y) : dy;
            const Tensor<double> expected_dw = reference_weights_gradient(o.x, dy_read, c.filters, c.padding);
            CHECK(max_abs_diff(dw, expected_dw) < 1e-12 * std::max(1.0, max_abs(expected_dw)));
            CHECK(max_abs_diff(db, channel_sums(dy_read)) < 1e-12 * std::max(1.0, max_abs(db)));
        }
    const Tensor<double> x(Shape{1, 5, 5, 3}), w(Shape{3, 3, 3, 8}), y(Shape{1, 5, 5, 8});
    Tensor<double> dx(x.shape()), dw(w.shape());
    const RowMatrix<double>* no_relu = nullptr;
    CHECK_THROWS_WITH(cpu::detail::conv2d_winograd_narrow_backward(dims(x.shape(), w.shape(), same), x.as_rows(),
                                                                   y.as_rows(), no_relu, w.data(),
                          dx.as_rows(), dw.data(), static_cast<double*>(nullptr)),
                      Catch::Contains("conv2d_winograd_narrow_backward: needs a 3x3 stride-1 kernel") &&
                          Catch::Contains("3 -> 8"));
}

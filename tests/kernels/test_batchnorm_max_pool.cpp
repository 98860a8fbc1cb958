// batchnorm_max_pool kernels (batch normalisation fused with max pooling over
// windows that do not overlap): forward in training and inference mode
// against a reference loop, bit-equality with batchnorm then max_pool2d (and
// their backwards) in float, gradients by finite differences, channel-slice
// views, independence from the thread count, and bad input.

#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <utility>
#include <vector>

#include <bcnn/kernels/cpu/batchnorm_max_pool.hpp>

#include "support/batchnorm_reference.hpp"
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

Window2D window(Index k_h, Index k_w, Index s_h, Index s_w, Padding padding) {
    return Window2D{k_h, k_w, s_h, s_w, padding};
}

// Keras rule on one axis: (output extent, padding before the first element).
std::pair<Index, Index> keras_axis(Index in, Index kernel, Index stride, Padding padding) {
    if (padding == Padding::valid) return {(in - kernel) / stride + 1, 0};
    const Index out = (in + stride - 1) / stride;
    const Index total = std::max<Index>((out - 1) * stride + kernel - in, 0);
    return {out, total / 2};
}

// The maximum of each window of y (N, H, W, C) over its valid (non-padded) pixels.
Tensor<double> max_pool_reference(const Tensor<double>& y, const Window2D& win) {
    const Shape& s = y.shape();
    const auto [out_h, pad_top] = keras_axis(s[1], win.kernel_h, win.stride_h, win.padding);
    const auto [out_w, pad_left] = keras_axis(s[2], win.kernel_w, win.stride_w, win.padding);
    Tensor<double> pooled(Shape{s[0], out_h, out_w, s[3]});
    for (Index n = 0; n < s[0]; ++n)
        for (Index oh = 0; oh < out_h; ++oh)
            for (Index ow = 0; ow < out_w; ++ow)
                for (Index c = 0; c < s[3]; ++c) {
                    bool any = false;
                    double best = 0;
                    for (Index i = 0; i < win.kernel_h; ++i)
                        for (Index j = 0; j < win.kernel_w; ++j) {
                            const Index ih = oh * win.stride_h - pad_top + i, iw = ow * win.stride_w - pad_left + j;
                            if (ih < 0 || ih >= s[1] || iw < 0 || iw >= s[2]) continue;  // padding never counts
                            best = any ? std::max(best, y(n, ih, iw, c)) : y(n, ih, iw, c);
                            any = true;
                        }
                    pooled(n, oh, ow, c) = best;
                }
    return pooled;
}

// Uniform values in [-2, 3), or (ties) their floors: few distinct values, so
// most windows hold several maxima and the first-maximum rule decides.
Tensor<float> pool_input(const Shape& shape, std::uint64_t seed, bool ties) {
    Tensor<float> x = random_tensor<float>(shape, seed, -2.0f, 3.0f);
    if (ties)
        for (Index i = 0; i < x.numel(); ++i) x.data()[i] = std::floor(x.data()[i]);
    return x;
}

Tensor<double> to_double(const Tensor<float>& t) {
    const std::vector<float> v = t.to_vector();
    return Tensor<double>::from_vector(t.shape(), std::vector<double>(v.begin(), v.end()));
}

// Parameters and statistics of one batch-normalisation layer. Odd channels
// get a negative gamma: there the window's maximum of y is at the minimum of
// x, so a kernel that pooled x instead of y would be caught.
template <typename T>
struct State {
    Tensor<T> gamma, beta, moving_mean, moving_variance, saved_mean, saved_inv_std;

    State(Index channels, std::uint64_t seed, T beta_low = T(-1), T beta_high = T(1))
        : gamma(alternating_gamma(channels, seed)),
          beta(random_tensor<T>(Shape{channels}, seed + 1, beta_low, beta_high)),
          moving_mean(random_tensor<T>(Shape{channels}, seed + 2)),
          moving_variance(random_tensor<T>(Shape{channels}, seed + 3, T(0.5), T(2))),
          saved_mean(Shape{channels}),
          saved_inv_std(Shape{channels}) {}

    // |gamma| in [0.5, 1.5), negative in the odd channels.
    static Tensor<T> alternating_gamma(Index channels, std::uint64_t seed) {
        std::vector<T> values = random_tensor<T>(Shape{channels}, seed, T(0.5), T(1.5)).to_vector();
        for (std::size_t c = 1; c < values.size(); c += 2) values[c] = -values[c];
        return Tensor<T>::from_vector(Shape{channels}, values);
    }

    // The fused training forward.
    cpu::ChannelAffine train(const Tensor<T>& x, const Window2D& win, Tensor<T>& pooled, bool unbiased = true) {
        return cpu::batchnorm_max_pool_forward_training(x, gamma, beta, cpu::kBatchNormMomentum,
                                                        cpu::kBatchNormEpsilon, unbiased, moving_mean,
                                                        moving_variance, win, pooled, saved_mean, saved_inv_std);
    }

    // The separate training forward, batch normalisation only.
    void train_separate(const Tensor<T>& x, Tensor<T>& y, bool unbiased = true) {
        cpu::batchnorm_forward_training(x, gamma, beta, cpu::kBatchNormMomentum, cpu::kBatchNormEpsilon, unbiased,
                                        moving_mean, moving_variance, y, saved_mean, saved_inv_std);
    }

    // The fused inference forward.
    cpu::ChannelAffine infer(const Tensor<T>& x, const Window2D& win, Tensor<T>& pooled) const {
        return cpu::batchnorm_max_pool_forward_inference(x, gamma, beta, moving_mean, moving_variance,
                                                         cpu::kBatchNormEpsilon, win, pooled);
    }
};

// The number of elements of `wide` outside channels [begin, end) that differ from `fill`.
Index changed_outside(const Tensor<float>& wide, Index begin, Index end, float fill) {
    const std::vector<float> v = wide.to_vector();
    const Index channels = wide.dim(-1);
    Index changed = 0;
    for (std::size_t i = 0; i < v.size(); ++i) {
        const Index c = static_cast<Index>(i) % channels;
        if ((c < begin || c >= end) && v[i] != fill) ++changed;
    }
    return changed;
}

}  // namespace

TEST_CASE("batchnorm_max_pool forward matches a reference loop in training and inference mode",
          "[kernels][batchnorm_max_pool]") {
    const std::vector<Case> cases = {
        {2, 7, 9, 3, window(2, 2, 2, 2, Padding::valid)},   // last row and column in no window
        {1, 7, 9, 5, window(2, 2, 2, 2, Padding::same)},    // one padded row and column at the bottom/right
        {2, 8, 10, 4, window(2, 2, 3, 3, Padding::valid)},  // gaps between windows
        {1, 9, 7, 6, window(3, 3, 3, 3, Padding::same)},    // padding left and right of the width
        {3, 5, 7, 11, window(2, 3, 2, 3, Padding::same)},   // non-square, partial vector of channels
        {1, 4, 4, 1, window(4, 4, 4, 4, Padding::valid)},   // one window per image, one channel
    };
    std::uint64_t seed = 1;
    for (std::size_t i = 0; i < cases.size(); ++i) {
        const Case& k = cases[i];
        const Shape shape{k.n, k.h, k.w, k.c};
        INFO("x " << shape << ", window " << k.window);
        const bool unbiased = i % 2 == 0;  // both moving-variance modes pass through
        const auto x = random_tensor<double>(shape, seed++, -2.0, 3.0);
        // beta in [-8, -7): every normalised value is negative (|gamma * xhat| < 2.6),
        // so a padded position taken as 0 would win its window.
        State<double> fused(k.c, seed, -8.0, -7.0), separate(k.c, seed, -8.0, -7.0);
        seed += 4;
        const Shape out_shape = cpu::pool2d_output_shape(shape, k.window);
        Tensor<double> pooled(out_shape, 99.0), y(shape);
        fused.train(x, k.window, pooled, unbiased);
        separate.train_separate(x, y, unbiased);

        const testing::BatchNormStatistics s = testing::batchnorm_statistics_reference(x);
        const auto expected = max_pool_reference(
            testing::batchnorm_normalize_reference(x, s.mean, s.biased_variance, fused.gamma, fused.beta, cpu::kBatchNormEpsilon), k.window);
        REQUIRE(expected.shape() == out_shape);
        CHECK(testing::max_abs_diff(pooled, expected) < 1e-12);
        for (Index c = 0; c < k.c; ++c) {
            CHECK(fused.saved_mean(c) == Approx(s.mean[c]).epsilon(1e-13));
            CHECK(fused.saved_inv_std(c) ==
                  Approx(1 / std::sqrt(s.biased_variance[c] + cpu::kBatchNormEpsilon)).epsilon(1e-13));
        }
        // The statistics are batchnorm_forward_training's, to the bit.
        CHECK(fused.saved_mean.to_vector() == separate.saved_mean.to_vector());
        CHECK(fused.saved_inv_std.to_vector() == separate.saved_inv_std.to_vector());
        CHECK(fused.moving_mean.to_vector() == separate.moving_mean.to_vector());
        CHECK(fused.moving_variance.to_vector() == separate.moving_variance.to_vector());

        // Inference with the (just updated) moving statistics, which it leaves alone.
        const std::vector<double> moving_mean = fused.moving_mean.to_vector();
        const std::vector<double> moving_variance = fused.moving_variance.to_vector();
        Tensor<double> pooled_inference(out_shape, 99.0);
        fused.infer(x, k.window, pooled_inference);
        const auto expected_inference = max_pool_reference(
            testing::batchnorm_normalize_reference(x, moving_mean, moving_variance, fused.gamma, fused.beta, cpu::kBatchNormEpsilon),
            k.window);
        CHECK(testing::max_abs_diff(pooled_inference, expected_inference) < 1e-12);
        CHECK(fused.moving_mean.to_vector() == moving_mean);
        CHECK(fused.moving_variance.to_vector() == moving_variance);
    }
}

TEST_CASE("batchnorm_max_pool in float equals batchnorm then max_pool2d, forward and backward",
          "[kernels][batchnorm_max_pool]") {
    // The fused kernels compute y = x * scale + shift and dx = a * dy' + b * x + d
    // in the same float operations as the separate ones, so the pooled output
    // and dx must be the same bits. (a, b, d come from double sums rounded to
    // float; the fused sums add the same terms in another order, a difference
    // of about 1e-16 relative that these fixed inputs never carry across a
    // float rounding boundary.)
    // d_gamma and d_beta are those double sums rounded to float: the fused
    // kernel sums over the windows' maxima by output row, the separate one over
    // every input pixel (zeros included) in its own chunks. The order of the
    // additions differs, so they may differ by a float ulp (6e-8 relative) of
    // their scale, no more.
    const std::vector<Case> cases = {
        {2, 7, 9, 3, window(2, 2, 2, 2, Padding::valid)},     // last row and column in no window
        {2, 75, 75, 16, window(2, 2, 2, 2, Padding::valid)},  // the custom CNN's first block, small batch
        {3, 7, 9, 11, window(2, 2, 3, 3, Padding::valid)},    // stride larger than the pool: gaps
        {1, 9, 11, 33, window(3, 3, 3, 3, Padding::valid)},   // 3x3 pools, 33 channels
        {2, 7, 7, 1, window(2, 2, 2, 2, Padding::same)},      // padded bottom/right, one channel
        {1, 10, 8, 8, window(3, 3, 3, 3, Padding::same)},     // padding on both sides
        {3, 8, 9, 8, window(2, 3, 3, 3, Padding::valid)},     // non-square pool, gaps along the height
    };
    std::uint64_t seed = 100;
    for (const Case& k : cases)
        for (const bool ties : {false, true}) {
            const Shape shape{k.n, k.h, k.w, k.c};
            INFO("x " << shape << ", window " << k.window << (ties ? ", tied values" : ""));
            const Tensor<float> x = pool_input(shape, seed++, ties);
            const Shape out_shape = cpu::pool2d_output_shape(shape, k.window);
            const auto dy = random_tensor<float>(out_shape, seed++);
            const Shape channel_shape{k.c};

            // Training mode.
            State<float> fused(k.c, seed), separate(k.c, seed);
            seed += 4;
            Tensor<float> pooled(out_shape, 99.0f), y(shape), pooled_separate(out_shape);
            const cpu::ChannelAffine affine = fused.train(x, k.window, pooled);
            separate.train_separate(x, y);
            cpu::max_pool2d_forward(y, k.window, pooled_separate);
            REQUIRE(testing::max_abs_diff(pooled, pooled_separate) == 0);
            REQUIRE(fused.saved_mean.to_vector() == separate.saved_mean.to_vector());
            REQUIRE(fused.saved_inv_std.to_vector() == separate.saved_inv_std.to_vector());
            CHECK(fused.moving_mean.to_vector() == separate.moving_mean.to_vector());
            CHECK(fused.moving_variance.to_vector() == separate.moving_variance.to_vector());

            Tensor<float> dy_pool(shape), dx_separate(shape), d_gamma_separate(channel_shape),
                d_beta_separate(channel_shape);
            cpu::max_pool2d_backward(y, dy, k.window, dy_pool);
            cpu::batchnorm_backward_training(x, separate.gamma, separate.saved_mean, separate.saved_inv_std, dy_pool,
                                             &dx_separate, &d_gamma_separate, &d_beta_separate);
            Tensor<float> dx(shape, 99.0f), d_gamma(channel_shape, 99.0f), d_beta(channel_shape, 99.0f);
            cpu::batchnorm_max_pool_backward_training(x, fused.gamma, fused.saved_mean, fused.saved_inv_std, affine,
                                                      k.window, dy, &dx, &d_gamma, &d_beta);
            REQUIRE(testing::max_abs_diff(dx, dx_separate) == 0);
            CHECK(testing::relative_error(to_double(d_gamma), to_double(d_gamma_separate)) < 1e-6);
            CHECK(testing::relative_error(to_double(d_beta), to_double(d_beta_separate)) < 1e-6);
            // dx alone is the same (training needs the sums either way).
            Tensor<float> dx_only(shape, 99.0f);
            cpu::batchnorm_max_pool_backward_training(x, fused.gamma, fused.saved_mean, fused.saved_inv_std, affine,
                                                      k.window, dy, &dx_only, nullptr, nullptr);
            CHECK(testing::max_abs_diff(dx_only, dx) == 0);

            // Inference mode, with the moving statistics the training step left.
            Tensor<float> pooled_inference(out_shape, 99.0f), y_inference(shape),
                pooled_inference_separate(out_shape);
            const cpu::ChannelAffine affine_inference = fused.infer(x, k.window, pooled_inference);
            cpu::batchnorm_forward_inference(x, fused.gamma, fused.beta, fused.moving_mean, fused.moving_variance,
                                             cpu::kBatchNormEpsilon, y_inference);
            cpu::max_pool2d_forward(y_inference, k.window, pooled_inference_separate);
            REQUIRE(testing::max_abs_diff(pooled_inference, pooled_inference_separate) == 0);

            cpu::max_pool2d_backward(y_inference, dy, k.window, dy_pool);
            cpu::batchnorm_backward_inference(x, fused.gamma, fused.moving_mean, fused.moving_variance,
                                              cpu::kBatchNormEpsilon, dy_pool, &dx_separate, &d_gamma_separate,
                                              &d_beta_separate);
            cpu::batchnorm_max_pool_backward_inference(x, fused.gamma, fused.moving_mean, fused.moving_variance,
                                                       cpu::kBatchNormEpsilon, affine_inference, k.window, dy, &dx,
                                                       &d_gamma, &d_beta);
            REQUIRE(testing::max_abs_diff(dx, dx_separate) == 0);
            CHECK(testing::relative_error(to_double(d_gamma), to_double(d_gamma_separate)) < 1e-6);
            CHECK(testing::relative_error(to_double(d_beta), to_double(d_beta_separate)) < 1e-6);
            // d_gamma alone (no dx) is the same.
            Tensor<float> d_gamma_only(channel_shape, 99.0f);
            cpu::batchnorm_max_pool_backward_inference(x, fused.gamma, fused.moving_mean, fused.moving_variance,
                                                       cpu::kBatchNormEpsilon, affine_inference, k.window, dy,
                                                       nullptr, &d_gamma_only, nullptr);
            CHECK(d_gamma_only.to_vector() == d_gamma.to_vector());
        }
}

namespace {

// The fused backward (training: batch statistics; otherwise the moving ones)
// against finite differences of the fused forward, for x, gamma and beta.
void check_gradients(const std::vector<Case>& cases, std::uint64_t seed, bool training) {
    for (const Case& k : cases) {
        const Shape shape{k.n, k.h, k.w, k.c};
        INFO("x " << shape << ", window " << k.window << (training ? ", training" : ", inference"));
        // Distinct values: every window's maximum stays where it is under the step
        // (y is an increasing or decreasing map of x per channel, whatever the statistics).
        auto x = distinct_tensor(shape, seed++);
        State<double> state(k.c, seed);
        seed += 4;
        const Shape out_shape = cpu::pool2d_output_shape(shape, k.window);
        const auto upstream = random_tensor<double>(out_shape, seed++);
        auto forward = [&] {
            Tensor<double> pooled(out_shape);
            if (training)
                state.train(x, k.window, pooled);
            else
                state.infer(x, k.window, pooled);
            return pooled;
        };
        Tensor<double> pooled(out_shape);
        const cpu::ChannelAffine affine = training ? state.train(x, k.window, pooled) : state.infer(x, k.window, pooled);
        Tensor<double> dx(shape, 5.0), d_gamma(Shape{k.c}), d_beta(Shape{k.c});
        if (training)
            cpu::batchnorm_max_pool_backward_training(x, state.gamma, state.saved_mean, state.saved_inv_std, affine,
                                                      k.window, upstream, &dx, &d_gamma, &d_beta);
        else
            cpu::batchnorm_max_pool_backward_inference(x, state.gamma, state.moving_mean, state.moving_variance,
                                                       cpu::kBatchNormEpsilon, affine, k.window, upstream, &dx,
                                                       &d_gamma, &d_beta);
        CHECK(testing::relative_error(dx, testing::numerical_gradient(x, forward, upstream)) < 1e-6);
        CHECK(testing::relative_error(d_gamma, testing::numerical_gradient(state.gamma, forward, upstream)) < 1e-6);
        CHECK(testing::relative_error(d_beta, testing::numerical_gradient(state.beta, forward, upstream)) < 1e-6);
    }
}

}  // namespace

TEST_CASE("batchnorm_max_pool training backward matches finite differences",
          "[kernels][batchnorm_max_pool][gradcheck]") {
    check_gradients({{2, 5, 7, 3, window(2, 2, 2, 2, Padding::valid)},   // last row and column in no window
                     {1, 7, 8, 2, window(2, 2, 3, 3, Padding::same)},    // gaps and padding
                     {2, 6, 7, 5, window(3, 3, 3, 3, Padding::valid)}},  // 3x3 pools, a column in no window
                    200, true);
}

TEST_CASE("batchnorm_max_pool inference backward matches finite differences",
          "[kernels][batchnorm_max_pool][gradcheck]") {
    check_gradients({{2, 5, 7, 3, window(2, 2, 2, 2, Padding::valid)},
                     {1, 7, 8, 4, window(2, 2, 3, 3, Padding::same)},
                     {1, 7, 6, 2, window(3, 2, 3, 2, Padding::same)}},
                    300, false);
}

TEST_CASE("batchnorm_max_pool reads x and writes dx as channel slices, leaving neighbours alone",
          "[kernels][batchnorm_max_pool]") {
    const Index n = 2, h = 7, w = 9, c = 11;  // a partial float vector of channels, after a whole one with AVX2
    std::uint64_t seed = 400;
    for (const Window2D& win : {window(2, 2, 2, 2, Padding::valid), window(2, 2, 3, 3, Padding::same)}) {
        INFO("window " << win);
        const Tensor<float> x_wide = random_tensor<float>(Shape{n, h, w, 16}, seed++);
        const Tensor<float> x = x_wide.channels(3, 3 + c), x_copy = x.clone();
        const Shape shape = x.shape(), out_shape = cpu::pool2d_output_shape(shape, win);
        const auto dy = random_tensor<float>(out_shape, seed++);
        State<float> sliced(c, seed), contiguous(c, seed);
        seed += 4;

        Tensor<float> pooled(out_shape), pooled_contiguous(out_shape);
        const cpu::ChannelAffine affine = sliced.train(x, win, pooled);
        const cpu::ChannelAffine affine_contiguous = contiguous.train(x_copy, win, pooled_contiguous);
        CHECK(testing::max_abs_diff(pooled, pooled_contiguous) == 0);
        CHECK(sliced.saved_mean.to_vector() == contiguous.saved_mean.to_vector());
        CHECK(sliced.saved_inv_std.to_vector() == contiguous.saved_inv_std.to_vector());
        CHECK(sliced.moving_variance.to_vector() == contiguous.moving_variance.to_vector());

        Tensor<float> dx_wide(Shape{n, h, w, 15}, -7.0f);
        Tensor<float> dx = dx_wide.channels(4, 4 + c), dx_contiguous(shape);
        Tensor<float> d_gamma(Shape{c}), d_beta(Shape{c}), d_gamma_contiguous(Shape{c}), d_beta_contiguous(Shape{c});
        cpu::batchnorm_max_pool_backward_training(x, sliced.gamma, sliced.saved_mean, sliced.saved_inv_std, affine,
                                                  win, dy, &dx, &d_gamma, &d_beta);
        cpu::batchnorm_max_pool_backward_training(x_copy, contiguous.gamma, contiguous.saved_mean,
                                                  contiguous.saved_inv_std, affine_contiguous, win, dy,
                                                  &dx_contiguous, &d_gamma_contiguous, &d_beta_contiguous);
        CHECK(testing::max_abs_diff(dx.clone(), dx_contiguous) == 0);
        CHECK(d_gamma.to_vector() == d_gamma_contiguous.to_vector());
        CHECK(d_beta.to_vector() == d_beta_contiguous.to_vector());
        CHECK(changed_outside(dx_wide, 4, 4 + c, -7.0f) == 0);

        // Inference mode, both ways.
        Tensor<float> pooled_inference(out_shape), pooled_inference_contiguous(out_shape);
        const cpu::ChannelAffine affine_inference = sliced.infer(x, win, pooled_inference);
        const cpu::ChannelAffine affine_inference_contiguous =
            contiguous.infer(x_copy, win, pooled_inference_contiguous);
        CHECK(testing::max_abs_diff(pooled_inference, pooled_inference_contiguous) == 0);
        Tensor<float> dx_wide_inference(Shape{n, h, w, 14}, -7.0f);
        Tensor<float> dx_inference = dx_wide_inference.channels(1, 1 + c), dx_inference_contiguous(shape);
        cpu::batchnorm_max_pool_backward_inference(x, sliced.gamma, sliced.moving_mean, sliced.moving_variance,
                                                   cpu::kBatchNormEpsilon, affine_inference, win, dy, &dx_inference,
                                                   nullptr, nullptr);
        cpu::batchnorm_max_pool_backward_inference(x_copy, contiguous.gamma, contiguous.moving_mean,
                                                   contiguous.moving_variance, cpu::kBatchNormEpsilon,
                                                   affine_inference_contiguous, win, dy, &dx_inference_contiguous,
                                                   nullptr, nullptr);
        CHECK(testing::max_abs_diff(dx_inference.clone(), dx_inference_contiguous) == 0);
        CHECK(changed_outside(dx_wide_inference, 1, 1 + c, -7.0f) == 0);
    }
}

TEST_CASE("batchnorm_max_pool does not depend on the thread count", "[kernels][batchnorm_max_pool]") {
    // Big enough for several reduction chunks in the statistics (12) and in the
    // pooled gradient sums (6); 41 rows: the last row is in no window. In
    // double, where another order of the additions would show in the last bits
    // (float results round it away).
    const Window2D win = window(2, 2, 2, 2, Padding::valid);
    const auto x = random_tensor<double>(Shape{4, 41, 40, 16}, 500, -1.0, 2.0);
    const Shape out_shape = cpu::pool2d_output_shape(x.shape(), win);
    const auto dy = random_tensor<double>(out_shape, 501);
    struct Result {
        std::vector<double> pooled, saved_mean, saved_inv_std, moving_variance, dx, d_gamma, d_beta;
    };
    const auto run = [&](int threads) {
        set_num_threads(threads);
        State<double> state(16, 502);
        Tensor<double> pooled(out_shape), dx(x.shape()), d_gamma(Shape{16}), d_beta(Shape{16});
        const cpu::ChannelAffine affine = state.train(x, win, pooled);
        cpu::batchnorm_max_pool_backward_training(x, state.gamma, state.saved_mean, state.saved_inv_std, affine, win,
                                                  dy, &dx, &d_gamma, &d_beta);
        return Result{pooled.to_vector(),
                      state.saved_mean.to_vector(),
                      state.saved_inv_std.to_vector(),
                      state.moving_variance.to_vector(),
                      dx.to_vector(),
                      d_gamma.to_vector(),
                      d_beta.to_vector()};
    };
    const int threads = num_threads();
    const Result one = run(1), three = run(3);
    set_num_threads(threads);
    CHECK(one.pooled == three.pooled);
    CHECK(one.saved_mean == three.saved_mean);
    CHECK(one.saved_inv_std == three.saved_inv_std);
    CHECK(one.moving_variance == three.moving_variance);
    CHECK(one.dx == three.dx);
    CHECK(one.d_gamma == three.d_gamma);
    CHECK(one.d_beta == three.d_beta);
}

TEST_CASE("batchnorm_max_pool rejects overlapping windows and bad shapes naming them",
          "[kernels][batchnorm_max_pool][errors]") {
    CHECK(cpu::batchnorm_max_pool_applies(window(2, 2, 2, 2, Padding::valid)));
    CHECK(cpu::batchnorm_max_pool_applies(window(2, 2, 3, 3, Padding::same)));
    CHECK(cpu::batchnorm_max_pool_applies(window(3, 2, 3, 2, Padding::valid)));
    CHECK_FALSE(cpu::batchnorm_max_pool_applies(window(3, 3, 2, 2, Padding::valid)));
    CHECK_FALSE(cpu::batchnorm_max_pool_applies(window(2, 2, 2, 1, Padding::valid)));  // overlapping along the width

    const Tensor<float> x = random_tensor<float>(Shape{2, 6, 6, 4}, 600);
    State<float> state(4, 601);
    const std::vector<float> moving_mean = state.moving_mean.to_vector();
    const Window2D overlapping = window(3, 3, 2, 2, Padding::same), win = window(2, 2, 2, 2, Padding::valid);
    Tensor<float> pooled_overlapping(Shape{2, 3, 3, 4});
    REQUIRE_THROWS_WITH(state.train(x, overlapping, pooled_overlapping),
                        Catch::Contains("batchnorm_max_pool_forward_training: takes windows that do not overlap "
                                        "(strides >= pool size), got kernel 3x3, strides 2x2, padding 'same'"));
    CHECK(state.moving_mean.to_vector() == moving_mean);  // refused before the statistics are updated
    REQUIRE_THROWS_WITH(state.infer(x, overlapping, pooled_overlapping),
                        Catch::Contains("batchnorm_max_pool_forward_inference: takes windows that do not overlap "
                                        "(strides >= pool size), got kernel 3x3, strides 2x2, padding 'same'"));

    Tensor<float> pooled(Shape{2, 3, 3, 4});
    const cpu::ChannelAffine affine = state.train(x, win, pooled);
    const Tensor<float> dy = random_tensor<float>(Shape{2, 3, 3, 4}, 602);
    Tensor<float> dx(x.shape());
    REQUIRE_THROWS_WITH(cpu::batchnorm_max_pool_backward_training(x, state.gamma, state.saved_mean,
                                                                  state.saved_inv_std, affine, overlapping, dy, &dx,
                                                                  nullptr, nullptr),
                        Catch::Contains("batchnorm_max_pool_backward_training: takes windows that do not overlap "
                                        "(strides >= pool size), got kernel 3x3, strides 2x2, padding 'same'"));

    const Tensor<float> x_rank2(Shape{4, 4});
    REQUIRE_THROWS_WITH(state.train(x_rank2, win, pooled),
                        Catch::Contains("batchnorm_max_pool_forward_training: input must have rank 4, "
                                        "got shape (4, 4)"));
    REQUIRE_THROWS_WITH(cpu::batchnorm_max_pool_backward_inference(x_rank2, state.gamma, state.moving_mean,
                                                                   state.moving_variance, cpu::kBatchNormEpsilon,
                                                                   affine, win, dy, &dx, nullptr, nullptr),
                        Catch::Contains("batchnorm_max_pool_backward_inference: input must have rank 4, "
                                        "got shape (4, 4)"));

    Tensor<float> pooled_bad(Shape{2, 2, 2, 4});
    const std::vector<float> trained_mean = state.moving_mean.to_vector();
    REQUIRE_THROWS_WITH(state.train(x, win, pooled_bad),
                        Catch::Contains("batchnorm_max_pool_forward_training: output has shape (2, 2, 2, 4), "
                                        "expected (2, 3, 3, 4)"));
    CHECK(state.moving_mean.to_vector() == trained_mean);  // refused before the statistics are updated
    REQUIRE_THROWS_WITH(state.infer(x, win, pooled_bad),
                        Catch::Contains("batchnorm_max_pool_forward_inference: output has shape (2, 2, 2, 4), "
                                        "expected (2, 3, 3, 4)"));

    const Tensor<float> dy_bad(Shape{2, 3, 3, 5});
    REQUIRE_THROWS_WITH(cpu::batchnorm_max_pool_backward_training(x, state.gamma, state.saved_mean,
                                                                  state.saved_inv_std, affine, win, dy_bad, &dx,
                                                                  nullptr, nullptr),
                        Catch::Contains("batchnorm_max_pool_backward_training: output gradient has shape "
                                        "(2, 3, 3, 5), expected (2, 3, 3, 4)"));
    REQUIRE_THROWS_WITH(cpu::batchnorm_max_pool_backward_inference(x, state.gamma, state.moving_mean,
                                                                   state.moving_variance, cpu::kBatchNormEpsilon,
                                                                   affine, win, dy_bad, &dx, nullptr, nullptr),
                        Catch::Contains("batchnorm_max_pool_backward_inference: output gradient has shape "
                                        "(2, 3, 3, 5), expected (2, 3, 3, 4)"));

    Tensor<float> dx_bad(Shape{2, 6, 6, 3});
    REQUIRE_THROWS_WITH(cpu::batchnorm_max_pool_backward_training(x, state.gamma, state.saved_mean,
                                                                  state.saved_inv_std, affine, win, dy, &dx_bad,
                                                                  nullptr, nullptr),
                        Catch::Contains("batchnorm_max_pool_backward_training: input gradient has shape "
                                        "(2, 6, 6, 3), expected (2, 6, 6, 4)"));
    REQUIRE_THROWS_WITH(cpu::batchnorm_max_pool_backward_inference(x, state.gamma, state.moving_mean,
                                                                   state.moving_variance, cpu::kBatchNormEpsilon,
                                                                   affine, win, dy, &dx_bad, nullptr, nullptr),
                        Catch::Contains("batchnorm_max_pool_backward_inference: input gradient has shape "
                                        "(2, 6, 6, 3), expected (2, 6, 6, 4)"));
}

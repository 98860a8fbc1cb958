// batchnorm kernels: training and inference forward against a reference loop,
// the moving-statistics update in both variance modes, float accuracy on a
// large batch, gradients by finite differences, views, determinism, bad input.

#include <catch2/catch.hpp>

#include <cmath>

#include <bcnn/kernels/cpu/batchnorm.hpp>

#include "support/batchnorm_reference.hpp"
#include "support/gradcheck.hpp"
#include "support/random.hpp"

using namespace bcnn;
using bcnn::testing::random_tensor;
using Statistics = bcnn::testing::BatchNormStatistics;

namespace {

template <typename T>
struct State {
    Tensor<T> gamma, beta, moving_mean, moving_variance, saved_mean, saved_inv_std;
    explicit State(Index channels, std::uint64_t seed)
        : gamma(random_tensor<T>(Shape{channels}, seed, T(0.5), T(1.5))),
          beta(random_tensor<T>(Shape{channels}, seed + 1)),
          moving_mean(random_tensor<T>(Shape{channels}, seed + 2)),
          moving_variance(random_tensor<T>(Shape{channels}, seed + 3, T(0.5), T(2))),
          saved_mean(Shape{channels}),
          saved_inv_std(Shape{channels}) {}

    void train(const Tensor<T>& x, Tensor<T>& y, bool unbiased, double momentum = cpu::kBatchNormMomentum,
               double epsilon = cpu::kBatchNormEpsilon) {
        cpu::batchnorm_forward_training(x, gamma, beta, momentum, epsilon, unbiased, moving_mean, moving_variance, y,
                                        saved_mean, saved_inv_std);
    }
};

std::vector<double> values(const Tensor<double>& t) { return t.to_vector(); }

double max_diff(const std::vector<double>& a, const std::vector<double>& b) {
    double diff = 0;
    for (std::size_t i = 0; i < a.size(); ++i) diff = std::max(diff, std::abs(a[i] - b[i]));
    return diff;
}

}  // namespace

TEST_CASE("batchnorm training forward matches a reference loop", "[kernels][batchnorm]") {
    for (const Shape& shape : {Shape{2, 3, 5, 4}, Shape{3, 7, 5, 1}, Shape{1, 1, 2, 3}, Shape{9, 6}, Shape{2, 1},
                               Shape{4, 33, 37, 5}}) {
        const auto x = random_tensor<double>(shape, 1, -2.0, 3.0);
        const Index channels = shape[shape.rank() - 1];
        State<double> state(channels, 2);
        const auto old_mean = values(state.moving_mean), old_variance = values(state.moving_variance);
        const bool unbiased = cpu::keras_unbiased_moving_variance(shape.rank());
        Tensor<double> y(shape);
        state.train(x, y, unbiased);
        const Statistics s = testing::batchnorm_statistics_reference(x);
        CHECK(testing::max_abs_diff(y, testing::batchnorm_normalize_reference(x, s.mean, s.biased_variance, state.gamma, state.beta,
                                                           cpu::kBatchNormEpsilon)) < 1e-12);
        CHECK(max_diff(values(state.saved_mean), s.mean) < 1e-14);
        for (Index c = 0; c < channels; ++c) {
            CHECK(state.saved_inv_std(c) == Approx(1 / std::sqrt(s.biased_variance[c] + 1e-3)).epsilon(1e-14));
            CHECK(state.moving_mean(c) == Approx(old_mean[c] * 0.99 + s.mean[c] * 0.01).epsilon(1e-14));
            const double batch_variance = unbiased ? s.unbiased_variance[c] : s.biased_variance[c];
            CHECK(state.moving_variance(c) == Approx(old_variance[c] * 0.99 + batch_variance * 0.01).epsilon(1e-14));
        }
    }
}

TEST_CASE("batchnorm moving statistics follow Keras in both variance modes", "[kernels][batchnorm]") {
    // Values 1, 2, 3, 4 in one channel: mean 2.5, biased variance 1.25, unbiased 5/3.
    // From moving mean 0 and variance 1 with momentum 0.99:
    //   moving mean = 0.99 * 0 + 0.01 * 2.5
    //   moving variance = 0.99 * 1 + 0.01 * (1.25 or 5/3)
    const std::vector<double> data = {1, 2, 3, 4};
    for (const bool unbiased : {false, true}) {
        for (const Shape& shape : {Shape{4, 1}, Shape{1, 2, 2, 1}}) {
            const auto x = Tensor<double>::from_vector(shape, data);
            const Tensor<double> gamma(Shape{1}, 1.0), beta(Shape{1}, 0.0);
            Tensor<double> moving_mean(Shape{1}, 0.0), moving_variance(Shape{1}, 1.0);
            Tensor<double> y(shape), saved_mean(Shape{1}), saved_inv_std(Shape{1});
            cpu::batchnorm_forward_training(x, gamma, beta, 0.99, 1e-3, unbiased, moving_mean, moving_variance, y,
                                            saved_mean, saved_inv_std);
            CHECK(moving_mean(0) == Approx(0.025).epsilon(1e-15));
            CHECK(moving_variance(0) == Approx(0.99 + 0.01 * (unbiased ? 5.0 / 3.0 : 1.25)).epsilon(1e-15));
            CHECK(saved_mean(0) == 2.5);
            CHECK(saved_inv_std(0) == Approx(1 / std::sqrt(1.25 + 1e-3)).epsilon(1e-15));
        }
    }
    CHECK(cpu::keras_unbiased_moving_variance(4));
    CHECK_FALSE(cpu::keras_unbiased_moving_variance(2));
}

TEST_CASE("batchnorm statistics stay accurate in float on a 32x150x150 batch", "[kernels][batchnorm]") {
    // 720000 values per channel around a mean far from zero: naive float sums lose
    // about three digits here; the kernel's double sums must not.
    const auto x = random_tensor<float>(Shape{32, 150, 150, 2}, 3, 20.0f, 22.0f);
    State<float> state(2, 4);
    Tensor<float> y(x.shape());
    state.train(x, y, true);
    const Statistics s = testing::batchnorm_statistics_reference(x);
    for (Index c = 0; c < 2; ++c) {
        CHECK(std::abs(state.saved_mean(c) - s.mean[c]) / s.mean[c] < 1e-6);  // float rounding of the result only
        CHECK(std::abs(state.saved_inv_std(c) * std::sqrt(s.biased_variance[c] + 1e-3) - 1) < 1e-6);
    }
    // y is O(1): float rounding of x (relative 6e-8 of 22, amplified by inv_std ~ 1.7) bounds its error.
    double max_error = 0;
    for (Index i = 0; i < x.numel(); i += 997) {
        const Index c = i % 2;
        const double expected = state.gamma(c) * (x.data()[i] - s.mean[c]) / std::sqrt(s.biased_variance[c] + 1e-3) +
                                state.beta(c);
        max_error = std::max(max_error, std::abs(y.data()[i] - expected));
    }
    CHECK(max_error < 1e-5);
}

TEST_CASE("batchnorm inference forward uses the moving statistics", "[kernels][batchnorm]") {
    for (const Shape& shape : {Shape{2, 5, 3, 6}, Shape{7, 4}}) {
        const auto x = random_tensor<double>(shape, 5);
        State<double> state(shape[shape.rank() - 1], 6);
        const auto moving_mean = values(state.moving_mean), moving_variance = values(state.moving_variance);
        Tensor<double> y(shape);
        cpu::batchnorm_forward_inference(x, state.gamma, state.beta, state.moving_mean, state.moving_variance, 1e-3, y);
        CHECK(testing::max_abs_diff(y, testing::batchnorm_normalize_reference(x, moving_mean, moving_variance, state.gamma, state.beta,
                                                           1e-3)) < 1e-14);
        CHECK(values(state.moving_mean) == moving_mean);  // untouched
    }
}

TEST_CASE("batchnorm in float matches the double reference", "[kernels][batchnorm]") {
    const auto x = random_tensor<float>(Shape{3, 9, 7, 5}, 7);
    State<float> state(5, 8);
    Tensor<float> y(x.shape());
    state.train(x, y, true);
    const std::vector<float> xv = x.to_vector();
    const auto xd = Tensor<double>::from_vector(x.shape(), std::vector<double>(xv.begin(), xv.end()));
    const std::vector<float> g = state.gamma.to_vector(), b = state.beta.to_vector();
    const auto gamma = Tensor<double>::from_vector(Shape{5}, std::vector<double>(g.begin(), g.end()));
    const auto beta = Tensor<double>::from_vector(Shape{5}, std::vector<double>(b.begin(), b.end()));
    const Statistics s = testing::batchnorm_statistics_reference(xd);
    const auto expected = testing::batchnorm_normalize_reference(xd, s.mean, s.biased_variance, gamma, beta, 1e-3);
    const std::vector<float> yv = y.to_vector();
    const auto yd = Tensor<double>::from_vector(y.shape(), std::vector<double>(yv.begin(), yv.end()));
    // |y| is a few units; float keeps about 7 significant digits.
    CHECK(testing::max_abs_diff(yd, expected) < 2e-6);
}

TEST_CASE("batchnorm training backward matches finite differences (4-D and 2-D)",
          "[kernels][batchnorm][gradcheck]") {
    for (const Shape& shape : {Shape{2, 3, 3, 4}, Shape{5, 3}}) {
        auto x = random_tensor<double>(shape, 9);
        const Index channels = shape[shape.rank() - 1];
        State<double> state(channels, 10);
        const auto upstream = random_tensor<double>(shape, 11);
        auto forward = [&] {
            Tensor<double> y(shape);
            state.train(x, y, shape.rank() == 4);
            return y;
        };
        forward();  // saved statistics for the backward pass
        Tensor<double> dx(shape), d_gamma(Shape{channels}), d_beta(Shape{channels});
        cpu::batchnorm_backward_training(x, state.gamma, state.saved_mean, state.saved_inv_std, upstream, &dx,
                                         &d_gamma, &d_beta);
        CHECK(testing::relative_error(dx, testing::numerical_gradient(x, forward, upstream)) < 1e-6);
        CHECK(testing::relative_error(d_gamma, testing::numerical_gradient(state.gamma, forward, upstream)) < 1e-6);
        CHECK(testing::relative_error(d_beta, testing::numerical_gradient(state.beta, forward, upstream)) < 1e-6);
        // Any output may be skipped; dx alone is the same, and dx may be dy.
        Tensor<double> dy = upstream.clone();
        cpu::batchnorm_backward_training(x, state.gamma, state.saved_mean, state.saved_inv_std, dy, &dy, nullptr,
                                         nullptr);
        CHECK(testing::max_abs_diff(dy, dx) == 0);
    }
}

TEST_CASE("batchnorm inference backward matches finite differences", "[kernels][batchnorm][gradcheck]") {
    for (const Shape& shape : {Shape{2, 3, 2, 3}, Shape{4, 5}}) {
        auto x = random_tensor<double>(shape, 12);
        const Index channels = shape[shape.rank() - 1];
        State<double> state(channels, 13);
        const auto upstream = random_tensor<double>(shape, 14);
        auto forward = [&] {
            Tensor<double> y(shape);
            cpu::batchnorm_forward_inference(x, state.gamma, state.beta, state.moving_mean, state.moving_variance,
                                             1e-3, y);
            return y;
        };
        Tensor<double> dx(shape), d_gamma(Shape{channels}), d_beta(Shape{channels});
        cpu::batchnorm_backward_inference(x, state.gamma, state.moving_mean, state.moving_variance, 1e-3, upstream,
                                          &dx, &d_gamma, &d_beta);
        CHECK(testing::relative_error(dx, testing::numerical_gradient(x, forward, upstream)) < 1e-6);
        CHECK(testing::relative_error(d_gamma, testing::numerical_gradient(state.gamma, forward, upstream)) < 1e-6);
        CHECK(testing::relative_error(d_beta, testing::numerical_gradient(state.beta, forward, upstream)) < 1e-6);
    }
}

TEST_CASE("batchnorm reads and writes channel slices, leaving neighbours alone", "[kernels][batchnorm]") {
    const auto x_wide = random_tensor<double>(Shape{2, 4, 3, 9}, 15);
    const Tensor<double> x = x_wide.channels(2, 6);  // 4 channels of a 9-channel buffer
    const Tensor<double> x_copy = x.clone();
    State<double> sliced(4, 16), contiguous(4, 16);
    Tensor<double> y_wide(Shape{2, 4, 3, 7}, 8.0);
    Tensor<double> y = y_wide.channels(3, 7), y_contiguous(x.shape());
    sliced.train(x, y, true);
    contiguous.train(x_copy, y_contiguous, true);
    CHECK(values(sliced.saved_mean) == values(contiguous.saved_mean));
    CHECK(values(sliced.moving_variance) == values(contiguous.moving_variance));
    for (Index n = 0; n < 2; ++n)
        for (Index h = 0; h < 4; ++h)
            for (Index w = 0; w < 3; ++w)
                for (Index c = 0; c < 7; ++c)
                    CHECK(y_wide(n, h, w, c) == (c >= 3 ? y_contiguous(n, h, w, c - 3) : 8.0));
    // Backward reading a sliced dy and writing a sliced dx.
    const auto dy_wide = random_tensor<double>(Shape{2, 4, 3, 5}, 17);
    const Tensor<double> dy = dy_wide.channels(1, 5);
    Tensor<double> dx_wide(Shape{2, 4, 3, 6}, 8.0);
    Tensor<double> dx = dx_wide.channels(0, 4), dx_contiguous(x.shape());
    cpu::batchnorm_backward_training(x, sliced.gamma, sliced.saved_mean, sliced.saved_inv_std, dy, &dx, nullptr,
                                     nullptr);
    cpu::batchnorm_backward_training(x_copy, contiguous.gamma, contiguous.saved_mean, contiguous.saved_inv_std,
                                     dy.clone(), &dx_contiguous, nullptr, nullptr);
    for (Index n = 0; n < 2; ++n)
        for (Index h = 0; h < 4; ++h)
            for (Index w = 0; w < 3; ++w)
                for (Index c = 0; c < 6; ++c)
                    CHECK(dx_wide(n, h, w, c) == (c < 4 ? dx_contiguous(n, h, w, c) : 8.0));
}

TEST_CASE("batchnorm works in place and does not depend on the thread count", "[kernels][batchnorm]") {
    const auto x = random_tensor<float>(Shape{16, 40, 40, 6}, 18);  // several reduction chunks
    const int threads = num_threads();
    set_num_threads(1);
    State<float> one(6, 19);
    Tensor<float> y_one(x.shape());
    one.train(x, y_one, true);
    set_num_threads(2);
    State<float> two(6, 19);
    Tensor<float> y_two = x.clone();
    two.train(y_two, y_two, true);  // in place: y is x
    set_num_threads(threads);
    CHECK(y_one.to_vector() == y_two.to_vector());
    CHECK(one.saved_mean.to_vector() == two.saved_mean.to_vector());
    CHECK(one.saved_inv_std.to_vector() == two.saved_inv_std.to_vector());
    CHECK(one.moving_variance.to_vector() == two.moving_variance.to_vector());
}

TEST_CASE("batchnorm over channel counts around the vector width matches references in float and double",
          "[kernels][batchnorm]") {
    // Channels 7, 19, 37: whole vectors and a partial one per row, in float (8 lanes)
    // and double (4 lanes). Backward reference:
    //   dx = gamma * inv_std / m * (m * dy - sum(dy) - xhat * sum(dy * xhat)),
    //   d_gamma = sum(dy * xhat), d_beta = sum(dy).
    for (const Index channels : {Index(7), Index(19), Index(37)}) {
        const Shape shape{3, 5, 7, channels};
        const auto x = random_tensor<double>(shape, 30, -1.0, 3.0), dy = random_tensor<double>(shape, 31);
        State<double> state(channels, 32);
        Tensor<double> y(shape), dx(shape), d_gamma(Shape{channels}), d_beta(Shape{channels});
        state.train(x, y, true);
        cpu::batchnorm_backward_training(x, state.gamma, state.saved_mean, state.saved_inv_std, dy, &dx, &d_gamma,
                                         &d_beta);
        const Statistics s = testing::batchnorm_statistics_reference(x);
        CHECK(testing::max_abs_diff(y, testing::batchnorm_normalize_reference(x, s.mean, s.biased_variance, state.gamma, state.beta,
                                                           cpu::kBatchNormEpsilon)) < 1e-12);
        const Index m = x.numel() / channels;
        const std::vector<double> xv = x.to_vector(), dyv = dy.to_vector();
        std::vector<double> sum_dy(channels, 0.0), sum_dy_xhat(channels, 0.0), inv_std(channels);
        for (Index c = 0; c < channels; ++c) inv_std[c] = 1 / std::sqrt(s.biased_variance[c] + cpu::kBatchNormEpsilon);
        for (std::size_t i = 0; i < xv.size(); ++i) {
            const Index c = static_cast<Index>(i) % channels;
            sum_dy[c] += dyv[i];
            sum_dy_xhat[c] += dyv[i] * (xv[i] - s.mean[c]) * inv_std[c];
        }
        std::vector<double> dx_reference(xv.size());
        for (std::size_t i = 0; i < xv.size(); ++i) {
            const Index c = static_cast<Index>(i) % channels;
            const double xhat = (xv[i] - s.mean[c]) * inv_std[c];
            dx_reference[i] =
                state.gamma(c) * inv_std[c] / m * (m * dyv[i] - sum_dy[c] - xhat * sum_dy_xhat[c]);
        }
        CHECK(max_diff(dx.to_vector(), dx_reference) < 1e-12);
        CHECK(max_diff(values(d_gamma), sum_dy_xhat) < 1e-12);
        CHECK(max_diff(values(d_beta), sum_dy) < 1e-12);

        // Float: the same data rounded to float, against the double results above.
        const auto to_float = [](const Tensor<double>& t) {
            const std::vector<double> v = t.to_vector();
            return Tensor<float>::from_vector(t.shape(), std::vector<float>(v.begin(), v.end()));
        };
        const Tensor<float> xf = to_float(x), dyf = to_float(dy), gammaf = to_float(state.gamma),
                            betaf = to_float(state.beta);
        Tensor<float> moving_mean(Shape{channels}, 0.0f), moving_variance(Shape{channels}, 1.0f);
        Tensor<float> yf(shape), dxf(shape), saved_mean(Shape{channels}), saved_inv_std(Shape{channels});
        cpu::batchnorm_forward_training(xf, gammaf, betaf, 0.99, cpu::kBatchNormEpsilon, true, moving_mean,
                                        moving_variance, yf, saved_mean, saved_inv_std);
        cpu::batchnorm_backward_training(xf, gammaf, saved_mean, saved_inv_std, dyf, &dxf, nullptr, nullptr);
        const std::vector<float> yfv = yf.to_vector(), dxfv = dxf.to_vector();
        // |y| and |dx| are a few units: float keeps about 7 significant digits
        // (plus the rounding of x, dy and gamma to float).
        CHECK(max_diff(std::vector<double>(yfv.begin(), yfv.end()), y.to_vector()) < 2e-5);
        CHECK(max_diff(std::vector<double>(dxfv.begin(), dxfv.end()), dx_reference) < 2e-5);
        // Inference uses the same per-channel affine loop.
        Tensor<float> yi(shape);
        cpu::batchnorm_forward_inference(xf, gammaf, betaf, moving_mean, moving_variance, cpu::kBatchNormEpsilon, yi);
        const std::vector<float> yiv = yi.to_vector(), mmv = moving_mean.to_vector(), mvv = moving_variance.to_vector();
        double inference_error = 0;
        for (std::size_t i = 0; i < yiv.size(); ++i) {
            const Index c = static_cast<Index>(i) % channels;
            const double expected = gammaf(c) * (xf.data()[i] - mmv[c]) / std::sqrt(mvv[c] + cpu::kBatchNormEpsilon) +
                                    betaf(c);
            inference_error = std::max(inference_error, std::abs(yiv[i] - expected));
        }
        CHECK(inference_error < 2e-5);
    }
}

TEST_CASE("batchnorm statistics stay accurate in double for a mean far from zero", "[kernels][batchnorm]") {
    // Mean 1e4, variance 1/3: a one-pass sum(x^2)/m - mean^2 without a shift
    // loses about 8 digits here (relative error ~1e-16 * mean^2 / var ~ 3e-8).
    const auto x = random_tensor<double>(Shape{6, 40, 40, 3}, 33, 1e4 - 1, 1e4 + 1);
    State<double> state(3, 34);
    Tensor<double> y(x.shape());
    state.train(x, y, true);
    const Statistics s = testing::batchnorm_statistics_reference(x);
    for (Index c = 0; c < 3; ++c) {
        CHECK(state.saved_mean(c) == Approx(s.mean[c]).epsilon(1e-14));
        const double variance = 1 / (state.saved_inv_std(c) * state.saved_inv_std(c)) - cpu::kBatchNormEpsilon;
        CHECK(variance == Approx(s.biased_variance[c]).epsilon(1e-11));
    }
}

TEST_CASE("batchnorm rejects bad shapes and parameters naming them", "[kernels][batchnorm][errors]") {
    const Tensor<float> x(Shape{2, 3, 3, 4});
    State<float> state(4, 20);
    Tensor<float> y(x.shape());
    const Tensor<float> gamma3(Shape{3});
    CHECK_THROWS_WITH(cpu::batchnorm_forward_training(x, gamma3, state.beta, 0.99, 1e-3, true, state.moving_mean,
                                                      state.moving_variance, y, state.saved_mean, state.saved_inv_std),
                      Catch::Contains("batchnorm_forward_training: gamma has shape (3), expected (4)"));
    CHECK_THROWS_WITH(state.train(x, y, true, 1.5), Catch::Contains("momentum 1.5 is outside [0, 1]"));
    CHECK_THROWS_WITH(state.train(x, y, true, 0.99, 0.0), Catch::Contains("epsilon 0 must be positive"));
    Tensor<float> y_bad(Shape{2, 3, 3, 5});
    CHECK_THROWS_WITH(state.train(x, y_bad, true),
                      Catch::Contains("batchnorm_forward_training: output has shape (2, 3, 3, 5), "
                                      "expected (2, 3, 3, 4)"));
    const Tensor<float> x1(Shape{4});
    Tensor<float> y1(Shape{4});
    CHECK_THROWS_WITH(cpu::batchnorm_forward_inference(x1, state.gamma, state.beta, state.moving_mean,
                                                       state.moving_variance, 1e-3, y1),
                      Catch::Contains("input must have a batch axis and a channel axis, got shape (4)"));
    const Tensor<float> empty_batch(Shape{0, 4});
    Tensor<float> empty_y(Shape{0, 4});
    CHECK_THROWS_WITH(state.train(empty_batch, empty_y, false),
                      Catch::Contains("input of shape (0, 4) has no values to take statistics over"));
    const Tensor<float> dy_bad(Shape{2, 3, 4, 4});
    Tensor<float> dx(x.shape());
    CHECK_THROWS_WITH(cpu::batchnorm_backward_training(x, state.gamma, state.saved_mean, state.saved_inv_std, dy_bad,
                                                       &dx, nullptr, nullptr),
                      Catch::Contains("output gradient has shape (2, 3, 4, 4), expected (2, 3, 3, 4)"));
    Tensor<float> d_beta_bad(Shape{5});
    CHECK_THROWS_WITH(cpu::batchnorm_backward_inference(x, state.gamma, state.moving_mean, state.moving_variance, 1e-3,
                                                        x, nullptr, nullptr, &d_beta_bad),
                      Catch::Contains("batchnorm_backward_inference: beta gradient has shape (5), expected (4)"));
}

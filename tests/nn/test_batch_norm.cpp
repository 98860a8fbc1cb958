// BatchNormalization layer: parameters and buffers as Keras counts them,
// the mode rule (batch statistics only when training AND trainable), the
// moving-statistics update on 4-D and 2-D inputs, gradients in both modes,
// buffer reuse and error messages.

#include <bcnn/nn/batch_norm.hpp>
#include <catch2/catch.hpp>
#include <cmath>
#include <vector>

#include "nn/layer_checks.hpp"
#include "support/layer_gradcheck.hpp"

using namespace bcnn;
using namespace bcnn::nn;
using namespace bcnn::testing;

namespace {

// Per-channel mean and biased variance of x (..., C), in plain loops.
struct Moments {
    std::vector<double> mean, variance;
};

Moments channel_moments(const Tensor<double>& x) {
    const Index channels = x.dim(-1), m = x.numel() / channels;
    const std::vector<double> v = x.to_vector();
    Moments out{std::vector<double>(channels, 0.0), std::vector<double>(channels, 0.0)};
    for (Index i = 0; i < x.numel(); ++i) out.mean[i % channels] += v[i] / m;
    for (Index i = 0; i < x.numel(); ++i) {
        const double d = v[i] - out.mean[i % channels];
        out.variance[i % channels] += d * d / m;
    }
    return out;
}

// y = gamma * (x - mean) / sqrt(var + eps) + beta per channel.
Tensor<double> normalize(const Tensor<double>& x, const std::vector<double>& mean, const std::vector<double>& variance,
                         const Tensor<double>& gamma, const Tensor<double>& beta, double epsilon) {
    const Index channels = x.dim(-1);
    std::vector<double> v = x.to_vector();
    for (Index i = 0; i < x.numel(); ++i) {
        const Index c = i % channels;
        v[i] = gamma.data()[c] * (v[i] - mean[c]) / std::sqrt(variance[c] + epsilon) + beta.data()[c];
    }
    return Tensor<double>::from_vector(x.shape(), v);
}

std::vector<double> values(const Tensor<double>& t) { return t.to_vector(); }

// Random gamma in [0.5, 1.5), beta in [-1, 1) and plausible moving statistics.
void randomize(BatchNormalization<double>& bn, std::uint64_t seed) {
    const Shape c = parameter(bn, "gamma").value.shape();
    parameter(bn, "gamma").value.copy_from(random_tensor<double>(c, seed, 0.5, 1.5));
    parameter(bn, "beta").value.copy_from(random_tensor<double>(c, seed + 1));
    parameter(bn, "moving_mean").value.copy_from(random_tensor<double>(c, seed + 2));
    parameter(bn, "moving_variance").value.copy_from(random_tensor<double>(c, seed + 3, 0.5, 2.0));
}

}  // namespace

TEST_CASE("BatchNormalization has gamma and beta, and moving statistics as buffers", "[nn][batch_norm]") {
    BatchNormalization<float> bn;
    CHECK(std::string(bn.type()) == "BatchNormalization");
    CHECK(std::string(bn.default_name()) == "batch_normalization");
    CHECK(bn.build(Shape{75, 75, 32}) == Shape{75, 75, 32});
    CHECK(parameter_names(bn) == std::vector<std::string>{"gamma", "beta", "moving_mean", "moving_variance"});
    CHECK(bn.count_params() == 128);  // Keras counts the moving statistics
    CHECK(bn.count_trainable_params() == 64);
    std::vector<bool> trainable;
    for (const auto& p : bn.named_parameters()) trainable.push_back(p.trainable);
    CHECK(trainable == std::vector<bool>{true, true, false, false});
    CHECK(parameter(bn, "moving_mean").value.shape() == Shape{32});

    // Keras' initial values, set at build and again by initialize().
    auto check_initial = [&] {
        for (float v : parameter(bn, "gamma").value.to_vector()) CHECK(v == 1.0f);
        for (float v : parameter(bn, "beta").value.to_vector()) CHECK(v == 0.0f);
        for (float v : parameter(bn, "moving_mean").value.to_vector()) CHECK(v == 0.0f);
        for (float v : parameter(bn, "moving_variance").value.to_vector()) CHECK(v == 1.0f);
    };
    check_initial();
    for (const auto& p : bn.named_parameters()) p.parameter->value.fill(7.0f);
    Rng rng(1);
    bn.initialize(rng);
    check_initial();

    BatchNormalization<float> dense_bn;
    CHECK(dense_bn.build(Shape{10}) == Shape{10});
    CHECK(dense_bn.count_params() == 40);
}

TEST_CASE("BatchNormalization in training normalises with batch statistics and updates the moving ones",
          "[nn][batch_norm]") {
    for (const Shape& shape : {Shape{3, 4, 5, 2}, Shape{6, 3}}) {
        INFO("input " << shape);
        BatchNormalization<double> bn(0.9, 1e-3);
        bn.build(Shape(shape.begin() + 1, shape.end()));
        randomize(bn, 1);
        const std::vector<double> mm0 = values(parameter(bn, "moving_mean").value);
        const std::vector<double> mv0 = values(parameter(bn, "moving_variance").value);
        const auto x = random_tensor<double>(shape, 5, -2.0, 3.0);
        Rng rng(1);
        const Tensor<double> y = bn.forward(x, Context{true, &rng});
        const Moments batch = channel_moments(x);
        CHECK(max_abs_diff(y, normalize(x, batch.mean, batch.variance, parameter(bn, "gamma").value,
                                        parameter(bn, "beta").value, 1e-3)) < 1e-12);
        // Keras: the fused 4-D kernel uses the unbiased variance for the moving variance, 2-D the biased one.
        const Index m = x.numel() / shape[shape.rank() - 1];
        const double correction = shape.rank() == 4 ? double(m) / double(m - 1) : 1.0;
        const std::vector<double> mm = values(parameter(bn, "moving_mean").value);
        const std::vector<double> mv = values(parameter(bn, "moving_variance").value);
        for (std::size_t c = 0; c < mm.size(); ++c) {
            CHECK(mm[c] == Approx(0.9 * mm0[c] + 0.1 * batch.mean[c]).epsilon(1e-12));
            CHECK(mv[c] == Approx(0.9 * mv0[c] + 0.1 * batch.variance[c] * correction).epsilon(1e-12));
        }
    }
}

TEST_CASE("BatchNormalization in inference, or frozen while training, uses the moving statistics", "[nn][batch_norm]") {
    BatchNormalization<double> bn;
    bn.build(Shape{3, 3, 4});
    randomize(bn, 2);
    const std::vector<double> mm = values(parameter(bn, "moving_mean").value);
    const std::vector<double> mv = values(parameter(bn, "moving_variance").value);
    const auto x = random_tensor<double>(Shape{2, 3, 3, 4}, 6);
    const Tensor<double> expected =
        normalize(x, mm, mv, parameter(bn, "gamma").value, parameter(bn, "beta").value, 1e-3);
    CHECK(max_abs_diff(bn.forward(x, Context{}), expected) < 1e-12);

    // Keras 2: a non-trainable BatchNormalization runs in inference mode even in training.
    bn.set_trainable(false);
    Rng rng(1);
    CHECK(max_abs_diff(bn.forward(x, Context{true, &rng}), expected) < 1e-12);
    CHECK(values(parameter(bn, "moving_mean").value) == mm);
    CHECK(values(parameter(bn, "moving_variance").value) == mv);
    for (const auto& p : bn.named_parameters())
        if (!p.parameter->is_buffer) p.parameter->grad.fill(123.0);
    const auto dy = random_tensor<double>(x.shape(), 7);
    const Tensor<double> dx = bn.backward(dy, true);
    // The moving statistics are constants: dx = gamma / sqrt(moving_variance + eps) * dy.
    std::vector<double> expected_dx = dy.to_vector();
    for (std::size_t i = 0; i < expected_dx.size(); ++i)
        expected_dx[i] *= parameter(bn, "gamma").value.data()[i % 4] / std::sqrt(mv[i % 4] + 1e-3);
    CHECK(max_abs_diff(dx, Tensor<double>::from_vector(x.shape(), expected_dx)) < 1e-12);
    for (double g : parameter(bn, "gamma").grad.to_vector()) CHECK(g == 123.0);
    for (double g : parameter(bn, "beta").grad.to_vector()) CHECK(g == 123.0);
}

TEST_CASE("BatchNormalization gradients match finite differences in both modes", "[nn][batch_norm][gradcheck]") {
    for (const Shape& shape : {Shape{2, 3, 4, 3}, Shape{5, 4}}) {
        for (const bool training : {true, false}) {
            INFO("input " << shape << (training ? ", training" : ", inference"));
            BatchNormalization<double> bn;
            bn.build(Shape(shape.begin() + 1, shape.end()));
            randomize(bn, 3);
            check_module_gradients(bn, random_tensor<double>(shape, 8, -2.0, 2.0), training);
        }
    }
    BatchNormalization<double> frozen;
    frozen.build(Shape{3, 3, 2});
    randomize(frozen, 4);
    frozen.set_trainable(false);
    check_module_gradients(frozen, random_tensor<double>(Shape{2, 3, 3, 2}, 9), true);
}

TEST_CASE("BatchNormalization reuses its buffers in both modes", "[nn][batch_norm]") {
    BatchNormalization<float> bn;
    bn.build(Shape{4, 4, 3});
    const auto x = random_tensor<float>(Shape{2, 4, 4, 3}, 10);
    check_buffers_reused(bn, x, true);
    check_buffers_reused(bn, x, false);
}

TEST_CASE("BatchNormalization rejects bad arguments and inputs", "[nn][batch_norm][errors]") {
    CHECK_THROWS_WITH(BatchNormalization<float>(1.5),
                      Catch::Contains("BatchNormalization: momentum 1.5 is outside [0, 1]"));
    CHECK_THROWS_WITH(BatchNormalization<float>(0.99, 0.0),
                      Catch::Contains("BatchNormalization: epsilon 0 must be positive"));
    BatchNormalization<float> bn(0.99, 1e-3, "bn");
    CHECK_THROWS_WITH(bn.build(Shape{}), Catch::Contains("BatchNormalization 'bn': input must have a channel axis"));
    CHECK_THROWS_WITH(
        bn.build(Shape{4, 0}),
        Catch::Contains("BatchNormalization 'bn': input must have a channel axis and no empty axis, got (4, 0)"));
    bn.build(Shape{4, 4, 3});
    Rng rng(1);
    CHECK_THROWS_WITH(bn.forward(Tensor<float>(Shape{2, 4, 4, 2}), Context{true, &rng}),
                      Catch::Contains("BatchNormalization 'bn': input has shape (2, 4, 4, 2), expected (N, 4, 4, 3)"));
}

// Batch norm on the GPU (cuDNN) against the CPU kernels run in double: 4-D
// inputs with Keras' unbiased moving variance, 2-D and 3-D inputs with the
// biased one, a single value per channel (m = 1), both epsilons Keras uses,
// the four passes (training and inference forward, both backwards), subsets
// of the gradients, channel slices, y = x and dx = dy in place; and argument
// errors. Inputs are fresh random values on every run (the seed is printed
// with any failure); outputs are NaN-poisoned before the GPU writes them.
//
// Tolerances, as max |gpu - cpu| / max |cpu| over a whole tensor:
//   float  1e-4: cuDNN takes the statistics in float, in its own order.
//   double 1e-10.
// The training dx is gamma * inv_std * (dy - mean(dy) - x_hat * mean(dy * x_hat)):
// its terms cancel (with one value per channel, exactly: dx = 0, and max |cpu|
// is rounding alone), so its difference is relative to at least the terms'
// size, max |gamma| * max |inv_std| * max |dy| (relative_difference's min_scale).
// Momentum 0.9 in most cases makes the batch's share of the moving variance
// large enough that a wrong Bessel correction (m / (m - 1) = 8/7 for m = 8)
// fails by far.
//
// Folding (cuda::fold_batchnorm) against cpu::fold_batchnorm in the same
// type on the same values, with and without a bias, for conv, dense and
// DenseNet-sized weights, one channel, weights of rank 1, more weights than
// one grid covers, in place, and argument errors. The folded weights are
// one double multiply each on both sides: bit for bit. The folded bias is
// b * scale + (beta - mean * scale): the device rounds each operation, GCC
// may contract them into FMAs (-std=gnu++17, FMA hardware), an ulp apart:
// float 1e-6, double 1e-14.
// DenseLayer and DenseBlock inference_only forwards on cuda (1_bn folded into
// 1_conv on the device) against the CPU's folded forward in double, as the
// composites of tests/cuda/test_nn_layers.cpp: float 1e-3, double 1e-9.

#include <catch2/catch.hpp>

#include <cmath>

#include <bcnn/backend/batchnorm.hpp>
#include <bcnn/nn/dense_block.hpp>

#include "cuda/compare.hpp"
#include "support/conv_support.hpp"
#include "support/random.hpp"

using namespace bcnn;
using bcnn::testing::cast;
using bcnn::testing::first_bit_difference;
using bcnn::testing::fresh_seed;
using bcnn::testing::library_tolerance;
using bcnn::testing::max_abs;
using bcnn::testing::poisoned_on_device;
using bcnn::testing::random_tensor;
using bcnn::testing::relative_difference;

namespace {

struct Case {
    const char* name;
    Shape x;
    double momentum, epsilon;
    bool unbiased;  // Keras: keras_unbiased_moving_variance(rank)
};

const Case kCases[] = {
    {"4-D, Keras", Shape{2, 5, 7, 3}, 0.9, 1e-3, true},
    {"4-D, DenseNet epsilon, 70 channels", Shape{3, 4, 6, 70}, 0.99, 1.001e-5, true},
    {"4-D, biased moving variance", Shape{2, 2, 2, 5}, 0.9, 1e-3, false},
    {"4-D, one value per channel", Shape{1, 1, 1, 4}, 0.9, 1e-3, true},
    {"2-D, Keras", Shape{8, 5}, 0.9, 1e-3, false},
    {"2-D, one sample", Shape{1, 6}, 0.9, 1e-3, false},
    {"2-D, many rows", Shape{3000, 7}, 0.5, 1e-3, false},
    {"3-D", Shape{3, 4, 6}, 0.9, 1e-3, false},
};

Shape channel_shape(const Case& c) { return Shape{c.x[c.x.rank() - 1]}; }

// One case's random operands on the CPU, in T; variances positive.
template <typename T>
struct Operands {
    Tensor<T> x, gamma, beta, moving_mean, moving_variance, dy;
    Operands(const Case& c, std::uint64_t seed)
        : x(random_tensor<T>(c.x, seed, T(-2), T(3))),
          gamma(random_tensor<T>(channel_shape(c), seed + 1, T(0.5), T(1.5))),
          beta(random_tensor<T>(channel_shape(c), seed + 2)),
          moving_mean(random_tensor<T>(channel_shape(c), seed + 3)),
          moving_variance(random_tensor<T>(channel_shape(c), seed + 4, T(0.5), T(2))),
          dy(random_tensor<T>(c.x, seed + 5)) {}
};

// The CPU kernels' results in double on the same values. The backwards use
// the forward's saved statistics (training) and the updated moving ones.
struct Reference {
    Tensor<double> y, saved_mean, saved_inv_std, moving_mean, moving_variance, y_inference;
    Tensor<double> dx, d_gamma, d_beta, dx_inference, d_gamma_inference, d_beta_inference;
    template <typename T>
    Reference(const Case& c, const Operands<T>& o)
        : y(c.x), saved_mean(channel_shape(c)), saved_inv_std(channel_shape(c)),
          moving_mean(cast<double>(o.moving_mean)), moving_variance(cast<double>(o.moving_variance)),
          y_inference(c.x), dx(c.x), d_gamma(channel_shape(c)), d_beta(channel_shape(c)), dx_inference(c.x),
          d_gamma_inference(channel_shape(c)), d_beta_inference(channel_shape(c)) {
        const Tensor<double> x = cast<double>(o.x), gamma = cast<double>(o.gamma), beta = cast<double>(o.beta),
                             dy = cast<double>(o.dy);
        cpu::batchnorm_forward_training(x, gamma, beta, c.momentum, c.epsilon, c.unbiased, moving_mean,
                                        moving_variance, y, saved_mean, saved_inv_std);
        cpu::batchnorm_forward_inference(x, gamma, beta, moving_mean, moving_variance, c.epsilon, y_inference);
        cpu::batchnorm_backward_training(x, gamma, saved_mean, saved_inv_std, dy, &dx, &d_gamma, &d_beta);
        cpu::batchnorm_backward_inference(x, gamma, moving_mean, moving_variance, c.epsilon, dy, &dx_inference,
                                          &d_gamma_inference, &d_beta_inference);
    }
};

template <typename T>
void check_case(const Case& c, std::uint64_t seed) {
    const Operands<T> o(c, seed);
    const Reference expected(c, o);
    const Tensor<T> x = to_device(o.x, Device::cuda), gamma = to_device(o.gamma, Device::cuda),
                    beta = to_device(o.beta, Device::cuda), dy = to_device(o.dy, Device::cuda);
    Tensor<T> moving_mean = to_device(o.moving_mean, Device::cuda);
    Tensor<T> moving_variance = to_device(o.moving_variance, Device::cuda);
    const T limit = static_cast<T>(library_tolerance<T>());

    Tensor<T> y = poisoned_on_device<T>(c.x), saved_mean = poisoned_on_device<T>(channel_shape(c)),
              saved_inv_std = poisoned_on_device<T>(channel_shape(c));
    backend::batchnorm_forward_training(x, gamma, beta, c.momentum, c.epsilon, c.unbiased, moving_mean,
                                        moving_variance, y, saved_mean, saved_inv_std);
    CHECK(relative_difference(y, expected.y) < limit);
    CHECK(relative_difference(saved_mean, expected.saved_mean) < limit);
    CHECK(relative_difference(saved_inv_std, expected.saved_inv_std) < limit);
    CHECK(relative_difference(moving_mean, expected.moving_mean) < limit);
    CHECK(relative_difference(moving_variance, expected.moving_variance) < limit);

    Tensor<T> y_inference = poisoned_on_device<T>(c.x);
    backend::batchnorm_forward_inference(x, gamma, beta, moving_mean, moving_variance, c.epsilon, y_inference);
    CHECK(relative_difference(y_inference, expected.y_inference) < limit);

    // The backwards get the CPU's statistics, so that they are compared alone.
    const Tensor<T> cpu_saved_mean = to_device(cast<T>(expected.saved_mean), Device::cuda);
    const Tensor<T> cpu_saved_inv_std = to_device(cast<T>(expected.saved_inv_std), Device::cuda);
    Tensor<T> dx = poisoned_on_device<T>(c.x), d_gamma = poisoned_on_device<T>(channel_shape(c)),
              d_beta = poisoned_on_device<T>(channel_shape(c));
    backend::batchnorm_backward_training(x, gamma, cpu_saved_mean, cpu_saved_inv_std, dy, &dx, &d_gamma, &d_beta);
    const double dx_terms =
        max_abs(cast<double>(o.gamma)) * max_abs(expected.saved_inv_std) * max_abs(cast<double>(o.dy));
    CHECK(relative_difference(dx, expected.dx, dx_terms) < limit);
    CHECK(relative_difference(d_gamma, expected.d_gamma) < limit);
    CHECK(relative_difference(d_beta, expected.d_beta) < limit);

    const Tensor<T> cpu_moving_mean = to_device(cast<T>(expected.moving_mean), Device::cuda);
    const Tensor<T> cpu_moving_variance = to_device(cast<T>(expected.moving_variance), Device::cuda);
    Tensor<T> dx_inference = poisoned_on_device<T>(c.x), d_gamma_inference = poisoned_on_device<T>(channel_shape(c)),
              d_beta_inference = poisoned_on_device<T>(channel_shape(c));
    backend::batchnorm_backward_inference(x, gamma, cpu_moving_mean, cpu_moving_variance, c.epsilon, dy,
                                          &dx_inference, &d_gamma_inference, &d_beta_inference);
    CHECK(relative_difference(dx_inference, expected.dx_inference) < limit);
    CHECK(relative_difference(d_gamma_inference, expected.d_gamma_inference) < limit);
    CHECK(relative_difference(d_beta_inference, expected.d_beta_inference) < limit);
}

}  // namespace

TEMPLATE_TEST_CASE("batchnorm on cuda matches the cpu kernels", "[cuda][batchnorm]", float, double) {
    const std::uint64_t seed = fresh_seed();
    for (const Case& c : kCases) {
        CAPTURE(c.name, seed);
        check_case<TestType>(c, seed);
        check_case<TestType>(c, seed + 100);  // scratch buffers reused
    }
}

TEST_CASE("batchnorm on cuda follows the unbiased_moving_variance argument", "[cuda][batchnorm]") {
    // The same 4-D input with either correction: the moving variances differ
    // by the batch term's m / (m - 1), and each matches the CPU's.
    const std::uint64_t seed = fresh_seed();
    CAPTURE(seed);
    for (const bool unbiased : {true, false}) {
        CAPTURE(unbiased);
        const Case c{"4-D", Shape{2, 3, 3, 4}, 0.5, 1e-3, unbiased};
        check_case<double>(c, seed);
    }
}

TEST_CASE("batchnorm backwards on cuda compute only the gradients asked for", "[cuda][batchnorm]") {
    const std::uint64_t seed = fresh_seed();
    const Case& c = kCases[0];
    CAPTURE(c.name, seed);
    const Operands<float> o(c, seed);
    const Reference expected(c, o);
    const Tensor<float> x = to_device(o.x, Device::cuda), gamma = to_device(o.gamma, Device::cuda),
                        dy = to_device(o.dy, Device::cuda);
    const Tensor<float> saved_mean = to_device(cast<float>(expected.saved_mean), Device::cuda);
    const Tensor<float> saved_inv_std = to_device(cast<float>(expected.saved_inv_std), Device::cuda);
    const Tensor<float> moving_mean = to_device(cast<float>(expected.moving_mean), Device::cuda);
    const Tensor<float> moving_variance = to_device(cast<float>(expected.moving_variance), Device::cuda);
    for (const bool training : {true, false}) {
        for (int wanted = 0; wanted < 8; ++wanted) {
            CAPTURE(training, wanted);
            Tensor<float> dx = poisoned_on_device<float>(c.x), dg = poisoned_on_device<float>(channel_shape(c)),
                          db = poisoned_on_device<float>(channel_shape(c));
            Tensor<float>* dx_wanted = wanted & 1 ? &dx : nullptr;
            Tensor<float>* dg_wanted = wanted & 2 ? &dg : nullptr;
            Tensor<float>* db_wanted = wanted & 4 ? &db : nullptr;
            if (training)
                cuda::batchnorm_backward_training(x, gamma, saved_mean, saved_inv_std, dy, dx_wanted, dg_wanted,
                                                  db_wanted);
            else
                cuda::batchnorm_backward_inference(x, gamma, moving_mean, moving_variance, c.epsilon, dy, dx_wanted,
                                                   dg_wanted, db_wanted);
            const Tensor<double>& dx_expected = training ? expected.dx : expected.dx_inference;
            const Tensor<double>& dg_expected = training ? expected.d_gamma : expected.d_gamma_inference;
            const Tensor<double>& db_expected = training ? expected.d_beta : expected.d_beta_inference;
            if (wanted & 1) CHECK(relative_difference(dx, dx_expected) < library_tolerance<float>());
            if (wanted & 2) CHECK(relative_difference(dg, dg_expected) < library_tolerance<float>());
            if (wanted & 4) CHECK(relative_difference(db, db_expected) < library_tolerance<float>());
            if (!(wanted & 1)) CHECK(std::isnan(cast<double>(dx).to_vector()[0]));
            if (!(wanted & 2)) CHECK(std::isnan(cast<double>(dg).to_vector()[0]));
            if (!(wanted & 4)) CHECK(std::isnan(cast<double>(db).to_vector()[0]));
        }
    }
}

TEST_CASE("batchnorm on cuda works on channel slices and in place", "[cuda][batchnorm]") {
    const std::uint64_t seed = fresh_seed();
    const Case& c = kCases[0];
    CAPTURE(c.name, seed);
    const Operands<float> o(c, seed);
    const Reference expected(c, o);
    const Index channels = c.x[3];
    const Shape wide{c.x[0], c.x[1], c.x[2], channels + 3};
    const Tensor<float> gamma = to_device(o.gamma, Device::cuda), beta = to_device(o.beta, Device::cuda);

    // x at channels 1.. of a wider buffer, y at 2.. of another, pre-filled with -7.
    const Tensor<float> x_wide_host = random_tensor<float>(wide, seed + 7);
    x_wide_host.channels(1, 1 + channels).copy_from(o.x);
    const Tensor<float> x_wide = to_device(x_wide_host, Device::cuda);
    const Tensor<float> x = x_wide.channels(1, 1 + channels);
    Tensor<float> y_wide = to_device(Tensor<float>(wide, -7.f), Device::cuda);
    Tensor<float> y = y_wide.channels(2, 2 + channels);
    Tensor<float> moving_mean = to_device(o.moving_mean, Device::cuda);
    Tensor<float> moving_variance = to_device(o.moving_variance, Device::cuda);
    Tensor<float> saved_mean = poisoned_on_device<float>(Shape{channels});
    Tensor<float> saved_inv_std = poisoned_on_device<float>(Shape{channels});
    cuda::batchnorm_forward_training(x, gamma, beta, c.momentum, c.epsilon, c.unbiased, moving_mean, moving_variance,
                                     y, saved_mean, saved_inv_std);
    CHECK(relative_difference(y, expected.y) < library_tolerance<float>());
    CHECK(relative_difference(moving_variance, expected.moving_variance) < library_tolerance<float>());
    const Tensor<float> y_host = to_device(y_wide, Device::cpu);
    const RowMatrix<float> ym = y_host.as_rows();
    Index touched = 0;
    for (Index r = 0; r < ym.rows; ++r)
        for (Index ch = 0; ch < ym.cols; ++ch) touched += (ch < 2 || ch >= 2 + channels) && ym.row(r)[ch] != -7.f;
    CHECK(touched == 0);

    // In place on the slice: y = x (inference), then dx = dy (both backwards).
    Tensor<float> in_place = x;
    cuda::batchnorm_forward_inference(x, gamma, beta, to_device(cast<float>(expected.moving_mean), Device::cuda),
                                      to_device(cast<float>(expected.moving_variance), Device::cuda), c.epsilon,
                                      in_place);
    CHECK(relative_difference(x, expected.y_inference) < library_tolerance<float>());

    const Tensor<float> x_plain = to_device(o.x, Device::cuda);
    Tensor<float> grad = to_device(o.dy, Device::cuda), d_gamma = poisoned_on_device<float>(Shape{channels});
    cuda::batchnorm_backward_training(x_plain, gamma, to_device(cast<float>(expected.saved_mean), Device::cuda),
                                      to_device(cast<float>(expected.saved_inv_std), Device::cuda), grad, &grad,
                                      &d_gamma, nullptr);
    CHECK(relative_difference(grad, expected.dx) < library_tolerance<float>());
    CHECK(relative_difference(d_gamma, expected.d_gamma) < library_tolerance<float>());
    grad = to_device(o.dy, Device::cuda);
    cuda::batchnorm_backward_inference(x_plain, gamma, to_device(cast<float>(expected.moving_mean), Device::cuda),
                                       to_device(cast<float>(expected.moving_variance), Device::cuda), c.epsilon, grad,
                                       &grad, &d_gamma, nullptr);
    CHECK(relative_difference(grad, expected.dx_inference) < library_tolerance<float>());
    CHECK(relative_difference(d_gamma, expected.d_gamma_inference) < library_tolerance<float>());
}

TEST_CASE("batchnorm on cuda rejects cpu tensors, wrong shapes, bad parameters and mixed devices",
          "[cuda][batchnorm]") {
    const Tensor<float> x_cpu = random_tensor<float>(Shape{2, 3, 3, 4}, 1);
    const Tensor<float> x = to_device(x_cpu, Device::cuda);
    const Tensor<float> ones = to_device(Tensor<float>(Shape{4}, 1.f), Device::cuda);
    Tensor<float> mm = to_device(Tensor<float>(Shape{4}), Device::cuda);
    Tensor<float> mv = to_device(Tensor<float>(Shape{4}, 1.f), Device::cuda);
    Tensor<float> y = to_device(Tensor<float>(Shape{2, 3, 3, 4}), Device::cuda);
    Tensor<float> sm = to_device(Tensor<float>(Shape{4}), Device::cuda);
    Tensor<float> si = to_device(Tensor<float>(Shape{4}, 1.f), Device::cuda);
    const auto train = [&](const Tensor<float>& input, const Tensor<float>& gamma, double momentum, double epsilon,
                           Tensor<float>& output) {
        cuda::batchnorm_forward_training(input, gamma, ones, momentum, epsilon, true, mm, mv, output, sm, si);
    };

    CHECK_THROWS_WITH(train(x_cpu, ones, 0.99, 1e-3, y),
                      Catch::Contains("cuda::batchnorm_forward_training: input of shape (2, 3, 3, 4) is on cpu"));
    const Tensor<float> gamma_wrong = to_device(Tensor<float>(Shape{3}), Device::cuda);
    CHECK_THROWS_WITH(train(x, gamma_wrong, 0.99, 1e-3, y),
                      Catch::Contains("cuda::batchnorm_forward_training: gamma has shape (3), expected (4)"));
    CHECK_THROWS_WITH(train(x, ones, 1.5, 1e-3, y),
                      Catch::Contains("cuda::batchnorm_forward_training: momentum 1.5 is outside [0, 1]"));
    CHECK_THROWS_WITH(train(x, ones, 0.99, 0.0, y),
                      Catch::Contains("cuda::batchnorm_forward_training: epsilon 0 must be positive"));
    const Tensor<float> empty = to_device(Tensor<float>(Shape{0, 4}), Device::cuda);
    Tensor<float> empty_y = to_device(Tensor<float>(Shape{0, 4}), Device::cuda);
    CHECK_THROWS_WITH(train(empty, ones, 0.99, 1e-3, empty_y),
                      Catch::Contains("cuda::batchnorm_forward_training: input of shape (0, 4) has no values"));
    const Tensor<float> vector = to_device(Tensor<float>(Shape{4}), Device::cuda);
    Tensor<float> vector_y = to_device(Tensor<float>(Shape{4}), Device::cuda);
    CHECK_THROWS_WITH(train(vector, ones, 0.99, 1e-3, vector_y),
                      Catch::Contains("cuda::batchnorm_forward_training: input must have a batch axis and a channel "
                                      "axis, got shape (4)"));
    Tensor<float> y_wrong = to_device(Tensor<float>(Shape{2, 3, 3, 5}), Device::cuda);
    CHECK_THROWS_WITH(train(x, ones, 0.99, 1e-3, y_wrong),
                      Catch::Contains("cuda::batchnorm_forward_training: output has shape (2, 3, 3, 5), expected "
                                      "(2, 3, 3, 4)"));
    // Every other element of an 8-element buffer: a (4) view that is not contiguous.
    const Tensor<float> eight = to_device(Tensor<float>(Shape{8}, 1.f), Device::cuda);
    const Tensor<float> strided(eight.storage(), 0, Shape{4}, Shape{2});
    CHECK_THROWS_WITH(train(x, strided, 0.99, 1e-3, y),
                      Catch::Contains("cuda::batchnorm_forward_training: gamma of shape (4) with strides (2) must be "
                                      "contiguous"));

    CHECK_THROWS_WITH(
        cuda::batchnorm_forward_inference(x, ones, ones, mm, gamma_wrong, 1e-3, y),
        Catch::Contains("cuda::batchnorm_forward_inference: moving variance has shape (3), expected (4)"));
    CHECK_THROWS_WITH(cuda::batchnorm_backward_inference(x, ones, mm, mv, -1.0, y, &y, nullptr, nullptr),
                      Catch::Contains("cuda::batchnorm_backward_inference: epsilon -1 must be positive"));
    CHECK_THROWS_WITH(
        cuda::batchnorm_backward_training(x, ones, sm, si, y_wrong, nullptr, nullptr, nullptr),
        Catch::Contains("cuda::batchnorm_backward_training: output gradient has shape (2, 3, 3, 5), expected "
                        "(2, 3, 3, 4)"));
    Tensor<float> d_gamma_wrong = to_device(Tensor<float>(Shape{5}), Device::cuda);
    CHECK_THROWS_WITH(
        cuda::batchnorm_backward_training(x, ones, sm, si, y, nullptr, &d_gamma_wrong, nullptr),
        Catch::Contains("cuda::batchnorm_backward_training: gamma gradient has shape (5), expected (4)"));

    Tensor<float> y_cpu(Shape{2, 3, 3, 4});
    CHECK_THROWS_WITH(
        backend::batchnorm_forward_inference(x, ones, ones, mm, mv, 1e-3, y_cpu),
        Catch::Contains("batchnorm_forward_inference: input is on cuda but output is on cpu"));
    Tensor<float> d_beta_cpu(Shape{4});
    CHECK_THROWS_WITH(
        backend::batchnorm_backward_training(x, ones, sm, si, y, nullptr, nullptr, &d_beta_cpu),
        Catch::Contains("batchnorm_backward_training: input is on cuda but beta gradient is on cpu"));
}

namespace {

// Random weights (..., K), bias, gamma, beta and moving statistics (K) on the CPU, in T.
template <typename T>
struct FoldOperands {
    Tensor<T> weights, bias, gamma, beta, moving_mean, moving_variance;
    FoldOperands(const Shape& weights_shape, std::uint64_t seed)
        : weights(random_tensor<T>(weights_shape, seed)),
          bias(random_tensor<T>(channels(weights_shape), seed + 1)),
          gamma(random_tensor<T>(channels(weights_shape), seed + 2, T(0.5), T(1.5))),
          beta(random_tensor<T>(channels(weights_shape), seed + 3)),
          moving_mean(random_tensor<T>(channels(weights_shape), seed + 4)),
          moving_variance(random_tensor<T>(channels(weights_shape), seed + 5, T(0.5), T(2))) {}
    static Shape channels(const Shape& weights_shape) { return Shape{weights_shape[weights_shape.rank() - 1]}; }
};

template <typename T>
double fold_bias_tolerance() {
    return std::is_same<T, float>::value ? 1e-6 : 1e-14;
}

template <typename T>
void check_fold(const Shape& weights_shape, double epsilon, std::uint64_t seed) {
    const FoldOperands<T> o(weights_shape, seed);
    const Shape k = FoldOperands<T>::channels(weights_shape);
    const Tensor<T> weights = to_device(o.weights, Device::cuda), bias = to_device(o.bias, Device::cuda),
                    gamma = to_device(o.gamma, Device::cuda), beta = to_device(o.beta, Device::cuda),
                    moving_mean = to_device(o.moving_mean, Device::cuda),
                    moving_variance = to_device(o.moving_variance, Device::cuda);
    for (const bool with_bias : {true, false}) {
        CAPTURE(with_bias);
        Tensor<T> expected_weights(weights_shape), expected_bias(k);
        cpu::fold_batchnorm(o.weights, with_bias ? &o.bias : nullptr, o.gamma, o.beta, o.moving_mean,
                            o.moving_variance, epsilon, expected_weights, expected_bias);
        Tensor<T> folded_weights = poisoned_on_device<T>(weights_shape), folded_bias = poisoned_on_device<T>(k);
        backend::fold_batchnorm(weights, with_bias ? &bias : nullptr, gamma, beta, moving_mean, moving_variance,
                                epsilon, folded_weights, folded_bias);
        CHECK(folded_weights.device() == Device::cuda);
        CHECK(first_bit_difference(folded_weights, expected_weights) == "");
        CHECK(relative_difference(folded_bias, cast<double>(expected_bias)) < fold_bias_tolerance<T>());
    }
}

// Random parameters of a DenseLayer or DenseBlock: gamma in [0.5, 1.5],
// moving variance in [0.5, 2], the rest in [-0.5, 0.5].
void randomize_dense(nn::Module<double>& module, std::uint64_t seed) {
    for (const auto& p : module.named_parameters()) {
        const bool gamma = p.name.find("gamma") != std::string::npos;
        const bool variance = p.name.find("moving_variance") != std::string::npos;
        const double low = gamma || variance ? 0.5 : -0.5, high = variance ? 2.0 : gamma ? 1.5 : 0.5;
        p.parameter->value.copy_from(random_tensor<double>(p.parameter->value.shape(), seed++, low, high));
    }
}

template <typename T>
void copy_dense_parameters(nn::Module<double>& from, nn::Module<T>& to) {
    const auto source = from.named_parameters(), target = to.named_parameters();
    REQUIRE(source.size() == target.size());
    for (std::size_t i = 0; i < source.size(); ++i) {
        REQUIRE(source[i].name == target[i].name);
        target[i].parameter->value.copy_from(cast<T>(source[i].parameter->value));
    }
}

// `test` (same architecture as `reference`, built for `input`) on cuda against
// `reference` on the CPU, both inference_only, for two batch sizes (buffers
// reallocated); then a backward on cuda is refused: 1_bn was folded there.
template <typename T, typename Layer>
void check_folded_forward_on_cuda(nn::Module<double>& reference, Layer& test, const Shape& input, std::uint64_t seed) {
    reference.build(input);
    test.build(input);
    randomize_dense(reference, seed);
    copy_dense_parameters(reference, test);
    test.to(Device::cuda);
    const double tolerance = library_tolerance<T>() * 10;
    for (const Index batch : {Index(2), Index(3)}) {
        CAPTURE(batch);
        Shape shape{batch};
        for (Index extent : input) shape.push_back(extent);
        const Tensor<double> x =
            random_tensor<double>(shape, seed + 100 + static_cast<std::uint64_t>(batch), -2.0, 2.0);
        const Tensor<double> y_ref = reference.forward(x, nn::inference_only_context());
        const Tensor<T> y = test.forward(to_device(cast<T>(x), Device::cuda), nn::inference_only_context());
        CHECK(y.device() == Device::cuda);
        CHECK(relative_difference(y, y_ref) < tolerance);
        CHECK_THROWS_WITH(test.backward(to_device(Tensor<T>(y.shape()), Device::cuda), true),
                          Catch::Contains("backward() after an inference_only forward (1_bn was folded into 1_conv)"));
    }
}

}  // namespace

TEMPLATE_TEST_CASE("fold_batchnorm on cuda matches the cpu fold", "[cuda][batchnorm][batchnorm_folding]", float,
                   double) {
    const std::uint64_t seed = fresh_seed();
    CAPTURE(seed);
    const Shape shapes[] = {
        Shape{3, 3, 5, 7},        // conv2d HWIO
        Shape{9, 130},            // dense (In, Out)
        Shape{1, 1, 256, 128},    // DenseNet 1_conv
        Shape{4, 1},              // one channel
        Shape{6},                 // rank 1: one weight per channel
        Shape{1, 1, 4097, 4097},  // more weights than 65535 blocks of 256 threads: the grid strides
    };
    for (const Shape& shape : shapes) {
        CAPTURE(shape);
        check_fold<TestType>(shape, 1.001e-5, seed);
        check_fold<TestType>(shape, 1e-3, seed + 10);
    }
}

TEST_CASE("fold_batchnorm on cuda works in place", "[cuda][batchnorm][batchnorm_folding]") {
    const std::uint64_t seed = fresh_seed();
    CAPTURE(seed);
    const Shape shape{1, 1, 12, 9};
    const FoldOperands<double> o(shape, seed);
    Tensor<double> expected_weights(shape), expected_bias(Shape{9});
    cpu::fold_batchnorm(o.weights, &o.bias, o.gamma, o.beta, o.moving_mean, o.moving_variance, 1.001e-5,
                        expected_weights, expected_bias);
    Tensor<double> weights = to_device(o.weights, Device::cuda), bias = to_device(o.bias, Device::cuda);
    cuda::fold_batchnorm(weights, &bias, to_device(o.gamma, Device::cuda), to_device(o.beta, Device::cuda),
                         to_device(o.moving_mean, Device::cuda), to_device(o.moving_variance, Device::cuda), 1.001e-5,
                         weights, bias);
    CHECK(first_bit_difference(weights, expected_weights) == "");
    CHECK(relative_difference(bias, expected_bias) < fold_bias_tolerance<double>());
}

TEST_CASE("fold_batchnorm on cuda rejects cpu tensors, wrong shapes, bad epsilon and mixed devices",
          "[cuda][batchnorm][batchnorm_folding]") {
    const FoldOperands<float> o(Shape{1, 1, 3, 4}, 1);
    const Tensor<float> w = to_device(o.weights, Device::cuda), b = to_device(o.bias, Device::cuda),
                        gamma = to_device(o.gamma, Device::cuda), beta = to_device(o.beta, Device::cuda),
                        mean = to_device(o.moving_mean, Device::cuda), var = to_device(o.moving_variance, Device::cuda);
    Tensor<float> fw = poisoned_on_device<float>(Shape{1, 1, 3, 4}), fb = poisoned_on_device<float>(Shape{4});
    const auto fold = [&](const Tensor<float>& weights, const Tensor<float>* bias, const Tensor<float>& g,
                          double epsilon, Tensor<float>& folded_weights, Tensor<float>& folded_bias) {
        cuda::fold_batchnorm(weights, bias, g, beta, mean, var, epsilon, folded_weights, folded_bias);
    };

    CHECK_THROWS_WITH(fold(o.weights, nullptr, gamma, 1e-3, fw, fb),
                      Catch::Contains("cuda::fold_batchnorm: weights of shape (1, 1, 3, 4) is on cpu"));
    const Tensor<float> empty = to_device(Tensor<float>(Shape{0, 4}), Device::cuda);
    Tensor<float> empty_fw = to_device(Tensor<float>(Shape{0, 4}), Device::cuda);
    CHECK_THROWS_WITH(fold(empty, nullptr, gamma, 1e-3, empty_fw, fb),
                      Catch::Contains("cuda::fold_batchnorm: weights of shape (0, 4) have no output axis or are "
                                      "empty"));
    const Tensor<float> gamma_wrong = to_device(Tensor<float>(Shape{3}), Device::cuda);
    CHECK_THROWS_WITH(fold(w, nullptr, gamma_wrong, 1e-3, fw, fb),
                      Catch::Contains("cuda::fold_batchnorm: gamma has shape (3), expected (4)"));
    CHECK_THROWS_WITH(fold(w, &gamma_wrong, gamma, 1e-3, fw, fb),
                      Catch::Contains("cuda::fold_batchnorm: bias has shape (3), expected (4)"));
    CHECK_THROWS_WITH(fold(w, nullptr, gamma, 0.0, fw, fb),
                      Catch::Contains("cuda::fold_batchnorm: epsilon 0 must be positive"));
    Tensor<float> fw_wrong = poisoned_on_device<float>(Shape{1, 1, 4, 4});
    CHECK_THROWS_WITH(fold(w, nullptr, gamma, 1e-3, fw_wrong, fb),
                      Catch::Contains("cuda::fold_batchnorm: folded weights has shape (1, 1, 4, 4), expected "
                                      "(1, 1, 3, 4)"));
    Tensor<float> fb_wrong = poisoned_on_device<float>(Shape{5});
    CHECK_THROWS_WITH(fold(w, nullptr, gamma, 1e-3, fw, fb_wrong),
                      Catch::Contains("cuda::fold_batchnorm: folded bias has shape (5), expected (4)"));
    // Every other element of an 8-element buffer: a (4) view that is not contiguous.
    Tensor<float> eight = poisoned_on_device<float>(Shape{8});
    Tensor<float> strided(eight.storage(), 0, Shape{4}, Shape{2});
    CHECK_THROWS_WITH(fold(w, nullptr, gamma, 1e-3, fw, strided),
                      Catch::Contains("cuda::fold_batchnorm: folded bias of shape (4) with strides (2) must be "
                                      "contiguous"));
    const Tensor<float> wide = to_device(Tensor<float>(Shape{3, 8}), Device::cuda);
    CHECK_THROWS_WITH(fold(wide.channels(0, 4), nullptr, gamma, 1e-3, fw, fb),
                      Catch::Contains("cuda::fold_batchnorm: weights of shape (3, 4) with strides"));
    CHECK(std::isnan(cast<double>(fb).to_vector()[0]));  // nothing written by a refused call

    Tensor<float> fb_cpu(Shape{4});
    CHECK_THROWS_WITH(backend::fold_batchnorm(w, &b, gamma, beta, mean, var, 1e-3, fw, fb_cpu),
                      Catch::Contains("fold_batchnorm: weights is on cuda but folded bias is on cpu"));
    CHECK_THROWS_WITH(backend::fold_batchnorm(w, &o.bias, gamma, beta, mean, var, 1e-3, fw, fb),
                      Catch::Contains("fold_batchnorm: weights is on cuda but bias is on cpu"));
}

TEST_CASE("a DenseLayer's and a DenseBlock's inference_only forward on cuda fold 1_bn and equal the cpu's",
          "[cuda][batchnorm][batchnorm_folding][nn]") {
    const std::uint64_t seed = fresh_seed();
    CAPTURE(seed);
    {
        nn::DenseLayer<double> reference(3, 8, 1.001e-5, "conv2_block1");
        nn::DenseLayer<float> test(3, 8, 1.001e-5, "conv2_block1");
        check_folded_forward_on_cuda<float>(reference, test, Shape{5, 6, 4}, seed);
    }
    {
        nn::DenseLayer<double> reference(3, 8, 1.001e-5, "conv2_block1");
        nn::DenseLayer<double> test(3, 8, 1.001e-5, "conv2_block1");
        check_folded_forward_on_cuda<double>(reference, test, Shape{5, 6, 4}, seed + 1);
    }
    {
        // Layers reading channel prefixes of the block's buffer and writing slices of it.
        nn::DenseBlock<double> reference(3, 4, 8, 1.001e-5, "conv2");
        nn::DenseBlock<double> test(3, 4, 8, 1.001e-5, "conv2");
        check_folded_forward_on_cuda<double>(reference, test, Shape{5, 6, 3}, seed + 2);
    }
}

// BatchNorm folding through the dispatch point on the CPU:
// backend::fold_batchnorm and BatchNormalization::fold_into give
// cpu::fold_batchnorm's results bit for bit (float and double, with and
// without a bias); a DenseLayer's inference_only forward is the CPU kernels
// composed by hand (0_bn, ReLU, the folded 1_conv with its ReLU, 2_conv), bit
// for bit; mixed devices and empty operands are refused naming them, and
// without the CUDA backend device tensors name the missing backend. The
// device-side tensors are storages that claim to be on cuda: the dispatch
// checks come first, so they are never dereferenced.

#include <bcnn/backend/batchnorm.hpp>
#include <bcnn/kernels/cpu/activation.hpp>
#include <bcnn/nn/dense_layer.hpp>
#include <catch2/catch.hpp>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "nn/layer_checks.hpp"

using namespace bcnn;
using namespace bcnn::nn;
using namespace bcnn::testing;

namespace {

constexpr double kEpsilon = 1.001e-5;

template <typename T>
bool same_bits(const Tensor<T>& a, const Tensor<T>& b) {
    const std::vector<T> x = a.to_vector(), y = b.to_vector();
    return a.shape() == b.shape() && std::memcmp(x.data(), y.data(), x.size() * sizeof(T)) == 0;
}

// A (k) tensor whose storage claims to be on cuda (never dereferenced).
template <typename T>
Tensor<T> claimed_on_cuda(Index k) {
    static T elsewhere[64];
    REQUIRE(k <= 64);
    auto storage = std::make_shared<Storage>(elsewhere, sizeof elsewhere, Device::cuda, nullptr);
    return Tensor<T>(storage, 0, Shape{k}, Shape{1});
}

// A built BatchNormalization over k channels with random gamma, beta and moving statistics.
template <typename T>
std::unique_ptr<BatchNormalization<T>> random_batch_norm(Index k, std::uint64_t seed) {
    auto bn = std::make_unique<BatchNormalization<T>>(0.99, kEpsilon, "bn");
    bn->build(Shape{k});
    parameter(*bn, "gamma").value.copy_from(random_tensor<T>(Shape{k}, seed, T(0.5), T(1.5)));
    parameter(*bn, "beta").value.copy_from(random_tensor<T>(Shape{k}, seed + 1, T(-0.5), T(0.5)));
    parameter(*bn, "moving_mean").value.copy_from(random_tensor<T>(Shape{k}, seed + 2, T(-0.5), T(0.5)));
    parameter(*bn, "moving_variance").value.copy_from(random_tensor<T>(Shape{k}, seed + 3, T(0.5), T(2)));
    return bn;
}

template <typename T>
void check_dispatch_equals_cpu_fold() {
    const Index k = 7;
    const auto bn_owner = random_batch_norm<T>(k, 11);
    BatchNormalization<T>& bn = *bn_owner;
    const Tensor<T>& gamma = parameter(bn, "gamma").value;
    const Tensor<T>& beta = parameter(bn, "beta").value;
    const Tensor<T>& mean = parameter(bn, "moving_mean").value;
    const Tensor<T>& variance = parameter(bn, "moving_variance").value;
    const Tensor<T> w = random_tensor<T>(Shape{3, 3, 5, k}, 12);
    const Tensor<T> b = random_tensor<T>(Shape{k}, 13);
    for (const Tensor<T>* bias : {&b, static_cast<const Tensor<T>*>(nullptr)}) {
        CAPTURE(bias != nullptr);
        Tensor<T> expected_w(w.shape()), expected_b(Shape{k});
        cpu::fold_batchnorm(w, bias, gamma, beta, mean, variance, kEpsilon, expected_w, expected_b);
        Tensor<T> dispatched_w(w.shape()), dispatched_b(Shape{k});
        backend::fold_batchnorm(w, bias, gamma, beta, mean, variance, kEpsilon, dispatched_w, dispatched_b);
        CHECK(same_bits(dispatched_w, expected_w));
        CHECK(same_bits(dispatched_b, expected_b));
        Tensor<T> layer_w(w.shape()), layer_b(Shape{k});
        bn.fold_into(w, bias, layer_w, layer_b);
        CHECK(same_bits(layer_w, expected_w));
        CHECK(same_bits(layer_b, expected_b));
        CHECK(max_abs_diff(expected_w, w) > 0.01);  // the folding changed something
    }
}

// The DenseLayer's inference_only forward composed from the CPU kernels.
template <typename T>
Tensor<T> folded_dense_layer_by_hand(DenseLayer<T>& layer, const Tensor<T>& x) {
    const auto value = [&](const char* name) -> const Tensor<T>& { return parameter(layer, name).value; };
    Tensor<T> activated(x.shape());
    cpu::batchnorm_forward_inference(x, value("0_bn/gamma"), value("0_bn/beta"), value("0_bn/moving_mean"),
                                     value("0_bn/moving_variance"), kEpsilon, activated);
    cpu::relu_forward(activated, activated);
    const Tensor<T>& kernel1 = value("1_conv/kernel");
    const Index bottleneck = kernel1.dim(3);
    Tensor<T> folded_kernel(kernel1.shape()), folded_bias(Shape{bottleneck});
    cpu::fold_batchnorm(kernel1, nullptr, value("1_bn/gamma"), value("1_bn/beta"), value("1_bn/moving_mean"),
                        value("1_bn/moving_variance"), kEpsilon, folded_kernel, folded_bias);
    Tensor<T> hidden(Shape{x.dim(0), x.dim(1), x.dim(2), bottleneck});
    cpu::conv2d_forward(activated, folded_kernel, &folded_bias, ConvParams{1, 1, Padding::valid}, hidden,
                        cpu::ActivationFn::relu);
    const Tensor<T>& kernel2 = value("2_conv/kernel");
    Tensor<T> y(Shape{x.dim(0), x.dim(1), x.dim(2), kernel2.dim(3)});
    cpu::conv2d_forward(hidden, kernel2, nullptr, ConvParams{1, 1, Padding::same}, y);
    return y;
}

template <typename T>
void check_dense_layer_folds_bit_for_bit() {
    DenseLayer<T> layer(3, 6, kEpsilon, "conv2_block1");
    layer.build(Shape{5, 4, 4});
    std::uint64_t seed = 40;
    for (const auto& p : layer.named_parameters()) {
        const bool variance = p.name.find("moving_variance") != std::string::npos;
        const bool gamma = p.name.find("gamma") != std::string::npos;
        const T low = variance || gamma ? T(0.5) : T(-0.5), high = variance ? T(2) : gamma ? T(1.5) : T(0.5);
        p.parameter->value.copy_from(random_tensor<T>(p.parameter->value.shape(), seed++, low, high));
    }
    const Tensor<T> x = random_tensor<T>(Shape{2, 5, 4, 4}, 50, T(-2), T(2));
    const Tensor<T> y = layer.forward(x, inference_only_context());
    const Tensor<T> expected = folded_dense_layer_by_hand(layer, x);
    CHECK(same_bits(y, expected));
    CHECK(max_abs(expected) > 0.1);
    CHECK_THROWS_WITH(layer.backward(Tensor<T>(y.shape()), true),
                      Catch::Contains("backward() after an inference_only forward (1_bn was folded into 1_conv)"));
}

}  // namespace

TEST_CASE("fold_batchnorm's dispatch point and BatchNormalization::fold_into are cpu::fold_batchnorm on the CPU",
          "[nn][batch_norm][batchnorm_folding][backend]") {
    check_dispatch_equals_cpu_fold<float>();
    check_dispatch_equals_cpu_fold<double>();
}

TEST_CASE("a DenseLayer's inference_only forward on the CPU is the folded CPU kernels bit for bit",
          "[nn][dense_block][batchnorm_folding][backend]") {
    check_dense_layer_folds_bit_for_bit<float>();
    check_dense_layer_folds_bit_for_bit<double>();
}

TEST_CASE("fold_batchnorm's dispatch point names mixed devices and empty operands",
          "[nn][batch_norm][batchnorm_folding][backend][errors]") {
    const Index k = 4;
    const auto bn_owner = random_batch_norm<float>(k, 60);
    BatchNormalization<float>& bn = *bn_owner;
    const Tensor<float>& gamma = parameter(bn, "gamma").value;
    const Tensor<float>& beta = parameter(bn, "beta").value;
    const Tensor<float>& mean = parameter(bn, "moving_mean").value;
    const Tensor<float>& variance = parameter(bn, "moving_variance").value;
    const Tensor<float> w = random_tensor<float>(Shape{1, 1, 3, k}, 61);
    Tensor<float> folded_w(w.shape()), folded_b(Shape{k});
    const Tensor<float> folded_w_before = folded_w.clone(), folded_b_before = folded_b.clone();

    Tensor<float> b_on_cuda = claimed_on_cuda<float>(k);
    CHECK_THROWS_WITH(
        backend::fold_batchnorm(w, nullptr, gamma, beta, mean, variance, kEpsilon, folded_w, b_on_cuda),
        Catch::Contains("fold_batchnorm: weights is on cpu but folded bias is on cuda; move tensors with "
                        "bcnn::to_device()"));
    CHECK_THROWS_WITH(
        backend::fold_batchnorm(w, &b_on_cuda, gamma, beta, mean, variance, kEpsilon, folded_w, folded_b),
        Catch::Contains("fold_batchnorm: weights is on cpu but bias is on cuda"));
    CHECK_THROWS_WITH(
        backend::fold_batchnorm(w, nullptr, gamma, beta, mean, b_on_cuda, kEpsilon, folded_w, folded_b),
        Catch::Contains("fold_batchnorm: weights is on cpu but moving variance is on cuda"));
    CHECK_THROWS_WITH(bn.fold_into(w, &b_on_cuda, folded_w, folded_b),
                      Catch::Contains("fold_batchnorm: weights is on cpu but bias is on cuda"));
    Tensor<float> unset;
    CHECK_THROWS_WITH(backend::fold_batchnorm(w, nullptr, gamma, beta, mean, variance, kEpsilon, unset, folded_b),
                      Catch::Contains("fold_batchnorm: folded weights is an empty tensor"));
    CHECK(same_bits(folded_w, folded_w_before));
    CHECK(same_bits(folded_b, folded_b_before));
    // The CPU kernel's own checks still run behind the dispatch point.
    Tensor<float> wrong_b(Shape{k + 1});
    CHECK_THROWS_WITH(backend::fold_batchnorm(w, nullptr, gamma, beta, mean, variance, kEpsilon, folded_w, wrong_b),
                      Catch::Contains("fold_batchnorm: folded bias has shape (5), expected (4)"));
}

#ifndef BCNN_WITH_CUDA
TEST_CASE("without the CUDA backend fold_batchnorm on device tensors names the missing backend",
          "[nn][batch_norm][batchnorm_folding][backend][errors]") {
    const Tensor<double> on_cuda = claimed_on_cuda<double>(4);
    Tensor<double> folded_w = claimed_on_cuda<double>(4), folded_b = claimed_on_cuda<double>(4);
    CHECK_THROWS_WITH(
        backend::fold_batchnorm(on_cuda, &on_cuda, on_cuda, on_cuda, on_cuda, on_cuda, kEpsilon, folded_w, folded_b),
        Catch::Contains("fold_batchnorm: tensors are on cuda but bcnn was built without the CUDA backend"));
}
#endif

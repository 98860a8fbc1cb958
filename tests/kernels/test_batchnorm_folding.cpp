// fold_batchnorm: a convolution or dense layer with the inference-mode
// BatchNorm after it folded into its weights and bias gives the same output
// as the two layers; argument errors name the tensor and the shapes.

#include <catch2/catch.hpp>

#include <bcnn/kernels/cpu/batchnorm_folding.hpp>
#include <bcnn/kernels/cpu/conv2d.hpp>
#include <bcnn/kernels/cpu/dense.hpp>

#include "support/gradcheck.hpp"
#include "support/random.hpp"

using namespace bcnn;
using bcnn::testing::max_abs_diff;
using bcnn::testing::random_tensor;

namespace {

constexpr double kEpsilon = 1.001e-5;

// Random BatchNorm parameters and statistics for k channels.
struct BatchNormValues {
    Tensor<double> gamma, beta, mean, variance;
    explicit BatchNormValues(Index k)
        : gamma(random_tensor<double>(Shape{k}, 31, 0.5, 1.5)),
          beta(random_tensor<double>(Shape{k}, 32, -0.5, 0.5)),
          mean(random_tensor<double>(Shape{k}, 33, -0.5, 0.5)),
          variance(random_tensor<double>(Shape{k}, 34, 0.5, 2.0)) {}

    Tensor<double> apply(const Tensor<double>& x) const {
        Tensor<double> y(x.shape());
        cpu::batchnorm_forward_inference(x, gamma, beta, mean, variance, kEpsilon, y);
        return y;
    }
};

}  // namespace

TEST_CASE("fold_batchnorm: conv2d then BatchNorm equals the folded conv2d", "[kernels][batchnorm_folding]") {
    const Index k = 6;
    const auto x = random_tensor<double>(Shape{2, 7, 5, 3}, 1);
    const auto w = random_tensor<double>(Shape{3, 3, 3, k}, 2);
    const auto b = random_tensor<double>(Shape{k}, 3);
    const ConvParams params{1, 1, Padding::same};
    const BatchNormValues bn(k);
    for (const Tensor<double>* bias : {&b, static_cast<const Tensor<double>*>(nullptr)}) {
        Tensor<double> conv(cpu::conv2d_output_shape(x.shape(), w.shape(), params));
        cpu::conv2d_forward(x, w, bias, params, conv);
        Tensor<double> folded_w(w.shape()), folded_b(Shape{k}), y(conv.shape());
        cpu::fold_batchnorm(w, bias, bn.gamma, bn.beta, bn.mean, bn.variance, kEpsilon, folded_w, folded_b);
        cpu::conv2d_forward(x, folded_w, &folded_b, params, y);
        CHECK(max_abs_diff(y, bn.apply(conv)) < 1e-12);
    }
}

TEST_CASE("fold_batchnorm: dense then BatchNorm equals the folded dense, also in float", "[kernels][batchnorm_folding]") {
    const Index k = 5;
    const auto x = random_tensor<double>(Shape{4, 9}, 11);
    const auto w = random_tensor<double>(Shape{9, k}, 12);
    const auto b = random_tensor<double>(Shape{k}, 13);
    const BatchNormValues bn(k);
    Tensor<double> dense(Shape{4, k});
    cpu::dense_forward(x, w, &b, dense);
    const Tensor<double> expected = bn.apply(dense);
    Tensor<double> folded_w(w.shape()), folded_b(Shape{k}), y(Shape{4, k});
    cpu::fold_batchnorm(w, &b, bn.gamma, bn.beta, bn.mean, bn.variance, kEpsilon, folded_w, folded_b);
    cpu::dense_forward(x, folded_w, &folded_b, y);
    CHECK(max_abs_diff(y, expected) < 1e-12);

    // float: the folded layer within float rounding of the double result.
    const auto to_float = [](const Tensor<double>& t) {
        const std::vector<double> v = t.to_vector();
        return Tensor<float>::from_vector(t.shape(), std::vector<float>(v.begin(), v.end()));
    };
    const Tensor<float> bf = to_float(b);
    Tensor<float> folded_wf(w.shape()), folded_bf(Shape{k}), yf(Shape{4, k});
    cpu::fold_batchnorm(to_float(w), &bf, to_float(bn.gamma), to_float(bn.beta),
                        to_float(bn.mean), to_float(bn.variance), kEpsilon, folded_wf, folded_bf);
    cpu::dense_forward(to_float(x), folded_wf, &folded_bf, yf);
    double diff = 0;
    for (Index i = 0; i < yf.numel(); ++i) diff = std::max(diff, std::abs(yf.data()[i] - expected.data()[i]));
    CHECK(diff < 1e-5);
}

TEST_CASE("fold_batchnorm rejects mismatched shapes naming them", "[kernels][batchnorm_folding][errors]") {
    const auto w = random_tensor<double>(Shape{1, 1, 4, 6}, 21);
    const BatchNormValues bn(5);  // 5 channels, the weights have 6 filters
    const BatchNormValues bn6(6);
    Tensor<double> folded_w(w.shape()), folded_b(Shape{6});
    CHECK_THROWS_WITH(
        cpu::fold_batchnorm(w, nullptr, bn.gamma, bn.beta, bn.mean, bn.variance, kEpsilon, folded_w, folded_b),
        Catch::Contains("fold_batchnorm") && Catch::Contains("gamma"));
    Tensor<double> wrong_w(Shape{1, 1, 4, 5});
    CHECK_THROWS_WITH(
        cpu::fold_batchnorm(w, nullptr, bn6.gamma, bn6.beta, bn6.mean, bn6.variance, kEpsilon, wrong_w, folded_b),
        Catch::Contains("fold_batchnorm: folded weights has shape (1, 1, 4, 5)"));
    const auto bias5 = random_tensor<double>(Shape{5}, 22);
    CHECK_THROWS_WITH(
        cpu::fold_batchnorm(w, &bias5, bn6.gamma, bn6.beta, bn6.mean, bn6.variance, kEpsilon, folded_w, folded_b),
        Catch::Contains("bias"));
    CHECK_THROWS_WITH(
        cpu::fold_batchnorm(w, nullptr, bn6.gamma, bn6.beta, bn6.mean, bn6.variance, 0.0, folded_w, folded_b),
        Catch::Contains("epsilon 0 must be positive"));
    // Every other element of a 12-element buffer: a (6) view that is not contiguous.
    const Tensor<double> twelve(Shape{12});
    Tensor<double> strided(twelve.storage(), 0, Shape{6}, Shape{2});
    CHECK_THROWS_WITH(
        cpu::fold_batchnorm(w, nullptr, bn6.gamma, bn6.beta, bn6.mean, bn6.variance, kEpsilon, folded_w, strided),
        Catch::Contains("fold_batchnorm: folded bias of shape (6) must be contiguous"));
}

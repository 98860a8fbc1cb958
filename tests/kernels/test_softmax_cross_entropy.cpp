// softmax cross-entropy: loss and probabilities against a reference loop,
// d_logits by finite differences of the returned loss, stability, bad labels and logits.

#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <limits>

#include <bcnn/kernels/cpu/softmax_cross_entropy.hpp>

#include "support/gradcheck.hpp"
#include "support/random.hpp"

using namespace bcnn;
using bcnn::testing::random_tensor;

namespace {

Tensor<std::int32_t> random_labels(Index n, Index classes, std::uint64_t seed) {
    Tensor<std::int32_t> labels(Shape{n});
    Rng rng(seed);
    for (Index i = 0; i < n; ++i) labels(i) = static_cast<std::int32_t>(rng.next_below(classes));
    return labels;
}

// mean over rows of -log(exp(z[label]) / sum exp(z)), written naively (small logits only).
double loss_reference(const Tensor<double>& z, const Tensor<std::int32_t>& labels) {
    double total = 0;
    for (Index n = 0; n < z.dim(0); ++n) {
        double sum = 0;
        for (Index k = 0; k < z.dim(1); ++k) sum += std::exp(z(n, k));
        total += -std::log(std::exp(z(n, labels(n))) / sum);
    }
    return total / z.dim(0);
}

}  // namespace

TEST_CASE("softmax_cross_entropy_forward matches a reference loop", "[kernels][softmax_cross_entropy]") {
    for (auto [n, k] : {std::pair<Index, Index>{1, 1}, {1, 5}, {7, 3}, {32, 8}, {257, 131}}) {
        const auto z = random_tensor<double>(Shape{n, k}, 1, -3.0, 3.0);
        const auto labels = random_labels(n, k, 2);
        Tensor<double> p(z.shape());
        const double loss = cpu::softmax_cross_entropy_forward(z, labels, p);
        CHECK(std::abs(loss - loss_reference(z, labels)) < 1e-13);
        double max_error = 0;
        for (Index r = 0; r < n; ++r) {
            double sum = 0;
            for (Index j = 0; j < k; ++j) sum += std::exp(z(r, j));
            for (Index j = 0; j < k; ++j) max_error = std::max(max_error, std::abs(p(r, j) - std::exp(z(r, j)) / sum));
        }
        CHECK(max_error < 1e-15);
    }
}

TEST_CASE("softmax_cross_entropy_forward in float matches the double reference", "[kernels][softmax_cross_entropy]") {
    const auto z = random_tensor<float>(Shape{19, 7}, 3, -4.0f, 4.0f);
    const auto labels = random_labels(19, 7, 4);
    Tensor<float> p(z.shape());
    const float loss = cpu::softmax_cross_entropy_forward(z, labels, p);
    const std::vector<float> zf = z.to_vector();
    const auto zd = Tensor<double>::from_vector(z.shape(), std::vector<double>(zf.begin(), zf.end()));
    // The loss is O(1); float carries about 7 significant digits.
    CHECK(std::abs(loss - loss_reference(zd, labels)) < 1e-6);
}

TEST_CASE("softmax_cross_entropy is finite and exact for large logits", "[kernels][softmax_cross_entropy]") {
    // Row 0 is confidently right (loss log(1 + e^-2000) = 0), row 1 confidently
    // wrong (loss 2000 + log(1 + e^-2000) = 2000): the mean is 1000.
    for (const bool in_place : {false, true}) {
        auto z = Tensor<float>::from_vector(Shape{2, 2}, {1000.f, -1000.f, 1000.f, -1000.f});
        const auto labels = Tensor<std::int32_t>::from_vector(Shape{2}, {0, 1});
        Tensor<float> p = in_place ? z : Tensor<float>(z.shape());
        const float loss = cpu::softmax_cross_entropy_forward(z, labels, p);
        CHECK(loss == 1000.0f);
        CHECK(p.to_vector() == std::vector<float>{1.f, 0.f, 1.f, 0.f});
        Tensor<float> d_logits(z.shape());
        cpu::softmax_cross_entropy_backward(p, labels, d_logits);
        CHECK(d_logits.to_vector() == std::vector<float>{0.f, 0.f, 0.5f, -0.5f});
    }
}

TEST_CASE("softmax_cross_entropy_backward matches finite differences of the loss",
          "[kernels][softmax_cross_entropy][gradcheck]") {
    auto z = random_tensor<double>(Shape{5, 4}, 5, -2.0, 2.0);
    const auto labels = random_labels(5, 4, 6);
    const Tensor<double> one(Shape{1}, 1.0);
    auto loss_as_tensor = [&] {
        Tensor<double> p(z.shape());
        return Tensor<double>(Shape{1}, cpu::softmax_cross_entropy_forward(z, labels, p));
    };
    Tensor<double> p(z.shape()), dz(z.shape());
    cpu::softmax_cross_entropy_forward(z, labels, p);
    cpu::softmax_cross_entropy_backward(p, labels, dz);
    CHECK(testing::relative_error(dz, testing::numerical_gradient(z, loss_as_tensor, one)) < 1e-6);
    // In place: d_logits may be the probabilities.
    cpu::softmax_cross_entropy_backward(p, labels, p);
    CHECK(testing::max_abs_diff(p, dz) == 0);
}

TEST_CASE("softmax_cross_entropy rejects bad labels and non-finite logits naming the row",
          "[kernels][softmax_cross_entropy][errors]") {
    auto z = random_tensor<float>(Shape{3, 5}, 7);
    Tensor<float> p(z.shape());
    const auto too_big = Tensor<std::int32_t>::from_vector(Shape{3}, {0, 5, 1});
    CHECK_THROWS_WITH(cpu::softmax_cross_entropy_forward(z, too_big, p),
                      Catch::Contains("softmax_cross_entropy_forward: label 5 in row 1 is outside [0, 5)"));
    const auto negative = Tensor<std::int32_t>::from_vector(Shape{3}, {0, 1, -2});
    CHECK_THROWS_WITH(cpu::softmax_cross_entropy_backward(p, negative, p),
                      Catch::Contains("softmax_cross_entropy_backward: label -2 in row 2 is outside [0, 5)"));
    const auto wrong_count = Tensor<std::int32_t>(Shape{4});
    CHECK_THROWS_WITH(cpu::softmax_cross_entropy_forward(z, wrong_count, p),
                      Catch::Contains("labels has shape (4), expected (3)"));
    const auto labels = Tensor<std::int32_t>(Shape{3});
    z(2, 3) = std::numeric_limits<float>::quiet_NaN();
    CHECK_THROWS_WITH(cpu::softmax_cross_entropy_forward(z, labels, p),
                      Catch::Contains("logits row 2 has the non-finite value nan (class 3)"));
    z(2, 3) = 0.f;
    z(1, 0) = -std::numeric_limits<float>::infinity();
    CHECK_THROWS_WITH(cpu::softmax_cross_entropy_forward(z, labels, p),
                      Catch::Contains("logits row 1 has the non-finite value -inf (class 0)"));
    Tensor<float> p_bad(Shape{3, 4});
    CHECK_THROWS_WITH(cpu::softmax_cross_entropy_forward(z, labels, p_bad),
                      Catch::Contains("probabilities has shape (3, 4), expected (3, 5)"));
}

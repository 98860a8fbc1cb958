// Softmax cross-entropy on the GPU against the CPU kernel run in double:
// one class, odd class counts, more classes than a block has threads, large
// logits (log-sum-exp), many rows, probabilities aliasing the logits,
// row views; the gradient from the same probabilities bit for bit; a
// repeatable loss; and argument errors (bad labels and non-finite logits
// with the CPU kernel's messages). Values are fresh on every run (the seed
// is printed with any failure); outputs are NaN-poisoned before the GPU writes.
//
// Tolerances (probabilities: max |gpu - cpu| / max |cpu|; loss: relative):
//   float  1e-5: exp in float on both sides (a few ulp apart), sums in double.
//   double 1e-12.

#include <catch2/catch.hpp>

#include <cmath>
#include <limits>

#include <bcnn/backend/softmax_cross_entropy.hpp>

#include "cuda/compare.hpp"
#include "support/random.hpp"

using namespace bcnn;
using bcnn::testing::cast;
using bcnn::testing::first_bit_difference;
using bcnn::testing::fresh_seed;
using bcnn::testing::poisoned_on_device;
using bcnn::testing::random_tensor;
using bcnn::testing::relative_difference;

namespace {

template <typename T>
double tolerance() {
    return std::is_same<T, float>::value ? 1e-5 : 1e-12;
}

struct Case {
    const char* name;
    Index n, k;
    double scale;  // logits in [-scale, scale)
};

const Case kCases[] = {
    {"ten classes", 16, 10, 3},   {"one class", 5, 1, 1},         {"odd classes", 7, 37, 2},
    {"more classes than threads", 3, 1000, 4}, {"large logits", 9, 12, 300}, {"many rows", 70000, 3, 5},
};

// Labels in [0, k) from the seed.
Tensor<std::int32_t> random_labels(Index n, Index k, std::uint64_t seed) {
    Tensor<std::int32_t> labels(Shape{n});
    Rng rng(seed);
    for (Index i = 0; i < n; ++i) labels.data()[i] = static_cast<std::int32_t>(rng.next_below(k));
    return labels;
}

}  // namespace

TEMPLATE_TEST_CASE("softmax_cross_entropy on cuda matches the cpu kernel", "[cuda][softmax_cross_entropy]", float,
                   double) {
    const std::uint64_t seed = fresh_seed();
    for (const Case& c : kCases) {
        CAPTURE(c.name, seed);
        const Tensor<TestType> logits_cpu = random_tensor<TestType>(Shape{c.n, c.k}, seed, TestType(-c.scale),
                                                                    TestType(c.scale));
        const Tensor<std::int32_t> labels_cpu = random_labels(c.n, c.k, seed + 1);
        Tensor<double> expected_p(logits_cpu.shape());
        const double expected_loss =
            cpu::softmax_cross_entropy_forward(cast<double>(logits_cpu), labels_cpu, expected_p);

        const Tensor<TestType> logits = to_device(logits_cpu, Device::cuda);
        const Tensor<std::int32_t> labels = to_device(labels_cpu, Device::cuda);
        Tensor<TestType> p = poisoned_on_device<TestType>(logits.shape());
        const TestType loss = backend::softmax_cross_entropy_forward(logits, labels, p);
        CHECK(std::abs(loss - expected_loss) <= tolerance<TestType>() * std::max(1.0, std::abs(expected_loss)));
        CHECK(relative_difference(p, expected_p) < tolerance<TestType>());

        // The gradient from the GPU's probabilities: the CPU's formula, bit for bit.
        const Tensor<TestType> p_cpu = to_device(p, Device::cpu);
        Tensor<TestType> expected_d(p.shape());
        cpu::softmax_cross_entropy_backward(p_cpu, labels_cpu, expected_d);
        Tensor<TestType> d = poisoned_on_device<TestType>(p.shape());
        backend::softmax_cross_entropy_backward(p, labels, d);
        CHECK(first_bit_difference(d, expected_d) == "");
    }
}

TEST_CASE("softmax_cross_entropy on cuda works in place, on row views, repeatably", "[cuda][softmax_cross_entropy]") {
    const std::uint64_t seed = fresh_seed();
    CAPTURE(seed);
    const Index n = 33, k = 300;
    const Tensor<float> logits_cpu = random_tensor<float>(Shape{n, k}, seed, -4.f, 4.f);
    const Tensor<std::int32_t> labels_cpu = random_labels(n, k, seed + 1);
    Tensor<float> expected_p(logits_cpu.shape()), expected_d(logits_cpu.shape());
    const float expected_loss = cpu::softmax_cross_entropy_forward(logits_cpu, labels_cpu, expected_p);
    const Tensor<std::int32_t> labels = to_device(labels_cpu, Device::cuda);

    // Logits at columns 2.. of a buffer 5 wider, overwritten by the probabilities,
    // then by the gradient; the other columns hold -7.
    Tensor<float> wide_cpu(Shape{n, k + 5}, -7.f);
    wide_cpu.channels(2, 2 + k).copy_from(logits_cpu);
    Tensor<float> wide = to_device(wide_cpu, Device::cuda);
    Tensor<float> view = wide.channels(2, 2 + k);
    const Tensor<float> logits = to_device(logits_cpu, Device::cuda);
    Tensor<float> p_once = poisoned_on_device<float>(logits.shape());
    const float loss_once = cuda::softmax_cross_entropy_forward(logits, labels, p_once);
    const float loss = cuda::softmax_cross_entropy_forward(view, labels, view);
    CHECK(std::abs(loss - expected_loss) <= tolerance<float>() * std::abs(expected_loss));
    CHECK(loss == loss_once);  // the same bits however the tensors are laid out
    CHECK(first_bit_difference(view, to_device(p_once, Device::cpu)) == "");
    cpu::softmax_cross_entropy_backward(to_device(p_once, Device::cpu), labels_cpu, expected_d);
    cuda::softmax_cross_entropy_backward(view, labels, view);
    CHECK(first_bit_difference(view, expected_d) == "");
    const Tensor<float> wide_host = to_device(wide, Device::cpu);
    Index touched = 0;
    for (Index r = 0; r < n; ++r)
        for (Index j : {Index(0), Index(1), k + 2, k + 3, k + 4}) touched += wide_host(r, j) != -7.f;
    CHECK(touched == 0);
}

TEST_CASE("softmax_cross_entropy on cuda rejects bad labels, non-finite logits and wrong shapes",
          "[cuda][softmax_cross_entropy]") {
    Tensor<float> logits_cpu = random_tensor<float>(Shape{4, 3}, 1);
    const Tensor<float> logits = to_device(logits_cpu, Device::cuda);
    Tensor<float> p = poisoned_on_device<float>(Shape{4, 3});
    Tensor<std::int32_t> labels_cpu(Shape{4}, 0);
    labels_cpu.data()[2] = 3;
    labels_cpu.data()[3] = -1;
    const Tensor<std::int32_t> bad_labels = to_device(labels_cpu, Device::cuda);
    CHECK_THROWS_WITH(cuda::softmax_cross_entropy_forward(logits, bad_labels, p),
                      Catch::Contains("cuda::softmax_cross_entropy_forward: label 3 in row 2 is outside [0, 3)"));
    CHECK_THROWS_WITH(cuda::softmax_cross_entropy_backward(logits, bad_labels, p),
                      Catch::Contains("cuda::softmax_cross_entropy_backward: label 3 in row 2 is outside [0, 3)"));
    CHECK(std::isnan(cast<double>(p).to_vector()[0]));  // nothing written

    const Tensor<std::int32_t> labels = to_device(Tensor<std::int32_t>(Shape{4}, 1), Device::cuda);
    logits_cpu(3, 1) = std::numeric_limits<float>::infinity();
    logits_cpu(1, 2) = std::numeric_limits<float>::quiet_NaN();
    CHECK_THROWS_WITH(cuda::softmax_cross_entropy_forward(to_device(logits_cpu, Device::cuda), labels, p),
                      Catch::Contains("cuda::softmax_cross_entropy_forward: logits row 1 has the non-finite value nan "
                                      "(class 2)"));
    const Tensor<std::int32_t> short_labels = to_device(Tensor<std::int32_t>(Shape{3}, 0), Device::cuda);
    CHECK_THROWS_WITH(cuda::softmax_cross_entropy_forward(logits, short_labels, p),
                      Catch::Contains("cuda::softmax_cross_entropy_forward: labels has shape (3), expected (4)"));
    Tensor<float> p_wrong = to_device(Tensor<float>(Shape{4, 2}), Device::cuda);
    CHECK_THROWS_WITH(cuda::softmax_cross_entropy_forward(logits, labels, p_wrong),
                      Catch::Contains("cuda::softmax_cross_entropy_forward: probabilities has shape (4, 2), "
                                      "expected (4, 3)"));
    const Tensor<float> empty = to_device(Tensor<float>(Shape{0, 3}), Device::cuda);
    Tensor<float> p_empty = to_device(Tensor<float>(Shape{0, 3}), Device::cuda);
    CHECK_THROWS_WITH(cuda::softmax_cross_entropy_forward(empty, short_labels, p_empty),
                      Catch::Contains("cuda::softmax_cross_entropy_forward: logits of shape (0, 3) are empty"));
    const Tensor<std::int32_t> labels_cpu_ok(Shape{4}, 1);
    CHECK_THROWS_WITH(backend::softmax_cross_entropy_forward(logits, labels_cpu_ok, p),
                      Catch::Contains("softmax_cross_entropy_forward: logits is on cuda but labels is on cpu"));
}

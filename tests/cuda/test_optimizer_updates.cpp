// Adam and SGD updates on the GPU against optim::Adam / optim::SGD stepping
// the same parameter with the same gradients on the CPU: four steps (the
// bias correction changes every step), Keras' defaults and other
// hyperparameters, gradients down to 1e-9 (where epsilon dominates),
// momentum 0, plain and nesterov; and argument errors. Values are fresh on
// every run (the seed is printed with any failure).
//
// Tolerances, as max |gpu - cpu| / max |cpu| over the parameter: the device
// repeats the CPU's operations in the same order without FMA contraction,
// so the results are bit-identical when the CPU build does not contract
// either; GCC may contract (-std=gnu++17, FMA hardware), which moves each
// operation by at most an ulp:  float 1e-6, double 1e-14.

#include <catch2/catch.hpp>

#include <bcnn/backend/cuda/optimizer_updates.hpp>
#include <bcnn/optim/adam.hpp>
#include <bcnn/optim/sgd.hpp>

#include "cuda/compare.hpp"
#include "support/random.hpp"

using namespace bcnn;
using bcnn::testing::cast;
using bcnn::testing::fresh_seed;
using bcnn::testing::random_tensor;
using bcnn::testing::relative_difference;

namespace {

template <typename T>
double tolerance() {
    return std::is_same<T, float>::value ? 1e-6 : 1e-14;
}

constexpr int kSteps = 4;
const Shape kShape{37, 5};

// Step `step`'s gradient: values spread over 1e-9 .. 1 in magnitude.
template <typename T>
Tensor<T> gradient(std::uint64_t seed, int step) {
    Tensor<T> g = random_tensor<T>(kShape, seed + 10 + static_cast<std::uint64_t>(step));
    for (Index i = 0; i < g.numel(); ++i) g.data()[i] *= static_cast<T>(std::pow(10.0, -static_cast<double>(i % 10)));
    return g;
}

// The CPU optimiser's parameter after kSteps steps from `initial`.
template <typename T>
Tensor<double> cpu_steps(optim::Optimizer<T>& optimizer, const Tensor<T>& initial, std::uint64_t seed) {
    nn::Parameter<T> parameter{"kernel", initial.clone(), Tensor<T>(kShape), false};
    const std::vector<nn::NamedParameter<T>> params = {{"dense/kernel", true, &parameter}};
    for (int step = 0; step < kSteps; ++step) {
        parameter.grad.copy_from(gradient<T>(seed, step));
        optimizer.step(params);
    }
    return cast<double>(parameter.value);
}

}  // namespace

TEMPLATE_TEST_CASE("adam_update on cuda follows optim::Adam", "[cuda][optimizer_updates]", float, double) {
    const std::uint64_t seed = fresh_seed();
    struct Hyper {
        double lr, beta_1, beta_2, epsilon;
    };
    for (const Hyper& h : {Hyper{1e-3, 0.9, 0.999, 1e-7}, Hyper{0.05, 0.5, 0.9, 1e-3}, Hyper{1e-2, 0, 0, 1e-8}}) {
        CAPTURE(seed, h.lr, h.beta_1, h.beta_2, h.epsilon);
        const Tensor<TestType> initial = random_tensor<TestType>(kShape, seed);
        optim::Adam<TestType> adam(h.lr, h.beta_1, h.beta_2, h.epsilon);
        const Tensor<double> expected = cpu_steps(adam, initial, seed);

        const Tensor<TestType> value = to_device(initial, Device::cuda);
        const Tensor<TestType> m = to_device(Tensor<TestType>(kShape), Device::cuda);
        const Tensor<TestType> v = to_device(Tensor<TestType>(kShape), Device::cuda);
        for (int step = 0; step < kSteps; ++step)
            cuda::adam_update(value, to_device(gradient<TestType>(seed, step), Device::cuda), m, v, h.lr, h.beta_1,
                              h.beta_2, h.epsilon, step + 1);
        CHECK(relative_difference(value, expected) < tolerance<TestType>());
        CHECK(relative_difference(value, cast<double>(initial)) > 0);  // it did move
    }
}

TEMPLATE_TEST_CASE("sgd_update on cuda follows optim::SGD", "[cuda][optimizer_updates]", float, double) {
    const std::uint64_t seed = fresh_seed();
    struct Hyper {
        double lr, momentum;
        bool nesterov;
    };
    for (const Hyper& h : {Hyper{0.01, 0, false}, Hyper{0.1, 0.9, false}, Hyper{0.1, 0.9, true}, Hyper{0.3, 1, true}}) {
        CAPTURE(seed, h.lr, h.momentum, h.nesterov);
        const Tensor<TestType> initial = random_tensor<TestType>(kShape, seed);
        optim::SGD<TestType> sgd(h.lr, h.momentum, h.nesterov);
        const Tensor<double> expected = cpu_steps(sgd, initial, seed);

        const Tensor<TestType> value = to_device(initial, Device::cuda);
        const Tensor<TestType> velocity = to_device(Tensor<TestType>(kShape), Device::cuda);
        for (int step = 0; step < kSteps; ++step)
            cuda::sgd_update(value, to_device(gradient<TestType>(seed, step), Device::cuda),
                             h.momentum == 0 ? nullptr : &velocity, h.lr, h.momentum, h.nesterov);
        CHECK(relative_difference(value, expected) < tolerance<TestType>());
        CHECK(relative_difference(value, cast<double>(initial)) > 0);
    }
}

TEST_CASE("optimizer updates on cuda reject bad state and hyperparameters", "[cuda][optimizer_updates]") {
    const Tensor<float> p = to_device(Tensor<float>(Shape{3, 4}), Device::cuda);
    const Tensor<float> g = to_device(Tensor<float>(Shape{3, 4}), Device::cuda);
    const Tensor<float> wrong = to_device(Tensor<float>(Shape{4, 3}), Device::cuda);
    const Tensor<float> p_cpu(Shape{3, 4});
    CHECK_THROWS_WITH(cuda::adam_update(p, g, wrong, g, 1e-3, 0.9, 0.999, 1e-7, 1),
                      Catch::Contains("cuda::adam_update: m has shape (4, 3), expected (3, 4)"));
    CHECK_THROWS_WITH(cuda::adam_update(p_cpu, g, g, g, 1e-3, 0.9, 0.999, 1e-7, 1),
                      Catch::Contains("cuda::adam_update: parameter of shape (3, 4) is on cpu"));
    CHECK_THROWS_WITH(cuda::adam_update(p, g, g, g, 1e-3, 0.9, 0.999, 1e-7, 0),
                      Catch::Contains("cuda::adam_update: step 0 must be >= 1"));
    CHECK_THROWS_WITH(cuda::adam_update(p, g, g, g, 1e-3, 1.0, 0.999, 1e-7, 1),
                      Catch::Contains("cuda::adam_update: beta_1 must be in [0, 1), got 1"));
    const Tensor<float> wide = to_device(Tensor<float>(Shape{3, 6}), Device::cuda);
    CHECK_THROWS_WITH(cuda::adam_update(p, wide.channels(0, 4), g, g, 1e-3, 0.9, 0.999, 1e-7, 1),
                      Catch::Contains("cuda::adam_update: gradient of shape (3, 4) with strides"));
    CHECK_THROWS_WITH(cuda::sgd_update(p, wrong, nullptr, 0.01, 0, false),
                      Catch::Contains("cuda::sgd_update: gradient has shape (4, 3), expected (3, 4)"));
    CHECK_THROWS_WITH(cuda::sgd_update(p, g, &wrong, 0.01, 0.9, false),
                      Catch::Contains("cuda::sgd_update: velocity has shape (4, 3), expected (3, 4)"));
    CHECK_THROWS_WITH(cuda::sgd_update(p, g, nullptr, -1, 0, false),
                      Catch::Contains("cuda::sgd_update: learning rate must be finite and >= 0, got -1"));
}

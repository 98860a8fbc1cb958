// Adam: hand-computed steps with the textbook formula, Keras' defaults,
// frozen parameters, parallel updates, argument checks.

#include <catch2/catch.hpp>

#include <cmath>

#include <bcnn/nn/dense.hpp>
#include <bcnn/nn/sequential.hpp>
#include <bcnn/optim/adam.hpp>

#include "support/random.hpp"

using namespace bcnn;

namespace {

// A lone parameter with a gradient, as a model would list it.
struct Lone {
    nn::Parameter<double> parameter;
    explicit Lone(const std::vector<double>& values) {
        parameter.name = "w";
        parameter.value = Tensor<double>::from_vector(Shape{static_cast<Index>(values.size())}, values);
        parameter.grad = Tensor<double>(parameter.value.shape());
    }
    std::vector<nn::NamedParameter<double>> list(bool trainable = true) { return {{"w", trainable, &parameter}}; }
    void set_grad(const std::vector<double>& g) { parameter.grad.copy_from(Tensor<double>::from_vector(parameter.grad.shape(), g)); }
};

// The textbook Adam step with Keras' epsilon placement, in double.
struct ReferenceAdam {
    double lr, b1, b2, eps;
    std::vector<double> m, v;
    int t = 0;
    void step(std::vector<double>& p, const std::vector<double>& g) {
        if (m.empty()) m.assign(p.size(), 0.0), v.assign(p.size(), 0.0);
        ++t;
        for (std::size_t i = 0; i < p.size(); ++i) {
            m[i] = b1 * m[i] + (1 - b1) * g[i];
            v[i] = b2 * v[i] + (1 - b2) * g[i] * g[i];
            const double alpha = lr * std::sqrt(1 - std::pow(b2, t)) / (1 - std::pow(b1, t));
            p[i] -= alpha * m[i] / (std::sqrt(v[i]) + eps);
        }
    }
};

}  // namespace

TEST_CASE("Adam follows three hand-computed steps exactly", "[optim][adam]") {
    const std::vector<std::vector<double>> grads = {{0.1, -0.2}, {-0.3, 0.05}, {0.2, 0.4}};
    SECTION("Keras defaults") {
        Lone w({0.5, -1.5});
        optim::Adam<double> adam;
        ReferenceAdam reference{1e-3, 0.9, 0.999, 1e-7, {}, {}};
        std::vector<double> expected = {0.5, -1.5};
        for (const auto& g : grads) {
            w.set_grad(g);
            adam.step(w.list());
            reference.step(expected, g);
            const std::vector<double> got = w.parameter.value.to_vector();
            CHECK(std::abs(got[0] - expected[0]) < 1e-12);
            CHECK(std::abs(got[1] - expected[1]) < 1e-12);
        }
        CHECK(adam.iterations() == 3);
    }
    SECTION("other hyperparameters and a learning-rate change between steps") {
        Lone w({0.5, -1.5});
        optim::Adam<double> adam(0.05, 0.8, 0.95, 1e-3);
        ReferenceAdam reference{0.05, 0.8, 0.95, 1e-3, {}, {}};
        std::vector<double> expected = {0.5, -1.5};
        for (std::size_t step = 0; step < grads.size(); ++step) {
            if (step == 2) {
                adam.set_learning_rate(0.01);
                reference.lr = 0.01;
            }
            w.set_grad(grads[step]);
            adam.step(w.list());
            reference.step(expected, grads[step]);
            const std::vector<double> got = w.parameter.value.to_vector();
            CHECK(std::abs(got[0] - expected[0]) < 1e-12);
            CHECK(std::abs(got[1] - expected[1]) < 1e-12);
        }
        // The first step alone, written out: m = 0.2 g, v = 0.05 g^2, alpha = lr sqrt(0.05) / 0.2,
        // so p moves by lr * |g| sqrt(0.05) / (|g| sqrt(0.05) + eps) against the gradient.
        Lone first({0.5, -1.5});
        optim::Adam<double> one(0.05, 0.8, 0.95, 1e-3);
        first.set_grad(grads[0]);
        one.step(first.list());
        const double s = std::sqrt(0.05);
        CHECK(std::abs(first.parameter.value.to_vector()[0] - (0.5 - 0.05 * 0.1 * s / (0.1 * s + 1e-3))) < 1e-12);
        CHECK(std::abs(first.parameter.value.to_vector()[1] - (-1.5 + 0.05 * 0.2 * s / (0.2 * s + 1e-3))) < 1e-12);
    }
}

TEST_CASE("Adam's first step with Keras defaults moves each weight by about lr against its gradient",
          "[optim][adam]") {
    // Keras: Adam() on p = [1, 2], g = [0.1, -0.2] gives p = [0.999..., 2.000...]: the bias-corrected
    // step is lr * sign(g) up to epsilon: lr * |g| sqrt(1e-3) / (|g| sqrt(1e-3) + 1e-7).
    nn::Parameter<float> p;
    p.value = Tensor<float>::from_vector(Shape{2}, {1.0f, 2.0f});
    p.grad = Tensor<float>::from_vector(Shape{2}, {0.1f, -0.2f});
    optim::Adam<float> adam;
    CHECK(adam.learning_rate() == 1e-3);
    CHECK(adam.beta_1() == 0.9);
    CHECK(adam.beta_2() == 0.999);
    CHECK(adam.epsilon() == 1e-7);
    adam.step({{"p", true, &p}});
    const std::vector<float> got = p.value.to_vector();
    CHECK(got[0] == Approx(0.999).margin(1e-6));
    CHECK(got[1] == Approx(2.001).margin(1e-6));
    const double s = std::sqrt(1e-3);
    CHECK(got[0] == Approx(1.0 - 1e-3 * 0.1 * s / (0.1 * s + 1e-7)).margin(1e-7));
    CHECK(got[1] == Approx(2.0 + 1e-3 * 0.2 * s / (0.2 * s + 1e-7)).margin(1e-7));
}

TEST_CASE("Adam leaves frozen parameters and buffers alone and keeps no state for them", "[optim][adam]") {
    nn::Sequential<double> model;
    auto& frozen = model.emplace<nn::Dense<double>>(3, nn::ActivationFn::relu);
    model.emplace<nn::Dense<double>>(2);
    model.build(Shape{4});
    Rng rng(1);
    model.initialize(rng);
    frozen.set_trainable(false);
    std::vector<std::vector<double>> before;
    for (const auto& p : model.named_parameters()) {
        p.parameter->grad.fill(0.5);  // even the frozen layer's gradient is non-zero
        before.push_back(p.parameter->value.to_vector());
    }
    optim::Adam<double> adam;
    adam.step(model.named_parameters());
    const auto params = model.named_parameters();
    CHECK(params[0].parameter->value.to_vector() == before[0]);
    CHECK(params[1].parameter->value.to_vector() == before[1]);
    CHECK(params[2].parameter->value.to_vector() != before[2]);
    CHECK(params[3].parameter->value.to_vector() != before[3]);

    std::vector<io::NamedTensor> state;
    std::map<std::string, std::string> metadata;
    adam.save_state(state, metadata);
    std::vector<std::string> names;
    for (const auto& t : state) names.push_back(t.name);
    CHECK(names == std::vector<std::string>{"optimizer/m/dense_1/bias", "optimizer/v/dense_1/bias",
                                            "optimizer/m/dense_1/kernel", "optimizer/v/dense_1/kernel"});
    CHECK(metadata.at("optimizer.type") == "Adam");
    CHECK(metadata.at("optimizer.iterations") == "1");
    CHECK(metadata.at("optimizer.learning_rate") == "0.001");
    CHECK(metadata.at("optimizer.beta_1") == "0.9");
    CHECK(metadata.at("optimizer.beta_2") == "0.999");
    CHECK(metadata.at("optimizer.epsilon") == "1e-07");
}

TEST_CASE("Adam updates large parameters in parallel with the same result on any thread count",
          "[optim][adam]") {
    const Shape shape{200, 201};  // above the parallel threshold
    const Tensor<float> start = testing::random_tensor<float>(shape, 11);
    const Tensor<float> grad = testing::random_tensor<float>(shape, 12);
    auto run = [&](int threads) {
        const int saved = num_threads();
        set_num_threads(threads);
        nn::Parameter<float> p;
        p.value = start.clone();
        p.grad = grad;
        optim::Adam<float> adam(0.01);
        for (int i = 0; i < 3; ++i) adam.step({{"p", true, &p}});
        set_num_threads(saved);
        return p.value.to_vector();
    };
    const std::vector<float> one = run(1), two = run(2);
    CHECK(one == two);
    // Element-wise: matches the double reference to float precision.
    ReferenceAdam reference{0.01, 0.9, 0.999, 1e-7, {}, {}};
    const std::vector<float> start32 = start.to_vector();
    std::vector<double> expected(start32.begin(), start32.end());
    const std::vector<float> g32 = grad.to_vector();
    const std::vector<double> g(g32.begin(), g32.end());
    for (int i = 0; i < 3; ++i) reference.step(expected, g);
    double worst = 0;
    for (std::size_t i = 0; i < expected.size(); ++i) worst = std::max(worst, std::abs(expected[i] - one[i]));
    CHECK(worst < 1e-6);
}

// The update runs in SIMD lanes with a partial last group (adam_update_lanes):
// each element must come out as it does alone, whatever its lane, its
// group, or the chunk of the parallel loop it falls in.
TEMPLATE_TEST_CASE("Adam updates each element of a large parameter as it updates that element alone",
                   "[optim][adam]", float, double) {
    const Shape shape{40000 + 37};  // parallel, and not a whole number of vectors
    const Tensor<TestType> start = testing::random_tensor<TestType>(shape, 21);
    const Tensor<TestType> grad = testing::random_tensor<TestType>(shape, 22);
    nn::Parameter<TestType> whole;
    whole.value = start.clone();
    whole.grad = grad;
    optim::Adam<TestType> adam(0.01);
    for (int i = 0; i < 3; ++i) adam.step({{"whole", true, &whole}});
    const std::vector<TestType> got = whole.value.to_vector();
    const std::vector<TestType> start_values = start.to_vector(), grad_values = grad.to_vector();
    const auto alone_after_three_steps = [&](std::size_t i) {
        nn::Parameter<TestType> alone;
        alone.value = Tensor<TestType>::from_vector(Shape{1}, {start_values[i]});
        alone.grad = Tensor<TestType>::from_vector(Shape{1}, {grad_values[i]});
        optim::Adam<TestType> single(0.01);
        for (int step = 0; step < 3; ++step) single.step({{"alone", true, &alone}});
        return alone.value.to_vector()[0];
    };
    std::vector<std::size_t> checked;  // a spread of elements, then the last group's
    for (std::size_t i = 0; i < got.size(); i += 997) checked.push_back(i);
    for (std::size_t i = got.size() - 37; i < got.size(); ++i) checked.push_back(i);
    int mismatches = 0;
    for (std::size_t i : checked) mismatches += alone_after_three_steps(i) != got[i];
    CHECK(mismatches == 0);
    CHECK(got != start_values);
}

TEST_CASE("Adam rejects bad hyperparameters and mismatched gradients", "[optim][adam]") {
    CHECK_THROWS_WITH(optim::Adam<float>(-1.0), Catch::Contains("Adam: learning rate must be finite and >= 0, got -1"));
    CHECK_THROWS_WITH(optim::Adam<float>(1e-3, 1.0), Catch::Contains("Adam: beta_1 must be in [0, 1), got 1"));
    CHECK_THROWS_WITH(optim::Adam<float>(1e-3, 0.9, -0.1), Catch::Contains("Adam: beta_2 must be in [0, 1), got -0.1"));
    CHECK_THROWS_WITH(optim::Adam<float>(1e-3, 0.9, 0.999, 0.0), Catch::Contains("Adam: epsilon must be positive"));
    optim::Adam<float> adam;
    CHECK_THROWS_WITH(adam.set_learning_rate(std::nan("")), Catch::Contains("learning rate must be finite"));

    nn::Parameter<float> a, b;
    a.value = Tensor<float>(Shape{2, 3});
    a.grad = Tensor<float>(Shape{3, 2});
    b.value = Tensor<float>(Shape{2});
    b.grad = Tensor<float>(Shape{2});
    CHECK_THROWS_WITH(adam.step({{"b", true, &b}, {"a", true, &a}}),
                      Catch::Contains("Adam: gradient of \"a\" has shape (3, 2), expected (2, 3)"));
    CHECK(adam.iterations() == 0);
    CHECK(b.value.to_vector() == std::vector<float>{0, 0});  // nothing changed before the check failed
    CHECK_THROWS_WITH(adam.step({{"b", true, &b}, {"b", false, &a}}), Catch::Contains("parameter \"b\" appears twice"));

    adam.step({{"b", true, &b}});
    nn::Parameter<float> wider;
    wider.value = Tensor<float>(Shape{3});
    wider.grad = Tensor<float>(Shape{3});
    CHECK_THROWS_WITH(adam.step({{"b", true, &wider}}),
                      Catch::Contains("parameter \"b\" has shape (3) but its optimizer state has shape (2)"));
}

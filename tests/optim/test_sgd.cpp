// SGD: plain, momentum and Nesterov steps by hand (Keras' formulas),
// frozen parameters, state layout, argument checks.

#include <catch2/catch.hpp>

#include <bcnn/optim/sgd.hpp>

using namespace bcnn;

namespace {

nn::Parameter<double> parameter(const std::vector<double>& values) {
    nn::Parameter<double> p;
    p.value = Tensor<double>::from_vector(Shape{static_cast<Index>(values.size())}, values);
    p.grad = Tensor<double>(p.value.shape());
    return p;
}

void set(const Tensor<double>& t, const std::vector<double>& values) {
    t.copy_from(Tensor<double>::from_vector(t.shape(), values));
}

void check_close(const Tensor<double>& got, const std::vector<double>& expected) {
    const std::vector<double> values = got.to_vector();
    REQUIRE(values.size() == expected.size());
    for (std::size_t i = 0; i < values.size(); ++i) CHECK(values[i] == Approx(expected[i]).epsilon(1e-14).margin(1e-15));
}

const std::vector<std::vector<double>> kGrads = {{0.5, -1.0}, {0.25, 2.0}, {-1.0, 0.5}};

}  // namespace

TEST_CASE("SGD without momentum subtracts lr times the gradient", "[optim][sgd]") {
    auto p = parameter({1.0, -2.0});
    optim::SGD<double> sgd(0.1);
    CHECK(sgd.momentum() == 0.0);
    std::vector<double> expected = {1.0, -2.0};
    for (const auto& g : kGrads) {
        set(p.grad, g);
        sgd.step({{"w", true, &p}});
        for (int i = 0; i < 2; ++i) expected[i] -= 0.1 * g[i];
        check_close(p.value, expected);
    }
    std::vector<io::NamedTensor> state;
    std::map<std::string, std::string> metadata;
    sgd.save_state(state, metadata);
    CHECK(state.empty());  // no velocity without momentum
    CHECK(metadata.at("optimizer.type") == "SGD");
    CHECK(metadata.at("optimizer.momentum") == "0.0");
    CHECK(metadata.at("optimizer.nesterov") == "0.0");
    CHECK(optim::SGD<float>().learning_rate() == 0.01);  // Keras' default
}

TEST_CASE("SGD with momentum follows Keras' velocity update by hand", "[optim][sgd]") {
    // velocity = 0.9 velocity - 0.1 g; p += velocity
    auto p = parameter({1.0, -2.0});
    optim::SGD<double> sgd(0.1, 0.9);
    // Step 1: v = -0.1 g1 = (-0.05, 0.1);            p = (0.95, -1.9)
    // Step 2: v = 0.9 v - 0.1 g2 = (-0.07, -0.11);   p = (0.88, -2.01)
    // Step 3: v = 0.9 v - 0.1 g3 = (0.037, -0.149);  p = (0.917, -2.159)
    const std::vector<std::vector<double>> expected = {{0.95, -1.9}, {0.88, -2.01}, {0.917, -2.159}};
    for (std::size_t step = 0; step < kGrads.size(); ++step) {
        set(p.grad, kGrads[step]);
        sgd.step({{"w", true, &p}});
        check_close(p.value, expected[step]);
    }
    std::vector<io::NamedTensor> state;
    std::map<std::string, std::string> metadata;
    sgd.save_state(state, metadata);
    REQUIRE(state.size() == 1);
    CHECK(state[0].name == "optimizer/velocity/w");
    CHECK(metadata.at("optimizer.momentum") == "0.9");
}

TEST_CASE("SGD with Nesterov momentum follows Keras' update by hand", "[optim][sgd]") {
    // velocity = 0.9 velocity - 0.1 g; p += 0.9 velocity - 0.1 g
    auto p = parameter({1.0, -2.0});
    optim::SGD<double> sgd(0.1, 0.9, true);
    // Step 1: v = (-0.05, 0.1);    p += (-0.045 - 0.05, 0.09 + 0.1)     = (0.905, -1.81)
    // Step 2: v = (-0.07, -0.11);  p += (-0.063 - 0.025, -0.099 - 0.2)  = (0.817, -2.109)
    // Step 3: v = (0.037, -0.149); p += (0.0333 + 0.1, -0.1341 - 0.05)  = (0.9503, -2.2931)
    const std::vector<std::vector<double>> expected = {{0.905, -1.81}, {0.817, -2.109}, {0.9503, -2.2931}};
    for (std::size_t step = 0; step < kGrads.size(); ++step) {
        set(p.grad, kGrads[step]);
        sgd.step({{"w", true, &p}});
        check_close(p.value, expected[step]);
    }
    CHECK(sgd.iterations() == 3);
}

TEST_CASE("SGD skips frozen parameters and checks its arguments", "[optim][sgd]") {
    auto frozen = parameter({1.0, 2.0});
    auto live = parameter({1.0, 2.0});
    set(frozen.grad, {1.0, 1.0});
    set(live.grad, {1.0, 1.0});
    optim::SGD<double> sgd(0.5, 0.5);
    sgd.step({{"frozen", false, &frozen}, {"live", true, &live}});
    check_close(frozen.value, {1.0, 2.0});
    check_close(live.value, {0.5, 1.5});
    std::vector<io::NamedTensor> state;
    std::map<std::string, std::string> metadata;
    sgd.save_state(state, metadata);
    REQUIRE(state.size() == 1);
    CHECK(state[0].name == "optimizer/velocity/live");

    CHECK_THROWS_WITH(optim::SGD<float>(0.1, 1.5), Catch::Contains("SGD: momentum must be in [0, 1], got 1.5"));
    CHECK_THROWS_WITH(optim::SGD<float>(-0.1), Catch::Contains("SGD: learning rate must be finite and >= 0, got -0.1"));
}

// Optimisers and devices on the CPU: slots are created on the parameter's
// device (the CPU here), steps after a Module::to(Device::cpu) round trip are
// the same bit for bit, a parameter whose gradient lives elsewhere is refused
// before anything changes, and the saved state is host tensors.

#include <catch2/catch.hpp>

#include <cstring>
#include <map>
#include <string>
#include <vector>

#include <bcnn/nn/dense.hpp>
#include <bcnn/nn/sequential.hpp>
#include <bcnn/optim/adam.hpp>
#include <bcnn/optim/sgd.hpp>

#include "support/random.hpp"

using namespace bcnn;

namespace {

std::unique_ptr<nn::Sequential<float>> two_dense() {
    auto model = std::make_unique<nn::Sequential<float>>();
    model->emplace<nn::Dense<float>>(5, nn::ActivationFn::relu);
    model->emplace<nn::Dense<float>>(3);
    model->build(Shape{4});
    Rng rng(3);
    model->initialize(rng);
    return model;
}

// Three steps with fixed gradients; moves the model to the CPU (a no-op move)
// between steps when `move`. Returns the parameters' values.
std::vector<std::vector<float>> three_steps(optim::Optimizer<float>& optimizer, bool move) {
    auto model = two_dense();
    const auto params = model->named_parameters();
    for (int step = 0; step < 3; ++step) {
        std::uint64_t seed = 100 + static_cast<std::uint64_t>(step) * 10;
        for (const auto& p : params) p.parameter->grad.copy_from(testing::random_tensor<float>(p.parameter->grad.shape(), seed++));
        optimizer.step(params);
        if (move) model->to(Device::cpu);
    }
    std::vector<std::vector<float>> values;
    for (const auto& p : params) values.push_back(p.parameter->value.to_vector());
    return values;
}

}  // namespace

TEST_CASE("Adam and SGD steps are unchanged by Module::to(Device::cpu) round trips", "[optim][device]") {
    optim::Adam<float> adam_a, adam_b;
    CHECK(three_steps(adam_a, false) == three_steps(adam_b, true));
    optim::SGD<float> sgd_a(0.05, 0.9, true), sgd_b(0.05, 0.9, true);
    CHECK(three_steps(sgd_a, false) == three_steps(sgd_b, true));
    optim::SGD<float> plain_a(0.05), plain_b(0.05);
    CHECK(three_steps(plain_a, false) == three_steps(plain_b, true));
}

TEST_CASE("optimizer slots are host tensors on CPU parameters and are saved as such", "[optim][device]") {
    optim::Adam<float> adam;
    auto model = two_dense();
    const auto params = model->named_parameters();
    for (const auto& p : params) p.parameter->grad.copy_from(testing::random_tensor<float>(p.parameter->grad.shape(), 7));
    adam.step(params);
    std::vector<io::NamedTensor> saved;
    std::map<std::string, std::string> metadata;
    adam.save_state(saved, metadata);
    REQUIRE(saved.size() == 2 * params.size());
    for (const io::NamedTensor& t : saved) CHECK(!t.bytes.empty());
    CHECK(metadata.at("optimizer.iterations") == "1");
}

TEST_CASE("a step refuses a parameter whose gradient is on another device", "[optim][device]") {
    // A storage that claims to be on cuda (never dereferenced: the check comes first).
    nn::Parameter<float> p;
    p.name = "w";
    p.value = Tensor<float>(Shape{3}, 1.0f);
    static float elsewhere[3];
    auto storage = std::make_shared<Storage>(elsewhere, sizeof elsewhere, Device::cuda, nullptr);
    p.grad = Tensor<float>(storage, 0, Shape{3}, Shape{1});
    optim::SGD<float> sgd;
    CHECK_THROWS_WITH(sgd.step({{"w", true, &p}}),
                      Catch::Contains("SGD: parameter \"w\" is on cpu but its gradient is on cuda"));
    CHECK(p.value.to_vector() == std::vector<float>(3, 1.0f));
    CHECK(sgd.iterations() == 0);
}

// Dense and Sequential: shapes, naming, parameter counts, summary text,
// gradients through the stack, frozen layers and early-stopping backward.

#include <catch2/catch.hpp>

#include <bcnn/nn/dense.hpp>
#include <bcnn/nn/sequential.hpp>

#include "support/layer_gradcheck.hpp"

using namespace bcnn;
using namespace bcnn::nn;

TEST_CASE("Dense builds Keras-shaped parameters and initialises them glorot-uniform", "[nn][dense]") {
    Dense<float> dense(512, ActivationFn::relu);
    CHECK(dense.build(Shape{4096}) == Shape{512});
    CHECK(dense.count_params() == 4096 * 512 + 512);
    Rng rng(1);
    dense.initialize(rng);
    const auto params = dense.named_parameters();
    REQUIRE(params.size() == 2);
    CHECK(params[0].name == "kernel");
    CHECK(params[1].name == "bias");
    const float limit = std::sqrt(6.0f / (4096 + 512));
    float lo = 1, hi = -1;
    for (float v : params[0].parameter->value.to_vector()) {
        lo = std::min(lo, v);
        hi = std::max(hi, v);
    }
    CHECK(lo >= -limit);
    CHECK(hi <= limit);
    CHECK(hi > 0.99f * limit);  // 2M draws reach the edges
    for (float v : params[1].parameter->value.to_vector()) CHECK(v == 0.0f);
    CHECK_THROWS_WITH(Dense<float>(4).build(Shape{4, 4, 2}), Catch::Contains("add a Flatten layer before it"));
    Dense<float> unbuilt(3, ActivationFn::linear, true, "head");
    CHECK_THROWS_WITH(unbuilt.initialize(rng), Catch::Contains("Dense 'head': initialize() before build()"));
}

TEST_CASE("Sequential names layers like Keras and counts parameters", "[nn][sequential]") {
    Sequential<float> model;
    model.emplace<Dense<float>>(8, ActivationFn::relu);
    model.emplace<Dense<float>>(4);
    model.emplace<Dense<float>>(2, ActivationFn::linear, true, "logits");
    model.build(Shape{5});
    CHECK(model.at(0).name() == "dense");
    CHECK(model.at(1).name() == "dense_1");
    CHECK(model.at(2).name() == "logits");
    CHECK(model.count_params() == (5 * 8 + 8) + (8 * 4 + 4) + (4 * 2 + 2));
    std::vector<std::string> names;
    for (const auto& p : model.named_parameters()) names.push_back(p.name);
    CHECK(names == std::vector<std::string>{"dense/kernel", "dense/bias", "dense_1/kernel", "dense_1/bias",
                                            "logits/kernel", "logits/bias"});
    CHECK_THROWS_WITH(model.emplace<Dense<float>>(3, ActivationFn::linear, true, "logits"),
                      Catch::Contains("cannot add 'Dense' after build()"));
    Sequential<float> other;
    other.emplace<Dense<float>>(3, ActivationFn::linear, true, "x");
    CHECK_THROWS_WITH(other.emplace<Dense<float>>(3, ActivationFn::linear, true, "x"),
                      Catch::Contains("two modules named 'x'"));
}

TEST_CASE("summary prints layers, output shapes and totals like Keras", "[nn][sequential]") {
    Sequential<float> model;
    model.emplace<Dense<float>>(64, ActivationFn::relu);
    model.emplace<Dense<float>>(4);
    model.build(Shape{4096});
    const std::string expected =
        "Model: \"sequential\"\n"
        "_________________________________________________________________\n"
        " Layer (type)                Output Shape              Param #\n"
        "=================================================================\n"
        " dense (Dense)               (None, 64)                262208\n"
        "\n"
        " dense_1 (Dense)             (None, 4)                 260\n"
        "=================================================================\n"
        "Total params: 262,468\n"
        "Trainable params: 262,468\n"
        "Non-trainable params: 0\n"
        "_________________________________________________________________\n";
    CHECK(model.summary() == expected);
}

TEST_CASE("gradients flow through a Sequential of Dense layers", "[nn][sequential][gradcheck]") {
    Sequential<double> model;
    model.emplace<Dense<double>>(7, ActivationFn::relu);
    model.emplace<Dense<double>>(3);
    model.build(Shape{5});
    Rng rng(3);
    model.initialize(rng);
    testing::check_module_gradients(model, testing::random_tensor<double>(Shape{4, 5}, 4), true);
}

TEST_CASE("frozen layers get no weight gradients and backward stops before them", "[nn][sequential]") {
    Sequential<double> model;
    auto& frozen = model.emplace<Dense<double>>(6, ActivationFn::relu);
    auto& head = model.emplace<Dense<double>>(2);
    model.build(Shape{3});
    Rng rng(5);
    model.initialize(rng);
    frozen.set_trainable(false);
    CHECK(model.count_trainable_params() == 6 * 2 + 2);
    CHECK(model.count_params() == 3 * 6 + 6 + 6 * 2 + 2);

    auto& frozen_grad = frozen.named_parameters()[0].parameter->grad;
    frozen_grad.fill(123.0);
    const auto x = testing::random_tensor<double>(Shape{2, 3}, 6);
    Context context{true, &rng};
    model.forward(x, context);
    const Tensor<double> dx = model.backward(testing::random_tensor<double>(Shape{2, 2}, 7), false);
    CHECK_FALSE(dx.defined());
    for (double g : frozen_grad.to_vector()) CHECK(g == 123.0);  // untouched: no backward ran there
    bool head_changed = false;
    for (double g : head.named_parameters()[0].parameter->grad.to_vector()) head_changed |= g != 0.0;
    CHECK(head_changed);

    CHECK_THROWS_WITH(model.forward(Tensor<double>(Shape{2, 4}), context),
                      Catch::Contains("input has shape (2, 4), expected (N, 3)"));
}

// Activation layer: relu forward and gradient, linear as the identity
// (no copy), buffer reuse.

#include <bcnn/nn/activation.hpp>
#include <catch2/catch.hpp>

#include "nn/layer_checks.hpp"
#include "support/layer_gradcheck.hpp"

using namespace bcnn;
using namespace bcnn::nn;
using namespace bcnn::testing;

TEST_CASE("Activation(relu) zeroes negative values", "[nn][activation]") {
    Activation<float> relu(ActivationFn::relu);
    CHECK(std::string(relu.type()) == "Activation");
    CHECK(std::string(relu.default_name()) == "activation");
    CHECK(relu.build(Shape{3, 4}) == Shape{3, 4});
    CHECK(relu.count_params() == 0);
    const auto x = random_tensor<float>(Shape{2, 3, 4}, 1);
    const Tensor<float> y = relu.forward(x, Context{});
    const std::vector<float> xv = x.to_vector(), yv = y.to_vector();
    for (std::size_t i = 0; i < xv.size(); ++i) CHECK(yv[i] == (xv[i] > 0 ? xv[i] : 0.0f));
    check_buffers_reused(relu, x, true);
}

TEST_CASE("Activation(linear) passes its input and gradient through", "[nn][activation]") {
    Activation<float> linear(ActivationFn::linear);
    linear.build(Shape{5});
    const auto x = random_tensor<float>(Shape{2, 5}, 2);
    CHECK(linear.forward(x, Context{}).data() == x.data());
    CHECK(linear.backward(x, true).data() == x.data());
    CHECK_FALSE(linear.backward(x, false).defined());
}

TEST_CASE("Activation gradients match finite differences", "[nn][activation][gradcheck]") {
    for (const ActivationFn fn : {ActivationFn::relu, ActivationFn::linear}) {
        Activation<double> layer(fn);
        layer.build(Shape{3, 3, 2});
        check_module_gradients(layer, random_tensor_away_from_zero<double>(Shape{2, 3, 3, 2}, 3), true);
    }
    Activation<float> named(ActivationFn::relu, "act");
    named.build(Shape{3});
    CHECK_THROWS_WITH(named.forward(Tensor<float>(Shape{2, 4}), Context{}),
                      Catch::Contains("Activation 'act': input has shape (2, 4), expected (N, 3)"));
}

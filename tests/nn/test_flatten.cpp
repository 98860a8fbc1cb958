// Flatten layer: (N, H, W, C) -> (N, H*W*C) in H, W, C order as a view of
// its input (no copy), backward as a view of the gradient, errors.

#include <bcnn/nn/flatten.hpp>
#include <catch2/catch.hpp>

#include "nn/layer_checks.hpp"
#include "support/layer_gradcheck.hpp"

using namespace bcnn;
using namespace bcnn::nn;
using namespace bcnn::testing;

TEST_CASE("Flatten is a view in H, W, C order", "[nn][flatten]") {
    Flatten<float> flatten;
    CHECK(std::string(flatten.type()) == "Flatten");
    CHECK(std::string(flatten.default_name()) == "flatten");
    CHECK(flatten.build(Shape{4, 4, 256}) == Shape{4096});
    CHECK(flatten.count_params() == 0);
    const auto x = random_tensor<float>(Shape{2, 4, 4, 256}, 1);
    const Tensor<float> y = flatten.forward(x, Context{});
    CHECK(y.shape() == Shape{2, 4096});
    CHECK(y.data() == x.data());  // same storage: no copy
    CHECK(y(1, (2 * 4 + 3) * 256 + 17) == x(1, 2, 3, 17));

    const auto dy = random_tensor<float>(Shape{2, 4096}, 2);
    const Tensor<float> dx = flatten.backward(dy, true);
    CHECK(dx.shape() == x.shape());
    CHECK(dx.data() == dy.data());
    CHECK_FALSE(flatten.backward(dy, false).defined());

    Flatten<float> already_flat;
    CHECK(already_flat.build(Shape{10}) == Shape{10});
}

TEST_CASE("Flatten gradients match finite differences", "[nn][flatten][gradcheck]") {
    Flatten<double> flatten;
    flatten.build(Shape{3, 2, 4});
    check_module_gradients(flatten, random_tensor<double>(Shape{2, 3, 2, 4}, 3), true);
}

TEST_CASE("Flatten rejects strided views and wrong shapes, naming the layer", "[nn][flatten][errors]") {
    Flatten<float> flatten("flat");
    CHECK_THROWS_WITH(flatten.build(Shape{}), Catch::Contains("Flatten 'flat': input has no axis besides the batch"));
    flatten.build(Shape{2, 2, 3});
    const Tensor<float> wide(Shape{1, 2, 2, 6});
    CHECK_THROWS_WITH(flatten.forward(wide.channels(0, 3), Context{}), Catch::Contains("is a strided view"));
    CHECK_THROWS_WITH(flatten.forward(Tensor<float>(Shape{1, 2, 3, 2}), Context{}),
                      Catch::Contains("Flatten 'flat': input has shape (1, 2, 3, 2), expected (N, 2, 2, 3)"));
}

// ZeroPadding2D layer: Keras' padding forms, output shapes, values,
// gradients, buffer reuse and error messages.

#include <bcnn/nn/zero_pad.hpp>
#include <catch2/catch.hpp>

#include "nn/layer_checks.hpp"
#include "support/layer_gradcheck.hpp"

using namespace bcnn;
using namespace bcnn::nn;
using namespace bcnn::testing;

TEST_CASE("ZeroPadding2D pads with zeros around the image", "[nn][zero_pad]") {
    ZeroPadding2D<double> pad({1, 2}, {3, 0});
    CHECK(std::string(pad.type()) == "ZeroPadding2D");
    CHECK(std::string(pad.default_name()) == "zero_padding2d");
    CHECK(pad.build(Shape{4, 5, 2}) == Shape{7, 8, 2});
    CHECK(pad.count_params() == 0);
    CHECK(ZeroPadding2D<float>(3).build(Shape{224, 224, 3}) == Shape{230, 230, 3});  // DenseNet's stem
    CHECK(ZeroPadding2D<float>().build(Shape{4, 4, 1}) == Shape{6, 6, 1});           // Keras' default 1

    const auto x = random_tensor<double>(Shape{2, 4, 5, 2}, 1);
    const Tensor<double> y = pad.forward(x, Context{});
    REQUIRE(y.shape() == Shape{2, 7, 8, 2});
    for (Index n = 0; n < 2; ++n)
        for (Index i = 0; i < 7; ++i)
            for (Index j = 0; j < 8; ++j)
                for (Index c = 0; c < 2; ++c) {
                    const bool inside = i >= 1 && i < 5 && j >= 3;
                    CHECK(y(n, i, j, c) == (inside ? x(n, i - 1, j - 3, c) : 0.0));
                }
}

TEST_CASE("ZeroPadding2D gradients match finite differences", "[nn][zero_pad][gradcheck]") {
    ZeroPadding2D<double> pad({2, 1}, {0, 1});
    pad.build(Shape{3, 3, 2});
    check_module_gradients(pad, random_tensor<double>(Shape{2, 3, 3, 2}, 2), true);
    check_buffers_reused(pad, random_tensor<double>(Shape{2, 3, 3, 2}, 3), true);
}

TEST_CASE("ZeroPadding2D rejects negative padding and non-image inputs", "[nn][zero_pad][errors]") {
    CHECK_THROWS_WITH(ZeroPadding2D<float>({1, 1}, {-1, 0}),
                      Catch::Contains("ZeroPadding2D: negative padding (top 1, bottom 1, left -1, right 0)"));
    ZeroPadding2D<float> pad(1, "pad");
    CHECK_THROWS_WITH(
        pad.build(Shape{5, 5}),
        Catch::Contains("ZeroPadding2D 'pad': input must be an image (height, width, channels), got (5, 5)"));
}

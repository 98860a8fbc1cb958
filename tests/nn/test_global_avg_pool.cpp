// GlobalAveragePooling2D layer: output shape, the per-channel mean,
// gradients, buffer reuse and error messages.

#include <bcnn/nn/global_avg_pool.hpp>
#include <catch2/catch.hpp>

#include "nn/layer_checks.hpp"
#include "support/layer_gradcheck.hpp"

using namespace bcnn;
using namespace bcnn::nn;
using namespace bcnn::testing;

TEST_CASE("GlobalAveragePooling2D averages each channel over the image", "[nn][global_avg_pool]") {
    GlobalAveragePooling2D<double> gap;
    CHECK(std::string(gap.type()) == "GlobalAveragePooling2D");
    CHECK(std::string(gap.default_name()) == "global_average_pooling2d");
    CHECK(gap.build(Shape{3, 5, 4}) == Shape{4});
    CHECK(gap.count_params() == 0);
    const auto x = random_tensor<double>(Shape{2, 3, 5, 4}, 1);
    const Tensor<double> y = gap.forward(x, Context{});
    REQUIRE(y.shape() == Shape{2, 4});
    for (Index n = 0; n < 2; ++n)
        for (Index c = 0; c < 4; ++c) {
            double sum = 0;
            for (Index h = 0; h < 3; ++h)
                for (Index w = 0; w < 5; ++w) sum += x(n, h, w, c);
            CHECK(y(n, c) == Approx(sum / 15).epsilon(1e-14));
        }
}

TEST_CASE("GlobalAveragePooling2D gradients match finite differences", "[nn][global_avg_pool][gradcheck]") {
    GlobalAveragePooling2D<double> gap;
    gap.build(Shape{4, 3, 5});
    check_module_gradients(gap, random_tensor<double>(Shape{3, 4, 3, 5}, 2), true);
    check_buffers_reused(gap, random_tensor<double>(Shape{3, 4, 3, 5}, 3), true);
}

TEST_CASE("GlobalAveragePooling2D rejects non-image inputs, naming the layer", "[nn][global_avg_pool][errors]") {
    GlobalAveragePooling2D<float> gap("gap");
    CHECK_THROWS_WITH(
        gap.build(Shape{7, 7}),
        Catch::Contains("GlobalAveragePooling2D 'gap': input must be an image (height, width, channels), got (7, 7)"));
    gap.build(Shape{7, 7, 8});
    CHECK_THROWS_WITH(
        gap.forward(Tensor<float>(Shape{2, 7, 7, 4}), Context{}),
        Catch::Contains("GlobalAveragePooling2D 'gap': input has shape (2, 7, 7, 4), expected (N, 7, 7, 8)"));
}

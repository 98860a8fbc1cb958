// MaxPooling2D and AveragePooling2D layers: Keras defaults (strides = pool
// size, 'valid'), output shapes, forward wiring, gradients, buffer reuse and
// error messages.

#include <bcnn/nn/avg_pool2d.hpp>
#include <bcnn/nn/max_pool2d.hpp>
#include <catch2/catch.hpp>

#include "nn/layer_checks.hpp"
#include "support/layer_gradcheck.hpp"

using namespace bcnn;
using namespace bcnn::nn;
using namespace bcnn::testing;

TEST_CASE("pooling layers default to strides = pool size and 'valid' padding", "[nn][pool2d]") {
    MaxPooling2D<float> max_pool;
    CHECK(std::string(max_pool.type()) == "MaxPooling2D");
    CHECK(std::string(max_pool.default_name()) == "max_pooling2d");
    CHECK(max_pool.build(Shape{150, 150, 16}) == Shape{75, 75, 16});
    CHECK(max_pool.count_params() == 0);
    CHECK(max_pool.named_parameters().empty());
    const Window2D w = max_pool.window();
    CHECK((w.kernel_h == 2 && w.kernel_w == 2 && w.stride_h == 2 && w.stride_w == 2 && w.padding == Padding::valid));

    AveragePooling2D<float> avg_pool;
    CHECK(std::string(avg_pool.type()) == "AveragePooling2D");
    CHECK(std::string(avg_pool.default_name()) == "average_pooling2d");
    CHECK(avg_pool.build(Shape{75, 75, 32}) == Shape{37, 37, 32});  // floor, as Keras

    CHECK(MaxPooling2D<float>(Size2D{3, 2}).build(Shape{9, 9, 1}) == Shape{3, 4, 1});
    CHECK(MaxPooling2D<float>(3, 1).build(Shape{9, 9, 1}) == Shape{7, 7, 1});
    CHECK(AveragePooling2D<float>(3, 2, Padding::same).build(Shape{9, 8, 2}) == Shape{5, 4, 2});
}

TEST_CASE("pooling layers forward are the pool2d kernels with their window", "[nn][pool2d]") {
    for (const Padding padding : {Padding::same, Padding::valid}) {
        const Window2D window{3, 2, 2, 1, padding};
        const auto x = random_tensor<double>(Shape{2, 7, 5, 3}, 1);
        Tensor<double> expected(cpu::pool2d_output_shape(x.shape(), window));

        MaxPooling2D<double> max_pool({3, 2}, Size2D{2, 1}, padding);
        max_pool.build(Shape{7, 5, 3});
        cpu::max_pool2d_forward(x, window, expected);
        CHECK(max_abs_diff(max_pool.forward(x, Context{}), expected) == 0.0);

        AveragePooling2D<double> avg_pool({3, 2}, Size2D{2, 1}, padding);
        avg_pool.build(Shape{7, 5, 3});
        cpu::avg_pool2d_forward(x, window, expected);
        CHECK(max_abs_diff(avg_pool.forward(x, Context{}), expected) == 0.0);
    }
}

TEST_CASE("pooling layer gradients match finite differences", "[nn][pool2d][gradcheck]") {
    // Random values are distinct, so no window's maximum is tied within the finite-difference step.
    for (const Padding padding : {Padding::same, Padding::valid}) {
        MaxPooling2D<double> max_pool(2, std::nullopt, padding);
        max_pool.build(Shape{5, 5, 3});
        check_module_gradients(max_pool, random_tensor<double>(Shape{2, 5, 5, 3}, 2), true);
        MaxPooling2D<double> overlapping(3, 2, padding);
        overlapping.build(Shape{6, 5, 2});
        check_module_gradients(overlapping, random_tensor<double>(Shape{2, 6, 5, 2}, 3), true);
        AveragePooling2D<double> avg_pool(3, 2, padding);
        avg_pool.build(Shape{6, 5, 2});
        check_module_gradients(avg_pool, random_tensor<double>(Shape{2, 6, 5, 2}, 4), true);
    }
}

TEST_CASE("pooling layers reuse their buffers", "[nn][pool2d]") {
    MaxPooling2D<float> max_pool;
    max_pool.build(Shape{6, 6, 3});
    check_buffers_reused(max_pool, random_tensor<float>(Shape{2, 6, 6, 3}, 5), true);
    AveragePooling2D<float> avg_pool;
    avg_pool.build(Shape{6, 6, 3});
    check_buffers_reused(avg_pool, random_tensor<float>(Shape{2, 6, 6, 3}, 5), true);
}

TEST_CASE("pooling layers reject bad arguments and inputs, naming the layer", "[nn][pool2d][errors]") {
    CHECK_THROWS_WITH(MaxPooling2D<float>(0), Catch::Contains("MaxPooling2D: pool_size must be positive, got 0x0"));
    CHECK_THROWS_WITH(AveragePooling2D<float>(2, Size2D{1, 0}),
                      Catch::Contains("AveragePooling2D: strides must be positive, got 1x0"));
    MaxPooling2D<float> pool(4, std::nullopt, Padding::valid, "pool");
    CHECK_THROWS_WITH(pool.build(Shape{3, 8, 2}),
                      Catch::Contains("MaxPooling2D 'pool': input 3x8 is smaller than the window"));
    CHECK_THROWS_WITH(
        pool.build(Shape{16}),
        Catch::Contains("MaxPooling2D 'pool': input must be an image (height, width, channels), got (16)"));
    AveragePooling2D<float> avg(2, std::nullopt, Padding::valid, "avg");
    avg.build(Shape{4, 4, 2});
    CHECK_THROWS_WITH(avg.forward(Tensor<float>(Shape{1, 4, 2, 2}), Context{}),
                      Catch::Contains("AveragePooling2D 'avg': input has shape (1, 4, 2, 2), expected (N, 4, 4, 2)"));
}

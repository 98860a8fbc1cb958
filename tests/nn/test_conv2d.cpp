// Conv2D layer: Keras shapes, parameter names and counts, initialisation,
// forward wiring (strides, padding, bias, activation), gradients, frozen
// weights, buffer reuse and error messages.

#include <bcnn/nn/conv2d.hpp>
#include <catch2/catch.hpp>

#include "nn/layer_checks.hpp"
#include "support/layer_gradcheck.hpp"

using namespace bcnn;
using namespace bcnn::nn;
using namespace bcnn::testing;

TEST_CASE("Conv2D builds Keras-shaped parameters", "[nn][conv2d]") {
    Conv2D<float> conv(16, 3, 1, Padding::same, ActivationFn::relu);
    CHECK(std::string(conv.type()) == "Conv2D");
    CHECK(std::string(conv.default_name()) == "conv2d");
    CHECK(conv.build(Shape{150, 150, 3}) == Shape{150, 150, 16});
    CHECK(conv.count_params() == 448);  // Keras: 3*3*3*16 + 16
    CHECK(parameter_names(conv) == std::vector<std::string>{"kernel", "bias"});
    CHECK(parameter(conv, "kernel").value.shape() == Shape{3, 3, 3, 16});
    CHECK(parameter(conv, "bias").value.shape() == Shape{16});

    Conv2D<float> no_bias(8, {5, 3}, {2, 3}, Padding::valid, ActivationFn::linear, false);
    CHECK(no_bias.build(Shape{11, 10, 4}) == Shape{4, 3, 8});
    CHECK(parameter_names(no_bias) == std::vector<std::string>{"kernel"});
    CHECK(no_bias.count_params() == 5 * 3 * 4 * 8);

    Conv2D<float> strided_same(2, 3, 2, Padding::same);
    CHECK(strided_same.build(Shape{7, 8, 1}) == Shape{4, 4, 2});  // ceil(7/2), ceil(8/2)
}

TEST_CASE("Conv2D initialises its kernel glorot-uniform with Keras' fans and zeroes the bias", "[nn][conv2d]") {
    Conv2D<float> conv(32, 3);
    conv.build(Shape{9, 9, 16});
    parameter(conv, "bias").value.fill(5.0f);
    Rng rng(4);
    conv.initialize(rng);
    check_glorot_uniform(parameter(conv, "kernel").value, 3 * 3 * 16, 3 * 3 * 32);
    CHECK(max_abs(parameter(conv, "bias").value) == 0.0);
}

TEST_CASE("Conv2D forward is the conv2d kernel with its strides, padding, bias and activation", "[nn][conv2d]") {
    for (const Padding padding : {Padding::same, Padding::valid}) {
        Conv2D<double> conv(4, {3, 2}, {2, 1}, padding, ActivationFn::relu);
        conv.build(Shape{7, 6, 3});
        randomize_parameters(conv, 10);
        const auto x = random_tensor<double>(Shape{2, 7, 6, 3}, 11);
        Tensor<double> expected(cpu::conv2d_output_shape(x.shape(), Shape{3, 2, 3, 4}, ConvParams{2, 1, padding}));
        cpu::conv2d_forward(x, parameter(conv, "kernel").value, &parameter(conv, "bias").value,
                            ConvParams{2, 1, padding}, expected);
        cpu::relu_forward(expected, expected);
        const Tensor<double> y = conv.forward(x, Context{});
        REQUIRE(y.shape() == expected.shape());
        CHECK(max_abs_diff(y, expected) == 0.0);
        CHECK(max_abs(y) > 0);
    }
}

TEST_CASE("Conv2D gradients match finite differences", "[nn][conv2d][gradcheck]") {
    for (const Padding padding : {Padding::same, Padding::valid}) {
        for (const ActivationFn fn : {ActivationFn::linear, ActivationFn::relu}) {
            Conv2D<double> conv(3, 3, 2, padding, fn);
            conv.build(Shape{6, 5, 2});
            randomize_parameters(conv, 20);
            check_module_gradients(conv, random_tensor<double>(Shape{2, 6, 5, 2}, 21), true);
        }
    }
    Conv2D<double> pointwise(5, 1, 1, Padding::valid, ActivationFn::relu, false);
    pointwise.build(Shape{3, 4, 3});
    randomize_parameters(pointwise, 22);
    check_module_gradients(pointwise, random_tensor<double>(Shape{2, 3, 4, 3}, 23), false);
}

TEST_CASE("a frozen Conv2D computes no weight gradients; buffers are reused", "[nn][conv2d]") {
    Conv2D<double> conv(3, 3, 1, Padding::same, ActivationFn::relu);
    conv.build(Shape{5, 5, 2});
    randomize_parameters(conv, 30);
    const auto x = random_tensor<double>(Shape{2, 5, 5, 2}, 31);
    check_frozen(conv, x);
    check_buffers_reused(conv, x, true);
}

TEST_CASE("Conv2D rejects bad arguments and inputs, naming the layer and shapes", "[nn][conv2d][errors]") {
    CHECK_THROWS_WITH(Conv2D<float>(0, 3), Catch::Contains("Conv2D: filters must be positive, got 0"));
    CHECK_THROWS_WITH(Conv2D<float>(4, {3, 0}), Catch::Contains("Conv2D: kernel_size must be positive, got 3x0"));
    CHECK_THROWS_WITH(Conv2D<float>(4, 3, {1, 0}), Catch::Contains("Conv2D: strides must be positive, got 1x0"));
    Conv2D<float> flat(4, 3, 1, Padding::valid, ActivationFn::linear, true, "conv_a");
    CHECK_THROWS_WITH(flat.build(Shape{64}),
                      Catch::Contains("Conv2D 'conv_a': input must be an image (height, width, channels), got (64)"));
    Conv2D<float> big(4, 5, 1, Padding::valid, ActivationFn::linear, true, "conv_b");
    CHECK_THROWS_WITH(big.build(Shape{3, 8, 2}),
                      Catch::Contains("Conv2D 'conv_b': input 3x8 is smaller than the window"));
    Conv2D<float> conv(4, 3, 1, Padding::same, ActivationFn::linear, true, "conv_c");
    conv.build(Shape{8, 8, 3});
    CHECK_THROWS_WITH(conv.forward(Tensor<float>(Shape{2, 8, 8, 4}), Context{}),
                      Catch::Contains("Conv2D 'conv_c': input has shape (2, 8, 8, 4), expected (N, 8, 8, 3)"));
    CHECK_THROWS_WITH(conv.forward(Tensor<float>(Shape{2, 192}), Context{}),
                      Catch::Contains("Conv2D 'conv_c': input has shape (2, 192), expected (N, 8, 8, 3)"));
}

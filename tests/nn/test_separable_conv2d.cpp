// SeparableConv2D layer: Keras shapes, parameter names and counts (688 for
// 16 -> 32 channels), each kernel's own glorot fans, forward wiring
// (depthwise then pointwise with bias, then the activation), gradients,
// frozen weights, buffer reuse and error messages.

#include <bcnn/nn/separable_conv2d.hpp>
#include <catch2/catch.hpp>

#include "nn/layer_checks.hpp"
#include "support/layer_gradcheck.hpp"

using namespace bcnn;
using namespace bcnn::nn;
using namespace bcnn::testing;

TEST_CASE("SeparableConv2D builds Keras-shaped parameters", "[nn][separable_conv2d]") {
    SeparableConv2D<float> conv(32, 3, 1, Padding::same, ActivationFn::relu);
    CHECK(std::string(conv.type()) == "SeparableConv2D");
    CHECK(std::string(conv.default_name()) == "separable_conv2d");
    CHECK(conv.build(Shape{75, 75, 16}) == Shape{75, 75, 32});
    CHECK(parameter_names(conv) == std::vector<std::string>{"depthwise_kernel", "pointwise_kernel", "bias"});
    CHECK(parameter(conv, "depthwise_kernel").value.shape() == Shape{3, 3, 16, 1});
    CHECK(parameter(conv, "pointwise_kernel").value.shape() == Shape{1, 1, 16, 32});
    CHECK(parameter(conv, "bias").value.shape() == Shape{32});
    CHECK(conv.count_params() == 688);  // 16*9 + 16*32 + 32, as Keras prints it
    CHECK(conv.count_trainable_params() == 688);

    SeparableConv2D<float> strided(5, {3, 2}, 2, Padding::valid, ActivationFn::linear, false);
    CHECK(strided.build(Shape{9, 8, 4}) == Shape{4, 4, 5});
    CHECK(strided.count_params() == 3 * 2 * 4 + 4 * 5);
}

TEST_CASE("SeparableConv2D initialises each kernel glorot-uniform with its own fans", "[nn][separable_conv2d]") {
    SeparableConv2D<float> conv(32, 3, 1, Padding::same);
    conv.build(Shape{8, 8, 16});
    parameter(conv, "bias").value.fill(1.0f);
    Rng rng(6);
    conv.initialize(rng);
    check_glorot_uniform(parameter(conv, "depthwise_kernel").value, 9 * 16, 9 * 1);  // limit 0.198
    check_glorot_uniform(parameter(conv, "pointwise_kernel").value, 16, 32);         // limit 0.354
    CHECK(max_abs(parameter(conv, "bias").value) == 0.0);
}

TEST_CASE("SeparableConv2D forward is a depthwise then a pointwise convolution with bias and activation",
          "[nn][separable_conv2d]") {
    for (const Padding padding : {Padding::same, Padding::valid}) {
        SeparableConv2D<double> conv(4, 3, {2, 1}, padding, ActivationFn::relu);
        conv.build(Shape{7, 5, 3});
        randomize_parameters(conv, 8);
        const auto x = random_tensor<double>(Shape{2, 7, 5, 3}, 9);
        const ConvParams params{2, 1, padding};
        Tensor<double> depthwise(cpu::depthwise_conv2d_output_shape(x.shape(), Shape{3, 3, 3, 1}, params));
        cpu::depthwise_conv2d_forward(x, parameter(conv, "depthwise_kernel").value, nullptr, params, depthwise);
        Tensor<double> expected(cpu::conv2d_output_shape(depthwise.shape(), Shape{1, 1, 3, 4}, ConvParams{}));
        cpu::conv2d_forward(depthwise, parameter(conv, "pointwise_kernel").value, &parameter(conv, "bias").value,
                            ConvParams{}, expected);
        cpu::relu_forward(expected, expected);
        const Tensor<double> y = conv.forward(x, Context{});
        REQUIRE(y.shape() == expected.shape());
        CHECK(max_abs_diff(y, expected) < 1e-14);
        CHECK(max_abs(y) > 0);
    }
}

TEST_CASE("SeparableConv2D gradients match finite differences", "[nn][separable_conv2d][gradcheck]") {
    for (const Padding padding : {Padding::same, Padding::valid})
        for (const Index stride : {1, 2}) {
            SeparableConv2D<double> conv(4, 3, stride, padding, ActivationFn::relu);
            conv.build(Shape{6, 5, 3});
            randomize_parameters(conv, 10);
            check_module_gradients(conv, random_tensor<double>(Shape{2, 6, 5, 3}, 11), true);
        }
    SeparableConv2D<double> no_bias(3, {2, 3}, 1, Padding::same, ActivationFn::linear, false);
    no_bias.build(Shape{4, 4, 2});
    randomize_parameters(no_bias, 12);
    check_module_gradients(no_bias, random_tensor<double>(Shape{1, 4, 4, 2}, 13), false);
}

TEST_CASE("a frozen SeparableConv2D computes no weight gradients; buffers are reused", "[nn][separable_conv2d]") {
    SeparableConv2D<double> conv(4, 3, 1, Padding::same, ActivationFn::relu);
    conv.build(Shape{5, 5, 3});
    randomize_parameters(conv, 14);
    const auto x = random_tensor<double>(Shape{2, 5, 5, 3}, 15);
    check_frozen(conv, x);
    check_buffers_reused(conv, x, true);
}

TEST_CASE("SeparableConv2D rejects bad arguments and inputs, naming the layer and shapes",
          "[nn][separable_conv2d][errors]") {
    CHECK_THROWS_WITH(SeparableConv2D<float>(0, 3),
                      Catch::Contains("SeparableConv2D: filters must be positive, got 0"));
    CHECK_THROWS_WITH(SeparableConv2D<float>(2, {0, 3}),
                      Catch::Contains("SeparableConv2D: kernel_size must be positive, got 0x3"));
    CHECK_THROWS_WITH(SeparableConv2D<float>(2, 3, -1), Catch::Contains("SeparableConv2D: strides must be positive"));
    SeparableConv2D<float> conv(8, 3, 1, Padding::same, ActivationFn::relu, true, "sep");
    CHECK_THROWS_WITH(conv.build(Shape{10, 10, 0}),
                      Catch::Contains("SeparableConv2D 'sep': input (10, 10, 0) has an empty axis"));
    CHECK_THROWS_WITH(
        conv.build(Shape{100}),
        Catch::Contains("SeparableConv2D 'sep': input must be an image (height, width, channels), got (100)"));
    conv.build(Shape{10, 10, 3});
    CHECK_THROWS_WITH(conv.forward(Tensor<float>(Shape{2, 10, 9, 3}), Context{}),
                      Catch::Contains("SeparableConv2D 'sep': input has shape (2, 10, 9, 3), expected (N, 10, 10, 3)"));
}

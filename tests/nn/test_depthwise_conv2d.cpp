// DepthwiseConv2D layer: Keras shapes, parameter names and counts,
// initialisation, forward wiring, gradients, frozen weights, buffer reuse and
// error messages.

#include <bcnn/nn/depthwise_conv2d.hpp>
#include <catch2/catch.hpp>

#include "nn/layer_checks.hpp"
#include "support/layer_gradcheck.hpp"

using namespace bcnn;
using namespace bcnn::nn;
using namespace bcnn::testing;

TEST_CASE("DepthwiseConv2D builds Keras-shaped parameters", "[nn][depthwise_conv2d]") {
    DepthwiseConv2D<float> conv(3, 1, Padding::same, 2);
    CHECK(std::string(conv.type()) == "DepthwiseConv2D");
    CHECK(std::string(conv.default_name()) == "depthwise_conv2d");
    CHECK(conv.build(Shape{10, 9, 16}) == Shape{10, 9, 32});
    CHECK(parameter_names(conv) == std::vector<std::string>{"depthwise_kernel", "bias"});
    CHECK(parameter(conv, "depthwise_kernel").value.shape() == Shape{3, 3, 16, 2});
    CHECK(parameter(conv, "bias").value.shape() == Shape{32});
    CHECK(conv.count_params() == 3 * 3 * 16 * 2 + 32);

    DepthwiseConv2D<float> strided({3, 5}, 2, Padding::valid, 1, ActivationFn::relu, false);
    CHECK(strided.build(Shape{9, 9, 4}) == Shape{4, 3, 4});
    CHECK(strided.count_params() == 3 * 5 * 4);
}

TEST_CASE("DepthwiseConv2D initialises glorot-uniform with Keras' fans for its kernel shape",
          "[nn][depthwise_conv2d]") {
    DepthwiseConv2D<float> conv(3, 1, Padding::same, 3);
    conv.build(Shape{6, 6, 24});
    parameter(conv, "bias").value.fill(1.0f);
    Rng rng(2);
    conv.initialize(rng);
    // Keras reads (KH, KW, C, M) like any kernel: fan_in = KH*KW*C, fan_out = KH*KW*M.
    check_glorot_uniform(parameter(conv, "depthwise_kernel").value, 9 * 24, 9 * 3);
    CHECK(max_abs(parameter(conv, "bias").value) == 0.0);
}

TEST_CASE("DepthwiseConv2D forward is the depthwise kernel with its strides, padding, bias and activation",
          "[nn][depthwise_conv2d]") {
    for (const Padding padding : {Padding::same, Padding::valid}) {
        DepthwiseConv2D<double> conv({3, 2}, {1, 2}, padding, 2, ActivationFn::relu);
        conv.build(Shape{5, 7, 3});
        randomize_parameters(conv, 3);
        const auto x = random_tensor<double>(Shape{2, 5, 7, 3}, 4);
        const ConvParams params{1, 2, padding};
        Tensor<double> expected(cpu::depthwise_conv2d_output_shape(x.shape(), Shape{3, 2, 3, 2}, params));
        cpu::depthwise_conv2d_forward(x, parameter(conv, "depthwise_kernel").value, &parameter(conv, "bias").value,
                                      params, expected);
        cpu::relu_forward(expected, expected);
        const Tensor<double> y = conv.forward(x, Context{});
        REQUIRE(y.shape() == expected.shape());
        CHECK(max_abs_diff(y, expected) == 0.0);
        CHECK(max_abs(y) > 0);
    }
}

TEST_CASE("DepthwiseConv2D gradients match finite differences", "[nn][depthwise_conv2d][gradcheck]") {
    for (const Padding padding : {Padding::same, Padding::valid})
        for (const Index multiplier : {1, 2}) {
            DepthwiseConv2D<double> conv(3, 2, padding, multiplier, ActivationFn::relu);
            conv.build(Shape{6, 5, 3});
            randomize_parameters(conv, 5);
            check_module_gradients(conv, random_tensor<double>(Shape{2, 6, 5, 3}, 6), true);
        }
}

TEST_CASE("a frozen DepthwiseConv2D computes no weight gradients; buffers are reused", "[nn][depthwise_conv2d]") {
    DepthwiseConv2D<double> conv(3, 1, Padding::same, 2, ActivationFn::relu);
    conv.build(Shape{5, 4, 3});
    randomize_parameters(conv, 7);
    const auto x = random_tensor<double>(Shape{2, 5, 4, 3}, 8);
    check_frozen(conv, x);
    check_buffers_reused(conv, x, true);
}

TEST_CASE("DepthwiseConv2D rejects bad arguments and inputs, naming the layer and shapes",
          "[nn][depthwise_conv2d][errors]") {
    CHECK_THROWS_WITH(DepthwiseConv2D<float>(0),
                      Catch::Contains("DepthwiseConv2D: kernel_size must be positive, got 0x0"));
    CHECK_THROWS_WITH(DepthwiseConv2D<float>(3, 0),
                      Catch::Contains("DepthwiseConv2D: strides must be positive, got 0x0"));
    CHECK_THROWS_WITH(DepthwiseConv2D<float>(3, 1, Padding::same, 0),
                      Catch::Contains("DepthwiseConv2D: depth_multiplier must be positive, got 0"));
    DepthwiseConv2D<float> conv(3, 1, Padding::valid, 1, ActivationFn::linear, true, "dw");
    CHECK_THROWS_WITH(
        conv.build(Shape{4, 4}),
        Catch::Contains("DepthwiseConv2D 'dw': input must be an image (height, width, channels), got (4, 4)"));
    CHECK(conv.build(Shape{4, 4, 2}) == Shape{2, 2, 2});
    CHECK_THROWS_WITH(conv.forward(Tensor<float>(Shape{1, 4, 4, 3}), Context{}),
                      Catch::Contains("DepthwiseConv2D 'dw': input has shape (1, 4, 4, 3), expected (N, 4, 4, 2)"));
}

// flatten: H, W, C order, views sharing storage, strided views rejected.

#include <catch2/catch.hpp>

#include <bcnn/kernels/cpu/flatten.hpp>

#include "support/random.hpp"

using namespace bcnn;
using bcnn::testing::random_tensor;

TEST_CASE("flatten orders features as H, W, C and shares storage", "[kernels][flatten]") {
    const auto x = random_tensor<double>(Shape{3, 4, 5, 2}, 1);
    const Tensor<double> flat = cpu::flatten(x);
    REQUIRE(flat.shape() == Shape{3, 40});
    for (Index n = 0; n < 3; ++n)
        for (Index h = 0; h < 4; ++h)
            for (Index w = 0; w < 5; ++w)
                for (Index c = 0; c < 2; ++c) CHECK(flat(n, (h * 5 + w) * 2 + c) == x(n, h, w, c));
    flat(1, 17) = 123.0;  // a view: the write shows in x
    CHECK(x(1, 1, 3, 1) == 123.0);
}

TEST_CASE("flatten_output_shape handles any rank with a batch axis", "[kernels][flatten]") {
    CHECK(cpu::flatten_output_shape(Shape{32, 7, 7, 512}) == Shape{32, 25088});
    CHECK(cpu::flatten_output_shape(Shape{4, 10}) == Shape{4, 10});
    CHECK(cpu::flatten_output_shape(Shape{2, 3, 0}) == Shape{2, 0});
}

TEST_CASE("flatten_backward restores the input shape as a view", "[kernels][flatten]") {
    const Shape original{2, 3, 3, 4};
    const auto dy = random_tensor<float>(Shape{2, 36}, 2);
    const Tensor<float> dx = cpu::flatten_backward(dy, original);
    REQUIRE(dx.shape() == original);
    CHECK(dx.data() == dy.data());
    for (Index n = 0; n < 2; ++n)
        for (Index h = 0; h < 3; ++h)
            for (Index w = 0; w < 3; ++w)
                for (Index c = 0; c < 4; ++c) CHECK(dx(n, h, w, c) == dy(n, (h * 3 + w) * 4 + c));
}

TEST_CASE("flatten rejects strided views and mismatched gradients", "[kernels][flatten][errors]") {
    const Tensor<float> wide(Shape{2, 3, 3, 8});
    CHECK_THROWS_WITH(cpu::flatten(wide.channels(0, 4)),
                      Catch::Contains("flatten: input of shape (2, 3, 3, 4) with strides (72, 24, 8, 1) is a strided "
                                      "view; clone() it first"));
    CHECK(cpu::flatten(wide.channels(0, 4).clone()).shape() == Shape{2, 36});
    CHECK_THROWS_WITH(cpu::flatten(Tensor<float>(Shape{5})),
                      Catch::Contains("flatten: input must have a batch axis and at least one more, got shape (5)"));
    const Tensor<float> dy(Shape{2, 35});
    CHECK_THROWS_WITH(cpu::flatten_backward(dy, Shape{2, 3, 3, 4}),
                      Catch::Contains("flatten_backward: output gradient has shape (2, 35), expected (2, 36) for "
                                      "input shape (2, 3, 3, 4)"));
    const Tensor<float> dy_wide(Shape{2, 40});
    CHECK_THROWS_WITH(cpu::flatten_backward(dy_wide.channels(0, 36), Shape{2, 3, 3, 4}),
                      Catch::Contains("flatten_backward: output gradient of shape (2, 36) with strides (40, 1) is a "
                                      "strided view"));
}

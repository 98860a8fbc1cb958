// Zero padding on the GPU against the CPU kernel, bit for bit (pure copies):
// through the backend dispatch, odd sizes and asymmetric padding, channel
// slices with untouched neighbours, outputs poisoned with NaN; and errors.

#include <catch2/catch.hpp>

#include <bcnn/backend/zero_pad.hpp>

#include "cuda/compare.hpp"
#include "support/random.hpp"

using namespace bcnn;
using bcnn::testing::first_bit_difference;
using bcnn::testing::fresh_seed;
using bcnn::testing::poisoned_on_device;
using bcnn::testing::random_tensor;

namespace {

struct Case {
    Shape x;
    cpu::Padding2D pad;
};

const Case kCases[] = {{Shape{1, 1, 1, 1}, {1, 1, 1, 1}},
                       {Shape{2, 5, 7, 3}, {0, 1, 2, 0}},
                       {Shape{3, 9, 4, 17}, {3, 3, 3, 3}},
                       {Shape{2, 6, 6, 64}, {0, 0, 0, 0}}};

}  // namespace

TEMPLATE_TEST_CASE("zero_pad2d on cuda equals the cpu kernel bit for bit", "[cuda][zero_pad]", float, double) {
    const std::uint64_t seed = fresh_seed();
    CAPTURE(seed);
    for (const Case& c : kCases) {
        CAPTURE(c.x, c.pad);
        const Tensor<TestType> x = random_tensor<TestType>(c.x, seed);
        const Shape y_shape = cpu::zero_pad2d_output_shape(c.x, c.pad);
        Tensor<TestType> expected(y_shape);
        backend::zero_pad2d_forward(x, c.pad, expected);
        Tensor<TestType> y = poisoned_on_device<TestType>(y_shape);
        backend::zero_pad2d_forward(to_device(x, Device::cuda), c.pad, y);
        CHECK(first_bit_difference(y, expected) == "");

        const Tensor<TestType> dy = random_tensor<TestType>(y_shape, seed + 1);
        Tensor<TestType> expected_dx(c.x);
        backend::zero_pad2d_backward(dy, c.pad, expected_dx);
        Tensor<TestType> dx = poisoned_on_device<TestType>(c.x);
        backend::zero_pad2d_backward(to_device(dy, Device::cuda), c.pad, dx);
        CHECK(first_bit_difference(dx, expected_dx) == "");
    }
}

TEST_CASE("zero_pad2d on cuda reads and writes channel slices, leaving the neighbours alone", "[cuda][zero_pad]") {
    const std::uint64_t seed = fresh_seed();
    CAPTURE(seed);
    const cpu::Padding2D pad{1, 2, 2, 1};
    const Tensor<float> wide_x = random_tensor<float>(Shape{2, 4, 5, 9}, seed);
    const Tensor<float> x = wide_x.channels(2, 6);
    Tensor<float> expected(Shape{2, 7, 8, 4});
    cpu::zero_pad2d_forward(x, pad, expected);
    const Tensor<float> wide_y_host = random_tensor<float>(Shape{2, 7, 8, 7}, seed + 1);
    Tensor<float> wide_y = to_device(wide_y_host, Device::cuda);
    Tensor<float> y = wide_y.channels(1, 5);
    backend::zero_pad2d_forward(to_device(wide_x, Device::cuda).channels(2, 6), pad, y);
    const Tensor<float> back = to_device(wide_y, Device::cpu);
    CHECK(first_bit_difference(back.channels(1, 5).clone(), expected) == "");
    CHECK(first_bit_difference(back.channels(0, 1).clone(), wide_y_host.channels(0, 1).clone()) == "");
    CHECK(first_bit_difference(back.channels(5, 7).clone(), wide_y_host.channels(5, 7).clone()) == "");
}

TEST_CASE("zero_pad2d on cuda names wrong shapes and devices", "[cuda][zero_pad]") {
    const cpu::Padding2D pad{1, 1, 1, 1};
    Tensor<float> y = poisoned_on_device<float>(Shape{1, 4, 4, 2});
    CHECK_THROWS_WITH(cuda::zero_pad2d_forward(to_device(Tensor<float>(Shape{1, 3, 3, 2}), Device::cuda), pad, y),
                      Catch::Contains("cuda::zero_pad2d_forward: output has shape (1, 4, 4, 2), expected (1, 5, 5, 2)"));
    CHECK_THROWS_WITH(cuda::zero_pad2d_forward(Tensor<float>(Shape{1, 2, 2, 2}), pad, y),
                      Catch::Contains("cuda::zero_pad2d_forward: input of shape (1, 2, 2, 2) is on cpu"));
}

// y += x on the GPU against cpu::add_inplace, bit for bit: through the backend
// dispatch, contiguous tensors and channel slices (DenseNet's gradient
// prefix), neighbours untouched; and errors.

#include <catch2/catch.hpp>

#include <bcnn/backend/elementwise.hpp>

#include "cuda/compare.hpp"
#include "support/random.hpp"

using namespace bcnn;
using bcnn::testing::first_bit_difference;
using bcnn::testing::fresh_seed;
using bcnn::testing::random_tensor;

TEMPLATE_TEST_CASE("add_inplace on cuda equals the cpu kernel bit for bit", "[cuda][add_inplace]", float, double) {
    const std::uint64_t seed = fresh_seed();
    CAPTURE(seed);
    for (const Shape& shape : {Shape{1}, Shape{7, 3}, Shape{2, 9, 11, 5}, Shape{3, 70000}}) {
        CAPTURE(shape);
        const Tensor<TestType> y0 = random_tensor<TestType>(shape, seed);
        const Tensor<TestType> x = random_tensor<TestType>(shape, seed + 1);
        Tensor<TestType> expected = y0.clone();
        cpu::add_inplace(expected, x);
        Tensor<TestType> y = to_device(y0, Device::cuda);
        backend::add_inplace(y, to_device(x, Device::cuda));
        CHECK(first_bit_difference(y, expected) == "");
    }
}

TEST_CASE("add_inplace on cuda accumulates into a channel slice only", "[cuda][add_inplace]") {
    const std::uint64_t seed = fresh_seed();
    CAPTURE(seed);
    const Tensor<float> wide_host = random_tensor<float>(Shape{2, 3, 4, 10}, seed);
    const Tensor<float> wide_x = random_tensor<float>(Shape{2, 3, 4, 6}, seed + 1);
    Tensor<float> expected = wide_host.clone();
    Tensor<float> expected_prefix = expected.channels(0, 4);
    cpu::add_inplace(expected_prefix, wide_x.channels(1, 5));
    Tensor<float> wide = to_device(wide_host, Device::cuda);
    Tensor<float> prefix = wide.channels(0, 4);
    backend::add_inplace(prefix, to_device(wide_x, Device::cuda).channels(1, 5));
    CHECK(first_bit_difference(wide, expected) == "");
    // The DenseBlock's copy into a slice, also on cuda.
    Tensor<float> part = random_tensor<float>(Shape{2, 3, 4, 3}, seed + 2);
    backend::copy(to_device(part, Device::cuda), wide.channels(7, 10));
    CHECK(first_bit_difference(to_device(wide, Device::cpu).channels(7, 10).clone(), part) == "");
}

TEST_CASE("add_inplace on cuda names wrong shapes and devices", "[cuda][add_inplace]") {
    Tensor<float> y = to_device(Tensor<float>(Shape{2, 3}), Device::cuda);
    CHECK_THROWS_WITH(cuda::add_inplace(y, to_device(Tensor<float>(Shape{3, 2}), Device::cuda)),
                      Catch::Contains("cuda::add_inplace: addend has shape (3, 2), expected (2, 3)"));
    CHECK_THROWS_WITH(backend::add_inplace(y, Tensor<float>(Shape{2, 3})),
                      Catch::Contains("add_inplace: accumulator is on cuda but addend is on cpu"));
}

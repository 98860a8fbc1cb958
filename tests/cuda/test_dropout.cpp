// Dropout on the GPU against the CPU kernel: for the same Rng (seed, counter)
// the mask, y and dx must equal the CPU's bit for bit (the device runs the
// same Philox4x32-10), and both advance the counter by numel(). Shapes:
// odd sizes, a long contiguous tensor, channel slices with more rows than a
// grid dimension (65535), rates 0 and near 1, an output aliasing its input;
// and argument errors. Seeds and counters are fresh on every run (printed
// with any failure); outputs are NaN-poisoned before the GPU writes them.

#include <catch2/catch.hpp>

#include <bcnn/backend/dropout.hpp>

#include "cuda/compare.hpp"
#include "support/random.hpp"

using namespace bcnn;
using bcnn::testing::first_bit_difference;
using bcnn::testing::fresh_seed;
using bcnn::testing::poisoned_on_device;
using bcnn::testing::random_tensor;

namespace {

// The CPU kernel's mask, y and dx for x, dy at (seed, counter).
template <typename T>
struct Reference {
    Tensor<T> mask, y, dx;
    std::uint64_t counter_after;
    Reference(const Tensor<T>& x, const Tensor<T>& dy, T rate, std::uint64_t seed, std::uint64_t counter)
        : mask(x.shape()), y(x.shape()), dx(x.shape()) {
        Rng rng(seed, counter);
        cpu::dropout_forward(x, rate, rng, mask, y);
        cpu::dropout_backward(dy, mask, dx);
        counter_after = rng.counter();
    }
};

}  // namespace

TEMPLATE_TEST_CASE("dropout on cuda draws the cpu kernel's mask bit for bit", "[cuda][dropout]", float, double) {
    const std::uint64_t seed = fresh_seed(), counter = fresh_seed() >> 8;
    const Shape shapes[] = {Shape{7}, Shape{3, 5, 7, 11}, Shape{1 << 20}, Shape{2, 1, 1, 1}, Shape{0, 4}};
    const TestType rates[] = {TestType(0.5), TestType(0), TestType(0.1), TestType(0.999)};
    for (const Shape& shape : shapes)
        for (const TestType rate : rates) {
            CAPTURE(seed, counter, shape, rate);
            const Tensor<TestType> x_cpu = random_tensor<TestType>(shape, seed + 1);
            const Tensor<TestType> dy_cpu = random_tensor<TestType>(shape, seed + 2);
            const Reference<TestType> expected(x_cpu, dy_cpu, rate, seed, counter);
            const Tensor<TestType> x = to_device(x_cpu, Device::cuda), dy = to_device(dy_cpu, Device::cuda);
            Tensor<TestType> mask = poisoned_on_device<TestType>(shape), y = poisoned_on_device<TestType>(shape),
                             dx = poisoned_on_device<TestType>(shape);
            Rng rng(seed, counter);
            backend::dropout_forward(x, rate, rng, mask, y);
            CHECK(rng.counter() == expected.counter_after);
            CHECK(first_bit_difference(mask, expected.mask) == "");
            CHECK(first_bit_difference(y, expected.y) == "");
            backend::dropout_backward(dy, mask, dx);
            CHECK(first_bit_difference(dx, expected.dx) == "");
        }
}

TEST_CASE("dropout on cuda reads and writes channel slices, in place", "[cuda][dropout]") {
    const std::uint64_t seed = fresh_seed(), counter = fresh_seed() >> 8;
    CAPTURE(seed, counter);
    // 70000 pixel rows of 3 channels: more rows than one grid dimension holds.
    const Shape shape{70000, 3};
    const Tensor<float> x_cpu = random_tensor<float>(shape, seed + 1), dy_cpu = random_tensor<float>(shape, seed + 2);
    const Reference<float> expected(x_cpu, dy_cpu, 0.3f, seed, counter);

    // x at channels 1..4 of a 5-wide buffer, overwritten in place by y; the mask
    // at 2..5 of a 6-wide buffer; dy at 0..3 of a 4-wide buffer, overwritten by dx.
    Tensor<float> xy_wide_cpu(Shape{70000, 5}, -7.f), dy_wide_cpu(Shape{70000, 4}, -7.f);
    xy_wide_cpu.channels(1, 4).copy_from(x_cpu);
    dy_wide_cpu.channels(0, 3).copy_from(dy_cpu);
    Tensor<float> xy_wide = to_device(xy_wide_cpu, Device::cuda), dy_wide = to_device(dy_wide_cpu, Device::cuda);
    Tensor<float> mask_wide = to_device(Tensor<float>(Shape{70000, 6}, -7.f), Device::cuda);
    Tensor<float> xy = xy_wide.channels(1, 4), mask = mask_wide.channels(2, 5), dydx = dy_wide.channels(0, 3);
    Rng rng(seed, counter);
    cuda::dropout_forward(xy, 0.3f, rng, mask, xy);
    CHECK(first_bit_difference(mask, expected.mask) == "");
    CHECK(first_bit_difference(xy, expected.y) == "");
    cuda::dropout_backward(dydx, mask, dydx);
    CHECK(first_bit_difference(dydx, expected.dx) == "");

    // Channels outside the views are untouched.
    Index touched = 0;
    const Tensor<float> xy_host = to_device(xy_wide, Device::cpu), mask_host = to_device(mask_wide, Device::cpu),
                        dy_host = to_device(dy_wide, Device::cpu);
    for (Index r = 0; r < 70000; ++r) {
        touched += (xy_host(r, 0) != -7.f) + (xy_host(r, 4) != -7.f);
        touched += (mask_host(r, 0) != -7.f) + (mask_host(r, 1) != -7.f) + (mask_host(r, 5) != -7.f);
        touched += dy_host(r, 3) != -7.f;
    }
    CHECK(touched == 0);
}

TEST_CASE("dropout on cuda rejects bad rates, cpu tensors and wrong shapes", "[cuda][dropout]") {
    const Tensor<float> x = to_device(random_tensor<float>(Shape{2, 3}, 1), Device::cuda);
    Tensor<float> mask = to_device(Tensor<float>(Shape{2, 3}), Device::cuda);
    Tensor<float> y = to_device(Tensor<float>(Shape{2, 3}), Device::cuda);
    Rng rng(5);
    CHECK_THROWS_WITH(cuda::dropout_forward(x, 1.f, rng, mask, y),
                      Catch::Contains("cuda::dropout_forward: rate 1 is outside [0, 1)"));
    CHECK_THROWS_WITH(cuda::dropout_forward(x, -0.5f, rng, mask, y),
                      Catch::Contains("cuda::dropout_forward: rate -0.5 is outside [0, 1)"));
    CHECK(rng.counter() == 0);  // nothing reserved by a refused call
    const Tensor<float> x_cpu(Shape{2, 3});
    CHECK_THROWS_WITH(cuda::dropout_forward(x_cpu, 0.5f, rng, mask, y),
                      Catch::Contains("cuda::dropout_forward: input of shape (2, 3) is on cpu"));
    Tensor<float> wrong = to_device(Tensor<float>(Shape{3, 2}), Device::cuda);
    CHECK_THROWS_WITH(cuda::dropout_forward(x, 0.5f, rng, wrong, y),
                      Catch::Contains("cuda::dropout_forward: mask has shape (3, 2), expected (2, 3)"));
    CHECK_THROWS_WITH(cuda::dropout_backward(x, mask, wrong),
                      Catch::Contains("cuda::dropout_backward: input gradient has shape (3, 2), expected (2, 3)"));
    Tensor<float> mask_cpu(Shape{2, 3});
    CHECK_THROWS_WITH(backend::dropout_forward(x, 0.5f, rng, mask_cpu, y),
                      Catch::Contains("dropout_forward: input is on cuda but mask is on cpu"));
}

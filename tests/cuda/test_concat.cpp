// Channel concatenation on the GPU against the CPU kernel: a copy, so the
// results must equal the CPU's bit for bit. NHWC and 2-D inputs of several
// widths (one channel, many), inputs and outputs that are channel slices of
// wider buffers (neighbouring channels untouched), an empty batch; and
// argument errors. Values are fresh on every run (the seed is printed with
// any failure); outputs are NaN-poisoned before the GPU writes them.

#include <catch2/catch.hpp>

#include <bcnn/backend/concat.hpp>

#include "cuda/compare.hpp"
#include "support/random.hpp"

using namespace bcnn;
using bcnn::testing::first_bit_difference;
using bcnn::testing::fresh_seed;
using bcnn::testing::poisoned_on_device;
using bcnn::testing::random_tensor;

namespace {

template <typename T>
std::vector<Tensor<T>> on_device(const std::vector<Tensor<T>>& tensors) {
    std::vector<Tensor<T>> result;
    for (const Tensor<T>& t : tensors) result.push_back(to_device(t, Device::cuda));
    return result;
}

}  // namespace

TEMPLATE_TEST_CASE("concat_channels on cuda matches the cpu kernel bit for bit", "[cuda][concat]", float, double) {
    const std::uint64_t seed = fresh_seed();
    const std::vector<std::vector<Shape>> cases = {
        {Shape{2, 5, 7, 3}, Shape{2, 5, 7, 1}, Shape{2, 5, 7, 16}},
        {Shape{3, 4}, Shape{3, 9}},
        {Shape{1, 1, 1, 1}},
        {Shape{0, 3, 3, 2}, Shape{0, 3, 3, 5}},
    };
    for (const std::vector<Shape>& shapes : cases) {
        CAPTURE(seed, shapes.size(), shapes[0]);
        std::vector<Tensor<TestType>> inputs, d_inputs_cpu;
        for (std::size_t i = 0; i < shapes.size(); ++i) {
            inputs.push_back(random_tensor<TestType>(shapes[i], seed + i));
            d_inputs_cpu.emplace_back(shapes[i]);
        }
        const Shape wide = cpu::concat_channels_output_shape(shapes);
        Tensor<TestType> expected_y(wide);
        cpu::concat_channels_forward(inputs, expected_y);
        const Tensor<TestType> dy_cpu = random_tensor<TestType>(wide, seed + 100);
        cpu::concat_channels_backward(dy_cpu, d_inputs_cpu);

        Tensor<TestType> y = poisoned_on_device<TestType>(wide);
        backend::concat_channels_forward(on_device(inputs), y);
        CHECK(first_bit_difference(y, expected_y) == "");
        std::vector<Tensor<TestType>> d_inputs;
        for (const Shape& shape : shapes) d_inputs.push_back(poisoned_on_device<TestType>(shape));
        backend::concat_channels_backward(to_device(dy_cpu, Device::cuda), d_inputs);
        for (std::size_t i = 0; i < shapes.size(); ++i) CHECK(first_bit_difference(d_inputs[i], d_inputs_cpu[i]) == "");
    }
}

TEST_CASE("concat_channels on cuda reads and writes channel slices of wider device buffers", "[cuda][concat]") {
    const std::uint64_t seed = fresh_seed();
    CAPTURE(seed);
    // Input 0: channels 1..4 of a 6-wide buffer; input 1 contiguous (2 channels);
    // y: channels 2..7 of a 9-wide buffer pre-filled with -7.
    const Tensor<float> a_wide = random_tensor<float>(Shape{2, 3, 5, 6}, seed);
    const Tensor<float> b = random_tensor<float>(Shape{2, 3, 5, 2}, seed + 1);
    const std::vector<Tensor<float>> inputs_cpu = {a_wide.channels(1, 4), b};
    Tensor<float> expected(Shape{2, 3, 5, 5});
    cpu::concat_channels_forward(inputs_cpu, expected);

    const std::vector<Tensor<float>> inputs = {to_device(a_wide, Device::cuda).channels(1, 4),
                                               to_device(b, Device::cuda)};
    Tensor<float> y_wide = to_device(Tensor<float>(Shape{2, 3, 5, 9}, -7.f), Device::cuda);
    Tensor<float> y = y_wide.channels(2, 7);
    cuda::concat_channels_forward(inputs, y);
    CHECK(first_bit_difference(y, expected) == "");

    // Backward from the slice y into slices of a -7-filled buffer.
    Tensor<float> d_wide = to_device(Tensor<float>(Shape{2, 3, 5, 8}, -7.f), Device::cuda);
    std::vector<Tensor<float>> d_inputs = {d_wide.channels(0, 3), d_wide.channels(5, 7)};
    cuda::concat_channels_backward(y, d_inputs);
    CHECK(first_bit_difference(d_inputs[0], inputs_cpu[0]) == "");
    CHECK(first_bit_difference(d_inputs[1], b) == "");

    const std::vector<float> y_all = to_device(y_wide, Device::cpu).to_vector();
    const std::vector<float> d_all = to_device(d_wide, Device::cpu).to_vector();
    Index touched = 0;
    for (std::size_t i = 0; i < y_all.size(); ++i) {
        const std::size_t channel = i % 9;
        touched += (channel < 2 || channel >= 7) && y_all[i] != -7.f;
    }
    for (std::size_t i = 0; i < d_all.size(); ++i) {
        const std::size_t channel = i % 8;
        touched += (channel == 3 || channel == 4 || channel == 7) && d_all[i] != -7.f;
    }
    CHECK(touched == 0);
}

TEST_CASE("concat_channels on cuda rejects mismatched shapes and cpu tensors", "[cuda][concat]") {
    const Tensor<float> a = to_device(Tensor<float>(Shape{2, 3, 3, 4}), Device::cuda);
    const Tensor<float> b = to_device(Tensor<float>(Shape{2, 3, 4, 1}), Device::cuda);
    Tensor<float> y = to_device(Tensor<float>(Shape{2, 3, 3, 5}), Device::cuda);
    CHECK_THROWS_WITH(cuda::concat_channels_forward(std::vector<Tensor<float>>{a, b}, y),
                      Catch::Contains("cuda::concat_channels_forward: input 1 has shape (2, 3, 4, 1), which does not "
                                      "match input 0 (2, 3, 3, 4) on all axes but the last"));
    Tensor<float> y_wrong = to_device(Tensor<float>(Shape{2, 3, 3, 6}), Device::cuda);
    CHECK_THROWS_WITH(cuda::concat_channels_forward(std::vector<Tensor<float>>{a, a.channels(0, 1)}, y_wrong),
                      Catch::Contains("cuda::concat_channels_forward: output has shape (2, 3, 3, 6), expected "
                                      "(2, 3, 3, 5)"));
    CHECK_THROWS_WITH(cuda::concat_channels_forward(std::vector<Tensor<float>>{}, y),
                      Catch::Contains("cuda::concat_channels_forward: no inputs to concatenate"));
    const Tensor<float> a_cpu(Shape{2, 3, 3, 4});
    CHECK_THROWS_WITH(cuda::concat_channels_forward(std::vector<Tensor<float>>{a, a_cpu}, y_wrong),
                      Catch::Contains("cuda::concat_channels_forward: input 1 of shape (2, 3, 3, 4) is on cpu"));
    std::vector<Tensor<float>> d_inputs = {to_device(Tensor<float>(Shape{2, 3, 3, 2}), Device::cuda)};
    CHECK_THROWS_WITH(cuda::concat_channels_backward(y, d_inputs),
                      Catch::Contains("cuda::concat_channels_backward: output gradient has shape (2, 3, 3, 5), "
                                      "expected (2, 3, 3, 2)"));
    CHECK_THROWS_WITH(backend::concat_channels_forward(std::vector<Tensor<float>>{a, a_cpu}, y),
                      Catch::Contains("concat_channels_forward: output is on cuda but input 1 is on cpu"));
}

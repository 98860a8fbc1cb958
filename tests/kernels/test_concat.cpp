// concat_channels kernel: forward against a reference loop, backward by finite differences, views.

#include <catch2/catch.hpp>

#include <bcnn/kernels/cpu/concat.hpp>

#include "support/gradcheck.hpp"
#include "support/random.hpp"

using namespace bcnn;
using bcnn::testing::random_tensor;

namespace {

// y[..][offset_i + c] = inputs[i][..][c], walking the leading axes as one.
Tensor<double> concat_reference(const std::vector<Tensor<double>>& inputs) {
    Shape shape = inputs[0].shape();
    const int last = shape.rank() - 1;
    shape[last] = 0;
    for (const auto& input : inputs) shape[last] += input.dim(-1);
    Tensor<double> y(shape);
    const Index positions = shape.numel() / shape[last];
    Index offset = 0;
    for (const auto& input : inputs) {
        const std::vector<double> values = input.to_vector();
        const Index channels = input.dim(-1);
        for (Index p = 0; p < positions; ++p)
            for (Index c = 0; c < channels; ++c) y.data()[p * shape[last] + offset + c] = values[p * channels + c];
        offset += channels;
    }
    return y;
}

}  // namespace

TEST_CASE("concat_channels_forward matches a reference loop", "[kernels][concat]") {
    const std::vector<std::vector<Shape>> cases = {
        {Shape{2, 3, 5, 2}, Shape{2, 3, 5, 1}, Shape{2, 3, 5, 4}},
        {Shape{7, 3}, Shape{7, 5}},
        {Shape{1, 1, 1, 1}},
        {Shape{3, 4}, Shape{3, 0}, Shape{3, 2}},  // an empty part is allowed
    };
    std::uint64_t seed = 1;
    for (const auto& shapes : cases) {
        std::vector<Tensor<double>> inputs;
        for (const Shape& shape : shapes) inputs.push_back(random_tensor<double>(shape, seed++));
        const auto expected = concat_reference(inputs);
        CHECK(cpu::concat_channels_output_shape(shapes) == expected.shape());
        Tensor<double> y(expected.shape(), -1.0);
        cpu::concat_channels_forward(inputs, y);
        CHECK(testing::max_abs_diff(y, expected) == 0);
    }
}

TEST_CASE("concat_channels in float copies values exactly", "[kernels][concat]") {
    const std::vector<Tensor<float>> inputs = {random_tensor<float>(Shape{3, 2, 2, 3}, 4),
                                               random_tensor<float>(Shape{3, 2, 2, 2}, 5)};
    Tensor<float> y(Shape{3, 2, 2, 5});
    cpu::concat_channels_forward(inputs, y);
    for (Index n = 0; n < 3; ++n)
        for (Index h = 0; h < 2; ++h)
            for (Index w = 0; w < 2; ++w)
                for (Index c = 0; c < 5; ++c)
                    CHECK(y(n, h, w, c) == (c < 3 ? inputs[0](n, h, w, c) : inputs[1](n, h, w, c - 3)));
}

TEST_CASE("concat_channels_backward matches finite differences", "[kernels][concat][gradcheck]") {
    std::vector<Tensor<double>> inputs = {random_tensor<double>(Shape{2, 3, 2, 2}, 6),
                                          random_tensor<double>(Shape{2, 3, 2, 3}, 7),
                                          random_tensor<double>(Shape{2, 3, 2, 1}, 8)};
    const auto upstream = random_tensor<double>(Shape{2, 3, 2, 6}, 9);
    auto forward = [&] {
        Tensor<double> y(upstream.shape());
        cpu::concat_channels_forward(inputs, y);
        return y;
    };
    std::vector<Tensor<double>> d_inputs;
    for (const auto& input : inputs) d_inputs.emplace_back(input.shape());
    cpu::concat_channels_backward(upstream, d_inputs);
    for (std::size_t i = 0; i < inputs.size(); ++i)
        CHECK(testing::relative_error(d_inputs[i], testing::numerical_gradient(inputs[i], forward, upstream)) < 1e-6);
}

TEST_CASE("concat_channels reads and writes channel slices, leaving neighbours alone", "[kernels][concat]") {
    const auto source = random_tensor<double>(Shape{2, 3, 3, 8}, 10);
    const std::vector<Tensor<double>> inputs = {source.channels(5, 7), source.channels(0, 3)};
    Tensor<double> y_wide(Shape{2, 3, 3, 9}, 4.0);
    Tensor<double> y = y_wide.channels(2, 7);
    cpu::concat_channels_forward(inputs, y);
    for (Index n = 0; n < 2; ++n)
        for (Index h = 0; h < 3; ++h)
            for (Index w = 0; w < 3; ++w)
                for (Index c = 0; c < 9; ++c) {
                    double expected = 4.0;
                    if (c >= 2 && c < 4) expected = source(n, h, w, c - 2 + 5);
                    if (c >= 4 && c < 7) expected = source(n, h, w, c - 4);
                    CHECK(y_wide(n, h, w, c) == expected);
                }
    // Backward from the slice y into slices of another buffer.
    Tensor<double> grads(Shape{2, 3, 3, 6}, 4.0);
    std::vector<Tensor<double>> d_inputs = {grads.channels(0, 2), grads.channels(3, 6)};
    cpu::concat_channels_backward(y, d_inputs);
    for (Index n = 0; n < 2; ++n)
        for (Index h = 0; h < 3; ++h)
            for (Index w = 0; w < 3; ++w) {
                for (Index c = 0; c < 2; ++c) CHECK(grads(n, h, w, c) == source(n, h, w, c + 5));
                CHECK(grads(n, h, w, 2) == 4.0);
                for (Index c = 3; c < 6; ++c) CHECK(grads(n, h, w, c) == source(n, h, w, c - 3));
            }
}

TEST_CASE("concat_channels rejects mismatched shapes naming the input", "[kernels][concat][errors]") {
    const std::vector<Tensor<float>> inputs = {Tensor<float>(Shape{2, 3, 5, 2}), Tensor<float>(Shape{2, 3, 5, 1}),
                                               Tensor<float>(Shape{2, 4, 5, 1})};
    Tensor<float> y(Shape{2, 3, 5, 4});
    CHECK_THROWS_WITH(cpu::concat_channels_forward(inputs, y),
                      Catch::Contains("concat_channels_forward: input 2 has shape (2, 4, 5, 1), which does not match "
                                      "input 0 (2, 3, 5, 2) on all axes but the last"));
    const std::vector<Tensor<float>> two = {inputs[0], inputs[1]};
    Tensor<float> y_wide(Shape{2, 3, 5, 4});
    CHECK_THROWS_WITH(cpu::concat_channels_forward(two, y_wide),
                      Catch::Contains("concat_channels_forward: output has shape (2, 3, 5, 4), expected (2, 3, 5, 3)"));
    const std::vector<Tensor<float>> rank_mismatch = {inputs[0], Tensor<float>(Shape{2, 3, 5})};
    CHECK_THROWS_WITH(cpu::concat_channels_output_shape({rank_mismatch[0].shape(), rank_mismatch[1].shape()}),
                      Catch::Contains("input 1 has shape (2, 3, 5), which does not match input 0 (2, 3, 5, 2)"));
    const std::vector<Tensor<float>> none;
    CHECK_THROWS_WITH(cpu::concat_channels_forward(none, y), Catch::Contains("concat_channels_forward: no inputs"));
    std::vector<Tensor<float>> d_inputs = {Tensor<float>(Shape{2, 3, 5, 2}), Tensor<float>()};
    CHECK_THROWS_WITH(cpu::concat_channels_backward(y, d_inputs),
                      Catch::Contains("concat_channels_backward: input gradient 1 is an empty tensor"));
}

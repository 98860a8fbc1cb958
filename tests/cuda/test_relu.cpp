// ReLU on the GPU against the CPU kernel, bit for bit: through the backend
// dispatch, on odd sizes, on channel slices, in place; and argument errors.
// The fused bias gradient (relu_backward_bias_gradient) against the CPU's,
// summed in double on the GPU: equal up to float rounding.

#include <catch2/catch.hpp>

#include <cmath>
#include <limits>

#include <bcnn/backend/relu.hpp>

#include "cuda/compare.hpp"
#include "support/random.hpp"

using namespace bcnn;
using bcnn::testing::first_bit_difference;
using bcnn::testing::poisoned_on_device;
using bcnn::testing::random_tensor;
using bcnn::testing::relative_difference;

namespace {

// Random values in [-1, 1) with the cases a ReLU must get right sprinkled in:
// 0, -0, NaN, infinities, denormals.
template <typename T>
Tensor<T> relu_input(const Shape& shape, std::uint64_t seed) {
    Tensor<T> x = random_tensor<T>(shape, seed);
    const T specials[] = {T(0), -T(0), std::numeric_limits<T>::quiet_NaN(), std::numeric_limits<T>::infinity(),
                          -std::numeric_limits<T>::infinity(), std::numeric_limits<T>::denorm_min(),
                          -std::numeric_limits<T>::denorm_min()};
    const Index count = static_cast<Index>(sizeof(specials) / sizeof(specials[0]));
    for (Index i = 0; i < count && i * 5 < x.numel(); ++i) x.data()[i * 5] = specials[i];
    return x;
}

// Odd sizes. A contiguous tensor runs as one row; the last is longer than
// one grid row (65535 blocks of 256 threads) covers.
const Shape kShapes[] = {Shape{1}, Shape{7}, Shape{3, 5}, Shape{2, 9, 11, 3}, Shape{3, 33, 17, 65}, Shape{4099, 4097}};

}  // namespace

TEMPLATE_TEST_CASE("relu_forward on cuda equals the cpu kernel bit for bit", "[cuda][relu]", float, double) {
    std::uint64_t seed = 1;
    for (const Shape& shape : kShapes) {
        CAPTURE(shape);
        const Tensor<TestType> x = relu_input<TestType>(shape, seed++);
        Tensor<TestType> expected(shape);
        backend::relu_forward(x, expected);
        Tensor<TestType> y = poisoned_on_device<TestType>(shape);
        backend::relu_forward(to_device(x, Device::cuda), y);
        CHECK(y.device() == Device::cuda);
        CHECK(first_bit_difference(y, expected) == "");
    }
}

TEMPLATE_TEST_CASE("relu_backward on cuda equals the cpu kernel bit for bit", "[cuda][relu]", float, double) {
    std::uint64_t seed = 11;
    for (const Shape& shape : kShapes) {
        CAPTURE(shape);
        const Tensor<TestType> x = relu_input<TestType>(shape, seed++);
        Tensor<TestType> y(shape);
        cpu::relu_forward(x, y);
        const Tensor<TestType> dy = random_tensor<TestType>(shape, seed++);
        Tensor<TestType> expected(shape);
        backend::relu_backward(y, dy, expected);
        Tensor<TestType> dx = poisoned_on_device<TestType>(shape);
        backend::relu_backward(to_device(y, Device::cuda), to_device(dy, Device::cuda), dx);
        CHECK(first_bit_difference(dx, expected) == "");
    }
}

TEMPLATE_TEST_CASE("relu_backward_bias_gradient on cuda equals the cpu kernel", "[cuda][relu]", float, double) {
    std::uint64_t seed = 51;
    for (const Shape& shape : {Shape{1, 1}, Shape{7, 3}, Shape{2, 9, 11, 3}, Shape{3, 33, 17, 65}, Shape{70001, 6}}) {
        CAPTURE(shape);
        const Tensor<TestType> x = random_tensor<TestType>(shape, seed++);
        Tensor<TestType> y(shape);
        cpu::relu_forward(x, y);
        const Tensor<TestType> dy = random_tensor<TestType>(shape, seed++);
        const Shape bias_shape{shape[shape.rank() - 1]};
        Tensor<TestType> dx_expected(shape), bias_expected(bias_shape);
        backend::relu_backward_bias_gradient(y, dy, dx_expected, bias_expected);
        Tensor<TestType> dx = poisoned_on_device<TestType>(shape), d_bias = poisoned_on_device<TestType>(bias_shape);
        backend::relu_backward_bias_gradient(to_device(y, Device::cuda), to_device(dy, Device::cuda), dx, d_bias);
        CHECK(first_bit_difference(dx, dx_expected) == "");
        // The CPU sums in T, chunk by chunk; the GPU in double.
        CHECK(relative_difference(d_bias, testing::cast<double>(bias_expected)) <
              (std::is_same<TestType, float>::value ? 1e-5 : 1e-12));
    }
    // An empty batch: a zero bias gradient.
    Tensor<TestType> empty = to_device(Tensor<TestType>(Shape{0, 3}), Device::cuda);
    Tensor<TestType> d_bias = poisoned_on_device<TestType>(Shape{3});
    backend::relu_backward_bias_gradient(empty, empty, empty, d_bias);
    CHECK(first_bit_difference(d_bias, Tensor<TestType>(Shape{3}, TestType(0))) == "");
    Tensor<TestType> wrong = poisoned_on_device<TestType>(Shape{4});
    const Tensor<TestType> y = to_device(Tensor<TestType>(Shape{2, 3}), Device::cuda);
    Tensor<TestType> dx = to_device(Tensor<TestType>(Shape{2, 3}), Device::cuda);
    CHECK_THROWS_WITH(backend::relu_backward_bias_gradient(y, y, dx, wrong),
                      Catch::Contains("cuda::relu_backward_bias_gradient: bias gradient has shape (4), expected (3)"));
}

TEST_CASE("relu on cuda reads and writes channel slices of wider device buffers", "[cuda][relu]") {
    // 70001 rows: more than the 65535 blocks of one grid column.
    for (const Shape& wide : {Shape{2, 5, 3, 11}, Shape{70001, 6}}) {
        CAPTURE(wide);
        const Index rows = wide.numel() / wide[wide.rank() - 1];
        const Tensor<float> x_wide = relu_input<float>(wide, 21);
        const Tensor<float> x = x_wide.channels(1, 5), dy = random_tensor<float>(x.shape(), 22);
        Tensor<float> y(x.shape()), dx(x.shape());
        cpu::relu_forward(x, y);
        cpu::relu_backward(y, dy, dx);

        // forward: input and output are slices (input at channels 1..5, output at 2..6)
        Tensor<float> y_wide = to_device(Tensor<float>(wide, -7.f), Device::cuda);
        Tensor<float> y_slice = y_wide.channels(2, 6);
        cuda::relu_forward(to_device(x_wide, Device::cuda).channels(1, 5), y_slice);
        CHECK(first_bit_difference(y_slice, y) == "");
        // backward: y is a slice, dy contiguous, dx a slice
        Tensor<float> dx_wide = to_device(Tensor<float>(wide, -7.f), Device::cuda);
        Tensor<float> dx_slice = dx_wide.channels(0, 4);
        cuda::relu_backward(y_slice, to_device(dy, Device::cuda), dx_slice);
        CHECK(first_bit_difference(dx_slice, dx) == "");

        // channels outside the slices are untouched
        const Tensor<float> y_host = to_device(y_wide, Device::cpu), dx_host = to_device(dx_wide, Device::cpu);
        const RowMatrix<float> ym = y_host.as_rows(), dxm = dx_host.as_rows();
        Index touched = 0;
        for (Index r = 0; r < rows; ++r)
            for (Index c = 0; c < ym.cols; ++c) {
                touched += (c < 2 || c >= 6) && ym.row(r)[c] != -7.f;
                touched += c >= 4 && dxm.row(r)[c] != -7.f;
            }
        CHECK(touched == 0);
    }
}

TEMPLATE_TEST_CASE("relu on cuda works in place", "[cuda][relu]", float, double) {
    const Tensor<TestType> x = relu_input<TestType>(Shape{4, 7, 5, 3}, 31);
    Tensor<TestType> expected(x.shape());
    cpu::relu_forward(x, expected);
    Tensor<TestType> y = to_device(x, Device::cuda);
    cuda::relu_forward(y, y);
    CHECK(first_bit_difference(y, expected) == "");

    const Tensor<TestType> dy = random_tensor<TestType>(x.shape(), 32);
    Tensor<TestType> dx_expected(x.shape());
    cpu::relu_backward(expected, dy, dx_expected);
    Tensor<TestType> dx = to_device(dy, Device::cuda);
    cuda::relu_backward(y, dx, dx);
    CHECK(first_bit_difference(dx, dx_expected) == "");
}

TEST_CASE("relu on cuda accepts empty and scalar tensors", "[cuda][relu]") {
    Tensor<float> empty = to_device(Tensor<float>(Shape{0, 3}), Device::cuda);
    CHECK_NOTHROW(cuda::relu_forward(empty, empty));
    CHECK_NOTHROW(cuda::relu_backward(empty, empty, empty));
    Tensor<double> scalar = to_device(Tensor<double>(Shape{}, -2.5), Device::cuda);
    Tensor<double> out = poisoned_on_device<double>(Shape{});
    cuda::relu_forward(scalar, out);
    CHECK(first_bit_difference(out, Tensor<double>(Shape{}, 0.0)) == "");
}

TEST_CASE("relu on cuda rejects wrong shapes, cpu tensors and mixed devices", "[cuda][relu]") {
    const Tensor<float> x = to_device(random_tensor<float>(Shape{2, 3}, 41), Device::cuda);
    Tensor<float> y_wrong = to_device(Tensor<float>(Shape{2, 4}), Device::cuda);
    CHECK_THROWS_WITH(cuda::relu_forward(x, y_wrong),
                      Catch::Contains("cuda::relu_forward: output has shape (2, 4), expected (2, 3)"));
    CHECK_THROWS_WITH(backend::relu_forward(x, y_wrong),
                      Catch::Contains("cuda::relu_forward: output has shape (2, 4), expected (2, 3)"));
    Tensor<float> dx = to_device(Tensor<float>(Shape{2, 3}), Device::cuda);
    CHECK_THROWS_WITH(cuda::relu_backward(x, y_wrong, dx),
                      Catch::Contains("cuda::relu_backward: output gradient has shape (2, 4), expected (2, 3)"));

    Tensor<float> y_cpu(Shape{2, 3});
    const Tensor<float> x_cpu(Shape{2, 3});
    CHECK_THROWS_WITH(cuda::relu_forward(x_cpu, y_cpu),
                      Catch::Contains("cuda::relu_forward: input of shape (2, 3) is on cpu"));
    CHECK_THROWS_WITH(backend::relu_forward(x, y_cpu),
                      Catch::Contains("relu_forward: input is on cuda but output is on cpu"));
    CHECK_THROWS_WITH(backend::relu_backward(x_cpu, x, y_cpu),
                      Catch::Contains("relu_backward: output is on cpu but output gradient is on cuda"));
}

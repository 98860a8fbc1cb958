// Max, average and global average pooling on the GPU against the CPU kernels:
// 'same' and 'valid', strides 1 to 3, non-square windows and strides, odd
// sizes, a 1x1 image, and windows whose 'same' padding is odd (the
// asymmetric case: explicit bottom/right padding, -inf for max pooling and an
// explicit count for average pooling); channel slices, an empty batch; and
// argument errors. Inputs are fresh random values on every run (the seed is
// printed with any failure); outputs are NaN-poisoned before the GPU writes them.
// Max pooling inputs are distinct values, so every window has one maximum
// and the CPU's first-maximum rule and cuDNN's choice agree.
//
// Comparisons:
//   max pooling forward: bit for bit with the CPU kernel in T (a maximum is exact).
//   global average pooling backward: bit for bit (the CPU's dy * (1 / (H * W))).
//   everything else, as max |gpu - cpu| / max |cpu| over a whole tensor, against
//   the CPU kernel in double: float 1e-5 (sums of at most 49 values in float,
//   then a division), double 1e-12.

#include <catch2/catch.hpp>

#include <algorithm>
#include <numeric>
#include <random>

#include <bcnn/backend/pool2d.hpp>

#include "cuda/compare.hpp"
#include "support/random.hpp"

using namespace bcnn;
using bcnn::testing::cast;
using bcnn::testing::first_bit_difference;
using bcnn::testing::fresh_seed;
using bcnn::testing::poisoned_on_device;
using bcnn::testing::random_tensor;
using bcnn::testing::relative_difference;

namespace {

template <typename T>
double tolerance() {
    return std::is_same<T, float>::value ? 1e-5 : 1e-12;
}

// Distinct values in [-1, 1) in random order.
template <typename T>
Tensor<T> distinct_tensor(const Shape& shape, std::uint64_t seed) {
    std::vector<Index> order(static_cast<std::size_t>(shape.numel()));
    std::iota(order.begin(), order.end(), Index(0));
    std::shuffle(order.begin(), order.end(), std::mt19937_64(seed));
    Tensor<T> t = Tensor<T>::uninitialized(shape);
    for (std::size_t i = 0; i < order.size(); ++i)
        t.data()[i] =
            static_cast<T>(2.0 * (static_cast<double>(order[i]) + 0.5) / static_cast<double>(order.size()) - 1);
    return t;
}

struct Case {
    const char* name;
    Index n, h, w, c;
    Window2D window;
};

// 'same' padding is odd (asymmetric) along: both axes for "3x3/2 same" and
// "2x2 same", H for "4x4/3 same", W for "3x2/2x1 same".
const Case kCases[] = {
    {"2x2/2 valid", 2, 8, 9, 5, {2, 2, 2, 2, Padding::valid}},
    {"3x3/2 same", 2, 8, 8, 3, {3, 3, 2, 2, Padding::same}},
    {"3x3 same", 3, 7, 6, 4, {3, 3, 1, 1, Padding::same}},
    {"3x3/2 same, even padding", 2, 7, 9, 6, {3, 3, 2, 2, Padding::same}},
    {"2x2 same", 2, 5, 5, 7, {2, 2, 1, 1, Padding::same}},
    {"3x3/3 valid", 1, 10, 11, 3, {3, 3, 3, 3, Padding::valid}},
    {"5x5 same on a 1x1 image", 3, 1, 1, 2, {5, 5, 1, 1, Padding::same}},
    {"4x4/3 same", 2, 10, 11, 65, {4, 4, 3, 3, Padding::same}},
    {"1x1/2 valid", 2, 7, 6, 3, {1, 1, 2, 2, Padding::valid}},
    {"3x2/2x1 same", 2, 9, 7, 4, {3, 2, 2, 1, Padding::same}},
    {"7x7 valid", 2, 7, 7, 9, {7, 7, 1, 1, Padding::valid}},
};

Shape input_shape(const Case& c) { return Shape{c.n, c.h, c.w, c.c}; }

template <typename T>
void check_max_pool(const Case& c, std::uint64_t seed) {
    const Tensor<T> x_host = distinct_tensor<T>(input_shape(c), seed);
    const Shape y_shape = cpu::pool2d_output_shape(x_host.shape(), c.window);
    const Tensor<T> dy_host = random_tensor<T>(y_shape, seed + 1);
    Tensor<T> y_expected(y_shape);
    cpu::max_pool2d_forward(x_host, c.window, y_expected);
    Tensor<double> dx_expected(x_host.shape());
    cpu::max_pool2d_backward(cast<double>(x_host), cast<double>(dy_host), c.window, dx_expected);

    const Tensor<T> x = to_device(x_host, Device::cuda), dy = to_device(dy_host, Device::cuda);
    Tensor<T> y = poisoned_on_device<T>(y_shape);
    backend::max_pool2d_forward(x, c.window, y);
    CHECK(first_bit_difference(y, y_expected) == "");
    Tensor<T> dx = poisoned_on_device<T>(x_host.shape());
    backend::max_pool2d_backward(x, dy, c.window, dx);
    CHECK(relative_difference(dx, dx_expected) < tolerance<T>());
}

template <typename T>
void check_avg_pool(const Case& c, std::uint64_t seed) {
    const Tensor<T> x_host = random_tensor<T>(input_shape(c), seed);
    const Shape y_shape = cpu::pool2d_output_shape(x_host.shape(), c.window);
    const Tensor<T> dy_host = random_tensor<T>(y_shape, seed + 1);
    Tensor<double> y_expected(y_shape), dx_expected(x_host.shape());
    cpu::avg_pool2d_forward(cast<double>(x_host), c.window, y_expected);
    cpu::avg_pool2d_backward(cast<double>(dy_host), c.window, dx_expected);

    const Tensor<T> x = to_device(x_host, Device::cuda), dy = to_device(dy_host, Device::cuda);
    Tensor<T> y = poisoned_on_device<T>(y_shape);
    backend::avg_pool2d_forward(x, c.window, y);
    CHECK(relative_difference(y, y_expected) < tolerance<T>());
    Tensor<T> dx = poisoned_on_device<T>(x_host.shape());
    backend::avg_pool2d_backward(dy, c.window, dx);
    CHECK(relative_difference(dx, dx_expected) < tolerance<T>());
}

// Channels outside [begin, end) of a buffer filled with -7 before the call.
Index touched_outside(const Tensor<float>& wide_on_device, Index begin, Index end) {
    const Tensor<float> host = to_device(wide_on_device, Device::cpu);
    const RowMatrix<float> m = host.as_rows();
    Index touched = 0;
    for (Index r = 0; r < m.rows; ++r)
        for (Index ch = 0; ch < m.cols; ++ch) touched += (ch < begin || ch >= end) && m.row(r)[ch] != -7.f;
    return touched;
}

// A device buffer of `shape` with `extra` more channels, filled with -7.
Tensor<float> wide_on_device(const Shape& shape, Index extra) {
    return to_device(Tensor<float>(Shape{shape[0], shape[1], shape[2], shape[3] + extra}, -7.f), Device::cuda);
}

}  // namespace

TEMPLATE_TEST_CASE("max_pool2d on cuda matches the cpu kernel", "[cuda][pool2d]", float, double) {
    const std::uint64_t seed = fresh_seed();
    for (const Case& c : kCases) {
        CAPTURE(c.name, seed);
        check_max_pool<TestType>(c, seed);
        check_max_pool<TestType>(c, seed + 100);  // scratch buffers reused
    }
}

TEMPLATE_TEST_CASE("avg_pool2d on cuda matches the cpu kernel", "[cuda][pool2d]", float, double) {
    const std::uint64_t seed = fresh_seed();
    for (const Case& c : kCases) {
        CAPTURE(c.name, seed);
        check_avg_pool<TestType>(c, seed);
        check_avg_pool<TestType>(c, seed + 100);
    }
}

TEMPLATE_TEST_CASE("global_avg_pool on cuda matches the cpu kernel", "[cuda][pool2d]", float, double) {
    const std::uint64_t seed = fresh_seed();
    // 56x56: many chunks per image in the sums; 70 channels: several column blocks.
    for (const Shape& shape : {Shape{2, 7, 7, 5}, Shape{3, 1, 1, 4}, Shape{2, 13, 11, 70}, Shape{2, 56, 56, 3}}) {
        CAPTURE(shape, seed);
        const Tensor<TestType> x_host = random_tensor<TestType>(shape, seed);
        const Tensor<TestType> dy_host = random_tensor<TestType>(Shape{shape[0], shape[3]}, seed + 1);
        Tensor<double> y_expected(dy_host.shape());
        cpu::global_avg_pool_forward(cast<double>(x_host), y_expected);
        Tensor<TestType> dx_expected(shape);
        cpu::global_avg_pool_backward(dy_host, dx_expected);

        Tensor<TestType> y = poisoned_on_device<TestType>(dy_host.shape());
        backend::global_avg_pool_forward(to_device(x_host, Device::cuda), y);
        CHECK(relative_difference(y, y_expected) < tolerance<TestType>());
        Tensor<TestType> dx = poisoned_on_device<TestType>(shape);
        backend::global_avg_pool_backward(to_device(dy_host, Device::cuda), dx);
        CHECK(first_bit_difference(dx, dx_expected) == "");
    }
}

TEST_CASE("pooling on cuda reads and writes channel slices of wider device buffers", "[cuda][pool2d]") {
    const std::uint64_t seed = fresh_seed();
    for (const Case& c : {kCases[1], kCases[2]}) {  // 3x3/2 'same' (padded copy), 3x3 'same' (cuDNN pads alone)
        CAPTURE(c.name, seed);
        const Shape x_shape = input_shape(c), y_shape = cpu::pool2d_output_shape(x_shape, c.window);
        // x at channels 2.. of a buffer 3 wider, dy at 1.. of a buffer 2 wider.
        const Tensor<float> x_wide = distinct_tensor<float>(Shape{c.n, c.h, c.w, c.c + 3}, seed);
        const Tensor<float> dy_wide =
            random_tensor<float>(Shape{y_shape[0], y_shape[1], y_shape[2], c.c + 2}, seed + 1);
        const Tensor<float> x_host = x_wide.channels(2, 2 + c.c).clone();
        const Tensor<float> dy_host = dy_wide.channels(1, 1 + c.c).clone();
        const Tensor<float> x = to_device(x_wide, Device::cuda).channels(2, 2 + c.c);
        const Tensor<float> dy = to_device(dy_wide, Device::cuda).channels(1, 1 + c.c);

        Tensor<double> y_max(y_shape), y_avg(y_shape), dx_max(x_shape), dx_avg(x_shape);
        cpu::max_pool2d_forward(cast<double>(x_host), c.window, y_max);
        cpu::avg_pool2d_forward(cast<double>(x_host), c.window, y_avg);
        cpu::max_pool2d_backward(cast<double>(x_host), cast<double>(dy_host), c.window, dx_max);
        cpu::avg_pool2d_backward(cast<double>(dy_host), c.window, dx_avg);

        // Outputs at channels 1.. (y) and 0.. (dx) of buffers 3 wider.
        Tensor<float> y_wide = wide_on_device(y_shape, 3), dx_wide = wide_on_device(x_shape, 3);
        Tensor<float> y = y_wide.channels(1, 1 + c.c), dx = dx_wide.channels(0, c.c);
        cuda::max_pool2d_forward(x, c.window, y);
        CHECK(relative_difference(y, y_max) < tolerance<float>());
        cuda::max_pool2d_backward(x, dy, c.window, dx);
        CHECK(relative_difference(dx, dx_max) < tolerance<float>());
        cuda::avg_pool2d_forward(x, c.window, y);
        CHECK(relative_difference(y, y_avg) < tolerance<float>());
        cuda::avg_pool2d_backward(dy, c.window, dx);
        CHECK(relative_difference(dx, dx_avg) < tolerance<float>());
        CHECK(touched_outside(y_wide, 1, 1 + c.c) == 0);
        CHECK(touched_outside(dx_wide, 0, c.c) == 0);

        // Global average pooling: x a slice, y (N, C) a slice of (N, C + 3).
        Tensor<double> g_expected(Shape{c.n, c.c});
        cpu::global_avg_pool_forward(cast<double>(x_host), g_expected);
        Tensor<float> g_wide = to_device(Tensor<float>(Shape{c.n, c.c + 3}, -7.f), Device::cuda);
        Tensor<float> g = g_wide.channels(2, 2 + c.c);
        cuda::global_avg_pool_forward(x, g);
        CHECK(relative_difference(g, g_expected) < tolerance<float>());
        const Tensor<float> g_host = to_device(g_wide, Device::cpu);
        Index touched = 0;
        for (Index r = 0; r < c.n; ++r)
            for (Index ch = 0; ch < c.c + 3; ++ch) touched += (ch < 2 || ch >= 2 + c.c) && g_host(r, ch) != -7.f;
        CHECK(touched == 0);
    }
}

TEST_CASE("pooling on cuda accepts an empty batch", "[cuda][pool2d]") {
    const Window2D window{3, 3, 2, 2, Padding::same};
    const Tensor<float> x = to_device(Tensor<float>(Shape{0, 5, 5, 2}), Device::cuda);
    Tensor<float> y = to_device(Tensor<float>(Shape{0, 3, 3, 2}), Device::cuda);
    Tensor<float> dx = to_device(Tensor<float>(Shape{0, 5, 5, 2}), Device::cuda);
    CHECK_NOTHROW(cuda::max_pool2d_forward(x, window, y));
    CHECK_NOTHROW(cuda::max_pool2d_backward(x, y, window, dx));
    CHECK_NOTHROW(cuda::avg_pool2d_forward(x, window, y));
    CHECK_NOTHROW(cuda::avg_pool2d_backward(y, window, dx));
    Tensor<float> g = to_device(Tensor<float>(Shape{0, 2}), Device::cuda);
    CHECK_NOTHROW(cuda::global_avg_pool_forward(x, g));
    CHECK_NOTHROW(cuda::global_avg_pool_backward(g, dx));
}

TEST_CASE("pooling on cuda rejects cpu tensors, wrong shapes, bad windows and mixed devices", "[cuda][pool2d]") {
    const Window2D window{2, 2, 2, 2, Padding::valid};
    const Tensor<float> x_cpu = random_tensor<float>(Shape{1, 4, 4, 3}, 1);
    const Tensor<float> x = to_device(x_cpu, Device::cuda);
    Tensor<float> y = to_device(Tensor<float>(Shape{1, 2, 2, 3}), Device::cuda);
    Tensor<float> y_cpu(Shape{1, 2, 2, 3});
    Tensor<float> dx = to_device(Tensor<float>(Shape{1, 4, 4, 3}), Device::cuda);

    CHECK_THROWS_WITH(cuda::max_pool2d_forward(x_cpu, window, y),
                      Catch::Contains("cuda::max_pool2d_forward: input of shape (1, 4, 4, 3) is on cpu"));
    CHECK_THROWS_WITH(cuda::avg_pool2d_forward(x, window, y_cpu),
                      Catch::Contains("cuda::avg_pool2d_forward: output of shape (1, 2, 2, 3) is on cpu"));
    const Tensor<float> x_rank3 = to_device(Tensor<float>(Shape{4, 4, 3}), Device::cuda);
    CHECK_THROWS_WITH(cuda::max_pool2d_forward(x_rank3, window, y),
                      Catch::Contains("cuda::max_pool2d_forward: input must have rank 4, got shape (4, 4, 3)"));
    Tensor<float> y_wrong = to_device(Tensor<float>(Shape{1, 3, 3, 3}), Device::cuda);
    CHECK_THROWS_WITH(
        cuda::avg_pool2d_forward(x, window, y_wrong),
        Catch::Contains("cuda::avg_pool2d_forward: output has shape (1, 3, 3, 3), expected (1, 2, 2, 3)"));
    CHECK_THROWS_WITH(
        cuda::max_pool2d_backward(x, y_wrong, window, dx),
        Catch::Contains("cuda::max_pool2d_backward: output gradient has shape (1, 3, 3, 3), expected (1, 2, 2, 3)"));
    Tensor<float> dx_wrong = to_device(Tensor<float>(Shape{1, 4, 4, 2}), Device::cuda);
    CHECK_THROWS_WITH(
        cuda::max_pool2d_backward(x, y, window, dx_wrong),
        Catch::Contains("cuda::max_pool2d_backward: input gradient has shape (1, 4, 4, 2), expected (1, 4, 4, 3)"));
    CHECK_THROWS_WITH(
        cuda::avg_pool2d_backward(y_wrong, window, dx),
        Catch::Contains("cuda::avg_pool2d_backward: output gradient has shape (1, 3, 3, 3), expected (1, 2, 2, 3)"));
    CHECK_THROWS_WITH(cuda::max_pool2d_forward(x, Window2D{5, 5, 1, 1, Padding::valid}, y),
                      Catch::Contains("cuda::max_pool2d_forward: input 4x4 is smaller than the window (kernel 5x5, "
                                      "strides 1x1, padding 'valid')"));
    CHECK_THROWS_WITH(cuda::avg_pool2d_forward(x, Window2D{0, 2, 1, 1, Padding::same}, y),
                      Catch::Contains("cuda::avg_pool2d_forward: invalid window (kernel 0x2"));

    Tensor<float> g_wrong = to_device(Tensor<float>(Shape{1, 4}), Device::cuda);
    CHECK_THROWS_WITH(cuda::global_avg_pool_forward(x, g_wrong),
                      Catch::Contains("cuda::global_avg_pool_forward: output has shape (1, 4), expected (1, 3)"));
    CHECK_THROWS_WITH(
        cuda::global_avg_pool_backward(g_wrong, dx),
        Catch::Contains("cuda::global_avg_pool_backward: output gradient has shape (1, 4), expected (1, 3)"));
    CHECK_THROWS_WITH(cuda::global_avg_pool_forward(x_rank3, g_wrong),
                      Catch::Contains("cuda::global_avg_pool_forward: input must have rank 4, got shape (4, 4, 3)"));

    CHECK_THROWS_WITH(backend::max_pool2d_forward(x, window, y_cpu),
                      Catch::Contains("max_pool2d_forward: input is on cuda but output is on cpu"));
    CHECK_THROWS_WITH(backend::avg_pool2d_backward(y_cpu, window, dx),
                      Catch::Contains("avg_pool2d_backward: output gradient is on cpu but input gradient is on cuda"));
}

// DepthwiseConv2D on the GPU (cuDNN grouped convolution) against the CPU
// kernel run in double: 'same' and 'valid', strides 1 and 2, multipliers 1
// to 3, odd sizes, even kernels whose 'same' padding is odd (the asymmetric
// case, padded copies), no bias, subsets of the gradients, channel slices,
// an empty batch; and argument errors.
// Inputs are fresh random values on every run (the seed is printed with any
// failure); outputs are NaN-poisoned before the GPU writes them.
//
// Tolerances, as max |gpu - cpu| / max |cpu| over a whole tensor:
//   float  1e-4: FMA math (TF32 off); depths are at most KH*KW (per channel),
//                the weight gradients sum over N*OH*OW pixels (up to ~300).
//   double 1e-10.

#include <catch2/catch.hpp>

#include <cmath>

#include <bcnn/backend/depthwise_conv2d.hpp>

#include "cuda/compare.hpp"
#include "support/random.hpp"

using namespace bcnn;
using bcnn::testing::cast;
using bcnn::testing::fresh_seed;
using bcnn::testing::library_tolerance;
using bcnn::testing::poisoned_on_device;
using bcnn::testing::random_tensor;
using bcnn::testing::relative_difference;

namespace {

struct Case {
    const char* name;
    Index n, h, w, c, multiplier, kh, kw;
    ConvParams params;
    bool bias;
};

const Case kCases[] = {
    {"3x3 same", 2, 7, 9, 5, 1, 3, 3, {1, 1, Padding::same}, true},
    {"3x3 valid, multiplier 2", 3, 6, 5, 4, 2, 3, 3, {1, 1, Padding::valid}, true},
    {"3x3 same stride 2 (odd padding)", 2, 8, 8, 6, 1, 3, 3, {2, 2, Padding::same}, true},
    {"2x2 same (odd padding), multiplier 3", 1, 5, 6, 3, 3, 2, 2, {1, 1, Padding::same}, false},
    {"5x5 same stride 2, odd sizes", 2, 11, 7, 7, 1, 5, 5, {2, 2, Padding::same}, true},
    {"4x1 same, strides 1x2", 2, 6, 9, 3, 2, 4, 1, {1, 2, Padding::same}, true},
    {"1x1, one channel", 4, 3, 3, 1, 1, 1, 1, {1, 1, Padding::valid}, false},
    {"MobileNet block", 2, 14, 14, 32, 1, 3, 3, {1, 1, Padding::same}, true},
};

// One case's random operands on the CPU, in T.
template <typename T>
struct Operands {
    Tensor<T> x, weights, bias, dy;
    Operands(const Case& c, std::uint64_t seed)
        : x(random_tensor<T>(Shape{c.n, c.h, c.w, c.c}, seed)),
          weights(random_tensor<T>(Shape{c.kh, c.kw, c.c, c.multiplier}, seed + 1)),
          bias(random_tensor<T>(Shape{c.c * c.multiplier}, seed + 2)),
          dy(random_tensor<T>(cpu::depthwise_conv2d_output_shape(x.shape(), weights.shape(), c.params), seed + 3)) {}
};

// The CPU kernel's results in double on the same values.
struct Reference {
    Tensor<double> y, dx, d_weights, d_bias;
    template <typename T>
    Reference(const Case& c, const Operands<T>& o)
        : y(o.dy.shape()), dx(o.x.shape()), d_weights(o.weights.shape()), d_bias(o.bias.shape()) {
        const Tensor<double> x = cast<double>(o.x), w = cast<double>(o.weights), b = cast<double>(o.bias),
                             dy = cast<double>(o.dy);
        cpu::depthwise_conv2d_forward(x, w, c.bias ? &b : nullptr, c.params, y);
        cpu::depthwise_conv2d_backward(x, w, dy, c.params, &dx, &d_weights, &d_bias);
    }
};

}  // namespace

TEMPLATE_TEST_CASE("depthwise_conv2d on cuda matches the cpu kernel", "[cuda][depthwise_conv2d]", float, double) {
    const std::uint64_t seed = fresh_seed();
    for (const Case& c : kCases) {
        CAPTURE(c.name, seed);
        const Operands<TestType> o(c, seed);
        const Reference expected(c, o);
        const Tensor<TestType> x = to_device(o.x, Device::cuda), w = to_device(o.weights, Device::cuda),
                               b = to_device(o.bias, Device::cuda), dy = to_device(o.dy, Device::cuda);
        Tensor<TestType> y = poisoned_on_device<TestType>(expected.y.shape());
        backend::depthwise_conv2d_forward(x, w, c.bias ? &b : nullptr, c.params, y);
        CHECK(relative_difference(y, expected.y) < library_tolerance<TestType>());

        Tensor<TestType> dx = poisoned_on_device<TestType>(o.x.shape()),
                         dw = poisoned_on_device<TestType>(o.weights.shape()),
                         db = poisoned_on_device<TestType>(o.bias.shape());
        backend::depthwise_conv2d_backward(x, w, dy, c.params, &dx, &dw, &db);
        CHECK(relative_difference(dx, expected.dx) < library_tolerance<TestType>());
        CHECK(relative_difference(dw, expected.d_weights) < library_tolerance<TestType>());
        CHECK(relative_difference(db, expected.d_bias) < library_tolerance<TestType>());
    }
}

TEST_CASE("depthwise_conv2d_backward on cuda computes only the gradients asked for", "[cuda][depthwise_conv2d]") {
    const std::uint64_t seed = fresh_seed();
    const Case& c = kCases[3];
    CAPTURE(c.name, seed);
    const Operands<float> o(c, seed);
    const Reference expected(c, o);
    const Tensor<float> x = to_device(o.x, Device::cuda), w = to_device(o.weights, Device::cuda),
                        dy = to_device(o.dy, Device::cuda);
    for (int wanted = 0; wanted < 8; ++wanted) {
        CAPTURE(wanted);
        Tensor<float> dx = poisoned_on_device<float>(o.x.shape()), dw = poisoned_on_device<float>(o.weights.shape()),
                      db = poisoned_on_device<float>(o.bias.shape());
        cuda::depthwise_conv2d_backward(x, w, dy, c.params, wanted & 1 ? &dx : nullptr, wanted & 2 ? &dw : nullptr,
                                        wanted & 4 ? &db : nullptr);
        if (wanted & 1) CHECK(relative_difference(dx, expected.dx) < library_tolerance<float>());
        if (wanted & 2) CHECK(relative_difference(dw, expected.d_weights) < library_tolerance<float>());
        if (wanted & 4) CHECK(relative_difference(db, expected.d_bias) < library_tolerance<float>());
        if (!(wanted & 1)) CHECK(std::isnan(cast<double>(dx).to_vector()[0]));
        if (!(wanted & 2)) CHECK(std::isnan(cast<double>(dw).to_vector()[0]));
        if (!(wanted & 4)) CHECK(std::isnan(cast<double>(db).to_vector()[0]));
    }
}

TEST_CASE("depthwise_conv2d on cuda reads and writes channel slices of wider device buffers",
          "[cuda][depthwise_conv2d]") {
    const std::uint64_t seed = fresh_seed();
    const Case& c = kCases[2];  // odd 'same' padding: the padded copy reads the slice
    CAPTURE(c.name, seed);
    const Operands<float> o(c, seed);
    const Reference expected(c, o);
    const Index k = c.c * c.multiplier;
    // x at channels 2.. of a buffer 3 wider, dy at 1.. of a buffer 2 wider;
    // y written at 1.. and dx at 0.. of buffers 3 wider, pre-filled with -7.
    const Tensor<float> x_wide = random_tensor<float>(Shape{c.n, c.h, c.w, c.c + 3}, seed + 5);
    x_wide.channels(2, 2 + c.c).copy_from(o.x);
    const Tensor<float> dy_wide = random_tensor<float>(Shape{o.dy.dim(0), o.dy.dim(1), o.dy.dim(2), k + 2}, seed + 6);
    dy_wide.channels(1, 1 + k).copy_from(o.dy);
    const Tensor<float> x = to_device(x_wide, Device::cuda).channels(2, 2 + c.c);
    const Tensor<float> dy = to_device(dy_wide, Device::cuda).channels(1, 1 + k);
    const Tensor<float> w = to_device(o.weights, Device::cuda), b = to_device(o.bias, Device::cuda);

    Tensor<float> y_wide =
        to_device(Tensor<float>(Shape{o.dy.dim(0), o.dy.dim(1), o.dy.dim(2), k + 3}, -7.f), Device::cuda);
    Tensor<float> y = y_wide.channels(1, 1 + k);
    cuda::depthwise_conv2d_forward(x, w, &b, c.params, y);
    CHECK(relative_difference(y, expected.y) < library_tolerance<float>());

    Tensor<float> dx_wide = to_device(Tensor<float>(Shape{c.n, c.h, c.w, c.c + 3}, -7.f), Device::cuda);
    Tensor<float> dx = dx_wide.channels(0, c.c);
    Tensor<float> dw = poisoned_on_device<float>(o.weights.shape()), db = poisoned_on_device<float>(o.bias.shape());
    cuda::depthwise_conv2d_backward(x, w, dy, c.params, &dx, &dw, &db);
    CHECK(relative_difference(dx, expected.dx) < library_tolerance<float>());
    CHECK(relative_difference(dw, expected.d_weights) < library_tolerance<float>());
    CHECK(relative_difference(db, expected.d_bias) < library_tolerance<float>());

    // Channels outside the views are untouched.
    const std::vector<float> y_all = to_device(y_wide, Device::cpu).to_vector();
    const std::vector<float> dx_all = to_device(dx_wide, Device::cpu).to_vector();
    Index touched = 0;
    for (std::size_t i = 0; i < y_all.size(); ++i) {
        const Index channel = static_cast<Index>(i) % (k + 3);
        touched += (channel < 1 || channel >= 1 + k) && y_all[i] != -7.f;
    }
    for (std::size_t i = 0; i < dx_all.size(); ++i)
        touched += static_cast<Index>(i) % (c.c + 3) >= c.c && dx_all[i] != -7.f;
    CHECK(touched == 0);
}

TEST_CASE("depthwise_conv2d on cuda with an empty batch writes zero parameter gradients",
          "[cuda][depthwise_conv2d]") {
    const std::uint64_t seed = fresh_seed();
    CAPTURE(seed);
    const Tensor<float> w = to_device(random_tensor<float>(Shape{3, 3, 2, 2}, seed), Device::cuda);
    const Tensor<float> b = to_device(random_tensor<float>(Shape{4}, seed + 1), Device::cuda);
    const Tensor<float> x = to_device(Tensor<float>(Shape{0, 5, 5, 2}), Device::cuda);
    Tensor<float> y = to_device(Tensor<float>(Shape{0, 3, 3, 4}), Device::cuda);
    CHECK_NOTHROW(cuda::depthwise_conv2d_forward(x, w, &b, ConvParams{}, y));
    Tensor<float> dx = to_device(Tensor<float>(x.shape()), Device::cuda);
    Tensor<float> dw = poisoned_on_device<float>(w.shape()), db = poisoned_on_device<float>(Shape{4});
    cuda::depthwise_conv2d_backward(x, w, y, ConvParams{}, &dx, &dw, &db);
    CHECK(relative_difference(dw, Tensor<double>(w.shape())) == 0);
    CHECK(relative_difference(db, Tensor<double>(Shape{4})) == 0);
}

TEST_CASE("depthwise_conv2d on cuda rejects cpu tensors, wrong shapes and mixed devices",
          "[cuda][depthwise_conv2d]") {
    const Tensor<float> x_cpu = random_tensor<float>(Shape{1, 5, 5, 2}, 1),
                        w_cpu = random_tensor<float>(Shape{3, 3, 2, 2}, 2);
    const Tensor<float> x = to_device(x_cpu, Device::cuda), w = to_device(w_cpu, Device::cuda);
    const ConvParams same{1, 1, Padding::same};
    Tensor<float> y = to_device(Tensor<float>(Shape{1, 5, 5, 4}), Device::cuda);
    Tensor<float> y_cpu(Shape{1, 5, 5, 4});

    CHECK_THROWS_WITH(cuda::depthwise_conv2d_forward(x_cpu, w, nullptr, same, y),
                      Catch::Contains("cuda::depthwise_conv2d_forward: input of shape (1, 5, 5, 2) is on cpu"));
    CHECK_THROWS_WITH(
        cuda::depthwise_conv2d_forward(x, w_cpu, nullptr, same, y),
        Catch::Contains("cuda::depthwise_conv2d_forward: depthwise weights of shape (3, 3, 2, 2) is on cpu"));
    CHECK_THROWS_WITH(cuda::depthwise_conv2d_forward(x, w, nullptr, same, y_cpu),
                      Catch::Contains("cuda::depthwise_conv2d_forward: output of shape (1, 5, 5, 4) is on cpu"));
    const Tensor<float> w_wrong = to_device(Tensor<float>(Shape{3, 3, 3, 2}), Device::cuda);
    CHECK_THROWS_WITH(cuda::depthwise_conv2d_forward(x, w_wrong, nullptr, same, y),
                      Catch::Contains("cuda::depthwise_conv2d_forward: input (1, 5, 5, 2) does not match depthwise "
                                      "weights (3, 3, 3, 2) (expected (kh, kw, 2, multiplier))"));
    const Tensor<float> w_rank3 = to_device(Tensor<float>(Shape{3, 3, 2}), Device::cuda);
    CHECK_THROWS_WITH(cuda::depthwise_conv2d_forward(x, w_rank3, nullptr, same, y),
                      Catch::Contains("cuda::depthwise_conv2d_forward: depthwise weights must be (kh, kw, channels, "
                                      "multiplier), got shape (3, 3, 2)"));
    Tensor<float> y_wrong = to_device(Tensor<float>(Shape{1, 3, 3, 4}), Device::cuda);
    CHECK_THROWS_WITH(cuda::depthwise_conv2d_forward(x, w, nullptr, same, y_wrong),
                      Catch::Contains("cuda::depthwise_conv2d_forward: output has shape (1, 3, 3, 4), expected "
                                      "(1, 5, 5, 4)"));
    const Tensor<float> b_wrong = to_device(Tensor<float>(Shape{2}), Device::cuda);
    CHECK_THROWS_WITH(cuda::depthwise_conv2d_forward(x, w, &b_wrong, same, y),
                      Catch::Contains("cuda::depthwise_conv2d_forward: bias has shape (2), expected (4)"));

    Tensor<float> dw_wrong = to_device(Tensor<float>(Shape{3, 3, 2, 1}), Device::cuda);
    CHECK_THROWS_WITH(cuda::depthwise_conv2d_backward(x, w, y, same, nullptr, &dw_wrong, nullptr),
                      Catch::Contains("cuda::depthwise_conv2d_backward: depthwise weights gradient has shape "
                                      "(3, 3, 2, 1), expected (3, 3, 2, 2)"));
    CHECK_THROWS_WITH(cuda::depthwise_conv2d_backward(x, w, y_wrong, same, nullptr, nullptr, nullptr),
                      Catch::Contains("cuda::depthwise_conv2d_backward: output gradient has shape (1, 3, 3, 4), "
                                      "expected (1, 5, 5, 4)"));

    const Tensor<float> b_cpu(Shape{4});
    CHECK_THROWS_WITH(backend::depthwise_conv2d_forward(x, w, &b_cpu, same, y),
                      Catch::Contains("depthwise_conv2d_forward: input is on cuda but bias is on cpu"));
    Tensor<float> dx_cpu(Shape{1, 5, 5, 2});
    CHECK_THROWS_WITH(backend::depthwise_conv2d_backward(x, w, y, same, &dx_cpu, nullptr, nullptr),
                      Catch::Contains("depthwise_conv2d_backward: input is on cuda but input gradient is on cpu"));
}

// Conv2D on the GPU (cuDNN) against the CPU kernel run in double: 'same' and
// 'valid', strides 1 to 3, odd sizes, 1x1, 7x7/2 and even kernels whose 'same'
// padding is odd (the asymmetric case cuDNN cannot pad by itself), no bias,
// subsets of the gradients, channel slices, an empty batch, TF32; and
// argument errors. Inputs are fresh random values on every run (the seed is
// printed with any failure); outputs are NaN-poisoned before the GPU writes
// them, so an element it fails to write shows up as a non-finite value.
//
// Tolerances, as max |gpu - cpu| / max |cpu| over a whole tensor:
//   float  1e-4: FMA math (TF32 off); FFT and Winograd algorithms round more
//                than a direct sum, about 1e-5 on these sizes.
//   double 1e-10.
//   float with TF32 allowed: 1e-2 (TF32 keeps 10 mantissa bits: products are
//                off by up to ~1e-3 relative).

#include <catch2/catch.hpp>

#include <cmath>

#include <bcnn/backend/conv2d.hpp>

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

constexpr double kTf32Tolerance = 1e-2;

struct Case {
    const char* name;
    Index n, h, w, c, k, kh, kw, stride;
    Padding padding;
    bool bias;
};

// 'same' padding is odd (asymmetric) along: W for "3x3/2 same", H for "7x7/2
// same", both axes for "2x2 same" and "4x4/3 same".
const Case kCases[] = {
    {"3x3 same", 2, 9, 11, 5, 7, 3, 3, 1, Padding::same, true},
    {"3x3 valid", 2, 9, 11, 5, 7, 3, 3, 1, Padding::valid, true},
    {"3x3/2 same", 3, 13, 10, 4, 6, 3, 3, 2, Padding::same, true},
    {"3x3/2 valid", 2, 12, 9, 3, 8, 3, 3, 2, Padding::valid, false},
    {"1x1 same", 2, 7, 5, 16, 12, 1, 1, 1, Padding::same, true},
    {"1x1/2 valid", 2, 8, 7, 6, 5, 1, 1, 2, Padding::valid, false},
    {"7x7/2 same", 2, 32, 31, 3, 8, 7, 7, 2, Padding::same, true},
    {"2x2 same", 2, 6, 7, 3, 4, 2, 2, 1, Padding::same, false},
    {"4x4/3 same", 1, 10, 11, 2, 3, 4, 4, 3, Padding::same, true},
    {"5x5 same on a 1x1 image", 3, 1, 1, 3, 4, 5, 5, 1, Padding::same, true},
    {"3x1 valid", 2, 6, 5, 3, 2, 3, 1, 1, Padding::valid, true},
};

ConvParams params_of(const Case& c) { return ConvParams{c.stride, c.stride, c.padding}; }

// One case's random operands on the CPU, in T.
template <typename T>
struct Operands {
    Tensor<T> x, weights, bias, dy;
    Operands(const Case& c, std::uint64_t seed)
        : x(random_tensor<T>(Shape{c.n, c.h, c.w, c.c}, seed)),
          weights(random_tensor<T>(Shape{c.kh, c.kw, c.c, c.k}, seed + 1)),
          bias(random_tensor<T>(Shape{c.k}, seed + 2)),
          dy(random_tensor<T>(cpu::conv2d_output_shape(x.shape(), weights.shape(), params_of(c)), seed + 3)) {}
};

// The CPU kernel's results in double on the same values.
struct Reference {
    Tensor<double> y, dx, d_weights, d_bias;
    template <typename T>
    Reference(const Case& c, const Operands<T>& o)
        : y(o.dy.shape()), dx(o.x.shape()), d_weights(o.weights.shape()), d_bias(o.bias.shape()) {
        const Tensor<double> x = cast<double>(o.x), w = cast<double>(o.weights), b = cast<double>(o.bias),
                             dy = cast<double>(o.dy);
        cpu::conv2d_forward(x, w, c.bias ? &b : nullptr, params_of(c), y);
        cpu::conv2d_backward(x, w, dy, params_of(c), &dx, &d_weights, &d_bias);
    }
};

template <typename T>
void check_case(const Case& c, std::uint64_t seed, double limit) {
    const Operands<T> o(c, seed);
    const Reference expected(c, o);
    const Tensor<T> x = to_device(o.x, Device::cuda), w = to_device(o.weights, Device::cuda),
                    b = to_device(o.bias, Device::cuda), dy = to_device(o.dy, Device::cuda);

    Tensor<T> y = poisoned_on_device<T>(expected.y.shape());
    backend::conv2d_forward(x, w, c.bias ? &b : nullptr, params_of(c), y);
    CHECK(relative_difference(y, expected.y) < limit);

    Tensor<T> dx = poisoned_on_device<T>(o.x.shape()), dw = poisoned_on_device<T>(o.weights.shape()),
              db = poisoned_on_device<T>(o.bias.shape());
    backend::conv2d_backward(x, w, dy, params_of(c), &dx, &dw, &db);
    CHECK(relative_difference(dx, expected.dx) < limit);
    CHECK(relative_difference(dw, expected.d_weights) < limit);
    CHECK(relative_difference(db, expected.d_bias) < limit);
}

}  // namespace

TEMPLATE_TEST_CASE("conv2d on cuda matches the cpu kernel", "[cuda][conv2d]", float, double) {
    const std::uint64_t seed = fresh_seed();
    for (const Case& c : kCases) {
        CAPTURE(c.name, seed);
        check_case<TestType>(c, seed, library_tolerance<TestType>());
        // A second call reuses the cached algorithms and scratch buffers.
        check_case<TestType>(c, seed + 100, library_tolerance<TestType>());
    }
}

TEST_CASE("conv2d on cuda with TF32 allowed stays within the TF32 tolerance", "[cuda][conv2d]") {
    const std::uint64_t seed = fresh_seed();
    CAPTURE(seed);
    cuda::set_conv2d_tf32(true);
    CHECK(cuda::conv2d_tf32());
    for (const Case& c : kCases) {
        CAPTURE(c.name);
        check_case<float>(c, seed, kTf32Tolerance);
    }
    cuda::set_conv2d_tf32(false);
    CHECK_FALSE(cuda::conv2d_tf32());
}

TEST_CASE("conv2d_backward on cuda computes only the gradients asked for", "[cuda][conv2d]") {
    const std::uint64_t seed = fresh_seed();
    const Case& c = kCases[6];  // 7x7/2 'same': padded input and cropped dx
    CAPTURE(c.name, seed);
    const Operands<float> o(c, seed);
    const Reference expected(c, o);
    const Tensor<float> x = to_device(o.x, Device::cuda), w = to_device(o.weights, Device::cuda),
                        dy = to_device(o.dy, Device::cuda);
    for (int wanted = 1; wanted < 8; ++wanted) {
        CAPTURE(wanted);
        Tensor<float> dx = poisoned_on_device<float>(o.x.shape()), dw = poisoned_on_device<float>(o.weights.shape()),
                      db = poisoned_on_device<float>(o.bias.shape());
        cuda::conv2d_backward(x, w, dy, params_of(c), wanted & 1 ? &dx : nullptr, wanted & 2 ? &dw : nullptr,
                              wanted & 4 ? &db : nullptr);
        if (wanted & 1) CHECK(relative_difference(dx, expected.dx) < library_tolerance<float>());
        if (wanted & 2) CHECK(relative_difference(dw, expected.d_weights) < library_tolerance<float>());
        if (wanted & 4) CHECK(relative_difference(db, expected.d_bias) < library_tolerance<float>());
        // Gradients not asked for are not written: they stay NaN.
        if (!(wanted & 1)) CHECK(std::isnan(cast<double>(dx).to_vector()[0]));
        if (!(wanted & 2)) CHECK(std::isnan(cast<double>(dw).to_vector()[0]));
        if (!(wanted & 4)) CHECK(std::isnan(cast<double>(db).to_vector()[0]));
    }
}

TEST_CASE("conv2d on cuda reads and writes channel slices of wider device buffers", "[cuda][conv2d]") {
    const std::uint64_t seed = fresh_seed();
    for (const Case& c : {kCases[2], kCases[4]}) {  // 3x3/2 'same' (padded), 1x1 (cuDNN reads x in place)
        CAPTURE(c.name, seed);
        const Operands<float> o(c, seed);
        const Reference expected(c, o);
        const Shape y_shape = o.dy.shape();
        // x at channels 2.. of a buffer 3 wider, dy at 1.. of a buffer 2 wider;
        // y written at channels 1.. and dx at 0.. of buffers 3 wider, pre-filled with -7.
        const Tensor<float> x_wide_host = random_tensor<float>(Shape{c.n, c.h, c.w, c.c + 3}, seed + 5);
        x_wide_host.channels(2, 2 + c.c).copy_from(o.x);
        const Tensor<float> dy_wide_host = random_tensor<float>(Shape{y_shape[0], y_shape[1], y_shape[2], c.k + 2}, seed + 6);
        dy_wide_host.channels(1, 1 + c.k).copy_from(o.dy);
        const Tensor<float> x = to_device(x_wide_host, Device::cuda).channels(2, 2 + c.c);
        const Tensor<float> dy = to_device(dy_wide_host, Device::cuda).channels(1, 1 + c.k);
        const Tensor<float> w = to_device(o.weights, Device::cuda), b = to_device(o.bias, Device::cuda);

        Tensor<float> y_wide = to_device(Tensor<float>(Shape{y_shape[0], y_shape[1], y_shape[2], c.k + 3}, -7.f),
                                         Device::cuda);
        Tensor<float> y = y_wide.channels(1, 1 + c.k);
        cuda::conv2d_forward(x, w, c.bias ? &b : nullptr, params_of(c), y);
        CHECK(relative_difference(y, expected.y) < library_tolerance<float>());

        Tensor<float> dx_wide = to_device(Tensor<float>(Shape{c.n, c.h, c.w, c.c + 3}, -7.f), Device::cuda);
        Tensor<float> dx = dx_wide.channels(0, c.c);
        Tensor<float> dw = poisoned_on_device<float>(o.weights.shape());
        cuda::conv2d_backward(x, w, dy, params_of(c), &dx, &dw, nullptr);
        CHECK(relative_difference(dx, expected.dx) < library_tolerance<float>());
        CHECK(relative_difference(dw, expected.d_weights) < library_tolerance<float>());

        // Channels outside the slices are untouched.
        const Tensor<float> y_host = to_device(y_wide, Device::cpu), dx_host = to_device(dx_wide, Device::cpu);
        const RowMatrix<float> ym = y_host.as_rows(), dxm = dx_host.as_rows();
        Index touched = 0;
        for (Index r = 0; r < ym.rows; ++r)
            for (Index ch = 0; ch < ym.cols; ++ch) touched += (ch < 1 || ch >= 1 + c.k) && ym.row(r)[ch] != -7.f;
        for (Index r = 0; r < dxm.rows; ++r)
            for (Index ch = c.c; ch < dxm.cols; ++ch) touched += dxm.row(r)[ch] != -7.f;
        CHECK(touched == 0);
    }
}

TEST_CASE("conv2d on cuda with an empty batch writes zero parameter gradients", "[cuda][conv2d]") {
    const ConvParams same{1, 1, Padding::same};
    const Tensor<float> x = to_device(Tensor<float>(Shape{0, 5, 5, 2}), Device::cuda);
    const Tensor<float> w = to_device(random_tensor<float>(Shape{3, 3, 2, 4}, fresh_seed()), Device::cuda);
    Tensor<float> y = to_device(Tensor<float>(Shape{0, 5, 5, 4}), Device::cuda);
    CHECK_NOTHROW(cuda::conv2d_forward(x, w, nullptr, same, y));
    Tensor<float> dw = poisoned_on_device<float>(w.shape()), db = poisoned_on_device<float>(Shape{4});
    cuda::conv2d_backward(x, w, y, same, nullptr, &dw, &db);
    CHECK(relative_difference(dw, Tensor<double>(w.shape())) == 0);
    CHECK(relative_difference(db, Tensor<double>(Shape{4})) == 0);
}

TEST_CASE("conv2d on cuda rejects cpu tensors, wrong shapes and mixed devices", "[cuda][conv2d]") {
    const ConvParams same{1, 1, Padding::same};
    const Tensor<float> x_cpu = random_tensor<float>(Shape{1, 5, 5, 2}, 1);
    const Tensor<float> w_cpu = random_tensor<float>(Shape{3, 3, 2, 4}, 2);
    const Tensor<float> x = to_device(x_cpu, Device::cuda), w = to_device(w_cpu, Device::cuda);
    Tensor<float> y = to_device(Tensor<float>(Shape{1, 5, 5, 4}), Device::cuda);
    Tensor<float> y_cpu(Shape{1, 5, 5, 4});

    CHECK_THROWS_WITH(cuda::conv2d_forward(x_cpu, w, nullptr, same, y),
                      Catch::Contains("cuda::conv2d_forward: input of shape (1, 5, 5, 2) is on cpu"));
    CHECK_THROWS_WITH(cuda::conv2d_forward(x, w_cpu, nullptr, same, y),
                      Catch::Contains("cuda::conv2d_forward: weights of shape (3, 3, 2, 4) is on cpu"));
    CHECK_THROWS_WITH(cuda::conv2d_forward(x, w, nullptr, same, y_cpu),
                      Catch::Contains("cuda::conv2d_forward: output of shape (1, 5, 5, 4) is on cpu"));

    const Tensor<float> w_wrong = to_device(Tensor<float>(Shape{3, 3, 3, 4}), Device::cuda);
    CHECK_THROWS_WITH(cuda::conv2d_forward(x, w_wrong, nullptr, same, y),
                      Catch::Contains("cuda::conv2d_forward: weights (3, 3, 3, 4) expect 3 input channels, input "
                                      "(1, 5, 5, 2) has 2"));
    Tensor<float> y_wrong = to_device(Tensor<float>(Shape{1, 3, 3, 4}), Device::cuda);
    CHECK_THROWS_WITH(cuda::conv2d_forward(x, w, nullptr, same, y_wrong),
                      Catch::Contains("cuda::conv2d_forward: output has shape (1, 3, 3, 4), expected (1, 5, 5, 4)"));
    const Tensor<float> b_wrong = to_device(Tensor<float>(Shape{3}), Device::cuda);
    CHECK_THROWS_WITH(cuda::conv2d_forward(x, w, &b_wrong, same, y),
                      Catch::Contains("cuda::conv2d_forward: bias has shape (3), expected (4)"));

    Tensor<float> dw_wrong = to_device(Tensor<float>(Shape{3, 3, 2, 5}), Device::cuda);
    CHECK_THROWS_WITH(
        cuda::conv2d_backward(x, w, y, same, nullptr, &dw_wrong, nullptr),
        Catch::Contains("cuda::conv2d_backward: weights gradient has shape (3, 3, 2, 5), expected (3, 3, 2, 4)"));
    Tensor<float> dx_wrong = to_device(Tensor<float>(Shape{1, 5, 5, 3}), Device::cuda);
    CHECK_THROWS_WITH(
        cuda::conv2d_backward(x, w, y, same, &dx_wrong, nullptr, nullptr),
        Catch::Contains("cuda::conv2d_backward: input gradient has shape (1, 5, 5, 3), expected (1, 5, 5, 2)"));
    CHECK_THROWS_WITH(
        cuda::conv2d_backward(x, w, y_wrong, same, nullptr, nullptr, nullptr),
        Catch::Contains("cuda::conv2d_backward: output gradient has shape (1, 3, 3, 4), expected (1, 5, 5, 4)"));

    const Tensor<float> b_cpu(Shape{4});
    CHECK_THROWS_WITH(backend::conv2d_forward(x, w, &b_cpu, same, y),
                      Catch::Contains("conv2d_forward: input is on cuda but bias is on cpu"));
    CHECK_THROWS_WITH(backend::conv2d_forward(x, w, nullptr, same, y_cpu),
                      Catch::Contains("conv2d_forward: input is on cuda but output is on cpu"));
}

// Dense on the GPU (cuBLAS) against the CPU kernel run in double: odd sizes,
// a single sample, no bias, the fused ReLU, subsets of the gradients, row
// views of wider buffers, an empty batch; and argument errors. Inputs are
// fresh random values on every run (the seed is printed with any failure);
// outputs are NaN-poisoned before the GPU writes them.
//
// Tolerances, as max |gpu - cpu| / max |cpu| over a whole tensor:
//   float  1e-4: cuBLAS sums in float in its own order (no TF32), depths up to 300.
//   double 1e-10.

#include <catch2/catch.hpp>

#include <cmath>

#include <bcnn/backend/dense.hpp>

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
    Index n, in, out;
    bool bias;
    cpu::ActivationFn activation;
};

const Case kCases[] = {
    {"odd sizes", 7, 13, 5, true, cpu::ActivationFn::linear},
    {"odd sizes, relu", 9, 31, 17, true, cpu::ActivationFn::relu},
    {"no bias", 4, 8, 3, false, cpu::ActivationFn::linear},
    {"no bias, relu", 5, 6, 11, false, cpu::ActivationFn::relu},
    {"one sample", 1, 300, 10, true, cpu::ActivationFn::linear},
    {"one input", 6, 1, 4, true, cpu::ActivationFn::relu},
    {"one unit", 33, 65, 1, true, cpu::ActivationFn::linear},
    {"classifier", 16, 256, 100, true, cpu::ActivationFn::linear},
};

// One case's random operands on the CPU, in T.
template <typename T>
struct Operands {
    Tensor<T> x, weights, bias, dy;
    Operands(const Case& c, std::uint64_t seed)
        : x(random_tensor<T>(Shape{c.n, c.in}, seed)),
          weights(random_tensor<T>(Shape{c.in, c.out}, seed + 1)),
          bias(random_tensor<T>(Shape{c.out}, seed + 2)),
          dy(random_tensor<T>(Shape{c.n, c.out}, seed + 3)) {}
};

// The CPU kernel's results in double on the same values.
struct Reference {
    Tensor<double> y, dx, d_weights, d_bias;
    template <typename T>
    Reference(const Case& c, const Operands<T>& o)
        : y(o.dy.shape()), dx(o.x.shape()), d_weights(o.weights.shape()), d_bias(o.bias.shape()) {
        const Tensor<double> x = cast<double>(o.x), w = cast<double>(o.weights), b = cast<double>(o.bias),
                             dy = cast<double>(o.dy);
        cpu::dense_forward(x, w, c.bias ? &b : nullptr, y, c.activation);
        cpu::dense_backward(x, w, dy, &dx, &d_weights, &d_bias);
    }
};

}  // namespace

TEMPLATE_TEST_CASE("dense on cuda matches the cpu kernel", "[cuda][dense]", float, double) {
    const std::uint64_t seed = fresh_seed();
    for (const Case& c : kCases) {
        CAPTURE(c.name, seed);
        const Operands<TestType> o(c, seed);
        const Reference expected(c, o);
        const Tensor<TestType> x = to_device(o.x, Device::cuda), w = to_device(o.weights, Device::cuda),
                               b = to_device(o.bias, Device::cuda), dy = to_device(o.dy, Device::cuda);
        Tensor<TestType> y = poisoned_on_device<TestType>(expected.y.shape());
        backend::dense_forward(x, w, c.bias ? &b : nullptr, y, c.activation);
        CHECK(relative_difference(y, expected.y) < library_tolerance<TestType>());

        Tensor<TestType> dx = poisoned_on_device<TestType>(o.x.shape()),
                         dw = poisoned_on_device<TestType>(o.weights.shape()),
                         db = poisoned_on_device<TestType>(o.bias.shape());
        backend::dense_backward(x, w, dy, &dx, &dw, &db);
        CHECK(relative_difference(dx, expected.dx) < library_tolerance<TestType>());
        CHECK(relative_difference(dw, expected.d_weights) < library_tolerance<TestType>());
        CHECK(relative_difference(db, expected.d_bias) < library_tolerance<TestType>());
    }
}

TEST_CASE("dense on cuda is deterministic", "[cuda][dense]") {
    const Case& c = kCases[7];
    const Operands<float> o(c, fresh_seed());
    const Tensor<float> x = to_device(o.x, Device::cuda), w = to_device(o.weights, Device::cuda),
                        dy = to_device(o.dy, Device::cuda);
    Tensor<float> dw1 = poisoned_on_device<float>(o.weights.shape()), db1 = poisoned_on_device<float>(o.bias.shape());
    Tensor<float> dw2 = poisoned_on_device<float>(o.weights.shape()), db2 = poisoned_on_device<float>(o.bias.shape());
    cuda::dense_backward(x, w, dy, nullptr, &dw1, &db1);
    cuda::dense_backward(x, w, dy, nullptr, &dw2, &db2);
    CHECK(bcnn::testing::first_bit_difference(dw1, to_device(dw2, Device::cpu)) == "");
    CHECK(bcnn::testing::first_bit_difference(db1, to_device(db2, Device::cpu)) == "");
}

TEST_CASE("dense_backward on cuda computes only the gradients asked for", "[cuda][dense]") {
    const std::uint64_t seed = fresh_seed();
    const Case& c = kCases[1];
    CAPTURE(c.name, seed);
    const Operands<float> o(c, seed);
    const Reference expected(c, o);
    const Tensor<float> x = to_device(o.x, Device::cuda), w = to_device(o.weights, Device::cuda),
                        dy = to_device(o.dy, Device::cuda);
    for (int wanted = 0; wanted < 8; ++wanted) {
        CAPTURE(wanted);
        Tensor<float> dx = poisoned_on_device<float>(o.x.shape()), dw = poisoned_on_device<float>(o.weights.shape()),
                      db = poisoned_on_device<float>(o.bias.shape());
        cuda::dense_backward(x, w, dy, wanted & 1 ? &dx : nullptr, wanted & 2 ? &dw : nullptr,
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

TEST_CASE("dense on cuda reads and writes row views of wider device buffers", "[cuda][dense]") {
    const std::uint64_t seed = fresh_seed();
    const Case& c = kCases[1];
    CAPTURE(c.name, seed);
    const Operands<float> o(c, seed);
    const Reference expected(c, o);
    // x at columns 2.. of a buffer 3 wider, dy at 1.. of a buffer 2 wider, the
    // weights at 1.. of a buffer 4 wider; y written at 1.. and dx at 0.. of
    // buffers 3 wider, pre-filled with -7.
    const Tensor<float> x_wide = random_tensor<float>(Shape{c.n, c.in + 3}, seed + 5);
    x_wide.channels(2, 2 + c.in).copy_from(o.x);
    const Tensor<float> dy_wide = random_tensor<float>(Shape{c.n, c.out + 2}, seed + 6);
    dy_wide.channels(1, 1 + c.out).copy_from(o.dy);
    const Tensor<float> w_wide = random_tensor<float>(Shape{c.in, c.out + 4}, seed + 7);
    w_wide.channels(1, 1 + c.out).copy_from(o.weights);
    const Tensor<float> x = to_device(x_wide, Device::cuda).channels(2, 2 + c.in);
    const Tensor<float> dy = to_device(dy_wide, Device::cuda).channels(1, 1 + c.out);
    const Tensor<float> w = to_device(w_wide, Device::cuda).channels(1, 1 + c.out);
    const Tensor<float> b = to_device(o.bias, Device::cuda);

    Tensor<float> y_wide = to_device(Tensor<float>(Shape{c.n, c.out + 3}, -7.f), Device::cuda);
    Tensor<float> y = y_wide.channels(1, 1 + c.out);
    cuda::dense_forward(x, w, &b, y, c.activation);
    CHECK(relative_difference(y, expected.y) < library_tolerance<float>());

    Tensor<float> dx_wide = to_device(Tensor<float>(Shape{c.n, c.in + 3}, -7.f), Device::cuda);
    Tensor<float> dx = dx_wide.channels(0, c.in);
    Tensor<float> dw = poisoned_on_device<float>(o.weights.shape()), db = poisoned_on_device<float>(o.bias.shape());
    cuda::dense_backward(x, w, dy, &dx, &dw, &db);
    CHECK(relative_difference(dx, expected.dx) < library_tolerance<float>());
    CHECK(relative_difference(dw, expected.d_weights) < library_tolerance<float>());
    CHECK(relative_difference(db, expected.d_bias) < library_tolerance<float>());

    // Columns outside the views are untouched.
    const Tensor<float> y_host = to_device(y_wide, Device::cpu), dx_host = to_device(dx_wide, Device::cpu);
    Index touched = 0;
    for (Index r = 0; r < c.n; ++r) {
        for (Index j = 0; j < c.out + 3; ++j) touched += (j < 1 || j >= 1 + c.out) && y_host(r, j) != -7.f;
        for (Index j = c.in; j < c.in + 3; ++j) touched += dx_host(r, j) != -7.f;
    }
    CHECK(touched == 0);
}

TEST_CASE("dense on cuda with an empty batch writes zero parameter gradients", "[cuda][dense]") {
    const Tensor<float> x = to_device(Tensor<float>(Shape{0, 5}), Device::cuda);
    const Tensor<float> w = to_device(random_tensor<float>(Shape{5, 3}, fresh_seed()), Device::cuda);
    const Tensor<float> b = to_device(random_tensor<float>(Shape{3}, 7), Device::cuda);
    Tensor<float> y = to_device(Tensor<float>(Shape{0, 3}), Device::cuda);
    CHECK_NOTHROW(cuda::dense_forward(x, w, &b, y, cpu::ActivationFn::relu));
    Tensor<float> dw = poisoned_on_device<float>(w.shape()), db = poisoned_on_device<float>(Shape{3});
    cuda::dense_backward(x, w, y, nullptr, &dw, &db);
    CHECK(relative_difference(dw, Tensor<double>(w.shape())) == 0);
    CHECK(relative_difference(db, Tensor<double>(Shape{3})) == 0);
}

TEST_CASE("dense on cuda rejects cpu tensors, wrong shapes and mixed devices", "[cuda][dense]") {
    const Tensor<float> x_cpu = random_tensor<float>(Shape{2, 3}, 1), w_cpu = random_tensor<float>(Shape{3, 4}, 2);
    const Tensor<float> x = to_device(x_cpu, Device::cuda), w = to_device(w_cpu, Device::cuda);
    Tensor<float> y = to_device(Tensor<float>(Shape{2, 4}), Device::cuda);
    Tensor<float> y_cpu(Shape{2, 4});

    CHECK_THROWS_WITH(cuda::dense_forward(x_cpu, w, nullptr, y),
                      Catch::Contains("cuda::dense_forward: input of shape (2, 3) is on cpu"));
    CHECK_THROWS_WITH(cuda::dense_forward(x, w_cpu, nullptr, y),
                      Catch::Contains("cuda::dense_forward: weights of shape (3, 4) is on cpu"));
    CHECK_THROWS_WITH(cuda::dense_forward(x, w, nullptr, y_cpu),
                      Catch::Contains("cuda::dense_forward: output of shape (2, 4) is on cpu"));
    const Tensor<float> w_wrong = to_device(Tensor<float>(Shape{4, 4}), Device::cuda);
    CHECK_THROWS_WITH(cuda::dense_forward(x, w_wrong, nullptr, y),
                      Catch::Contains("cuda::dense_forward: input (2, 3) does not match weights (4, 4) "
                                      "(expected (3, units))"));
    const Tensor<float> x_rank3 = to_device(Tensor<float>(Shape{2, 3, 1}), Device::cuda);
    CHECK_THROWS_WITH(cuda::dense_forward(x_rank3, w, nullptr, y),
                      Catch::Contains("cuda::dense_forward: input must have rank 2, got shape (2, 3, 1)"));
    Tensor<float> y_wrong = to_device(Tensor<float>(Shape{2, 5}), Device::cuda);
    CHECK_THROWS_WITH(cuda::dense_forward(x, w, nullptr, y_wrong),
                      Catch::Contains("cuda::dense_forward: output has shape (2, 5), expected (2, 4)"));
    const Tensor<float> b_wrong = to_device(Tensor<float>(Shape{3}), Device::cuda);
    CHECK_THROWS_WITH(cuda::dense_forward(x, w, &b_wrong, y),
                      Catch::Contains("cuda::dense_forward: bias has shape (3), expected (4)"));

    Tensor<float> dw_wrong = to_device(Tensor<float>(Shape{3, 5}), Device::cuda);
    CHECK_THROWS_WITH(cuda::dense_backward(x, w, y, nullptr, &dw_wrong, nullptr),
                      Catch::Contains("cuda::dense_backward: weights gradient has shape (3, 5), expected (3, 4)"));
    CHECK_THROWS_WITH(cuda::dense_backward(x, w, y_wrong, nullptr, nullptr, nullptr),
                      Catch::Contains("cuda::dense_backward: output gradient has shape (2, 5), expected (2, 4)"));
    Tensor<float> dx_wrong = to_device(Tensor<float>(Shape{2, 4}), Device::cuda);
    CHECK_THROWS_WITH(cuda::dense_backward(x, w, y, &dx_wrong, nullptr, nullptr),
                      Catch::Contains("cuda::dense_backward: input gradient has shape (2, 4), expected (2, 3)"));

    const Tensor<float> b_cpu(Shape{4});
    CHECK_THROWS_WITH(backend::dense_forward(x, w, &b_cpu, y),
                      Catch::Contains("dense_forward: input is on cuda but bias is on cpu"));
    CHECK_THROWS_WITH(backend::dense_forward(x, w, nullptr, y_cpu),
                      Catch::Contains("dense_forward: input is on cuda but output is on cpu"));
    Tensor<float> db_cpu(Shape{4});
    CHECK_THROWS_WITH(backend::dense_backward(x, w, y, nullptr, nullptr, &db_cpu),
                      Catch::Contains("dense_backward: input is on cuda but bias gradient is on cpu"));
}

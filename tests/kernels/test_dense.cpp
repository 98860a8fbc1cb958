// dense kernel: forward against a reference loop, gradients by finite differences.

#include <catch2/catch.hpp>

#include <bcnn/kernels/cpu/dense.hpp>

#include "support/gradcheck.hpp"
#include "support/random.hpp"

using namespace bcnn;
using bcnn::testing::random_tensor;

namespace {

// y[n][o] = b[o] + sum_i x[n][i] * w[i][o]
Tensor<double> dense_reference(const Tensor<double>& x, const Tensor<double>& w, const Tensor<double>& b) {
    Tensor<double> y(Shape{x.dim(0), w.dim(1)});
    for (Index n = 0; n < x.dim(0); ++n)
        for (Index o = 0; o < w.dim(1); ++o) {
            double sum = b(o);
            for (Index i = 0; i < x.dim(1); ++i) sum += x(n, i) * w(i, o);
            y(n, o) = sum;
        }
    return y;
}

}  // namespace

TEST_CASE("dense_forward matches a reference loop", "[kernels][dense]") {
    for (auto [n, in, out] : {std::tuple<Index, Index, Index>{1, 1, 1}, {3, 7, 5}, {32, 65, 17}}) {
        const auto x = random_tensor<double>(Shape{n, in}, 1), w = random_tensor<double>(Shape{in, out}, 2);
        const auto b = random_tensor<double>(Shape{out}, 3);
        Tensor<double> y(Shape{n, out});
        cpu::dense_forward(x, w, &b, y);
        CHECK(testing::max_abs_diff(y, dense_reference(x, w, b)) < 1e-12);
    }
}

TEST_CASE("dense_forward with a fused relu is relu of the reference", "[kernels][dense]") {
    const auto x = random_tensor<double>(Shape{7, 13}, 21), w = random_tensor<double>(Shape{13, 9}, 22);
    const auto b = random_tensor<double>(Shape{9}, 23);
    Tensor<double> expected = dense_reference(x, w, b);
    Index negatives = 0;
    for (Index i = 0; i < expected.numel(); ++i)
        if (expected.data()[i] < 0) {
            expected.data()[i] = 0;
            ++negatives;
        }
    REQUIRE(negatives > 0);  // the relu has something to do
    Tensor<double> y(Shape{7, 9});
    cpu::dense_forward(x, w, &b, y, cpu::ActivationFn::relu);
    CHECK(testing::max_abs_diff(y, expected) < 1e-12);
}

TEST_CASE("dense_forward in float matches the double reference", "[kernels][dense]") {
    const auto x = random_tensor<float>(Shape{9, 33}, 4), w = random_tensor<float>(Shape{33, 11}, 5);
    const auto b = random_tensor<float>(Shape{11}, 6);
    Tensor<float> y(Shape{9, 11});
    cpu::dense_forward(x, w, &b, y);
    Tensor<double> xd(x.shape()), wd(w.shape()), bd(b.shape());
    for (Index i = 0; i < x.numel(); ++i) xd.data()[i] = x.data()[i];
    for (Index i = 0; i < w.numel(); ++i) wd.data()[i] = w.data()[i];
    for (Index i = 0; i < b.numel(); ++i) bd.data()[i] = b.data()[i];
    const auto reference = dense_reference(xd, wd, bd);
    for (Index i = 0; i < y.numel(); ++i) CHECK(std::abs(y.data()[i] - reference.data()[i]) < 1e-5);
}

TEST_CASE("dense_backward matches finite differences", "[kernels][dense][gradcheck]") {
    const Index n = 4, in = 6, out = 3;
    auto x = random_tensor<double>(Shape{n, in}, 7), w = random_tensor<double>(Shape{in, out}, 8);
    auto b = random_tensor<double>(Shape{out}, 9);
    const auto upstream = random_tensor<double>(Shape{n, out}, 10);
    auto forward = [&] {
        Tensor<double> y(Shape{n, out});
        cpu::dense_forward(x, w, &b, y);
        return y;
    };
    Tensor<double> dx(x.shape()), dw(w.shape()), db(b.shape());
    cpu::dense_backward(x, w, upstream, &dx, &dw, &db);
    CHECK(testing::relative_error(dx, testing::numerical_gradient(x, forward, upstream)) < 1e-6);
    CHECK(testing::relative_error(dw, testing::numerical_gradient(w, forward, upstream)) < 1e-6);
    CHECK(testing::relative_error(db, testing::numerical_gradient(b, forward, upstream)) < 1e-6);
}

TEST_CASE("dense writes into a column slice of a wider buffer", "[kernels][dense]") {
    const auto x = random_tensor<double>(Shape{5, 4}, 11), w = random_tensor<double>(Shape{4, 3}, 12);
    Tensor<double> wide(Shape{5, 8}, -7.0);
    Tensor<double> slice = wide.channels(2, 5);
    cpu::dense_forward(x, w, nullptr, slice);
    const auto reference = dense_reference(x, w, Tensor<double>(Shape{3}));
    for (Index r = 0; r < 5; ++r) {
        for (Index c = 0; c < 3; ++c) CHECK(std::abs(wide(r, c + 2) - reference(r, c)) < 1e-12);
        CHECK(wide(r, 0) == -7.0);
        CHECK(wide(r, 7) == -7.0);
    }
}

TEST_CASE("dense rejects mismatched shapes naming them", "[kernels][dense][errors]") {
    const Tensor<float> x(Shape{2, 5}), w(Shape{4, 3});
    Tensor<float> y(Shape{2, 3});
    CHECK_THROWS_WITH(cpu::dense_forward(x, w, nullptr, y),
                      Catch::Contains("input (2, 5) does not match weights (4, 3)"));
    const Tensor<float> w_ok(Shape{5, 3}), bias(Shape{4});
    CHECK_THROWS_WITH(cpu::dense_forward(x, w_ok, &bias, y), Catch::Contains("bias has shape (4), expected (3)"));
    Tensor<float> y_bad(Shape{3, 3});
    CHECK_THROWS_WITH(cpu::dense_forward(x, w_ok, nullptr, y_bad),
                      Catch::Contains("output has shape (3, 3), expected (2, 3)"));
}

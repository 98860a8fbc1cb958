// elementwise kernels: add, add_inplace, scale_inplace against reference loops, on views.

#include <catch2/catch.hpp>

#include <bcnn/kernels/cpu/elementwise.hpp>

#include "support/gradcheck.hpp"
#include "support/random.hpp"

using namespace bcnn;
using bcnn::testing::random_tensor;

TEST_CASE("add matches a reference loop on several shapes", "[kernels][elementwise]") {
    // The last shape has more elements than the serial threshold, so the parallel path runs too.
    for (const Shape& shape : {Shape{1}, Shape{7, 3}, Shape{3, 5, 7, 2}, Shape{2, 131, 129, 3}}) {
        const auto a = random_tensor<double>(shape, 1), b = random_tensor<double>(shape, 2);
        Tensor<double> y(shape);
        cpu::add(a, b, y);
        Tensor<double> reference(shape);
        for (Index i = 0; i < shape.numel(); ++i) reference.data()[i] = a.data()[i] + b.data()[i];
        CHECK(testing::max_abs_diff(y, reference) == 0);
    }
}

TEST_CASE("add may write into one of its inputs", "[kernels][elementwise]") {
    auto a = random_tensor<double>(Shape{4, 5}, 3);
    const auto b = random_tensor<double>(Shape{4, 5}, 4);
    const auto expected = a.to_vector();
    cpu::add(a, b, a);
    const auto bv = b.to_vector(), result = a.to_vector();
    for (std::size_t i = 0; i < result.size(); ++i) CHECK(result[i] == expected[i] + bv[i]);
}

TEST_CASE("add_inplace accumulates into a channel slice and leaves its neighbours alone", "[kernels][elementwise]") {
    Tensor<float> wide = random_tensor<float>(Shape{2, 3, 5, 9}, 5);
    const Tensor<float> before = wide.clone();
    const Tensor<float> source_wide = random_tensor<float>(Shape{2, 3, 5, 6}, 6);
    Tensor<float> slice = wide.channels(3, 7);
    const Tensor<float> addend = source_wide.channels(1, 5);  // a view as the addend too
    cpu::add_inplace(slice, addend);
    for (Index n = 0; n < 2; ++n)
        for (Index h = 0; h < 3; ++h)
            for (Index w = 0; w < 5; ++w)
                for (Index c = 0; c < 9; ++c) {
                    const bool inside = c >= 3 && c < 7;
                    const float expected =
                        inside ? before(n, h, w, c) + source_wide(n, h, w, c - 2) : before(n, h, w, c);
                    REQUIRE(wide(n, h, w, c) == expected);
                }
}

TEST_CASE("scale_inplace scales a slice only", "[kernels][elementwise]") {
    Tensor<double> wide = random_tensor<double>(Shape{4, 3, 6}, 7);
    const Tensor<double> before = wide.clone();
    Tensor<double> slice = wide.channels(2, 5);
    cpu::scale_inplace(slice, -0.375);
    for (Index i = 0; i < 4; ++i)
        for (Index j = 0; j < 3; ++j)
            for (Index c = 0; c < 6; ++c)
                CHECK(wide(i, j, c) == (c >= 2 && c < 5 ? before(i, j, c) * -0.375 : before(i, j, c)));
    Tensor<float> f(Shape{3}, 2.0f);
    cpu::scale_inplace(f, 0.5);  // a double literal converts to float
    CHECK(f.to_vector() == std::vector<float>{1.0f, 1.0f, 1.0f});
}

TEST_CASE("add_inplace and scale_inplace on large contiguous tensors match reference loops",
          "[kernels][elementwise]") {
    // Several spans of consecutive elements, the last one partial; float and double.
    const Shape shape{2, 83, 79, 5};
    const auto y = random_tensor<double>(shape, 8), x = random_tensor<double>(shape, 9);
    Tensor<double> sum = y.clone();
    cpu::add_inplace(sum, x);
    cpu::scale_inplace(sum, 0.75);
    const std::vector<double> yv = y.to_vector(), xv = x.to_vector();
    std::vector<double> expected(yv.size());
    std::vector<float> expected_float(yv.size());
    for (std::size_t i = 0; i < yv.size(); ++i) {
        expected[i] = (yv[i] + xv[i]) * 0.75;
        expected_float[i] = (static_cast<float>(yv[i]) + static_cast<float>(xv[i])) * -2.0f;
    }
    CHECK(sum.to_vector() == expected);
    auto yf = Tensor<float>::from_vector(shape, std::vector<float>(yv.begin(), yv.end()));
    const auto xf = Tensor<float>::from_vector(shape, std::vector<float>(xv.begin(), xv.end()));
    cpu::add_inplace(yf, xf);
    cpu::scale_inplace(yf, -2.0f);
    CHECK(yf.to_vector() == expected_float);
}

TEST_CASE("elementwise kernels reject mismatched shapes naming them", "[kernels][elementwise][errors]") {
    const Tensor<float> a(Shape{2, 3}), b(Shape{3, 2});
    Tensor<float> y(Shape{2, 3});
    CHECK_THROWS_WITH(cpu::add(a, b, y), Catch::Contains("add: b has shape (3, 2), expected (2, 3)"));
    Tensor<float> y_bad(Shape{2, 4});
    CHECK_THROWS_WITH(cpu::add(a, a, y_bad), Catch::Contains("add: output has shape (2, 4), expected (2, 3)"));
    CHECK_THROWS_WITH(cpu::add_inplace(y, b), Catch::Contains("add_inplace: addend has shape (3, 2), expected (2, 3)"));
    Tensor<float> empty;
    CHECK_THROWS_WITH(cpu::scale_inplace(empty, 2.0f), Catch::Contains("scale_inplace: tensor is an empty tensor"));
    // A slice along a middle axis cannot be walked as rows of one stride.
    Tensor<float> cube(Shape{2, 4, 3});
    Tensor<float> middle = cube.slice(1, 0, 2);
    const Tensor<float> other(Shape{2, 2, 3});
    CHECK_THROWS_WITH(cpu::add_inplace(middle, other), Catch::Contains("cannot be seen as rows of equal stride"));
}

// Tensor<T>: construction, alignment, views without copies, row views, errors.

#include <catch2/catch.hpp>

#include <cstdint>

#include <bcnn/core/tensor.hpp>

using namespace bcnn;

TEST_CASE("Shape counts elements and prints like Keras", "[core][shape]") {
    const Shape s{32, 150, 150, 3};
    CHECK(s.rank() == 4);
    CHECK(s.numel() == 32 * 150 * 150 * 3);
    CHECK(s.str() == "(32, 150, 150, 3)");
    CHECK(Shape{}.numel() == 1);
    CHECK(Shape{} .str() == "()");
    CHECK(Shape{4, 0}.numel() == 0);
    CHECK(Shape{2, 3} == Shape{2, 3});
    CHECK(Shape{2, 3} != Shape{3, 2});
    CHECK_THROWS_WITH((Shape{1, 2, 3, 4, 5, 6, 7, 8, 9}), Catch::Contains("exceeds the maximum 8"));
    CHECK_THROWS_WITH((Shape{2, -1}), Catch::Contains("negative extent -1"));
    CHECK_THROWS_WITH(s[4], Catch::Contains("axis 4 out of range for rank 4"));
}

TEST_CASE("Tensor allocates zeroed, 64-byte aligned (large: 2 MiB), contiguous memory", "[core][tensor]") {
    for (Index n : {1, 3, 17, 1000}) {
        const Tensor<float> t(Shape{n, 3});
        CHECK(reinterpret_cast<std::uintptr_t>(t.data()) % 64 == 0);
        CHECK(t.is_contiguous());
        CHECK(t.device() == Device::cpu);
        for (float v : t.to_vector()) CHECK(v == 0.0f);
    }
    // From 4 MiB on: aligned to 2 MiB huge pages (Storage), still zeroed and whole to the last value.
    for (Index values : {Index(1) << 20, (Index(5) << 20) / 4 + 3}) {
        CAPTURE(values);
        Tensor<float> large(Shape{values});
        CHECK(reinterpret_cast<std::uintptr_t>(large.data()) % (std::uintptr_t(2) << 20) == 0);
        CHECK(large.data()[values - 1] == 0.0f);
        large.data()[values - 1] = 1.0f;
        CHECK(large(values - 1) == 1.0f);
    }
    const Tensor<float> just_below(Shape{(Index(4) << 20) / 4 - 16});
    CHECK(reinterpret_cast<std::uintptr_t>(just_below.data()) % 64 == 0);
    const Tensor<double> filled(Shape{2, 2}, 1.5);
    CHECK(filled.to_vector() == std::vector<double>{1.5, 1.5, 1.5, 1.5});
    const Tensor<std::int32_t> labels(Shape{4}, 3);
    CHECK(labels(2) == 3);
    CHECK_FALSE(Tensor<float>().defined());
}

TEST_CASE("Tensor element access follows NHWC row-major order", "[core][tensor]") {
    std::vector<float> values(2 * 3 * 4 * 5);
    for (std::size_t i = 0; i < values.size(); ++i) values[i] = static_cast<float>(i);
    const auto t = Tensor<float>::from_vector(Shape{2, 3, 4, 5}, values);
    CHECK(t(1, 2, 3, 4) == 119.0f);
    CHECK(t(1, 0, 0, 0) == 60.0f);
    CHECK(t(0, 1, 0, 2) == 22.0f);
    CHECK(t.stride(0) == 60);
    CHECK(t.stride(-1) == 1);
    CHECK_THROWS_WITH(t(0, 3, 0, 0), Catch::Contains("index 3 out of range on axis 1 of shape (2, 3, 4, 5)"));
    CHECK_THROWS_WITH(t(0, 0, 0), Catch::Contains("3 indices for a tensor of shape (2, 3, 4, 5)"));
    CHECK_THROWS_WITH(Tensor<float>::from_vector(Shape{2, 2}, {1, 2, 3}), Catch::Contains("3 values for shape (2, 2)"));
}

TEST_CASE("Views share storage and never copy", "[core][tensor]") {
    Tensor<float> t(Shape{2, 3, 3, 8});
    const Tensor<float> slice = t.channels(2, 5);
    CHECK(slice.shape() == Shape{2, 3, 3, 3});
    CHECK_FALSE(slice.is_contiguous());
    CHECK(slice.data() == t.data() + 2);
    slice(1, 2, 2, 0) = 7.0f;
    CHECK(t(1, 2, 2, 2) == 7.0f);

    const Tensor<float> batch = t.slice(0, 1, 2);
    CHECK(batch.is_contiguous());
    CHECK(batch.data() == t.data() + 72);

    const Tensor<float> flat = t.reshape(Shape{2, 72});
    CHECK(flat.data() == t.data());
    CHECK(flat(1, 8 * 8 + 2) == 7.0f);
    CHECK_THROWS_WITH(slice.reshape(Shape{2, 27}), Catch::Contains("is a strided view; clone() it first"));
    CHECK_THROWS_WITH(t.reshape(Shape{5, 5}), Catch::Contains("cannot view (2, 3, 3, 8) as (5, 5)"));
    CHECK_THROWS_WITH(t.slice(3, 4, 9), Catch::Contains("[4, 9) outside axis 3 of shape (2, 3, 3, 8)"));
}

TEST_CASE("clone and copy_from copy elements, views included", "[core][tensor]") {
    std::vector<double> values(24);
    for (std::size_t i = 0; i < values.size(); ++i) values[i] = static_cast<double>(i);
    const auto t = Tensor<double>::from_vector(Shape{2, 3, 4}, values);
    const auto copy = t.channels(1, 3).clone();
    CHECK(copy.is_contiguous());
    CHECK(copy.shape() == Shape{2, 3, 2});
    CHECK(copy(1, 2, 1) == t(1, 2, 2));
    copy(0, 0, 0) = -1;
    CHECK(t(0, 0, 1) == 1.0);  // deep copy

    Tensor<double> wide(Shape{2, 3, 6});
    Tensor<double> right = wide.channels(4, 6);
    right.copy_from(copy);
    CHECK(wide(1, 2, 5) == t(1, 2, 2));
    CHECK(wide(1, 2, 3) == 0.0);
    CHECK_THROWS_WITH(right.copy_from(t), Catch::Contains("shape (2, 3, 4) into (2, 3, 2)"));

    right.fill(9.0);
    CHECK(wide(0, 1, 4) == 9.0);
    CHECK(wide(0, 1, 3) == 0.0);
}

TEST_CASE("as_rows sees NHWC tensors and channel slices as strided row matrices", "[core][tensor]") {
    const Tensor<float> t(Shape{2, 3, 4, 10});
    const auto full = t.as_rows();
    CHECK(full.rows == 24);
    CHECK(full.cols == 10);
    CHECK(full.ld == 10);

    const auto slice = t.channels(3, 7).as_rows();
    CHECK(slice.rows == 24);
    CHECK(slice.cols == 4);
    CHECK(slice.ld == 10);
    CHECK(slice.data == t.data() + 3);

    // A single column of pixels: the width axis has extent 1 and no stride to honour.
    const auto column = t.slice(2, 1, 2).as_rows();
    CHECK(column.rows == 6);
    CHECK(column.ld == 40);
    CHECK(column.data == t.data() + 10);

    // A window of rows and columns has gaps between image rows: not a uniform row matrix.
    CHECK_THROWS_WITH(t.slice(2, 0, 2).as_rows("window"),
                      Catch::Contains("window: shape (2, 3, 2, 10) with strides (120, 40, 10, 1) cannot be seen as rows"));
}

// Column sums (column_sums.hpp): per-chunk partial sums on cache lines of
// their own, added in chunk order; sum_rows against a plain loop.

#include <catch2/catch.hpp>

#include <cstdint>
#include <vector>

#include <bcnn/kernels/cpu/column_sums.hpp>

#include "support/random.hpp"

using namespace bcnn;
using bcnn::testing::random_tensor;

namespace {

template <typename S>
std::uintptr_t address_of(const S* p) {
    return reinterpret_cast<std::uintptr_t>(p);
}

}  // namespace

TEMPLATE_TEST_CASE("ChunkPartials gives each chunk zeroed values on cache lines of its own", "[kernels][column_sums]",
                   float, double) {
    for (const Index width : {1, 3, 16, 17, 40}) {
        const Index chunks = 5;
        cpu::detail::ChunkPartials<TestType> partials(chunks, width);
        for (Index chunk = 0; chunk < chunks; ++chunk) {
            const TestType* values = partials.chunk(chunk);
            CHECK(address_of(values) % cpu::detail::kCacheLineBytes == 0);
            for (Index j = 0; j < width; ++j) CHECK(values[j] == TestType(0));
            if (chunk > 0) {  // the previous chunk's last value lies on an earlier line
                const std::uintptr_t previous_end = address_of(partials.chunk(chunk - 1) + width - 1);
                CHECK(previous_end / cpu::detail::kCacheLineBytes < address_of(values) / cpu::detail::kCacheLineBytes);
            }
        }
        // Chunk c holds (c + 1) * (j + 1): writes to one chunk never reach another.
        for (Index chunk = 0; chunk < chunks; ++chunk)
            for (Index j = 0; j < width; ++j) partials.chunk(chunk)[j] = TestType((chunk + 1) * (j + 1));
        std::vector<TestType> out(static_cast<std::size_t>(width), TestType(-7));
        partials.add_in_order(chunks, out.data());
        for (Index j = 0; j < width; ++j) CHECK(out[static_cast<std::size_t>(j)] == TestType(15 * (j + 1)));
    }
}

TEST_CASE("ChunkPartials adds the chunks in chunk order", "[kernels][column_sums]") {
    // 1 + 1e8 - 1e8 is 0 in float when added left to right (1 is lost), 1 in another order.
    cpu::detail::ChunkPartials<float> partials(3, 1);
    partials.chunk(0)[0] = 1.0f;
    partials.chunk(1)[0] = 1e8f;
    partials.chunk(2)[0] = -1e8f;
    float out = 5.0f;
    partials.add_in_order(3, &out);
    CHECK(out == 0.0f);
}

TEMPLATE_TEST_CASE("sum_rows matches a plain loop over the rows, slices included", "[kernels][column_sums]", float,
                   double) {
    for (const Index rows : {0, 1, 255, 256, 1000, 5000}) {
        const Tensor<TestType> m = random_tensor<TestType>(Shape{rows, 24}, static_cast<std::uint64_t>(rows + 1));
        for (const Index cols : {24, 16, 5}) {  // the first `cols` columns: a slice when cols < 24
            const RowMatrix<TestType> view{m.data(), rows, cols, 24};
            std::vector<TestType> got(static_cast<std::size_t>(cols), TestType(3));
            cpu::detail::sum_rows(view, got.data());
            for (Index c = 0; c < cols; ++c) {
                double expected = 0;
                for (Index r = 0; r < rows; ++r) expected += view.row(r)[c];
                CHECK(got[static_cast<std::size_t>(c)] == Approx(expected).epsilon(1e-5).margin(1e-4));
            }
        }
    }
}

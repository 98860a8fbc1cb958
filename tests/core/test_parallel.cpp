// parallel_for / parallel_chunks: full coverage, fixed splits, thread settings.

#include <catch2/catch.hpp>

#include <bcnn/core/parallel.hpp>
#include <bcnn/core/tensor.hpp>

using namespace bcnn;

TEST_CASE("parallel_for visits every index once", "[core][parallel]") {
    Tensor<std::int32_t> hits(Shape{1001});
    parallel_for(0, 1001, [&](Index i) { hits.data()[i] += 1; });
    for (std::int32_t h : hits.to_vector()) CHECK(h == 1);
}

TEST_CASE("parallel_chunks splits depend only on count and parts", "[core][parallel]") {
    std::vector<std::pair<Index, Index>> chunks(3);
    parallel_chunks(10, 3, [&](int part, Index first, Index last) { chunks[part] = {first, last}; });
    CHECK(chunks == std::vector<std::pair<Index, Index>>{{0, 3}, {3, 6}, {6, 10}});

    int calls = 0;
    parallel_chunks(2, 8, [&](int, Index first, Index last) {
#pragma omp atomic
        calls += static_cast<int>(last - first);
    });
    CHECK(calls == 2);
}

TEST_CASE("set_num_threads validates and applies", "[core][parallel]") {
    const int saved = num_threads();
    set_num_threads(1);
    CHECK(num_threads() == 1);
    set_num_threads(saved);
    CHECK_THROWS_WITH(set_num_threads(0), Catch::Contains("need at least one thread, got 0"));
}

#pragma once
// Thread control and a static parallel loop over OpenMP. Work is split the
// same way for the same thread count, so results are reproducible.

#include <algorithm>

#include "bcnn/core/shape.hpp"

#ifdef _OPENMP
#include <omp.h>
#endif

namespace bcnn {

// Threads used by bcnn's kernels and GEMM (OpenMP).
inline void set_num_threads(int threads) {
    BCNN_CHECK(threads >= 1, "set_num_threads: need at least one thread, got " << threads);
#ifdef _OPENMP
    omp_set_num_threads(threads);
#endif
}

inline int num_threads() {
#ifdef _OPENMP
    return omp_get_max_threads();
#else
    return 1;
#endif
}

// Calls body(i) for i in [begin, end), statically split across threads.
// Runs serially when the range is tiny or when already inside a parallel region.
template <typename Body>
void parallel_for(Index begin, Index end, Body body) {
#ifdef _OPENMP
    if (end - begin > 1 && !omp_in_parallel()) {
#pragma omp parallel for schedule(static)
        for (Index i = begin; i < end; ++i) body(i);
        return;
    }
#endif
    for (Index i = begin; i < end; ++i) body(i);
}

// Splits [0, count) into `parts` contiguous chunks; calls body(part, first, last).
// The split depends only on count and parts, never on timing.
template <typename Body>
void parallel_chunks(Index count, int parts, Body body) {
    parts = static_cast<int>(std::max<Index>(1, std::min<Index>(parts, count)));
    parallel_for(0, parts, [&](Index part) {
        const Index first = count * part / parts;
        const Index last = count * (part + 1) / parts;
        body(static_cast<int>(part), first, last);
    });
}

}  // namespace bcnn

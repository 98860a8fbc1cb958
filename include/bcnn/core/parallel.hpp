#pragma once
// Thread control and parallel loops over OpenMP. Work is split into chunks
// that depend only on the sizes the caller gives (and, where a kernel asks
// for chunks_per_team() parts, on the thread count), never on timing, so
// results are reproducible; which thread runs a chunk is decided at run time
// (dynamic schedule), so a thread that finishes early takes the next chunk.
// With one fixed half each, the two threads of a custom-CNN training step
// each spent 7-10% of it waiting for the other at the end of loops (perf,
// 2 vCPUs whose speeds drift apart); now one chunk at most.

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

// Chunks a parallel loop is cut into per thread: enough that the threads
// finish within a small fraction of the loop of each other, few enough that
// handing them out (one atomic add each) costs nothing measurable.
constexpr int kChunksPerThread = 8;

// Parts to cut divisible work into for bcnn's threads: kChunksPerThread
// per thread (1 without OpenMP). Kernels whose partial sums are per part
// therefore give results that depend on the thread count only.
inline int chunks_per_team() { return kChunksPerThread * num_threads(); }

// Calls body(i) for i in [begin, end) across the threads, in runs of
// consecutive indices (about kChunksPerThread runs per thread) handed to
// whichever thread is free. body(i) must not depend on which thread runs it.
// Runs serially when the range is tiny or when already inside a parallel region.
template <typename Body>
void parallel_for(Index begin, Index end, Body body) {
#ifdef _OPENMP
    if (end - begin > 1 && !omp_in_parallel()) {
        const Index run = std::max<Index>(1, (end - begin) / chunks_per_team());
#pragma omp parallel for schedule(dynamic, run)
        for (Index i = begin; i < end; ++i) body(i);
        return;
    }
#endif
    for (Index i = begin; i < end; ++i) body(i);
}

// Splits [0, count) into `parts` contiguous chunks; calls body(part, first, last).
// The split depends only on count and parts, never on timing; the chunks go
// to whichever thread is free, so pass more parts than threads
// (chunks_per_team()) where chunks can be uneven in time.
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

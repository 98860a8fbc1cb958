#pragma once
// Per-column sums over the rows of a matrix (a bias gradient: the sum of dy
// over every pixel of a channel), deterministic for a given thread count.
// The rows are cut into chunks (at least kMinRowsPerChunk rows each, at most
// chunks_per_team()); each chunk adds its rows in order into partial sums of its
// own, and the partials are added in chunk order.
// Each chunk's partial sums sit on cache lines of their own (ChunkPartials):
// two threads adding rows into sums that share a line make the line move
// between their cores on every row. With 16 float columns (64 bytes, from a
// 16-byte aligned vector) that made the sums of a (32, 150, 150, 16) tensor
// take 12.8 ms on 2 threads against 5.5 ms on one.
//   sum_rows(m, out)                       out[c] = sum over rows r of m.row(r)[c]
//   sum_rows_of(rows, cols, add_rows, out) the same for rows that
//                                          add_rows(first, last, sum) computes and
//                                          adds itself (a fused pass that also
//                                          writes the rows elsewhere)
//   accumulate_rows(m, first, last, sums)  sums[c] += m.row(r)[c] for rows [first, last),
//                                          in order, on this thread (one chunk's part)

#include <algorithm>
#include <cstdint>
#include <vector>

#include "bcnn/core/parallel.hpp"
#include "bcnn/core/row_matrix.hpp"

namespace bcnn {
namespace cpu {
namespace detail {

// Fewer rows than this per chunk would cost more in partial sums than they save.
constexpr Index kMinRowsPerChunk = 256;

// Bytes of a cache line on the x86 and ARM servers this runs on.
constexpr Index kCacheLineBytes = 64;

// `chunks` zeroed blocks of `width` values of S, each starting on a cache line
// of its own, for per-chunk partial sums.
template <typename S>
class ChunkPartials {
public:
    ChunkPartials(Index chunks, Index width)
        : width_(width),
          stride_((width * Index(sizeof(S)) + kCacheLineBytes - 1) / kCacheLineBytes * kCacheLineBytes /
                  Index(sizeof(S))),
          storage_(static_cast<std::size_t>(chunks * stride_ + kCacheLineBytes / Index(sizeof(S))), S(0)) {
        const auto address = reinterpret_cast<std::uintptr_t>(storage_.data());
        const auto misalignment = static_cast<Index>(address % kCacheLineBytes);
        first_ = misalignment == 0 ? 0 : (kCacheLineBytes - misalignment) / Index(sizeof(S));
    }

    S* chunk(Index index) { return storage_.data() + first_ + index * stride_; }

    // out[j] (width values) = the sum of every chunk's j-th value, in chunk order.
    template <typename Out>
    void add_in_order(Index chunks, Out* out) {
        std::fill_n(out, width_, Out(0));
        for (Index index = 0; index < chunks; ++index) {
            const S* partial = chunk(index);
            for (Index j = 0; j < width_; ++j) out[j] += partial[j];
        }
    }

private:
    Index width_, stride_, first_ = 0;
    std::vector<S> storage_;
};

// out (cols values) = what add_rows(first, last, sum) adds to its `sum`
// (cols values, zero at the start) for each chunk [first, last) of the rows
// [0, rows), row after row.
template <typename T, typename AddRows>
void sum_rows_of(Index rows, Index cols, AddRows add_rows, T* out) {
    const int parts = static_cast<int>(std::clamp<Index>(rows / kMinRowsPerChunk, 1, chunks_per_team()));
    ChunkPartials<T> partials(parts, cols);
    parallel_chunks(rows, parts, [&](int part, Index first, Index last) { add_rows(first, last, partials.chunk(part)); });
    partials.add_in_order(parts, out);
}

// sums[c] += m.row(r)[c] for the rows [first, last), row after row.
template <typename T>
void accumulate_rows(const RowMatrix<T>& m, Index first, Index last, T* sums) {
    for (Index r = first; r < last; ++r) {
        const T* row = m.row(r);
        for (Index c = 0; c < m.cols; ++c) sums[c] += row[c];
    }
}

// out[c] = sum over rows r of m.row(r)[c]
template <typename T>
void sum_rows(const RowMatrix<T>& m, T* out) {
    sum_rows_of(m.rows, m.cols, [&](Index first, Index last, T* sum) { accumulate_rows(m, first, last, sum); }, out);
}

}  // namespace detail
}  // namespace cpu
}  // namespace bcnn

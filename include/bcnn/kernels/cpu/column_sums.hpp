#pragma once
// Per-column sums over the rows of a matrix (a bias gradient: the sum of dy
// over every pixel of a channel), deterministic for a given thread count.
// The rows are cut into chunks (at least kMinRowsPerChunk rows each, at most
// one per thread); each chunk adds its rows in order into partial sums of its
// own, and the partials are added in chunk order.
//   sum_rows(m, out)                       out[c] = sum over rows r of m.row(r)[c]
//   sum_rows_of(rows, cols, add_rows, out) the same for rows that
//                                          add_rows(first, last, sum) computes and
//                                          adds itself (a fused pass that also
//                                          writes the rows elsewhere)

#include <algorithm>
#include <vector>

#include "bcnn/core/parallel.hpp"
#include "bcnn/core/row_matrix.hpp"

namespace bcnn {
namespace cpu {
namespace detail {

// Fewer rows than this per chunk would cost more in partial sums than they save.
constexpr Index kMinRowsPerChunk = 256;

// out (cols values) = what add_rows(first, last, sum) adds to its `sum`
// (cols values, zero at the start) for each chunk [first, last) of the rows
// [0, rows), row after row.
template <typename T, typename AddRows>
void sum_rows_of(Index rows, Index cols, AddRows add_rows, T* out) {
    const int parts = static_cast<int>(std::clamp<Index>(rows / kMinRowsPerChunk, 1, num_threads()));
    std::vector<T> partial(static_cast<std::size_t>(parts * cols), T(0));
    parallel_chunks(rows, parts, [&](int part, Index first, Index last) {
        add_rows(first, last, partial.data() + part * cols);
    });
    std::fill_n(out, cols, T(0));
    for (int part = 0; part < parts; ++part)
        for (Index c = 0; c < cols; ++c) out[c] += partial[part * cols + c];
}

// out[c] = sum over rows r of m.row(r)[c]
template <typename T>
void sum_rows(const RowMatrix<T>& m, T* out) {
    sum_rows_of(
        m.rows, m.cols,
        [&](Index first, Index last, T* sum) {
            for (Index r = first; r < last; ++r) {
                const T* row = m.row(r);
                for (Index c = 0; c < m.cols; ++c) sum[c] += row[c];
            }
        },
        out);
}

}  // namespace detail
}  // namespace cpu
}  // namespace bcnn

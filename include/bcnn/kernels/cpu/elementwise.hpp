#pragma once
// Elementwise kernels for layers and optimisers, on tensors of any rank that
// may be channel-slice views of a wider buffer (rows with a leading dimension):
//   add(a, b, y)             y = a + b
//   add_inplace(y, x)        y += x     (gradient accumulation into slices)
//   scale_inplace(y, alpha)  y *= alpha
//   all_finite(x)            no element is inf or NaN (loss scaling's overflow check)
// An output may alias an input exactly (same data and strides), never partly.
// detail::for_each_row is the row loop that the other elementwise kernels
// (activation, dropout) share; detail::for_each_span the faster loop for
// kernels whose result does not depend on an element's position;
// detail::load_lanes/store_lanes move one simd::Vec of a row's channels
// (pooling, batch norm).

#include <algorithm>
#include <cmath>

#include "bcnn/core/parallel.hpp"
#include "bcnn/kernels/cpu/checks.hpp"
#include "bcnn/kernels/cpu/simd.hpp"

namespace bcnn {
namespace cpu {
namespace detail {

// Below this many elements one thread does the work: starting a parallel
// region would cost more than the loop.
constexpr Index kParallelMinElements = Index(1) << 15;

// Calls body(r) for r in [0, rows), in parallel when rows * cols elements pay for it.
template <typename Body>
void parallel_rows(Index rows, Index cols, Body body) {
    if (rows * cols < kParallelMinElements) {
        for (Index r = 0; r < rows; ++r) body(r);
        return;
    }
    parallel_for(0, rows, body);
}

// For an output and inputs of one shape (checked by the caller): calls
// fn(first, out, in..., cols) for each row, where `first` is the row-major
// index of the row's first element, `out` the output row and `in...` the
// matching input rows.
template <typename T, typename Fn, typename... Inputs>
void for_each_row(const char* op, const Tensor<T>& output, Fn fn, const Inputs&... inputs) {
    if (output.numel() == 0) return;
    const RowMatrix<T> out = output.as_rows(op);
    auto run = [&](const auto&... in) {
        parallel_rows(out.rows, out.cols, [&](Index r) {
            fn(r * out.cols, out.row(r), static_cast<const T*>(in.row(r))..., out.cols);
        });
    };
    run(inputs.as_rows(op)...);
}

// Elements per call of for_each_span's body on contiguous tensors (64 KiB of
// floats: long enough that the loop's setup vanishes, short enough to split
// evenly over the threads).
constexpr Index kSpanElements = Index(1) << 14;

// For an output and inputs of one shape (checked by the caller), for kernels
// that treat every element alike: calls fn(out, in..., count) on runs of
// `count` consecutive elements. When every tensor is contiguous the runs cut
// across rows (relu on (32, 150, 150, 16) makes 2,700 calls of 16,384 values
// instead of 720,000 calls of 16, a loop that vectorises without per-row
// overhead); otherwise (channel slices) each row is one run. Measured for
// relu_backward on that tensor, 1 thread, Zen 3 (thread CPU time, best of 15):
// 11.6-12.2 ms per row, 7.9-8.5 ms in spans, i.e. 16-17 GB/s over the three
// streams, against 6.9-7.6 ms (12-13 GB/s) for a memcpy of one tensor.
template <typename T, typename Fn, typename... Inputs>
void for_each_span(const char* op, const Tensor<T>& output, Fn fn, const Inputs&... inputs) {
    if (output.numel() == 0) return;
    const RowMatrix<T> out = output.as_rows(op);
    auto run = [&](const auto&... in) {
        if (out.contiguous() && (in.contiguous() && ...)) {
            const Index total = output.numel(), spans = (total + kSpanElements - 1) / kSpanElements;
            parallel_rows(spans, kSpanElements, [&](Index span) {
                const Index first = span * kSpanElements;
                fn(out.data + first, static_cast<const T*>(in.data) + first...,
                   std::min(kSpanElements, total - first));
            });
            return;
        }
        parallel_rows(out.rows, out.cols,
                      [&](Index r) { fn(out.row(r), static_cast<const T*>(in.row(r))..., out.cols); });
    };
    run(inputs.as_rows(op)...);
}

// Channel blocks of one simd::Vec<T> for kernels that vectorise over the
// channels of a row: the block at c has lanes_at(c, channels) lanes (a whole
// vector but at the end of the row); load_lanes/store_lanes move that many.
template <typename T>
int lanes_at(Index c, Index channels) {
    return static_cast<int>(std::min<Index>(simd::width<T>, channels - c));
}

template <typename T>
simd::Vec<T> load_lanes(const T* p, int lanes) {
    return lanes == simd::width<T> ? simd::load(p) : simd::load_part(p, lanes);
}

template <typename T>
void store_lanes(T* p, const simd::Vec<T>& v, int lanes) {
    if (lanes == simd::width<T>)
        simd::store(p, v);
    else
        simd::store_part(p, v, lanes);
}

template <typename T>
void require_defined_on_cpu(const Tensor<T>& t, const char* op, const char* name) {
    BCNN_CHECK(t.defined(), op << ": " << name << " is an empty tensor");
    t.require_cpu(op);
}

}  // namespace detail

// a, b (any shape)  ->  y (same shape); y may alias a or b.
template <typename T>
void add(const Tensor<T>& a, const Tensor<T>& b, Tensor<T>& y) {
    detail::require_defined_on_cpu(a, "add", "a");
    detail::require_shape(b, a.shape(), "add", "b");
    detail::require_shape(y, a.shape(), "add", "output");
    detail::for_each_span(
        "add", y,
        [](T* out, const T* in_a, const T* in_b, Index cols) {
            for (Index c = 0; c < cols; ++c) out[c] = in_a[c] + in_b[c];
        },
        a, b);
}

// y += x; x and y (any shape, equal) may be slices of wider buffers.
template <typename T>
void add_inplace(Tensor<T>& y, const Tensor<T>& x) {
    detail::require_defined_on_cpu(y, "add_inplace", "accumulator");
    detail::require_shape(x, y.shape(), "add_inplace", "addend");
    detail::for_each_span(
        "add_inplace", y,
        [](T* out, const T* in, Index cols) {
            for (Index c = 0; c < cols; ++c) out[c] += in[c];
        },
        x);
}

// y *= alpha (alpha converts to T, so scale_inplace(float_tensor, 0.5) works).
template <typename T>
void scale_inplace(Tensor<T>& y, typename bcnn::detail::NonDeduced<T>::type alpha) {
    detail::require_defined_on_cpu(y, "scale_inplace", "tensor");
    detail::for_each_span("scale_inplace", y, [alpha](T* out, Index cols) {
        for (Index c = 0; c < cols; ++c) out[c] *= alpha;
    });
}

// True when every element of x (any shape, may be a slice) is finite. Stops at the first row with one that is not.
template <typename T>
bool all_finite(const Tensor<T>& x) {
    detail::require_defined_on_cpu(x, "all_finite", "tensor");
    if (x.numel() == 0) return true;
    const RowMatrix<T> rows = x.as_rows("all_finite");
    for (Index r = 0; r < rows.rows; ++r) {
        const T* row = rows.row(r);
        bool finite = true;
        for (Index c = 0; c < rows.cols; ++c) finite &= std::isfinite(row[c]);
        if (!finite) return false;
    }
    return true;
}

}  // namespace cpu
}  // namespace bcnn

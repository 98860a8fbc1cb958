#pragma once
// RowMatrix: a tensor seen as rows x cols with a row stride (leading
// dimension) ld >= cols. An NHWC tensor is (N*H*W) rows of C channels; a
// channel slice of a wider buffer (DenseNet's concatenation) is the same
// matrix with ld = the buffer's full width. CPU kernels work on this view.

#include "bcnn/core/shape.hpp"

namespace bcnn {

template <typename T>
struct RowMatrix {
    T* data = nullptr;
    Index rows = 0;
    Index cols = 0;
    Index ld = 0;

    T* row(Index r) const { return data + r * ld; }
    bool contiguous() const { return ld == cols || rows <= 1; }
};

}  // namespace bcnn

#pragma once
// Shape: the extents of a tensor, up to kMaxRank dimensions. Activations are
// NHWC (batch, height, width, channels); dense activations are (batch, features).

#include <array>
#include <cstdint>
#include <initializer_list>
#include <ostream>
#include <sstream>
#include <string>

#include "bcnn/core/error.hpp"

namespace bcnn {

using Index = std::int64_t;

class Shape {
public:
    static constexpr int kMaxRank = 8;

    Shape() = default;
    Shape(std::initializer_list<Index> dims) {
        BCNN_CHECK(dims.size() <= static_cast<std::size_t>(kMaxRank),
                   "Shape: rank " << dims.size() << " exceeds the maximum " << kMaxRank);
        for (Index d : dims) push_back(d);
    }
    template <typename Iterator>
    Shape(Iterator first, Iterator last) {
        for (; first != last; ++first) push_back(static_cast<Index>(*first));
    }

    int rank() const { return rank_; }
    Index operator[](int axis) const { return dims_[checked_axis(axis)]; }
    Index& operator[](int axis) { return dims_[checked_axis(axis)]; }
    const Index* begin() const { return dims_.data(); }
    const Index* end() const { return dims_.data() + rank_; }

    // Product of all extents; 1 for a rank-0 shape.
    Index numel() const {
        Index n = 1;
        for (int i = 0; i < rank_; ++i) n *= dims_[i];
        return n;
    }

    void push_back(Index extent) {
        BCNN_CHECK(rank_ < kMaxRank, "Shape: cannot exceed rank " << kMaxRank);
        BCNN_CHECK(extent >= 0, "Shape: negative extent " << extent);
        dims_[rank_++] = extent;
    }

    bool operator==(const Shape& other) const {
        if (rank_ != other.rank_) return false;
        for (int i = 0; i < rank_; ++i)
            if (dims_[i] != other.dims_[i]) return false;
        return true;
    }
    bool operator!=(const Shape& other) const { return !(*this == other); }

    // "(32, 150, 150, 3)", the way Keras prints shapes.
    std::string str() const {
        std::ostringstream out;
        out << '(';
        for (int i = 0; i < rank_; ++i) out << (i ? ", " : "") << dims_[i];
        out << ')';
        return out.str();
    }

private:
    int checked_axis(int axis) const {
        BCNN_CHECK(axis >= 0 && axis < rank_, "Shape: axis " << axis << " out of range for rank " << rank_);
        return axis;
    }

    std::array<Index, kMaxRank> dims_{};
    int rank_ = 0;
};

inline std::ostream& operator<<(std::ostream& out, const Shape& shape) { return out << shape.str(); }

}  // namespace bcnn

#pragma once
// Tensor<T>: an N-D array (T = float or double for maths, int32/uint8 for
// labels and images) on a device. A Tensor is a handle: copies share the
// storage, views (slice, channels, reshape) never copy, clone() does.
// Activations are NHWC; the last axis is the fastest-moving one.

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <initializer_list>
#include <memory>
#include <type_traits>
#include <vector>

#include "bcnn/core/device.hpp"
#include "bcnn/core/error.hpp"
#include "bcnn/core/row_matrix.hpp"
#include "bcnn/core/shape.hpp"
#include "bcnn/core/storage.hpp"

namespace bcnn {

template <typename T>
class Tensor {
    static_assert(std::is_arithmetic<T>::value, "Tensor<T>: T must be an arithmetic type");

public:
    using value_type = T;

    // An empty tensor: rank 0, no storage. defined() is false.
    Tensor() = default;

    // A zero-filled, contiguous CPU tensor.
    explicit Tensor(const Shape& shape) : Tensor(uninitialized(shape)) { fill(T(0)); }
    Tensor(const Shape& shape, T value) : Tensor(uninitialized(shape)) { fill(value); }

    // A contiguous CPU tensor whose contents are unspecified (for outputs
    // that a kernel overwrites completely).
    static Tensor uninitialized(const Shape& shape) {
        Tensor t;
        t.storage_ = Storage::allocate_host(static_cast<std::size_t>(shape.numel()) * sizeof(T));
        t.shape_ = shape;
        t.strides_ = contiguous_strides(shape);
        return t;
    }

    // A contiguous CPU tensor holding `values` (row-major, last axis fastest).
    static Tensor from_vector(const Shape& shape, const std::vector<T>& values) {
        BCNN_CHECK(static_cast<Index>(values.size()) == shape.numel(),
                   "Tensor::from_vector: " << values.size() << " values for shape " << shape);
        Tensor t = uninitialized(shape);
        std::copy(values.begin(), values.end(), t.data());
        return t;
    }

    // Wraps existing storage (used by device allocators and views).
    Tensor(std::shared_ptr<Storage> storage, Index offset, const Shape& shape, const Shape& strides)
        : storage_(std::move(storage)), offset_(offset), shape_(shape), strides_(strides) {}

    bool defined() const { return storage_ != nullptr; }
    const Shape& shape() const { return shape_; }
    const Shape& strides() const { return strides_; }
    int rank() const { return shape_.rank(); }
    Index dim(int axis) const { return shape_[normalize_axis(axis)]; }
    Index stride(int axis) const { return strides_[normalize_axis(axis)]; }
    Index numel() const { return shape_.numel(); }
    Device device() const { return storage_ ? storage_->device() : Device::cpu; }
    const std::shared_ptr<Storage>& storage() const { return storage_; }
    Index offset() const { return offset_; }

    // Pointer to the first element. A Tensor is a handle, so a const handle
    // still reaches mutable data, like a const std::shared_ptr<T>.
    T* data() const { return storage_ ? static_cast<T*>(storage_->data()) + offset_ : nullptr; }

    bool is_contiguous() const {
        Index expected = 1;
        for (int axis = rank() - 1; axis >= 0; --axis) {
            if (shape_[axis] != 1 && strides_[axis] != expected) return false;
            expected *= shape_[axis];
        }
        return true;
    }

    // Element access for tests and reference loops: t(n, h, w, c).
    template <typename... Indices>
    T& operator()(Indices... indices) const {
        static_assert(sizeof...(Indices) > 0, "Tensor::operator(): give one index per axis");
        const Index idx[] = {static_cast<Index>(indices)...};
        BCNN_CHECK(static_cast<int>(sizeof...(Indices)) == rank(),
                   "Tensor: " << sizeof...(Indices) << " indices for a tensor of shape " << shape_);
        Index linear = 0;
        for (int axis = 0; axis < rank(); ++axis) {
            BCNN_CHECK(idx[axis] >= 0 && idx[axis] < shape_[axis],
                       "Tensor: index " << idx[axis] << " out of range on axis " << axis << " of shape " << shape_);
            linear += idx[axis] * strides_[axis];
        }
        return data()[linear];
    }

    // View of [begin, end) along `axis`; shares storage.
    Tensor slice(int axis, Index begin, Index end) const {
        axis = normalize_axis(axis);
        BCNN_CHECK(0 <= begin && begin <= end && end <= shape_[axis],
                   "Tensor::slice: [" << begin << ", " << end << ") outside axis " << axis << " of shape " << shape_);
        Shape shape = shape_;
        shape[axis] = end - begin;
        return Tensor(storage_, offset_ + begin * strides_[axis], shape, strides_);
    }

    // View of channels [begin, end) of an NHWC (or any) tensor's last axis.
    Tensor channels(Index begin, Index end) const { return slice(rank() - 1, begin, end); }

    // Same elements, new shape; the tensor must be contiguous.
    Tensor reshape(const Shape& shape) const {
        BCNN_CHECK(shape.numel() == numel(), "Tensor::reshape: cannot view " << shape_ << " as " << shape);
        BCNN_CHECK(is_contiguous(), "Tensor::reshape: tensor of shape " << shape_ << " is a strided view; clone() it first");
        return Tensor(storage_, offset_, shape, contiguous_strides(shape));
    }

    // The tensor as rows x (last axis) with a uniform row stride. Throws,
    // naming `what`, when the view has gaps other than between rows.
    RowMatrix<T> as_rows(const char* what = "tensor") const {
        RowMatrix<T> m;
        m.data = data();
        if (rank() == 0) {  // a scalar: one row of one element
            m.rows = m.cols = m.ld = 1;
            return m;
        }
        m.cols = shape_[rank() - 1];
        m.rows = m.cols == 0 ? 0 : numel() / m.cols;
        BCNN_CHECK(m.cols <= 1 || strides_[rank() - 1] == 1,
                   what << ": last axis of shape " << shape_ << " is not contiguous");
        // Rows advance along the leading axes; axes of extent 1 have no stride to honour.
        m.ld = m.cols;
        for (int axis = rank() - 2; axis >= 0; --axis)
            if (shape_[axis] > 1) {
                m.ld = strides_[axis];
                break;
            }
        BCNN_CHECK(m.ld >= m.cols || m.rows <= 1,
                   what << ": shape " << shape_ << " with strides " << strides_ << " has overlapping rows");
        Index expected = m.ld;
        for (int axis = rank() - 2; axis >= 0; --axis) {
            if (shape_[axis] == 1) continue;
            BCNN_CHECK(strides_[axis] == expected, what << ": shape " << shape_ << " with strides " << strides_
                                                        << " cannot be seen as rows of equal stride");
            expected *= shape_[axis];
        }
        return m;
    }

    // A contiguous deep copy on the CPU.
    Tensor clone() const {
        Tensor copy = uninitialized(shape_);
        copy.copy_from(*this);
        return copy;
    }

    // Copies `source` element by element; shapes must match, either may be a view.
    void copy_from(const Tensor& source) const {
        BCNN_CHECK(source.shape() == shape_, "Tensor::copy_from: shape " << source.shape() << " into " << shape_);
        require_cpu("Tensor::copy_from");
        source.require_cpu("Tensor::copy_from");
        if (numel() == 0) return;
        const RowMatrix<T> from = source.as_rows("copy_from source");
        const RowMatrix<T> to = as_rows("copy_from destination");
        for (Index r = 0; r < to.rows; ++r) std::memmove(to.row(r), from.row(r), sizeof(T) * to.cols);
    }

    void fill(T value) const {
        require_cpu("Tensor::fill");
        if (numel() == 0) return;
        const RowMatrix<T> m = as_rows("Tensor::fill");
        for (Index r = 0; r < m.rows; ++r) std::fill(m.row(r), m.row(r) + m.cols, value);
    }

    // All elements in row-major order (a copy), convenient for tests.
    std::vector<T> to_vector() const {
        const Tensor c = is_contiguous() ? *this : clone();
        return std::vector<T>(c.data(), c.data() + numel());
    }

    void require_cpu(const char* what) const {
        BCNN_CHECK(device() == Device::cpu, what << ": tensor of shape " << shape_ << " is on " << device()
                                                 << "; this operation runs on the cpu");
    }

    static Shape contiguous_strides(const Shape& shape) {
        Shape strides = shape;
        Index stride = 1;
        for (int axis = shape.rank() - 1; axis >= 0; --axis) {
            strides[axis] = stride;
            stride *= shape[axis];
        }
        return strides;
    }

private:
    int normalize_axis(int axis) const {
        const int normalized = axis < 0 ? axis + rank() : axis;
        BCNN_CHECK(normalized >= 0 && normalized < rank(),
                   "Tensor: axis " << axis << " out of range for shape " << shape_);
        return normalized;
    }

    std::shared_ptr<Storage> storage_;
    Index offset_ = 0;
    Shape shape_;
    Shape strides_;
};

namespace detail {
template <typename U>
struct NonDeduced {
    using type = U;
};
}  // namespace detail

// Optional kernel arguments: a pointer, nullptr when absent (no bias, no
// gradient wanted). Non-deduced, so callers can pass nullptr directly.
template <typename T>
using OptionalInput = const typename detail::NonDeduced<Tensor<T>>::type*;
template <typename T>
using OptionalOutput = typename detail::NonDeduced<Tensor<T>>::type*;

// The same shape as `like`, zero-filled, contiguous.
template <typename T>
Tensor<T> zeros_like(const Tensor<T>& like) {
    return Tensor<T>(like.shape());
}

}  // namespace bcnn

#pragma once
// Internal to bcnn_cuda: how the cuDNN ops (conv2d, pool2d, batchnorm) hand
// NHWC device tensors to cuDNN, which gets packed tensors only:
//   - layout_of: an NHWC tensor or channel slice as cuDNN sees it;
//   - padded_extent: the input extent Keras' asymmetric 'same' padding needs
//     (cuDNN pads symmetrically; the odd pixel is an explicit bottom/right
//     row or column of a padded copy);
//   - Staging: copies between layouts (cudnnTransformTensor), context scratch
//     sized by a layout, and the alpha/beta constants 1 and 0.
// Every failing call throws naming `where` (the op and its shapes).

#include <algorithm>
#include <cstddef>
#include <string>

#include "bcnn/core/tensor.hpp"
#include "cudnn_context.hpp"
#include "cudnn_descriptors.hpp"

namespace bcnn {
namespace cuda {
namespace detail {

template <typename T>
std::size_t bytes_of(Index elements) {
    return sizeof(T) * static_cast<std::size_t>(elements);
}

inline Index elements_of(const TensorLayout& l) { return l.n * l.h * l.w * l.c; }

// cuDNN's alpha and beta (host memory, of the data's type).
template <typename T>
const T* one() {
    static const T value = 1;
    return &value;
}
template <typename T>
const T* zero() {
    static const T value = 0;
    return &value;
}

// A rank-4 NHWC device tensor's layout: packed, or a channel slice (pixel rows ld apart).
template <typename T>
TensorLayout layout_of(const Tensor<T>& t, const char* what) {
    const RowMatrix<T> rows = t.as_rows(what);
    return strided_nhwc(t.dim(0), t.dim(1), t.dim(2), t.dim(3), t.dim(1), t.dim(2), rows.ld);
}

// The input extent cuDNN must see along one axis so that its symmetric
// padding of `pad_before` plus this extent reaches every pixel a Keras window
// reads: `in`, plus the row the last window reaches beyond the symmetric
// padding (0 or 1, 'same' with odd total padding only).
inline Index padded_extent(Index in, Index kernel, Index stride, Index out, Index pad_before) {
    return in + std::max<Index>(0, (out - 1) * stride + kernel - (in + 2 * pad_before));
}

// One op call's staging: the thread's cuDNN context and the op's description.
template <typename T>
class Staging {
public:
    Staging(CudnnContext& context, const std::string& where) : context_(context), where_(where) {}

    CudnnContext& context() const { return context_; }
    cudnnHandle_t handle() const { return context_.handle(); }
    const std::string& where() const { return where_; }

    // Scratch slot `slot` with room for a tensor of layout `l`.
    T* scratch(Scratch slot, const TensorLayout& l) const {
        return static_cast<T*>(context_.scratch(slot, bytes_of<T>(elements_of(l)), where_));
    }

    // to = from, between two layouts of the same (n, h, w, c) extents.
    void copy(const TensorLayout& from_layout, const T* from, const TensorLayout& to_layout, T* to) const {
        const TensorDescriptor from_desc(cudnn_data_type<T>(), from_layout, where_),
            to_desc(cudnn_data_type<T>(), to_layout, where_);
        BCNN_CUDA_CHECK(cudnnTransformTensor(handle(), one<T>(), from_desc.get(), from, zero<T>(), to_desc.get(), to),
                        where_);
    }

    // Every element of the packed tensor of layout `l` at `data` = value.
    void fill(const TensorLayout& l, T* data, T value) const {
        const TensorDescriptor desc(cudnn_data_type<T>(), l, where_);
        BCNN_CUDA_CHECK(cudnnSetTensor(handle(), desc.get(), data, &value), where_ << ": filling padding");
    }

private:
    CudnnContext& context_;
    std::string where_;
};

}  // namespace detail
}  // namespace cuda
}  // namespace bcnn

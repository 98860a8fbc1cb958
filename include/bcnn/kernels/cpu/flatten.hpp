#pragma once
// Flatten (Keras Flatten, channels last): a view, never a copy.
//   x (N, H, W, C) (any rank >= 2) -> view (N, H*W*C) in H, W, C order
//   dy (N, F) -> view with x's original shape
// Both require contiguous tensors and reject strided views (a channel slice
// of a wider buffer) rather than silently copying: the result always shares
// storage with its argument. clone() a strided view first.
// Pure metadata, so it works for tensors on any device.

#include "bcnn/core/tensor.hpp"

namespace bcnn {
namespace cpu {

// (N, d1, ..., dk) -> (N, d1 * ... * dk)
inline Shape flatten_output_shape(const Shape& x) {
    BCNN_CHECK(x.rank() >= 2, "flatten: input must have a batch axis and at least one more, got shape " << x);
    Index features = 1;
    for (int axis = 1; axis < x.rank(); ++axis) features *= x[axis];
    return Shape{x[0], features};
}

// x (N, H, W, C) -> (N, H*W*C), sharing x's storage
template <typename T>
Tensor<T> flatten(const Tensor<T>& x) {
    BCNN_CHECK(x.defined(), "flatten: input is an empty tensor");
    const Shape flat = flatten_output_shape(x.shape());
    BCNN_CHECK(x.is_contiguous(), "flatten: input of shape " << x.shape() << " with strides " << x.strides()
                                                             << " is a strided view; clone() it first");
    return x.reshape(flat);
}

// dy (N, F) -> (original shape), sharing dy's storage
template <typename T>
Tensor<T> flatten_backward(const Tensor<T>& dy, const Shape& original) {
    BCNN_CHECK(dy.defined(), "flatten_backward: output gradient is an empty tensor");
    const Shape flat = flatten_output_shape(original);
    BCNN_CHECK(dy.shape() == flat, "flatten_backward: output gradient has shape "
                                       << dy.shape() << ", expected " << flat << " for input shape " << original);
    BCNN_CHECK(dy.is_contiguous(), "flatten_backward: output gradient of shape "
                                       << dy.shape() << " with strides " << dy.strides()
                                       << " is a strided view; clone() it first");
    return dy.reshape(original);
}

}  // namespace cpu
}  // namespace bcnn

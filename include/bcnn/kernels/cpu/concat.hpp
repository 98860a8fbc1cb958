#pragma once
// Concatenation along the last axis (Keras Concatenate(axis=-1); NHWC channels).
//   inputs[i] (..., C_i), equal leading dims  ->  y (..., sum_i C_i)
// The backward pass copies each input's channel slice of dy out.
// Any tensor may itself be a channel-slice view. (DenseNet blocks avoid this
// copy by writing into one buffer; this kernel is the general layer.)

#include <vector>

#include "bcnn/kernels/cpu/checks.hpp"

namespace bcnn {
namespace cpu {
namespace detail {

// The shape of the concatenation; throws, naming the input index and shapes,
// when ranks or leading dimensions differ from input 0's.
inline Shape concat_channels_shape(const std::vector<Shape>& inputs, const char* op, const char* name) {
    BCNN_CHECK(!inputs.empty(), op << ": no " << name << "s to concatenate");
    Shape result = inputs[0];
    BCNN_CHECK(result.rank() >= 1, op << ": " << name << " 0 has rank 0");
    const int last = result.rank() - 1;
    for (std::size_t i = 1; i < inputs.size(); ++i) {
        bool leading_equal = inputs[i].rank() == result.rank();
        for (int axis = 0; leading_equal && axis < last; ++axis) leading_equal = inputs[i][axis] == result[axis];
        BCNN_CHECK(leading_equal, op << ": " << name << " " << i << " has shape " << inputs[i]
                                     << ", which does not match " << name << " 0 " << inputs[0]
                                     << " on all axes but the last");
        result[last] += inputs[i][last];
    }
    return result;
}

template <typename T>
std::vector<Shape> defined_shapes(const std::vector<Tensor<T>>& tensors, const char* op, const char* name) {
    std::vector<Shape> shapes;
    for (std::size_t i = 0; i < tensors.size(); ++i) {
        BCNN_CHECK(tensors[i].defined(), op << ": " << name << " " << i << " is an empty tensor");
        shapes.push_back(tensors[i].shape());
    }
    return shapes;
}

}  // namespace detail

// Shapes (..., C_i) -> (..., sum_i C_i)
inline Shape concat_channels_output_shape(const std::vector<Shape>& inputs) {
    return detail::concat_channels_shape(inputs, "concat_channels", "input");
}

// inputs[i] (..., C_i) -> y (..., sum_i C_i)
template <typename T>
void concat_channels_forward(const std::vector<Tensor<T>>& inputs, Tensor<T>& y) {
    const char* op = "concat_channels_forward";
    const Shape expected = detail::concat_channels_shape(detail::defined_shapes(inputs, op, "input"), op, "input");
    detail::require_shape(y, expected, op, "output");
    Index offset = 0;
    for (const Tensor<T>& input : inputs) {
        const Index channels = input.dim(-1);
        y.channels(offset, offset + channels).copy_from(input);
        offset += channels;
    }
}

// dy (..., sum_i C_i) -> d_inputs[i] (..., C_i), caller-allocated
template <typename T>
void concat_channels_backward(const Tensor<T>& dy, std::vector<Tensor<T>>& d_inputs) {
    const char* op = "concat_channels_backward";
    const Shape expected =
        detail::concat_channels_shape(detail::defined_shapes(d_inputs, op, "input gradient"), op, "input gradient");
    detail::require_shape(dy, expected, op, "output gradient");
    Index offset = 0;
    for (Tensor<T>& d_input : d_inputs) {
        const Index channels = d_input.dim(-1);
        d_input.copy_from(dy.channels(offset, offset + channels));
        offset += channels;
    }
}

}  // namespace cpu
}  // namespace bcnn

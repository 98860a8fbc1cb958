#pragma once
// Separable 2-D convolution, Keras SeparableConv2D: a depthwise convolution
// (no bias, carrying the strides and padding) then a pointwise 1x1
// convolution (with bias).
//   x (N, H, W, C), depthwise_weights (KH, KW, C, M)  ->  depthwise_out (N, OH, OW, C*M)
//   depthwise_out, pointwise_weights (1, 1, C*M, K), bias (K) or nullptr  ->  y (N, OH, OW, K)
// The caller keeps depthwise_out between forward and backward, and lends the
// backward a scratch d_depthwise_out of the same shape.

#include "bcnn/kernels/cpu/conv2d.hpp"
#include "bcnn/kernels/cpu/depthwise_conv2d.hpp"

namespace bcnn {
namespace cpu {
namespace detail {

// Extents of one separable convolution: the depthwise part's, plus K.
struct SeparableDims {
    DepthwiseDims depthwise;
    Index filters = 0;
    Shape depthwise_output_shape() const { return depthwise.output_shape(); }
    Shape output_shape() const {
        const Shape d = depthwise.output_shape();
        return Shape{d[0], d[1], d[2], filters};
    }
};

inline SeparableDims separable_dims(const Shape& x, const Shape& depthwise_weights, const Shape& pointwise_weights,
                                    const ConvParams& params, const char* op) {
    SeparableDims d;
    d.depthwise = depthwise_dims(x, depthwise_weights, params, op);
    const Index channels_out = d.depthwise.channels_out();
    BCNN_CHECK(pointwise_weights.rank() == 4 && pointwise_weights[0] == 1 && pointwise_weights[1] == 1 &&
                   pointwise_weights[2] == channels_out,
               op << ": pointwise weights have shape " << pointwise_weights << ", expected (1, 1, " << channels_out
                  << ", filters) after depthwise weights " << depthwise_weights);
    d.filters = pointwise_weights[3];
    return d;
}

template <typename T>
SeparableDims checked_separable_dims(const Tensor<T>& x, const Tensor<T>& depthwise_weights,
                                     const Tensor<T>& pointwise_weights, const Tensor<T>& depthwise_out,
                                     const ConvParams& params, const char* op) {
    require_rank(x, 4, op, "input");
    require_rank(depthwise_weights, 4, op, "depthwise weights");
    require_rank(pointwise_weights, 4, op, "pointwise weights");
    const SeparableDims d =
        separable_dims(x.shape(), depthwise_weights.shape(), pointwise_weights.shape(), params, op);
    require_shape(depthwise_out, d.depthwise_output_shape(), op, "depthwise output");
    return d;
}

// The pointwise part: 1x1, stride 1, no padding.
inline constexpr ConvParams kPointwiseParams{1, 1, Padding::valid};

}  // namespace detail

// x (N, H, W, C), depthwise (KH, KW, C, M), pointwise (1, 1, C*M, K)  ->  (N, OH, OW, K)
inline Shape separable_conv2d_output_shape(const Shape& x, const Shape& depthwise_weights,
                                           const Shape& pointwise_weights, const ConvParams& params) {
    return detail::separable_dims(x, depthwise_weights, pointwise_weights, params, "separable_conv2d").output_shape();
}

// x (N, H, W, C)  ->  depthwise_out (N, OH, OW, C*M)  ->  y (N, OH, OW, K)
// y = activation(pointwise(depthwise_out) + bias)
template <typename T>
void separable_conv2d_forward(const Tensor<T>& x, const Tensor<T>& depthwise_weights,
                              const Tensor<T>& pointwise_weights, OptionalInput<T> bias, const ConvParams& params,
                              Tensor<T>& depthwise_out, Tensor<T>& y, ActivationFn activation = ActivationFn::linear) {
    const char* op = "separable_conv2d_forward";
    const detail::SeparableDims d =
        detail::checked_separable_dims(x, depthwise_weights, pointwise_weights, depthwise_out, params, op);
    if (bias) detail::require_shape(*bias, Shape{d.filters}, op, "bias");
    detail::require_shape(y, d.output_shape(), op, "output");
    depthwise_conv2d_forward(x, depthwise_weights, nullptr, params, depthwise_out);
    conv2d_forward(depthwise_out, pointwise_weights, bias, detail::kPointwiseParams, y, activation);
}

// dy (N, OH, OW, K)  ->  dx (N, H, W, C), d_depthwise_weights (KH, KW, C, M),
// d_pointwise_weights (1, 1, C*M, K), d_bias (K); any may be nullptr when not
// needed. depthwise_out is the forward's; d_depthwise_out (N, OH, OW, C*M) is
// scratch, left holding the gradient of depthwise_out when dx or
// d_depthwise_weights is wanted.
template <typename T>
void separable_conv2d_backward(const Tensor<T>& x, const Tensor<T>& depthwise_weights,
                               const Tensor<T>& pointwise_weights, const Tensor<T>& depthwise_out, const Tensor<T>& dy,
                               const ConvParams& params, Tensor<T>& d_depthwise_out, OptionalOutput<T> dx,
                               OptionalOutput<T> d_depthwise_weights, OptionalOutput<T> d_pointwise_weights,
                               OptionalOutput<T> d_bias) {
    const char* op = "separable_conv2d_backward";
    const detail::SeparableDims d =
        detail::checked_separable_dims(x, depthwise_weights, pointwise_weights, depthwise_out, params, op);
    detail::require_shape(dy, d.output_shape(), op, "output gradient");
    detail::require_shape(d_depthwise_out, d.depthwise_output_shape(), op, "depthwise output gradient");
    const bool depthwise_gradient_needed = dx || d_depthwise_weights;
    conv2d_backward(depthwise_out, pointwise_weights, dy, detail::kPointwiseParams,
                    depthwise_gradient_needed ? &d_depthwise_out : nullptr, d_pointwise_weights, d_bias);
    if (depthwise_gradient_needed)
        depthwise_conv2d_backward(x, depthwise_weights, d_depthwise_out, params, dx, d_depthwise_weights, nullptr);
}

}  // namespace cpu
}  // namespace bcnn

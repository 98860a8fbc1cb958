#pragma once
// Separable 2-D convolution, Keras SeparableConv2D: a depthwise convolution
// (no bias, carrying the strides and padding) then a pointwise 1x1
// convolution (with bias).
//   x (N, H, W, C), depthwise_weights (KH, KW, C, M)  ->  depthwise_out (N, OH, OW, C*M)
//   depthwise_out, pointwise_weights (1, 1, C*M, K), bias (K) or nullptr  ->  y (N, OH, OW, K)
// The caller keeps depthwise_out between forward and backward, and lends the
// backward a scratch d_depthwise_out of the same shape.
// The backward runs band by band of rows (separable_bands.hpp) where that
// applies (stride 1, 'same', multiplier 1, fewer than 256 channels), and then
// also takes a following ReLU (separable_conv2d_relu_backward); otherwise
// the pointwise then the depthwise backward over whole tensors.

#include "bcnn/kernels/cpu/conv2d.hpp"
#include "bcnn/kernels/cpu/depthwise_conv2d.hpp"
#include "bcnn/kernels/cpu/separable_bands.hpp"

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

// The banded backward (separable_bands.hpp) on checked tensors; relu_output
// (dy's shape) or nullptr.
template <typename T>
void separable_conv2d_bands_backward(const SeparableDims& d, const Tensor<T>& x, const Tensor<T>& depthwise_weights,
                                     const Tensor<T>& pointwise_weights, const Tensor<T>& depthwise_out,
                                     const Tensor<T>* relu_output, const Tensor<T>& dy, OptionalOutput<T> dx,
                                     OptionalOutput<T> d_depthwise_weights, OptionalOutput<T> d_pointwise_weights,
                                     OptionalOutput<T> d_bias, const char* op) {
    if (dx) require_shape(*dx, x.shape(), op, "input gradient");
    const auto require_contiguous_gradient = [&](OptionalOutput<T> gradient, const Shape& shape, const char* name) {
        if (!gradient) return;
        require_shape(*gradient, shape, op, name);
        require_contiguous(*gradient, op, name);
    };
    require_contiguous_gradient(d_depthwise_weights, depthwise_weights.shape(), "depthwise weights gradient");
    require_contiguous_gradient(d_pointwise_weights, pointwise_weights.shape(), "pointwise weights gradient");
    require_contiguous_gradient(d_bias, Shape{d.filters}, "bias gradient");
    require_contiguous(pointwise_weights, op, "pointwise weights");
    if (dy.numel() == 0) {
        for (Tensor<T>* gradient : {dx, d_depthwise_weights, d_pointwise_weights, d_bias})
            if (gradient) gradient->fill(T(0));
        return;
    }
    const RowMatrix<T> relu_rows = relu_output ? relu_output->as_rows(op) : RowMatrix<T>{};
    const RowMatrix<T> dx_rows = dx ? dx->as_rows(op) : RowMatrix<T>{};
    const SeparableBandsArgs<T> args{x.as_rows(op),
                                     depthwise_out.as_rows(op),
                                     dy.as_rows(op),
                                     relu_output ? &relu_rows : nullptr,
                                     depthwise_weights.data(),
                                     pointwise_weights.data(),
                                     dx ? &dx_rows : nullptr,
                                     d_depthwise_weights ? d_depthwise_weights->data() : nullptr,
                                     d_pointwise_weights ? d_pointwise_weights->data() : nullptr,
                                     d_bias ? d_bias->data() : nullptr};
    separable_bands_backward(d.depthwise, d.filters, separable_band_rows(d.depthwise, d.filters, sizeof(T)), args);
}

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
// scratch (the banded backward leaves it as it was).
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
    if (detail::separable_bands_apply(d.depthwise)) {
        detail::separable_conv2d_bands_backward<T>(d, x, depthwise_weights, pointwise_weights, depthwise_out, nullptr,
                                                   dy, dx, d_depthwise_weights, d_pointwise_weights, d_bias, op);
        return;
    }
    const bool depthwise_gradient_needed = dx || d_depthwise_weights;
    conv2d_backward(depthwise_out, pointwise_weights, dy, detail::kPointwiseParams,
                    depthwise_gradient_needed ? &d_depthwise_out : nullptr, d_pointwise_weights, d_bias);
    if (depthwise_gradient_needed)
        depthwise_conv2d_backward(x, depthwise_weights, d_depthwise_out, params, dx, d_depthwise_weights, nullptr);
}

// Whether separable_conv2d_relu_backward takes a separable convolution of
// input x (N, H, W, C), these depthwise weights and params: the banded backward's cases.
inline bool separable_conv2d_relu_backward_applies(const Shape& x, const Shape& depthwise_weights,
                                                   const ConvParams& params) {
    return detail::separable_bands_apply(
        detail::depthwise_dims(x, depthwise_weights, params, "separable_conv2d_relu_backward"));
}

// The backward of y = relu(separable_conv2d(x) + bias), given the layer's
// output relu_output (y) and dy, its gradient: separable_conv2d_backward of
// dy where y > 0, else 0, without writing that masked gradient out. Only for
// the cases separable_conv2d_relu_backward_applies accepts.
template <typename T>
void separable_conv2d_relu_backward(const Tensor<T>& x, const Tensor<T>& depthwise_weights,
                                    const Tensor<T>& pointwise_weights, const Tensor<T>& depthwise_out,
                                    const Tensor<T>& relu_output, const Tensor<T>& dy, const ConvParams& params,
                                    OptionalOutput<T> dx, OptionalOutput<T> d_depthwise_weights,
                                    OptionalOutput<T> d_pointwise_weights, OptionalOutput<T> d_bias) {
    const char* op = "separable_conv2d_relu_backward";
    const detail::SeparableDims d =
        detail::checked_separable_dims(x, depthwise_weights, pointwise_weights, depthwise_out, params, op);
    detail::require_shape(relu_output, d.output_shape(), op, "output");
    detail::require_shape(dy, d.output_shape(), op, "output gradient");
    BCNN_CHECK(detail::separable_bands_apply(d.depthwise),
               op << ": takes stride 1, 'same' padding, depth multiplier 1 and fewer than 256 channels; got input "
                  << x.shape() << ", depthwise weights " << depthwise_weights.shape() << ", strides ("
                  << params.stride_h << ", " << params.stride_w << ")");
    detail::separable_conv2d_bands_backward(d, x, depthwise_weights, pointwise_weights, depthwise_out, &relu_output, dy,
                                            dx, d_depthwise_weights, d_pointwise_weights, d_bias, op);
}

}  // namespace cpu
}  // namespace bcnn

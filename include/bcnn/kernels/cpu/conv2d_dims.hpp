#pragma once
// The extents of one 2-D convolution (Keras Conv2D, NHWC input, HWIO
// weights), checked once and shared by its kernels: im2col + GEMM
// (conv2d.hpp) and Winograd (winograd.hpp).

#include "bcnn/kernels/cpu/checks.hpp"
#include "bcnn/kernels/cpu/window.hpp"

namespace bcnn {
namespace cpu {
namespace detail {

// Extents of one convolution, checked.
struct Conv2DDims {
    Index batch = 0, channels = 0, filters = 0;
    Window2D window;
    WindowGeometry geometry;
    // Output pixels: the rows of every GEMM.
    Index pixels() const { return batch * geometry.out_h * geometry.out_w; }
    // Length of a column-matrix row, KH * KW * C: the GEMM depth.
    Index patch() const { return window.kernel_h * window.kernel_w * channels; }
    bool pointwise() const {
        return window.kernel_h == 1 && window.kernel_w == 1 && window.stride_h == 1 && window.stride_w == 1;
    }
    Shape output_shape() const { return Shape{batch, geometry.out_h, geometry.out_w, filters}; }
};

inline Conv2DDims conv2d_dims(const Shape& x, const Shape& weights, const ConvParams& params, const char* op) {
    BCNN_CHECK(x.rank() == 4, op << ": input must be NHWC (N, H, W, C), got shape " << x);
    BCNN_CHECK(weights.rank() == 4, op << ": weights must be (KH, KW, C, K), got shape " << weights);
    BCNN_CHECK(weights.numel() > 0, op << ": weights " << weights << " have an empty axis");
    BCNN_CHECK(weights[2] == x[3], op << ": weights " << weights << " expect " << weights[2]
                                      << " input channels, input " << x << " has " << x[3]);
    Conv2DDims d;
    d.batch = x[0];
    d.channels = x[3];
    d.filters = weights[3];
    d.window = conv_window(weights[0], weights[1], params);
    d.geometry = window_geometry(x[1], x[2], d.window, op);
    return d;
}

template <typename T>
Conv2DDims checked_conv2d_dims(const Tensor<T>& x, const Tensor<T>& weights, const ConvParams& params,
                               const char* op) {
    require_rank(x, 4, op, "input");
    require_rank(weights, 4, op, "weights");
    require_contiguous(weights, op, "weights");
    return conv2d_dims(x.shape(), weights.shape(), params, op);
}

}  // namespace detail
}  // namespace cpu
}  // namespace bcnn

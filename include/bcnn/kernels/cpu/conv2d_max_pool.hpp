#pragma once
// A 3x3 'same' convolution with a ReLU, then a 2x2 max pooling (stride 2,
// 'valid'), as one forward: the custom CNN's conv2d_1 and max_pooling2d
// (16->16 @150).
//   x (N, H, W, C), weights (3, 3, C, K), bias (K) or nullptr
//   ->  y (N, H, W, K) = relu(conv(x, weights) + bias),
//       pooled (N, H / 2, W / 2, K) = max_pool2d(y)
// Where it applies (conv2d_relu_max_pool_applies: narrow Winograd's layers,
// winograd_narrow.hpp, with 'same' padding), each 4x4 output tile of narrow
// Winograd is pooled while it is in cache, instead of a second pass over y
// (46 MB at (32, 150, 150, 16)): the same values as conv2d_forward then
// max_pool2d_forward, bit for bit. Measured on the custom CNN's pair
// (batch 32, 2 threads, 8 interleaved runs of 20 on the shared 2-core Zen
// 3): the forward's fastest 14.3-18.2 ms against 15.3-19.1 ms apart.
// The backward stays two steps (nn::KernelLayer::backward_fused):
// max_pool2d_relu_backward, then narrow Winograd's both gradients in one
// pass (conv2d_backward). A banded backward that never wrote the gradient
// before the ReLU out, computing it per band of rows into cache, measured
// no faster in the same runs (33.0-40.8 ms against 31.5-41.1), so it was
// not kept.

#include "bcnn/kernels/cpu/checks.hpp"
#include "bcnn/kernels/cpu/conv2d.hpp"
#include "bcnn/kernels/cpu/conv_algorithm.hpp"
#include "bcnn/kernels/cpu/pool2d.hpp"
#include "bcnn/kernels/cpu/winograd_narrow.hpp"

namespace bcnn {
namespace cpu {

// Whether conv2d_relu_max_pool_forward takes a convolution of
// input x (N, H, W, C) or (H, W, C), weights (KH, KW, C, K) and params,
// followed by a max pooling `window`, in T.
template <typename T>
bool conv2d_relu_max_pool_applies(const Shape& x, const Shape& weights, const ConvParams& params,
                                  const Window2D& window) {
    if (conv_algorithm() != ConvAlgorithm::automatic || x.rank() < 3 || weights.rank() != 4) return false;
    const Index h = x[x.rank() - 3], w = x[x.rank() - 2];
    const detail::Conv2DDims d =
        detail::conv2d_dims(Shape{1, h, w, x[x.rank() - 1]}, weights, params, "conv2d_relu_max_pool_applies");
    const bool same = d.geometry.out_h == h && d.geometry.out_w == w;
    const bool pool_2x2 = window.kernel_h == 2 && window.kernel_w == 2 && window.stride_h == 2 &&
                          window.stride_w == 2 && window.padding == Padding::valid;
    return detail::winograd_narrow_applicable<T>(d) && same && pool_2x2 && h >= 2 && w >= 2;
}

// y = relu(conv(x, weights) + bias) and pooled = max_pool2d(y, window), both overwritten.
template <typename T>
void conv2d_relu_max_pool_forward(const Tensor<T>& x, const Tensor<T>& weights, OptionalInput<T> bias,
                                  const ConvParams& params, const Window2D& window, Tensor<T>& y, Tensor<T>& pooled) {
    const char* op = "conv2d_relu_max_pool_forward";
    const detail::Conv2DDims d = detail::checked_conv2d_dims(x, weights, params, op);
    BCNN_CHECK(conv2d_relu_max_pool_applies<T>(x.shape(), weights.shape(), params, window),
               op << ": takes narrow Winograd's 3x3 'same' convolutions then a 2x2/2 'valid' pooling, got input "
                  << x.shape() << ", weights " << weights.shape() << ", pool " << window);
    if (bias) detail::require_shape(*bias, Shape{d.filters}, op, "bias");
    detail::require_shape(y, d.output_shape(), op, "output");
    detail::require_shape(pooled, pool2d_output_shape(d.output_shape(), window), op, "pooled output");
    if (d.pixels() == 0) return;
    const RowMatrix<T> xm = x.as_rows(op), ym = y.as_rows(op), pooled_rows = pooled.as_rows(op);
    detail::conv2d_winograd_narrow_forward(d, xm, weights.data(), bias ? bias->data() : nullptr, ym, ActivationFn::relu,
                                           &pooled_rows);
}

}  // namespace cpu
}  // namespace bcnn

#pragma once
// A 3x3 'same' convolution with a ReLU, then a 2x2 max pooling (stride 2,
// 'valid'), as one forward: the custom CNN's conv2d_1 and max_pooling2d
// (16->16 @150).
//   x (N, H, W, C), weights (3, 3, C, K), bias (K) or nullptr
//   ->  pooled (N, H / 2, W / 2, K) = max_pool2d(relu(conv(x, weights) + bias)),
//       positions (N, H / 2, W / 2, K) bytes: where each window sends its
//       gradient (relu_pool_position, pool2d.hpp)
// Where it applies (conv2d_relu_max_pool_applies: narrow Winograd's layers,
// winograd_narrow.hpp, with 'same' padding), each 4x4 output tile of narrow
// Winograd is pooled while it is in cache, and the convolution's output
// (46 MB at (32, 150, 150, 16)) is never written: pooled has the values of
// conv2d_forward then max_pool2d_forward, bit for bit. The backward needs
// only the positions (2.9 MB): max_pool2d_relu_backward_from_positions
// gives the gradient before the ReLU that max_pool2d_relu_backward gives
// from the convolution's output, then narrow Winograd's both gradients in
// one pass (conv2d_backward; nn::KernelLayer::backward_fused).
// Measured on the custom CNN's pair (batch 32, 2 threads, medians of 11,
// 3 interleaved runs on the shared 2-core Zen 3), against writing the
// output and reading it back in the backward: the forward 11.3-11.5 ms
// against 12.6-13.1, the pooling's backward 2.4-2.6 ms against 3.8-3.9.
// A banded backward that never wrote the gradient before the ReLU out,
// computing it per band of rows into cache, measured no faster than the two
// steps (33.0-40.8 ms against 31.5-41.1), so it was not kept.

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

// pooled = max_pool2d(relu(conv(x, weights) + bias), window) and its
// positions, both overwritten (see the top of the file).
template <typename T>
void conv2d_relu_max_pool_forward(const Tensor<T>& x, const Tensor<T>& weights, OptionalInput<T> bias,
                                  const ConvParams& params, const Window2D& window, Tensor<T>& pooled,
                                  Tensor<std::uint8_t>& positions) {
    const char* op = "conv2d_relu_max_pool_forward";
    const detail::Conv2DDims d = detail::checked_conv2d_dims(x, weights, params, op);
    BCNN_CHECK(conv2d_relu_max_pool_applies<T>(x.shape(), weights.shape(), params, window),
               op << ": takes narrow Winograd's 3x3 'same' convolutions then a 2x2/2 'valid' pooling, got input "
                  << x.shape() << ", weights " << weights.shape() << ", pool " << window);
    if (bias) detail::require_shape(*bias, Shape{d.filters}, op, "bias");
    const Shape pooled_shape = pool2d_output_shape(d.output_shape(), window);
    detail::require_shape(pooled, pooled_shape, op, "pooled output");
    detail::require_shape(positions, pooled_shape, op, "positions");
    detail::require_contiguous(positions, op, "positions");
    if (d.pixels() == 0) return;
    const RowMatrix<T> xm = x.as_rows(op);
    detail::conv2d_winograd_narrow_relu_max_pool_forward(d, xm, weights.data(), bias ? bias->data() : nullptr,
                                                         detail::WinogradNarrowPooling<T>{pooled.as_rows(op),
                                                                                          positions.data()});
}

}  // namespace cpu
}  // namespace bcnn

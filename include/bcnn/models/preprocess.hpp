#pragma once
// What the backbones' input preprocessing functions share (vgg16_preprocess,
// densenet_preprocess): the checks that the input is an RGB batch and the
// output has its shape, and the loop over pixels.

#include "bcnn/kernels/cpu/elementwise.hpp"

namespace bcnn {
namespace models {
namespace detail {

// Calls pixel(in, out) for every pixel of rgb (N, H, W, 3) with `in` its 3
// channels and `out` those of the same pixel of y (N, H, W, 3). y may be rgb
// itself (in place); either may be a channel-slice view. Errors name `op`.
template <typename T, typename PixelFn>
void for_each_rgb_pixel(const char* op, const Tensor<T>& rgb, Tensor<T>& y, PixelFn pixel) {
    cpu::detail::require_rank(rgb, 4, op, "x");
    BCNN_CHECK(rgb.dim(3) == 3, op << ": x has shape " << rgb.shape() << ", expected (N, H, W, 3) RGB");
    cpu::detail::require_shape(y, rgb.shape(), op, "y");
    cpu::detail::for_each_row(
        op, y, [&](Index, T* out, const T* in, Index) { pixel(in, out); }, rgb);
}

}  // namespace detail
}  // namespace models
}  // namespace bcnn

#pragma once
// What the depthwise convolution kernels (depthwise_conv2d.hpp,
// depthwise_3x3.hpp) share: the checked extents of one depthwise
// convolution and loads/stores of one vector of channels, whole or partial.

#include <type_traits>

#include "bcnn/kernels/cpu/checks.hpp"
#include "bcnn/kernels/cpu/simd.hpp"
#include "bcnn/kernels/cpu/window.hpp"

namespace bcnn {
namespace cpu {
namespace detail {

// Extents of one depthwise convolution, checked.
struct DepthwiseDims {
    Index batch = 0, channels = 0, multiplier = 0, kernel_h = 0, kernel_w = 0;
    Index stride_h = 1, stride_w = 1;
    WindowGeometry geometry;
    Index channels_out() const { return channels * multiplier; }
    Shape output_shape() const { return Shape{batch, geometry.out_h, geometry.out_w, channels_out()}; }
};

inline DepthwiseDims depthwise_dims(const Shape& x, const Shape& weights, const ConvParams& params, const char* op) {
    BCNN_CHECK(x.rank() == 4, op << ": input must be NHWC (rank 4), got shape " << x);
    BCNN_CHECK(weights.rank() == 4, op << ": depthwise weights must be (kh, kw, channels, multiplier), got shape "
                                       << weights);
    BCNN_CHECK(weights[2] == x[3], op << ": input " << x << " does not match depthwise weights " << weights
                                      << " (expected (kh, kw, " << x[3] << ", multiplier))");
    BCNN_CHECK(weights[3] >= 1, op << ": depthwise weights " << weights << " have a depth multiplier below 1");
    DepthwiseDims d;
    d.batch = x[0];
    d.channels = x[3];
    d.multiplier = weights[3];
    d.kernel_h = weights[0];
    d.kernel_w = weights[1];
    d.stride_h = params.stride_h;
    d.stride_w = params.stride_w;
    d.geometry = window_geometry(x[1], x[2], conv_window(d.kernel_h, d.kernel_w, params), op);
    return d;
}

template <typename T>
DepthwiseDims checked_depthwise_dims(const Tensor<T>& x, const Tensor<T>& weights, const ConvParams& params,
                                     const char* op) {
    require_rank(x, 4, op, "input");
    require_rank(weights, 4, op, "depthwise weights");
    require_contiguous(weights, op, "depthwise weights");
    return depthwise_dims(x.shape(), weights.shape(), params, op);
}

// One vector of channels: all lanes when Full, else the first `lanes`.
template <typename T, bool Full>
simd::Vec<T> depthwise_load(const T* p, int lanes) {
    if constexpr (Full) {
        return simd::load(p);
    } else {
        return simd::load_part(p, lanes);
    }
}

template <typename T, bool Full>
void depthwise_store(T* p, const simd::Vec<T>& v, int lanes) {
    if constexpr (Full) {
        simd::store(p, v);
    } else {
        simd::store_part(p, v, lanes);
    }
}

// Calls body(std::true_type, cv, c, lanes) for each group of CV whole
// vectors of `channels` (cv = std::integral_constant<int, CV>), then for
// the remaining whole vectors one by one (cv = 1), then
// body(std::false_type, 1, c, lanes) for the tail; c and lanes say which channels.
template <typename T, int CV = 1, typename Body>
void for_channel_vectors(Index channels, Body&& body) {
    constexpr int width = simd::width<T>;
    Index c = 0;
    for (; c + CV * width <= channels; c += CV * width)
        body(std::true_type(), std::integral_constant<int, CV>(), c, width);
    for (; c + width <= channels; c += width) body(std::true_type(), std::integral_constant<int, 1>(), c, width);
    if (c < channels) body(std::false_type(), std::integral_constant<int, 1>(), c, static_cast<int>(channels - c));
}

}  // namespace detail
}  // namespace cpu
}  // namespace bcnn

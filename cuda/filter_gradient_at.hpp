#pragma once
// Internal to bcnn_cuda: the sum for one weight of the direct weights gradient
// (filter_gradient_kernels.hpp), which its kernel runs per thread. Plain C++
// as well (no CUDA qualifiers outside nvcc): tests/kernels checks its index
// arithmetic on the host against the CPU kernels, where CI has no GPU.

#include "bcnn/core/shape.hpp"
#include "host_device.hpp"

namespace bcnn {
namespace cuda {
namespace kernels {

// One convolution as cuDNN sees it: x (N, H, W, C) packed NHWC (for Keras'
// odd 'same' padding, the copy with its extra zero row/column), padded by
// pad_top/pad_left on both sides; dy (N, OH, OW, K) packed; weights HWIO
// (KH, KW, C / groups, K), filter k reading channels of group k / (K / groups).
struct FilterGradientGeometry {
    Index batch, in_h, in_w, channels;
    Index out_h, out_w, filters;
    Index kernel_h, kernel_w, stride_h, stride_w, pad_top, pad_left;
    Index groups;
};

// d_weights at flat HWIO index `weight`: the sum over n, oh, ow of
// x[n, oh * stride_h - pad_top + r, ow * stride_w - pad_left + s, channel] * dy[n, oh, ow, k].
template <typename T>
BCNN_HOST_DEVICE inline T filter_gradient_at(const T* x, const T* dy, const FilterGradientGeometry& g, Index weight) {
    const Index group_channels = g.channels / g.groups, group_filters = g.filters / g.groups;
    const Index k = weight % g.filters, rest = weight / g.filters;
    const Index c = rest % group_channels, s = rest / group_channels % g.kernel_w;
    const Index r = rest / group_channels / g.kernel_w;
    const Index channel = k / group_filters * group_channels + c;
    T sum = 0;
    for (Index n = 0; n < g.batch; ++n)
        for (Index oh = 0; oh < g.out_h; ++oh) {
            const Index ih = oh * g.stride_h - g.pad_top + r;
            if (ih < 0 || ih >= g.in_h) continue;
            for (Index ow = 0; ow < g.out_w; ++ow) {
                const Index iw = ow * g.stride_w - g.pad_left + s;
                if (iw < 0 || iw >= g.in_w) continue;
                sum += x[((n * g.in_h + ih) * g.in_w + iw) * g.channels + channel] *
                       dy[((n * g.out_h + oh) * g.out_w + ow) * g.filters + k];
            }
        }
    return sum;
}

}  // namespace kernels
}  // namespace cuda
}  // namespace bcnn

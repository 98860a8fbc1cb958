// The CUDA backend's direct weights gradient in double (cuda/filter_gradient_at.hpp:
// cuDNN 9 has no NHWC backward-filter algorithm for double, so its kernel sums
// each weight with filter_gradient_at) run on the host, where CI has no GPU,
// against cpu::conv2d_backward and cpu::depthwise_conv2d_backward: every
// weight, over 'same' padding with Keras' odd extra pixel at the bottom/right,
// strides, 'valid', 1x1, and depthwise multipliers 1-3 (groups = C). The input
// is given as the backend's Convolution gives it to cuDNN: copied into a
// zeroed buffer one row/column larger along the odd axes, padded by
// pad_top/pad_left on both sides. Both sums run in double in different
// orders: 1e-12 of the largest weight gradient.

#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <vector>

#include <bcnn/kernels/cpu/conv2d.hpp>
#include <bcnn/kernels/cpu/depthwise_conv2d.hpp>

#include "../../cuda/filter_gradient_at.hpp"
#include "support/random.hpp"

using namespace bcnn;
using bcnn::cuda::kernels::filter_gradient_at;
using bcnn::cuda::kernels::FilterGradientGeometry;
using bcnn::testing::random_tensor;

namespace {

struct Case {
    const char* name;
    Shape x, weights;  // weights HWIO (conv) or (KH, KW, C, M) (depthwise)
    Index stride_h, stride_w;
    Padding padding;
    bool depthwise;
};

const Case kCases[] = {
    {"3x3 same", Shape{2, 9, 11, 5}, Shape{3, 3, 5, 7}, 1, 1, Padding::same, false},
    {"3x3/2 same, odd padding on both axes", Shape{3, 8, 10, 5}, Shape{3, 3, 5, 4}, 2, 2, Padding::same, false},
    {"5x3 strides 2x1 same", Shape{2, 8, 10, 3}, Shape{5, 3, 3, 4}, 2, 1, Padding::same, false},
    {"3x3 strides 2x1 valid", Shape{2, 9, 11, 5}, Shape{3, 3, 5, 7}, 2, 1, Padding::valid, false},
    {"1x1", Shape{2, 6, 6, 4}, Shape{1, 1, 4, 6}, 1, 1, Padding::valid, false},
    {"depthwise 3x3 same", Shape{2, 7, 9, 5}, Shape{3, 3, 5, 1}, 1, 1, Padding::same, true},
    {"depthwise x2 same", Shape{3, 6, 7, 4}, Shape{3, 3, 4, 2}, 1, 1, Padding::same, true},
    {"depthwise x2 stride 2 same", Shape{3, 8, 7, 4}, Shape{3, 3, 4, 2}, 2, 2, Padding::same, true},
    {"depthwise x3 stride 2 valid", Shape{3, 8, 7, 4}, Shape{3, 3, 4, 3}, 2, 2, Padding::valid, true},
};

// The input extent cuDNN sees: in, plus the one pixel Keras' odd 'same'
// padding puts after the image (cuDNN pads pad_before on both sides).
Index padded_extent(Index in, Index kernel, Index stride, Index out, Index pad_before) {
    return in + std::max<Index>(0, (out - 1) * stride + kernel - (in + 2 * pad_before));
}

}  // namespace

TEST_CASE("the cuda backend's direct weights gradient sums what the cpu kernels do", "[kernels][cuda]") {
    std::uint64_t seed = 40;
    for (const Case& c : kCases) {
        CAPTURE(c.name);
        ConvParams params;
        params.stride_h = c.stride_h;
        params.stride_w = c.stride_w;
        params.padding = c.padding;
        const Index batch = c.x[0], channels = c.x[3], kh = c.weights[0], kw = c.weights[1];
        const WindowGeometry geometry =
            c.depthwise ? cpu::detail::depthwise_dims(c.x, c.weights, params, "test").geometry
                        : cpu::detail::conv2d_dims(c.x, c.weights, params, "test").geometry;
        const Index filters = c.depthwise ? channels * c.weights[3] : c.weights[3];
        const Tensor<double> x = random_tensor<double>(c.x, ++seed), weights = random_tensor<double>(c.weights, ++seed);
        const Tensor<double> dy =
            random_tensor<double>(Shape{batch, geometry.out_h, geometry.out_w, filters}, ++seed);
        Tensor<double> expected(c.weights);
        if (c.depthwise)
            cpu::depthwise_conv2d_backward(x, weights, dy, params, static_cast<Tensor<double>*>(nullptr), &expected,
                                           static_cast<Tensor<double>*>(nullptr));
        else
            cpu::conv2d_backward(x, weights, dy, params, static_cast<Tensor<double>*>(nullptr), &expected,
                                 static_cast<Tensor<double>*>(nullptr));

        FilterGradientGeometry g{};
        g.batch = batch;
        g.in_h = padded_extent(c.x[1], kh, c.stride_h, geometry.out_h, geometry.pad_top);
        g.in_w = padded_extent(c.x[2], kw, c.stride_w, geometry.out_w, geometry.pad_left);
        g.channels = channels;
        g.out_h = geometry.out_h;
        g.out_w = geometry.out_w;
        g.filters = filters;
        g.kernel_h = kh;
        g.kernel_w = kw;
        g.stride_h = c.stride_h;
        g.stride_w = c.stride_w;
        g.pad_top = geometry.pad_top;
        g.pad_left = geometry.pad_left;
        g.groups = c.depthwise ? channels : 1;
        std::vector<double> padded(static_cast<std::size_t>(batch * g.in_h * g.in_w * channels), 0.0);
        for (Index n = 0; n < batch; ++n)
            for (Index i = 0; i < c.x[1]; ++i)
                std::copy_n(x.data() + (n * c.x[1] + i) * c.x[2] * channels, c.x[2] * channels,
                            padded.begin() + (n * g.in_h + i) * g.in_w * channels);

        double worst = 0, scale = 0;
        for (Index w = 0; w < expected.numel(); ++w) {
            worst = std::max(worst, std::abs(filter_gradient_at(padded.data(), dy.data(), g, w) - expected.data()[w]));
            scale = std::max(scale, std::abs(expected.data()[w]));
        }
        CHECK(scale > 0);
        CHECK(worst <= 1e-12 * scale);
    }
}

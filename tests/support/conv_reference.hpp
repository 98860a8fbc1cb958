#pragma once
// Nested-loop references for the convolution kernel tests, with their own
// Keras padding rule (independent of window.hpp): the forward, the input
// gradient, and the walk over every tap of every window that lies inside the
// image that both use (as do the tests' weights-gradient references); and
// the gradient before a ReLU.

#include <algorithm>

#include <bcnn/core/tensor.hpp>
#include <bcnn/kernels/cpu/activation_fn.hpp>
#include <bcnn/kernels/cpu/window.hpp>

namespace bcnn {
namespace testing {

// Output extent and padding before the first input along one axis, by the
// Keras/TensorFlow rule as TensorFlow documents it (independent of window.hpp):
// 'same' pads max(kernel - stride, 0) in total when stride divides in, else
// max(kernel - in % stride, 0), the smaller half before.
struct Axis {
    Index out = 0, pad_before = 0;
};

inline Axis keras_axis(Index in, Index kernel, Index stride, Padding padding) {
    if (padding == Padding::valid) return {(in - kernel) / stride + 1, 0};
    const Index total = in % stride == 0 ? std::max<Index>(kernel - stride, 0) : std::max<Index>(kernel - in % stride, 0);
    return {(in + stride - 1) / stride, total / 2};
}

// y[n, oh, ow, k] = act(b[k] + sum x[n, oh*sh - top + kh, ow*sw - left + kw, c] * w[kh, kw, c, k]),
// x = 0 outside the image.
inline Tensor<double> reference_forward(const Tensor<double>& x, const Tensor<double>& w, const Tensor<double>* b,
                                        const ConvParams& p, cpu::ActivationFn activation) {
    const Index batch = x.dim(0), in_h = x.dim(1), in_w = x.dim(2), channels = x.dim(3);
    const Index kernel_h = w.dim(0), kernel_w = w.dim(1), filters = w.dim(3);
    const Axis ah = keras_axis(in_h, kernel_h, p.stride_h, p.padding);
    const Axis aw = keras_axis(in_w, kernel_w, p.stride_w, p.padding);
    Tensor<double> y(Shape{batch, ah.out, aw.out, filters});
    const Tensor<double> xc = x.clone(), wc = w.clone();
    const double *xd = xc.data(), *wd = wc.data();
    double* yd = y.data();
    for (Index n = 0; n < batch; ++n)
        for (Index oh = 0; oh < ah.out; ++oh)
            for (Index ow = 0; ow < aw.out; ++ow)
                for (Index k = 0; k < filters; ++k) {
                    double sum = b ? (*b)(k) : 0.0;
                    for (Index kh = 0; kh < kernel_h; ++kh)
                        for (Index kw = 0; kw < kernel_w; ++kw) {
                            const Index ih = oh * p.stride_h - ah.pad_before + kh;
                            const Index iw = ow * p.stride_w - aw.pad_before + kw;
                            if (ih < 0 || ih >= in_h || iw < 0 || iw >= in_w) continue;
                            for (Index c = 0; c < channels; ++c)
                                sum += xd[((n * in_h + ih) * in_w + iw) * channels + c] *
                                       wd[((kh * kernel_w + kw) * channels + c) * filters + k];
                        }
                    yd[((n * ah.out + oh) * aw.out + ow) * filters + k] =
                        activation == cpu::ActivationFn::relu && sum < 0 ? 0.0 : sum;
                }
    return y;
}

// Calls visit(n, oh, ow, kh, kw, ih, iw) for every output pixel of a
// convolution of an input of shape x and every tap of its window that lies
// inside the image (Keras padding by keras_axis).
template <typename Visit>
void for_each_tap_inside(const Shape& x, Index kernel_h, Index kernel_w, const ConvParams& p, Visit visit) {
    const Axis ah = keras_axis(x[1], kernel_h, p.stride_h, p.padding);
    const Axis aw = keras_axis(x[2], kernel_w, p.stride_w, p.padding);
    for (Index n = 0; n < x[0]; ++n)
        for (Index oh = 0; oh < ah.out; ++oh)
            for (Index ow = 0; ow < aw.out; ++ow)
                for (Index kh = 0; kh < kernel_h; ++kh)
                    for (Index kw = 0; kw < kernel_w; ++kw) {
                        const Index ih = oh * p.stride_h - ah.pad_before + kh;
                        const Index iw = ow * p.stride_w - aw.pad_before + kw;
                        if (ih >= 0 && ih < x[1] && iw >= 0 && iw < x[2]) visit(n, oh, ow, kh, kw, ih, iw);
                    }
}

// dx[n, ih, iw, c] = sum over the output pixels whose window covers (ih, iw)
// of w[kh, kw, c, k] * dy[n, oh, ow, k] (the chain rule on reference_forward).
inline Tensor<double> reference_input_gradient(const Shape& x, const Tensor<double>& w, const Tensor<double>& dy,
                                               const ConvParams& p) {
    Tensor<double> dx(x);
    const Tensor<double> wc = w.clone(), dyc = dy.clone();  // raw pointers: Tensor::operator() is too slow here
    const double *wd = wc.data(), *dyd = dyc.data();
    double* dxd = dx.data();
    const Index channels = x[3], filters = w.dim(3), out_h = dy.dim(1), out_w = dy.dim(2);
    const auto add_tap = [&](Index n, Index oh, Index ow, Index kh, Index kw, Index ih, Index iw) {
        double* dxp = dxd + ((n * x[1] + ih) * x[2] + iw) * channels;
        const double* dyp = dyd + ((n * out_h + oh) * out_w + ow) * filters;
        const double* wp = wd + (kh * w.dim(1) + kw) * channels * filters;
        for (Index c = 0; c < channels; ++c)
            for (Index k = 0; k < filters; ++k) dxp[c] += wp[c * filters + k] * dyp[k];
    };
    for_each_tap_inside(x, w.dim(0), w.dim(1), p, add_tap);
    return dx;
}

// dy[i] where relu_output[i] > 0, else 0 (NaN outputs too): the gradient
// before a ReLU whose output is relu_output (contiguous, dy's shape).
template <typename T>
Tensor<T> relu_masked(const Tensor<T>& dy, const Tensor<T>& relu_output) {
    const Tensor<T> dyc = dy.clone(), yc = relu_output.clone();
    Tensor<T> pre(dy.shape());
    for (Index i = 0; i < pre.numel(); ++i) pre.data()[i] = yc.data()[i] > T(0) ? dyc.data()[i] : T(0);
    return pre;
}

}  // namespace testing
}  // namespace bcnn

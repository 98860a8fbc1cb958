#pragma once
// Internal to bcnn_cuda: one cuDNN convolution call on NHWC device tensors
// with Keras semantics, shared by conv2d.cpp and depthwise_conv2d.cpp.
//
// Layouts. Activations are NHWC, given to cuDNN as CUDNN_TENSOR_NHWC packed
// tensors. Weights are Keras HWIO (KH, KW, C / groups, K): cuDNN's NHWC
// filters are KRSC (K, KH, KW, C / groups), so every call transposes the
// weights on the device (cudnnTransformTensor) into a scratch buffer of the
// context, and the weights gradient is computed in KRSC and transposed back.
// A depthwise kernel (KH, KW, C, M) is stored exactly as HWIO (KH, KW, 1, C*M)
// (output channel c*M + m, cuDNN's group c), so depthwise is groups = C,
// K = C*M. The transpose is redone on every call: weights change in place
// between calls and tensors carry no version to key a cached copy on.
//
// Padding. cuDNN pads symmetrically; Keras 'same' puts the odd pixel of an
// odd total padding at the bottom/right. For those shapes x is copied into a
// zeroed (N, H + 1, W + 1, C) buffer (one extra row and/or column at the
// bottom/right, only along the odd axes) and cuDNN pads pad_top/pad_left on
// both sides of it: every window then reads exactly the pixels the CPU kernel
// reads, and the output has Keras's size. Backward is consistent: the filter
// gradient reads the same padded copy, and the data gradient is computed over
// the padded input, whose extra row/column (gradient of the zeros) is dropped
// when copying into dx.
//
// Views. cuDNN gets packed tensors only: x and dy that are channel slices of
// wider buffers are packed into scratch first, and outputs that are slices
// (y, dx) are computed packed and copied into the slice (cudnnTransformTensor
// with the slice's strides), leaving the neighbouring channels untouched.
//
// Bias: cudnnAddTensor after the convolution; its gradient:
// cudnnConvolutionBackwardBias. Algorithms: conv_algorithms.hpp; float never
// uses TF32 unless cuda::set_conv2d_tf32(true).

#include <sstream>
#include <string>
#include <type_traits>

#include "argument_checks.hpp"
#include "bcnn/backend/cuda/conv2d.hpp"
#include "bcnn/kernels/cpu/conv2d.hpp"
#include "conv_algorithms.hpp"
#include "nhwc_staging.hpp"
#include "stream.hpp"

namespace bcnn {
namespace cuda {
namespace detail {

// One convolution call: checked extents (dims.channels = C of x, dims.filters
// = K; C and K multiples of groups), the extents cuDNN sees, descriptors.
template <typename T>
class Convolution {
public:
    Convolution(const cpu::detail::Conv2DDims& dims, Index groups, const Tensor<T>& x, const Tensor<T>& weights,
                const ConvParams& params, const char* op)
        : dims_(dims),
          groups_(groups),
          where_(describe(op, x, weights, params)),
          context_(cudnn_context()),
          staging_(context_, where_),
          padded_h_(padded_extent(dims_.geometry.in_h, dims_.window.kernel_h, dims_.window.stride_h,
                                  dims_.geometry.out_h, dims_.geometry.pad_top)),
          padded_w_(padded_extent(dims_.geometry.in_w, dims_.window.kernel_w, dims_.window.stride_w,
                                  dims_.geometry.out_w, dims_.geometry.pad_left)),
          x_desc_(type(), padded_input_layout(), where_),
          w_desc_(type(), dims_.filters, filter_channels(), dims_.window.kernel_h, dims_.window.kernel_w, where_),
          conv_desc_(type(), dims_.geometry.pad_top, dims_.geometry.pad_left, dims_.window.stride_h,
                     dims_.window.stride_w, where_, groups_),
          y_desc_(type(), output_layout(), where_),
          bias_desc_(type(), packed_nhwc(1, 1, 1, dims_.filters), where_) {
        check_output_extent();
    }

    const std::string& where() const { return where_; }
    cudnnHandle_t handle() const { return context_.handle(); }
    const TensorDescriptor& y_desc() const { return y_desc_; }
    const TensorDescriptor& bias_desc() const { return bias_desc_; }
    bool padded() const { return padded_h_ != dims_.geometry.in_h || padded_w_ != dims_.geometry.in_w; }

    ConvProblem problem() {
        const bool no_tf32 = std::is_same<T, float>::value && !conv2d_tf32();
        const ConvKey key = {0,
                             static_cast<long long>(type()),
                             no_tf32,
                             dims_.batch,
                             padded_h_,
                             padded_w_,
                             dims_.channels,
                             dims_.filters,
                             dims_.window.kernel_h,
                             dims_.window.kernel_w,
                             dims_.geometry.pad_top,
                             dims_.geometry.pad_left,
                             dims_.window.stride_h,
                             dims_.window.stride_w,
                             groups_};
        return ConvProblem{context_, x_desc_, w_desc_, conv_desc_, y_desc_, key, no_tf32, where_};
    }

    // x as cuDNN reads it: x itself when packed and unpadded, else a packed
    // copy in scratch, zero-padded at the bottom/right where 'same' needs it.
    const T* input(const Tensor<T>& x) {
        if (!padded() && x.is_contiguous()) return x.data();
        T* staged = scratch(Scratch::input, padded_input_layout());
        if (padded())
            BCNN_CUDA_CHECK(cudaMemsetAsync(staged, 0, bytes_of<T>(padded_elements()), context_stream()),
                            where_ << ": padded input");
        copy(layout_of(x, "cuda convolution input"), x.data(), padded_region_layout(), staged);
        return staged;
    }

    // dy as cuDNN reads it: dy itself when packed, else a packed copy.
    const T* output_gradient(const Tensor<T>& dy) {
        if (dy.is_contiguous()) return dy.data();
        T* staged = scratch(Scratch::output, output_layout());
        copy(layout_of(dy, "cuda convolution output gradient"), dy.data(), output_layout(), staged);
        return staged;
    }

    // Where cuDNN writes y: y itself when packed, else scratch (see finish_output).
    T* output(Tensor<T>& y) { return y.is_contiguous() ? y.data() : scratch(Scratch::output, output_layout()); }
    void finish_output(const T* computed, Tensor<T>& y) {
        if (computed != y.data()) copy(output_layout(), computed, layout_of(y, "cuda convolution output"), y.data());
    }

    // Where cuDNN writes dx over the (padded) input: dx itself when packed and
    // unpadded, else scratch (see finish_input_gradient).
    T* input_gradient(Tensor<T>& dx) {
        return !padded() && dx.is_contiguous() ? dx.data() : scratch(Scratch::input_gradient, padded_input_layout());
    }
    void finish_input_gradient(const T* computed, Tensor<T>& dx) {
        if (computed != dx.data())
            copy(padded_region_layout(), computed, layout_of(dx, "cuda convolution input gradient"), dx.data());
    }

    // The HWIO weights transposed into KRSC (cuDNN's NHWC filter layout), in scratch.
    const T* filter(const Tensor<T>& weights) {
        T* krsc = scratch(Scratch::filter, krsc_layout());
        copy(hwio_layout(), weights.data(), krsc_layout(), krsc);
        return krsc;
    }
    T* filter_gradient() { return scratch(Scratch::filter_gradient, krsc_layout()); }
    void finish_filter_gradient(const T* krsc, Tensor<T>& d_weights) {
        copy(krsc_layout(), krsc, hwio_layout(), d_weights.data());
    }

    static const T* one() { return detail::one<T>(); }
    static const T* zero() { return detail::zero<T>(); }

private:
    static cudnnDataType_t type() { return cudnn_data_type<T>(); }

    static std::string describe(const char* op, const Tensor<T>& x, const Tensor<T>& weights,
                                const ConvParams& params) {
        std::ostringstream out;
        out << op << " on input " << x.shape() << ", weights " << weights.shape() << ", strides " << params.stride_h
            << 'x' << params.stride_w << ", padding '" << padding_name(params.padding) << "' ("
            << (std::is_same<T, float>::value ? "float" : "double") << ")";
        return out.str();
    }

    // Input channels each filter sees: C / groups.
    Index filter_channels() const { return dims_.channels / groups_; }
    Index padded_elements() const { return dims_.batch * padded_h_ * padded_w_ * dims_.channels; }
    TensorLayout padded_input_layout() const { return packed_nhwc(dims_.batch, padded_h_, padded_w_, dims_.channels); }
    // The H x W part of the padded input (top-left of each padded image).
    TensorLayout padded_region_layout() const {
        return strided_nhwc(dims_.batch, dims_.geometry.in_h, dims_.geometry.in_w, dims_.channels, padded_h_,
                            padded_w_, dims_.channels);
    }
    TensorLayout output_layout() const {
        return packed_nhwc(dims_.batch, dims_.geometry.out_h, dims_.geometry.out_w, dims_.filters);
    }
    // Weights as a (K, KH, KW, C / groups) tensor: packed KRSC, or our HWIO storage order.
    TensorLayout krsc_layout() const {
        return packed_nhwc(dims_.filters, dims_.window.kernel_h, dims_.window.kernel_w, filter_channels());
    }
    TensorLayout hwio_layout() const {
        const Index k = dims_.filters, c = filter_channels(), kw = dims_.window.kernel_w;
        return TensorLayout{k, dims_.window.kernel_h, kw, c, 1, kw * c * k, c * k, k};
    }

    T* scratch(Scratch slot, const TensorLayout& l) { return staging_.scratch(slot, l); }

    // to = from, between two layouts of the same (n, h, w, c) extents.
    void copy(const TensorLayout& from_layout, const T* from, const TensorLayout& to_layout, T* to) {
        staging_.copy(from_layout, from, to_layout, to);
    }

    // cuDNN's output extents for the padded input must be Keras's.
    void check_output_extent() const {
        int n = 0, k = 0, h = 0, w = 0;
        BCNN_CUDA_CHECK(cudnnGetConvolution2dForwardOutputDim(conv_desc_.get(), x_desc_.get(), w_desc_.get(), &n, &k,
                                                              &h, &w),
                        where_);
        BCNN_CHECK(h == dims_.geometry.out_h && w == dims_.geometry.out_w,
                   where_ << ": internal error: cuDNN computes a " << h << 'x' << w << " output from the "
                          << padded_h_ << 'x' << padded_w_ << " padded input, expected " << dims_.geometry.out_h << 'x'
                          << dims_.geometry.out_w);
    }

    cpu::detail::Conv2DDims dims_;
    Index groups_;
    std::string where_;
    CudnnContext& context_;
    Staging<T> staging_;
    Index padded_h_, padded_w_;
    TensorDescriptor x_desc_;
    FilterDescriptor w_desc_;
    ConvolutionDescriptor conv_desc_;
    TensorDescriptor y_desc_, bias_desc_;
};

// y = conv(x, weights) (+ bias), all checked by the caller; d.pixels() > 0.
template <typename T>
void convolution_forward(Convolution<T>& conv, const Tensor<T>& x, const Tensor<T>& weights, const Tensor<T>* bias,
                         Tensor<T>& y) {
    const T* x_data = conv.input(x);
    const T* w_data = conv.filter(weights);
    T* y_data = conv.output(y);
    ConvProblem problem = conv.problem();
    const ConvAlgorithm algorithm = forward_algorithm(problem, x_data, w_data, y_data);
    void* workspace = problem.context.scratch(Scratch::workspace, algorithm.workspace_bytes, conv.where());
    BCNN_CUDA_CHECK(cudnnConvolutionForward(conv.handle(), conv.one(), problem.x.get(), x_data, problem.w.get(), w_data,
                                            problem.conv.get(),
                                            static_cast<cudnnConvolutionFwdAlgo_t>(algorithm.algo), workspace,
                                            algorithm.workspace_bytes, conv.zero(), problem.y.get(), y_data),
                    conv.where());
    if (bias)
        BCNN_CUDA_CHECK(cudnnAddTensor(conv.handle(), conv.one(), conv.bias_desc().get(), bias->data(), conv.one(),
                                       conv.y_desc().get(), y_data),
                        conv.where() << ", bias");
    conv.finish_output(y_data, y);
}

// dx, d_weights, d_bias (each optional, checked by the caller) from dy; d.pixels() > 0.
template <typename T>
void convolution_backward(Convolution<T>& conv, const Tensor<T>& x, const Tensor<T>& weights, const Tensor<T>& dy,
                          Tensor<T>* dx, Tensor<T>* d_weights, Tensor<T>* d_bias) {
    const T* dy_data = conv.output_gradient(dy);
    ConvProblem problem = conv.problem();
    if (d_bias)
        BCNN_CUDA_CHECK(cudnnConvolutionBackwardBias(conv.handle(), conv.one(), problem.y.get(), dy_data, conv.zero(),
                                                     conv.bias_desc().get(), d_bias->data()),
                        conv.where() << ", bias gradient");
    if (d_weights) {
        const T* x_data = conv.input(x);
        T* dw_data = conv.filter_gradient();
        const ConvAlgorithm algorithm = backward_filter_algorithm(problem, x_data, dy_data, dw_data);
        void* workspace = problem.context.scratch(Scratch::workspace, algorithm.workspace_bytes, conv.where());
        BCNN_CUDA_CHECK(cudnnConvolutionBackwardFilter(
                            conv.handle(), conv.one(), problem.x.get(), x_data, problem.y.get(), dy_data,
                            problem.conv.get(), static_cast<cudnnConvolutionBwdFilterAlgo_t>(algorithm.algo),
                            workspace, algorithm.workspace_bytes, conv.zero(), problem.w.get(), dw_data),
                        conv.where() << ", weights gradient");
        conv.finish_filter_gradient(dw_data, *d_weights);
    }
    if (dx) {
        const T* w_data = conv.filter(weights);
        T* dx_data = conv.input_gradient(*dx);
        const ConvAlgorithm algorithm = backward_data_algorithm(problem, w_data, dy_data, dx_data);
        void* workspace = problem.context.scratch(Scratch::workspace, algorithm.workspace_bytes, conv.where());
        BCNN_CUDA_CHECK(cudnnConvolutionBackwardData(
                            conv.handle(), conv.one(), problem.w.get(), w_data, problem.y.get(), dy_data,
                            problem.conv.get(), static_cast<cudnnConvolutionBwdDataAlgo_t>(algorithm.algo), workspace,
                            algorithm.workspace_bytes, conv.zero(), problem.x.get(), dx_data),
                        conv.where() << ", input gradient");
        conv.finish_input_gradient(dx_data, *dx);
    }
}

// The parameter gradients of an empty batch: zero.
template <typename T>
void zero_parameter_gradients(Tensor<T>* d_weights, Tensor<T>* d_bias, const char* op) {
    for (Tensor<T>* gradient : {d_weights, d_bias})
        if (gradient)
            BCNN_CUDA_CHECK(cudaMemset(gradient->data(), 0, bytes_of<T>(gradient->numel())),
                            op << " on an empty batch");
}

}  // namespace detail
}  // namespace cuda
}  // namespace bcnn

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
// uses TF32 unless cuda::set_conv2d_tf32(true). The weights gradient in
// double is our own direct sum (filter_gradient_kernels.hpp): cuDNN 9 has no
// NHWC backward-filter algorithm for double.
//
// Mixed precision (cuda::compute_precision() bf16 or fp16, float tensors
// only): cuDNN gets 16-bit x, weights, y, dy, dx and d_weights with float
// compute and tensor core math. One kernel (precision_kernels.hpp) converts
// each float input into its 16-bit scratch copy on the way to the packing,
// padding or KRSC transpose above, and each 16-bit result into the caller's
// float tensor (or slice) on the way back; the bias is added in that last
// conversion, and its gradient is computed in float from the float dy. The
// algorithm cache keys on the data type, so each precision finds its own; a
// 16-bit problem cuDNN has no algorithm for runs in float (run_convolution).

#include <cstddef>
#include <sstream>
#include <string>
#include <type_traits>

#include "argument_checks.hpp"
#include "bcnn/backend/cuda/conv2d.hpp"
#include "bcnn/kernels/cpu/conv2d.hpp"
#include "conv_algorithms.hpp"
#include "filter_gradient_kernels.hpp"
#include "nhwc_staging.hpp"
#include "precision_kernels.hpp"
#include "stream.hpp"

namespace bcnn {
namespace cuda {
namespace detail {

// Conversions to and from the 16-bit types; only float data ever takes them
// (effective_precision<double>() is fp32), the double overloads never run.
inline cudaError_t to_half(const TensorLayout& from_layout, const float* from, const TensorLayout& to_layout, void* to,
                           Precision half) {
    return kernels::float_to_half(from_layout, from, to_layout, to, half);
}
inline cudaError_t to_half(const TensorLayout&, const double*, const TensorLayout&, void*, Precision) {
    return cudaErrorNotSupported;
}
inline cudaError_t from_half(const TensorLayout& from_layout, const void* from, Precision half,
                             const TensorLayout& to_layout, float* to, const float* bias) {
    return kernels::half_to_float(from_layout, from, half, to_layout, to, bias);
}
inline cudaError_t from_half(const TensorLayout&, const void*, Precision, const TensorLayout&, double*,
                             const double*) {
    return cudaErrorNotSupported;
}

// One convolution call: checked extents (dims.channels = C of x, dims.filters
// = K; C and K multiples of groups), the extents cuDNN sees, descriptors.
template <typename T>
class Convolution {
public:
    Convolution(const cpu::detail::Conv2DDims& dims, Index groups, const Tensor<T>& x, const Tensor<T>& weights,
                const ConvParams& params, const char* op)
        : dims_(dims),
          groups_(groups),
          precision_(effective_precision<T>()),
          where_(describe(op, x, weights, params, precision_)),
          context_(cudnn_context()),
          staging_(context_, where_),
          padded_h_(padded_extent(dims_.geometry.in_h, dims_.window.kernel_h, dims_.window.stride_h,
                                  dims_.geometry.out_h, dims_.geometry.pad_top)),
          padded_w_(padded_extent(dims_.geometry.in_w, dims_.window.kernel_w, dims_.window.stride_w,
                                  dims_.geometry.out_w, dims_.geometry.pad_left)),
          x_desc_(data_type(), padded_input_layout(), where_),
          w_desc_(data_type(), dims_.filters, filter_channels(), dims_.window.kernel_h, dims_.window.kernel_w,
                  where_),
          conv_desc_(cudnn_data_type<T>(), dims_.geometry.pad_top, dims_.geometry.pad_left, dims_.window.stride_h,
                     dims_.window.stride_w, where_, groups_),
          y_desc_(data_type(), output_layout(), where_),
          float_y_desc_(cudnn_data_type<T>(), output_layout(), where_),
          bias_desc_(cudnn_data_type<T>(), packed_nhwc(1, 1, 1, dims_.filters), where_) {
        check_output_extent();
    }

    const std::string& where() const { return where_; }
    cudnnHandle_t handle() const { return context_.handle(); }
    // True when cuDNN runs on 16-bit data (bf16 or fp16).
    bool half() const { return precision_ != Precision::fp32; }
    bool padded() const { return padded_h_ != dims_.geometry.in_h || padded_w_ != dims_.geometry.in_w; }

    ConvProblem problem() {
        const bool no_tf32 = std::is_same<T, float>::value && !half() && !conv2d_tf32();
        const ConvKey key = {0,
                             static_cast<long long>(data_type()),
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
        return ConvProblem{context_, x_desc_, w_desc_, conv_desc_, y_desc_, key, no_tf32, half(), where_};
    }

    // x as cuDNN reads it: x itself when packed, unpadded and of cuDNN's type,
    // else a packed (16-bit) copy in scratch, zero-padded at the bottom/right
    // where 'same' needs it.
    const void* input(const Tensor<T>& x) {
        if (!half() && !padded() && x.is_contiguous()) return x.data();
        void* staged = scratch(Scratch::input, padded_input_layout());
        if (padded())
            BCNN_CUDA_CHECK(cudaMemsetAsync(staged, 0, data_bytes(padded_elements()), context_stream()),
                            where_ << ": padded input");
        const TensorLayout from = layout_of(x, "cuda convolution input");
        if (half())
            BCNN_CUDA_CHECK(to_half(from, x.data(), padded_region_layout(), staged, precision_),
                            where_ << ": input to " << precision_name(precision_));
        else
            copy(from, x.data(), padded_region_layout(), static_cast<T*>(staged));
        return staged;
    }

    // dy packed, of type T (what the bias gradient reads): dy itself when packed, else a copy.
    const T* packed_output_gradient(const Tensor<T>& dy) {
        if (dy.is_contiguous()) return dy.data();
        T* staged = static_cast<T*>(context_.scratch(Scratch::output, bytes_of<T>(elements_of(output_layout())), where_));
        copy(layout_of(dy, "cuda convolution output gradient"), dy.data(), output_layout(), staged);
        return staged;
    }

    // dy as the convolution reads it: packed_output_gradient, or a packed 16-bit copy.
    const void* output_gradient(const Tensor<T>& dy) {
        if (!half()) return packed_output_gradient(dy);
        void* staged = scratch(Scratch::output_gradient, output_layout());
        BCNN_CUDA_CHECK(to_half(layout_of(dy, "cuda convolution output gradient"), dy.data(), output_layout(), staged,
                                precision_),
                        where_ << ": output gradient to " << precision_name(precision_));
        return staged;
    }

    // Where cuDNN writes y: y itself when packed and of cuDNN's type, else scratch (see finish_output).
    void* output(Tensor<T>& y) {
        return !half() && y.is_contiguous() ? static_cast<void*>(y.data()) : scratch(Scratch::output, output_layout());
    }
    // y = computed + bias (bias may be nullptr), into y's layout and type.
    void finish_output(void* computed, const Tensor<T>* bias, Tensor<T>& y) {
        const TensorLayout to = layout_of(y, "cuda convolution output");
        if (half()) {
            BCNN_CUDA_CHECK(from_half(output_layout(), computed, precision_, to, y.data(), bias ? bias->data() : nullptr),
                            where_ << ": output from " << precision_name(precision_));
            return;
        }
        if (bias)
            BCNN_CUDA_CHECK(cudnnAddTensor(handle(), one(), bias_desc_.get(), bias->data(), one(), float_y_desc_.get(),
                                           computed),
                            where_ << ", bias");
        if (computed != y.data()) copy(output_layout(), static_cast<const T*>(computed), to, y.data());
    }

    // d_bias = column sums of dy (float in every precision).
    void bias_gradient(const T* packed_dy, Tensor<T>& d_bias) {
        BCNN_CUDA_CHECK(cudnnConvolutionBackwardBias(handle(), one(), float_y_desc_.get(), packed_dy, zero(),
                                                     bias_desc_.get(), d_bias.data()),
                        where_ << ", bias gradient");
    }

    // Where cuDNN writes dx over the (padded) input: dx itself when packed,
    // unpadded and of cuDNN's type, else scratch (see finish_input_gradient).
    void* input_gradient(Tensor<T>& dx) {
        return !half() && !padded() && dx.is_contiguous() ? static_cast<void*>(dx.data())
                                                           : scratch(Scratch::input_gradient, padded_input_layout());
    }
    void finish_input_gradient(const void* computed, Tensor<T>& dx) {
        const TensorLayout to = layout_of(dx, "cuda convolution input gradient");
        if (half())
            BCNN_CUDA_CHECK(from_half(padded_region_layout(), computed, precision_, to, dx.data(), nullptr),
                            where_ << ": input gradient from " << precision_name(precision_));
        else if (computed != dx.data())
            copy(padded_region_layout(), static_cast<const T*>(computed), to, dx.data());
    }

    // The HWIO weights transposed into KRSC (cuDNN's NHWC filter layout), in scratch.
    const void* filter(const Tensor<T>& weights) {
        void* krsc = scratch(Scratch::filter, krsc_layout());
        if (half())
            BCNN_CUDA_CHECK(to_half(hwio_layout(), weights.data(), krsc_layout(), krsc, precision_),
                            where_ << ": weights to " << precision_name(precision_));
        else
            copy(hwio_layout(), weights.data(), krsc_layout(), static_cast<T*>(krsc));
        return krsc;
    }
    void* filter_gradient() { return scratch(Scratch::filter_gradient, krsc_layout()); }
    void finish_filter_gradient(const void* krsc, Tensor<T>& d_weights) {
        if (half())
            BCNN_CUDA_CHECK(from_half(krsc_layout(), krsc, precision_, hwio_layout(), d_weights.data(), nullptr),
                            where_ << ": weights gradient from " << precision_name(precision_));
        else
            copy(krsc_layout(), static_cast<const T*>(krsc), hwio_layout(), d_weights.data());
    }

    // The weights gradient of double x (input()'s) and dy (packed), summed
    // directly into d_weights (HWIO, contiguous) without cuDNN.
    void direct_filter_gradient(const void* x_data, const void* dy_data, Tensor<double>& d_weights) {
        kernels::FilterGradientGeometry g{};
        g.batch = dims_.batch;
        g.in_h = padded_h_;
        g.in_w = padded_w_;
        g.channels = dims_.channels;
        g.out_h = dims_.geometry.out_h;
        g.out_w = dims_.geometry.out_w;
        g.filters = dims_.filters;
        g.kernel_h = dims_.window.kernel_h;
        g.kernel_w = dims_.window.kernel_w;
        g.stride_h = dims_.window.stride_h;
        g.stride_w = dims_.window.stride_w;
        g.pad_top = dims_.geometry.pad_top;
        g.pad_left = dims_.geometry.pad_left;
        g.groups = groups_;
        BCNN_CUDA_CHECK(kernels::filter_gradient(g, static_cast<const double*>(x_data),
                                                 static_cast<const double*>(dy_data), d_weights.data()),
                        where_ << ", weights gradient (direct, double)");
    }

    // cuDNN's alpha and beta: of T, also for 16-bit data (its compute type is float).
    static const T* one() { return detail::one<T>(); }
    static const T* zero() { return detail::zero<T>(); }

private:
    // The type of the data cuDNN convolves: T, or the 16-bit type.
    cudnnDataType_t data_type() const { return half() ? cudnn_half_type(precision_) : cudnn_data_type<T>(); }
    std::size_t data_bytes(Index elements) const {
        return (half() ? std::size_t(kernels::kHalfBytes) : sizeof(T)) * static_cast<std::size_t>(elements);
    }

    static std::string describe(const char* op, const Tensor<T>& x, const Tensor<T>& weights,
                                const ConvParams& params, Precision precision) {
        std::ostringstream out;
        out << op << " on input " << x.shape() << ", weights " << weights.shape() << ", strides " << params.stride_h
            << 'x' << params.stride_w << ", padding '" << padding_name(params.padding) << "' ("
            << (std::is_same<T, float>::value ? "float" : "double");
        if (precision != Precision::fp32) out << ", " << precision_name(precision) << " compute";
        out << ")";
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

    // Scratch slot `slot` with room for a tensor of layout `l` of cuDNN's data type.
    void* scratch(Scratch slot, const TensorLayout& l) {
        return context_.scratch(slot, data_bytes(elements_of(l)), where_);
    }

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
    Precision precision_;
    std::string where_;
    CudnnContext& context_;
    Staging<T> staging_;
    Index padded_h_, padded_w_;
    TensorDescriptor x_desc_;
    FilterDescriptor w_desc_;
    ConvolutionDescriptor conv_desc_;
    TensorDescriptor y_desc_;
    TensorDescriptor float_y_desc_;  // y (and dy) as T: the bias and its gradient
    TensorDescriptor bias_desc_;
};

// y = conv(x, weights) (+ bias), all checked by the caller; d.pixels() > 0.
template <typename T>
void convolution_forward(Convolution<T>& conv, const Tensor<T>& x, const Tensor<T>& weights, const Tensor<T>* bias,
                         Tensor<T>& y) {
    const void* x_data = conv.input(x);
    const void* w_data = conv.filter(weights);
    void* y_data = conv.output(y);
    ConvProblem problem = conv.problem();
    const ConvAlgorithm algorithm = forward_algorithm(problem, x_data, w_data, y_data);
    void* workspace = problem.context.scratch(Scratch::workspace, algorithm.workspace_bytes, conv.where());
    BCNN_CUDA_CHECK(cudnnConvolutionForward(conv.handle(), conv.one(), problem.x.get(), x_data, problem.w.get(), w_data,
                                            problem.conv.get(),
                                            static_cast<cudnnConvolutionFwdAlgo_t>(algorithm.algo), workspace,
                                            algorithm.workspace_bytes, conv.zero(), problem.y.get(), y_data),
                    conv.where());
    conv.finish_output(y_data, bias, y);
}

// dx, d_weights, d_bias (each optional, checked by the caller) from dy; d.pixels() > 0.
template <typename T>
void convolution_backward(Convolution<T>& conv, const Tensor<T>& x, const Tensor<T>& weights, const Tensor<T>& dy,
                          Tensor<T>* dx, Tensor<T>* d_weights, Tensor<T>* d_bias) {
    const void* dy_data = conv.output_gradient(dy);
    ConvProblem problem = conv.problem();
    if (d_bias)
        conv.bias_gradient(conv.half() ? conv.packed_output_gradient(dy) : static_cast<const T*>(dy_data), *d_bias);
    if constexpr (std::is_same<T, double>::value) {
        if (d_weights) conv.direct_filter_gradient(conv.input(x), dy_data, *d_weights);
    } else if (d_weights) {
        const void* x_data = conv.input(x);
        void* dw_data = conv.filter_gradient();
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
        const void* w_data = conv.filter(weights);
        void* dx_data = conv.input_gradient(*dx);
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

// Runs `pass(conv)` on a Convolution in the thread's precision. Should cuDNN
// have no algorithm for a bf16/fp16 problem (NoConvAlgorithm; the cache
// remembers it, so the search is not repeated), the call runs in float
// instead: slower, never wrong. Every pass overwrites its outputs, so the
// float run replaces whatever the 16-bit one wrote before it failed.
template <typename T, typename Pass>
void run_convolution(const cpu::detail::Conv2DDims& dims, Index groups, const Tensor<T>& x, const Tensor<T>& weights,
                     const ConvParams& params, const char* op, Pass pass) {
    try {
        Convolution<T> conv(dims, groups, x, weights, params, op);
        pass(conv);
        return;
    } catch (const NoConvAlgorithm&) {
        if (effective_precision<T>() == Precision::fp32) throw;
    }
    const ComputePrecisionScope in_float(Precision::fp32);
    Convolution<T> conv(dims, groups, x, weights, params, op);
    pass(conv);
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

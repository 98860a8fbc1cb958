// cuda::conv2d_forward / conv2d_backward with cuDNN (declared in
// include/bcnn/backend/cuda/conv2d.hpp), the CPU kernel's semantics.
//
// Layouts. Activations are NHWC, given to cuDNN as CUDNN_TENSOR_NHWC packed
// tensors. Our weights are Keras HWIO (KH, KW, C, K): cuDNN's NHWC filters are
// KRSC (K, KH, KW, C), so every call transposes the weights on the device
// (cudnnTransformTensor) into a scratch buffer of the context, and the
// weights gradient is computed in KRSC and transposed back into d_weights.
// The transpose is redone on every call: weights change in place between
// calls and tensors carry no version to key a cached copy on.
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
// cudnnConvolutionBackwardBias. Algorithms: conv_algorithms.hpp.

#include "bcnn/backend/cuda/conv2d.hpp"

#include <algorithm>
#include <atomic>
#include <sstream>
#include <type_traits>

#include "argument_checks.hpp"
#include "bcnn/kernels/cpu/conv2d.hpp"
#include "conv_algorithms.hpp"
#include "nhwc_staging.hpp"

namespace bcnn {
namespace cuda {

namespace {

std::atomic<bool> tf32_allowed{false};

// One convolution call: checked extents, the extents cuDNN sees, descriptors.
template <typename T>
class Convolution {
public:
    Convolution(const cpu::detail::Conv2DDims& dims, const Tensor<T>& x, const Tensor<T>& weights,
                const ConvParams& params, const char* op)
        : dims_(dims),
          where_(describe(op, x, weights, params)),
          context_(detail::cudnn_context()),
          staging_(context_, where_),
          padded_h_(detail::padded_extent(dims_.geometry.in_h, dims_.window.kernel_h, dims_.window.stride_h,
                                  dims_.geometry.out_h, dims_.geometry.pad_top)),
          padded_w_(detail::padded_extent(dims_.geometry.in_w, dims_.window.kernel_w, dims_.window.stride_w,
                                  dims_.geometry.out_w, dims_.geometry.pad_left)),
          x_desc_(type(), padded_input_layout(), where_),
          w_desc_(type(), dims_.filters, dims_.channels, dims_.window.kernel_h, dims_.window.kernel_w, where_),
          conv_desc_(type(), dims_.geometry.pad_top, dims_.geometry.pad_left, dims_.window.stride_h,
                     dims_.window.stride_w, where_),
          y_desc_(type(), output_layout(), where_),
          bias_desc_(type(), detail::packed_nhwc(1, 1, 1, dims_.filters), where_) {
        check_output_extent();
    }

    const std::string& where() const { return where_; }
    cudnnHandle_t handle() const { return context_.handle(); }
    const detail::TensorDescriptor& y_desc() const { return y_desc_; }
    const detail::TensorDescriptor& bias_desc() const { return bias_desc_; }
    bool padded() const { return padded_h_ != dims_.geometry.in_h || padded_w_ != dims_.geometry.in_w; }

    detail::ConvProblem problem() {
        const bool no_tf32 = std::is_same<T, float>::value && !tf32_allowed.load();
        const detail::ConvKey key = {0,
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
                                     dims_.window.stride_w};
        return detail::ConvProblem{context_, x_desc_, w_desc_, conv_desc_, y_desc_, key, no_tf32, where_};
    }

    // x as cuDNN reads it: x itself when packed and unpadded, else a packed
    // copy in scratch, zero-padded at the bottom/right where 'same' needs it.
    const T* input(const Tensor<T>& x) {
        if (!padded() && x.is_contiguous()) return x.data();
        T* staged = scratch(detail::Scratch::input, padded_input_layout());
        if (padded())
            BCNN_CUDA_CHECK(cudaMemsetAsync(staged, 0, detail::bytes_of<T>(padded_elements())),
                            where_ << ": padded input");
        copy(detail::layout_of(x, "cuda::conv2d input"), x.data(), padded_region_layout(), staged);
        return staged;
    }

    // dy as cuDNN reads it: dy itself when packed, else a packed copy.
    const T* output_gradient(const Tensor<T>& dy) {
        if (dy.is_contiguous()) return dy.data();
        T* staged = scratch(detail::Scratch::output, output_layout());
        copy(detail::layout_of(dy, "cuda::conv2d output gradient"), dy.data(), output_layout(), staged);
        return staged;
    }

    // Where cuDNN writes y: y itself when packed, else scratch (see finish_output).
    T* output(Tensor<T>& y) {
        return y.is_contiguous() ? y.data() : scratch(detail::Scratch::output, output_layout());
    }
    void finish_output(const T* computed, Tensor<T>& y) {
        if (computed != y.data())
            copy(output_layout(), computed, detail::layout_of(y, "cuda::conv2d output"), y.data());
    }

    // Where cuDNN writes dx over the (padded) input: dx itself when packed and
    // unpadded, else scratch (see finish_input_gradient).
    T* input_gradient(Tensor<T>& dx) {
        return !padded() && dx.is_contiguous() ? dx.data()
                                               : scratch(detail::Scratch::input_gradient, padded_input_layout());
    }
    void finish_input_gradient(const T* computed, Tensor<T>& dx) {
        if (computed != dx.data())
            copy(padded_region_layout(), computed, detail::layout_of(dx, "cuda::conv2d input gradient"), dx.data());
    }

    // The HWIO weights transposed into KRSC (cuDNN's NHWC filter layout), in scratch.
    const T* filter(const Tensor<T>& weights) {
        T* krsc = scratch(detail::Scratch::filter, krsc_layout());
        copy(hwio_layout(), weights.data(), krsc_layout(), krsc);
        return krsc;
    }
    T* filter_gradient() { return scratch(detail::Scratch::filter_gradient, krsc_layout()); }
    void finish_filter_gradient(const T* krsc, Tensor<T>& d_weights) {
        copy(krsc_layout(), krsc, hwio_layout(), d_weights.data());
    }

    static const T* one() { return detail::one<T>(); }
    static const T* zero() { return detail::zero<T>(); }

private:
    static cudnnDataType_t type() { return detail::cudnn_data_type<T>(); }

    static std::string describe(const char* op, const Tensor<T>& x, const Tensor<T>& weights,
                                const ConvParams& params) {
        std::ostringstream out;
        out << op << " on input " << x.shape() << ", weights " << weights.shape() << ", strides " << params.stride_h
            << 'x' << params.stride_w << ", padding '" << padding_name(params.padding) << "' ("
            << (std::is_same<T, float>::value ? "float" : "double") << ")";
        return out.str();
    }

    Index padded_elements() const { return dims_.batch * padded_h_ * padded_w_ * dims_.channels; }
    detail::TensorLayout padded_input_layout() const {
        return detail::packed_nhwc(dims_.batch, padded_h_, padded_w_, dims_.channels);
    }
    // The H x W part of the padded input (top-left of each padded image).
    detail::TensorLayout padded_region_layout() const {
        return detail::strided_nhwc(dims_.batch, dims_.geometry.in_h, dims_.geometry.in_w, dims_.channels, padded_h_,
                                    padded_w_, dims_.channels);
    }
    detail::TensorLayout output_layout() const {
        return detail::packed_nhwc(dims_.batch, dims_.geometry.out_h, dims_.geometry.out_w, dims_.filters);
    }
    // Weights as a (K, KH, KW, C) tensor: packed KRSC, or our HWIO storage order.
    detail::TensorLayout krsc_layout() const {
        return detail::packed_nhwc(dims_.filters, dims_.window.kernel_h, dims_.window.kernel_w, dims_.channels);
    }
    detail::TensorLayout hwio_layout() const {
        const Index k = dims_.filters, c = dims_.channels, kw = dims_.window.kernel_w;
        return detail::TensorLayout{k, dims_.window.kernel_h, kw, c, 1, kw * c * k, c * k, k};
    }

    T* scratch(detail::Scratch slot, const detail::TensorLayout& l) { return staging_.scratch(slot, l); }

    // to = from, between two layouts of the same (n, h, w, c) extents.
    void copy(const detail::TensorLayout& from_layout, const T* from, const detail::TensorLayout& to_layout, T* to) {
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
    std::string where_;
    detail::CudnnContext& context_;
    detail::Staging<T> staging_;
    Index padded_h_, padded_w_;
    detail::TensorDescriptor x_desc_;
    detail::FilterDescriptor w_desc_;
    detail::ConvolutionDescriptor conv_desc_;
    detail::TensorDescriptor y_desc_, bias_desc_;
};

// x (N, H, W, C), weights (KH, KW, C, K), bias (K) or nullptr  ->  y (N, OH, OW, K)
template <typename T>
void conv2d_forward_on_device(const Tensor<T>& x, const Tensor<T>& weights, const Tensor<T>* bias,
                              const ConvParams& params, Tensor<T>& y) {
    const char* op = "cuda::conv2d_forward";
    detail::require_device(x, op, "input");
    detail::require_device(weights, op, "weights");
    const cpu::detail::Conv2DDims d = cpu::detail::checked_conv2d_dims(x, weights, params, op);
    if (bias) {
        detail::require_shape(*bias, Shape{d.filters}, op, "bias");
        detail::require_contiguous(*bias, op, "bias");
    }
    detail::require_shape(y, d.output_shape(), op, "output");
    if (d.pixels() == 0) return;

    Convolution<T> conv(d, x, weights, params, op);
    const T* x_data = conv.input(x);
    const T* w_data = conv.filter(weights);
    T* y_data = conv.output(y);
    detail::ConvProblem problem = conv.problem();
    const detail::ConvAlgorithm algorithm = detail::forward_algorithm(problem, x_data, w_data, y_data);
    void* workspace = problem.context.scratch(detail::Scratch::workspace, algorithm.workspace_bytes, conv.where());
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

// x (N, H, W, C), weights (KH, KW, C, K), dy (N, OH, OW, K)
//   ->  dx (N, H, W, C), d_weights (KH, KW, C, K), d_bias (K), each optional
template <typename T>
void conv2d_backward_on_device(const Tensor<T>& x, const Tensor<T>& weights, const Tensor<T>& dy,
                               const ConvParams& params, Tensor<T>* dx, Tensor<T>* d_weights, Tensor<T>* d_bias) {
    const char* op = "cuda::conv2d_backward";
    detail::require_device(x, op, "input");
    detail::require_device(weights, op, "weights");
    const cpu::detail::Conv2DDims d = cpu::detail::checked_conv2d_dims(x, weights, params, op);
    detail::require_shape(dy, d.output_shape(), op, "output gradient");
    if (dx) detail::require_shape(*dx, x.shape(), op, "input gradient");
    if (d_weights) {
        detail::require_shape(*d_weights, weights.shape(), op, "weights gradient");
        detail::require_contiguous(*d_weights, op, "weights gradient");
    }
    if (d_bias) {
        detail::require_shape(*d_bias, Shape{d.filters}, op, "bias gradient");
        detail::require_contiguous(*d_bias, op, "bias gradient");
    }
    if (d.pixels() == 0) {  // an empty batch: dx is empty, the parameter gradients are zero
        for (Tensor<T>* gradient : {d_weights, d_bias})
            if (gradient)
                BCNN_CUDA_CHECK(cudaMemset(gradient->data(), 0, detail::bytes_of<T>(gradient->numel())),
                                op << " on an empty batch");
        return;
    }

    Convolution<T> conv(d, x, weights, params, op);
    const T* dy_data = conv.output_gradient(dy);
    detail::ConvProblem problem = conv.problem();
    if (d_bias)
        BCNN_CUDA_CHECK(cudnnConvolutionBackwardBias(conv.handle(), conv.one(), problem.y.get(), dy_data, conv.zero(),
                                                     conv.bias_desc().get(), d_bias->data()),
                        conv.where() << ", bias gradient");
    if (d_weights) {
        const T* x_data = conv.input(x);
        T* dw_data = conv.filter_gradient();
        const detail::ConvAlgorithm algorithm = detail::backward_filter_algorithm(problem, x_data, dy_data, dw_data);
        void* workspace = problem.context.scratch(detail::Scratch::workspace, algorithm.workspace_bytes, conv.where());
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
        const detail::ConvAlgorithm algorithm = detail::backward_data_algorithm(problem, w_data, dy_data, dx_data);
        void* workspace = problem.context.scratch(detail::Scratch::workspace, algorithm.workspace_bytes, conv.where());
        BCNN_CUDA_CHECK(cudnnConvolutionBackwardData(
                            conv.handle(), conv.one(), problem.w.get(), w_data, problem.y.get(), dy_data,
                            problem.conv.get(), static_cast<cudnnConvolutionBwdDataAlgo_t>(algorithm.algo), workspace,
                            algorithm.workspace_bytes, conv.zero(), problem.x.get(), dx_data),
                        conv.where() << ", input gradient");
        conv.finish_input_gradient(dx_data, *dx);
    }
}

}  // namespace

void conv2d_forward(const Tensor<float>& x, const Tensor<float>& weights, const Tensor<float>* bias,
                    const ConvParams& params, Tensor<float>& y) {
    conv2d_forward_on_device(x, weights, bias, params, y);
}
void conv2d_forward(const Tensor<double>& x, const Tensor<double>& weights, const Tensor<double>* bias,
                    const ConvParams& params, Tensor<double>& y) {
    conv2d_forward_on_device(x, weights, bias, params, y);
}
void conv2d_backward(const Tensor<float>& x, const Tensor<float>& weights, const Tensor<float>& dy,
                     const ConvParams& params, Tensor<float>* dx, Tensor<float>* d_weights, Tensor<float>* d_bias) {
    conv2d_backward_on_device(x, weights, dy, params, dx, d_weights, d_bias);
}
void conv2d_backward(const Tensor<double>& x, const Tensor<double>& weights, const Tensor<double>& dy,
                     const ConvParams& params, Tensor<double>* dx, Tensor<double>* d_weights, Tensor<double>* d_bias) {
    conv2d_backward_on_device(x, weights, dy, params, dx, d_weights, d_bias);
}

void set_conv2d_tf32(bool allowed) { tf32_allowed.store(allowed); }
bool conv2d_tf32() { return tf32_allowed.load(); }

}  // namespace cuda
}  // namespace bcnn

#pragma once
// Internal to bcnn_cuda: owning wrappers of cuDNN's tensor, filter,
// convolution and pooling descriptors (of the layouts in tensor_layout.hpp),
// and the cuDNN data type of float and double.
// cuDNN takes extents and strides as int: larger values are refused with an
// error naming `where` (the op and its shapes).

#include <climits>
#include <string>

#include "bcnn/backend/precision.hpp"
#include "bcnn/core/shape.hpp"
#include "check_libraries.hpp"
#include "tensor_layout.hpp"

namespace bcnn {
namespace cuda {
namespace detail {

template <typename T>
cudnnDataType_t cudnn_data_type();
template <>
inline cudnnDataType_t cudnn_data_type<float>() { return CUDNN_DATA_FLOAT; }
template <>
inline cudnnDataType_t cudnn_data_type<double>() { return CUDNN_DATA_DOUBLE; }

// The cuDNN type of a mixed-precision setting's 16-bit data (bf16 or fp16).
inline cudnnDataType_t cudnn_half_type(Precision half) {
    return half == Precision::bf16 ? CUDNN_DATA_BFLOAT16 : CUDNN_DATA_HALF;
}

inline int to_int(Index value, const std::string& where) {
    BCNN_CHECK(value >= 0 && value <= INT_MAX,
               where << ": extent or stride " << value << " exceeds cuDNN's int range");
    return static_cast<int>(value);
}

// Packed layouts are declared CUDNN_TENSOR_NHWC; others by their strides.
class TensorDescriptor {
public:
    TensorDescriptor(cudnnDataType_t type, const TensorLayout& l, const std::string& where) : TensorDescriptor(where) {
        const int n = to_int(l.n, where), c = to_int(l.c, where), h = to_int(l.h, where), w = to_int(l.w, where);
        if (is_packed_nhwc(l))
            BCNN_CUDA_CHECK(cudnnSetTensor4dDescriptor(descriptor_, CUDNN_TENSOR_NHWC, type, n, c, h, w),
                            where << " (NHWC tensor n=" << l.n << " h=" << l.h << " w=" << l.w << " c=" << l.c << ")");
        else
            BCNN_CUDA_CHECK(cudnnSetTensor4dDescriptorEx(descriptor_, type, n, c, h, w, to_int(l.n_stride, where),
                                                         to_int(l.c_stride, where), to_int(l.h_stride, where),
                                                         to_int(l.w_stride, where)),
                            where << " (tensor n=" << l.n << " h=" << l.h << " w=" << l.w << " c=" << l.c
                                  << ", strides " << l.n_stride << ", " << l.h_stride << ", " << l.w_stride << ", "
                                  << l.c_stride << ")");
    }
    TensorDescriptor(const TensorDescriptor&) = delete;
    TensorDescriptor& operator=(const TensorDescriptor&) = delete;
    ~TensorDescriptor() { cudnnDestroyTensorDescriptor(descriptor_); }
    cudnnTensorDescriptor_t get() const { return descriptor_; }

private:
    explicit TensorDescriptor(const std::string& where) {
        BCNN_CUDA_CHECK(cudnnCreateTensorDescriptor(&descriptor_), where);
    }

    cudnnTensorDescriptor_t descriptor_ = nullptr;
};

// K filters of KH x KW x C in cuDNN's NHWC filter layout, KRSC: (K, KH, KW, C), C fastest.
class FilterDescriptor {
public:
    FilterDescriptor(cudnnDataType_t type, Index k, Index c, Index kh, Index kw, const std::string& where)
        : FilterDescriptor(where) {
        BCNN_CUDA_CHECK(cudnnSetFilter4dDescriptor(descriptor_, type, CUDNN_TENSOR_NHWC, to_int(k, where),
                                                   to_int(c, where), to_int(kh, where), to_int(kw, where)),
                        where << " (filter k=" << k << " c=" << c << " kh=" << kh << " kw=" << kw << ")");
    }
    FilterDescriptor(const FilterDescriptor&) = delete;
    FilterDescriptor& operator=(const FilterDescriptor&) = delete;
    ~FilterDescriptor() { cudnnDestroyFilterDescriptor(descriptor_); }
    cudnnFilterDescriptor_t get() const { return descriptor_; }

private:
    explicit FilterDescriptor(const std::string& where) {
        BCNN_CUDA_CHECK(cudnnCreateFilterDescriptor(&descriptor_), where);
    }
    cudnnFilterDescriptor_t descriptor_ = nullptr;
};

// Cross-correlation (what Keras calls convolution), dilation 1, symmetric
// padding; `groups` > 1 splits the channels into groups convolved separately
// (groups = C: depthwise).
class ConvolutionDescriptor {
public:
    ConvolutionDescriptor(cudnnDataType_t type, Index pad_h, Index pad_w, Index stride_h, Index stride_w,
                          const std::string& where, Index groups = 1)
        : ConvolutionDescriptor(where) {
        BCNN_CUDA_CHECK(cudnnSetConvolution2dDescriptor(descriptor_, to_int(pad_h, where), to_int(pad_w, where),
                                                        to_int(stride_h, where), to_int(stride_w, where), 1, 1,
                                                        CUDNN_CROSS_CORRELATION, type),
                        where);
        if (groups != 1)
            BCNN_CUDA_CHECK(cudnnSetConvolutionGroupCount(descriptor_, to_int(groups, where)),
                            where << " (" << groups << " groups)");
    }
    ConvolutionDescriptor(const ConvolutionDescriptor&) = delete;
    ConvolutionDescriptor& operator=(const ConvolutionDescriptor&) = delete;
    ~ConvolutionDescriptor() { cudnnDestroyConvolutionDescriptor(descriptor_); }
    cudnnConvolutionDescriptor_t get() const { return descriptor_; }

private:
    explicit ConvolutionDescriptor(const std::string& where) {
        BCNN_CUDA_CHECK(cudnnCreateConvolutionDescriptor(&descriptor_), where);
    }
    cudnnConvolutionDescriptor_t descriptor_ = nullptr;
};

// A 2-D pooling window: mode, size, symmetric padding, strides; NaN not propagated.
class PoolingDescriptor {
public:
    PoolingDescriptor(cudnnPoolingMode_t mode, Index kernel_h, Index kernel_w, Index pad_h, Index pad_w,
                      Index stride_h, Index stride_w, const std::string& where)
        : PoolingDescriptor(where) {
        BCNN_CUDA_CHECK(cudnnSetPooling2dDescriptor(descriptor_, mode, CUDNN_NOT_PROPAGATE_NAN, to_int(kernel_h, where),
                                                    to_int(kernel_w, where), to_int(pad_h, where),
                                                    to_int(pad_w, where), to_int(stride_h, where),
                                                    to_int(stride_w, where)),
                        where << " (pooling window " << kernel_h << 'x' << kernel_w << ", padding " << pad_h << 'x'
                              << pad_w << ", strides " << stride_h << 'x' << stride_w << ")");
    }
    PoolingDescriptor(const PoolingDescriptor&) = delete;
    PoolingDescriptor& operator=(const PoolingDescriptor&) = delete;
    ~PoolingDescriptor() { cudnnDestroyPoolingDescriptor(descriptor_); }
    cudnnPoolingDescriptor_t get() const { return descriptor_; }

private:
    explicit PoolingDescriptor(const std::string& where) {
        BCNN_CUDA_CHECK(cudnnCreatePoolingDescriptor(&descriptor_), where);
    }
    cudnnPoolingDescriptor_t descriptor_ = nullptr;
};

}  // namespace detail
}  // namespace cuda
}  // namespace bcnn

#pragma once
// Internal to bcnn_cuda: owning wrappers of cuDNN's tensor, filter,
// convolution and pooling descriptors, and the cuDNN data type of float and double.
// cuDNN takes extents and strides as int: larger values are refused with an
// error naming `where` (the op and its shapes).

#include <climits>
#include <string>

#include "bcnn/core/shape.hpp"
#include "check_libraries.hpp"

namespace bcnn {
namespace cuda {
namespace detail {

template <typename T>
cudnnDataType_t cudnn_data_type();
template <>
inline cudnnDataType_t cudnn_data_type<float>() { return CUDNN_DATA_FLOAT; }
template <>
inline cudnnDataType_t cudnn_data_type<double>() { return CUDNN_DATA_DOUBLE; }

inline int to_int(Index value, const std::string& where) {
    BCNN_CHECK(value >= 0 && value <= INT_MAX,
               where << ": extent or stride " << value << " exceeds cuDNN's int range");
    return static_cast<int>(value);
}

// An NHWC tensor (N, H, W, C) as cuDNN sees it: dims and element strides.
struct TensorLayout {
    Index n, h, w, c;
    Index n_stride, h_stride, w_stride, c_stride;
};

// Packed NHWC: pixel rows of c elements, one after the other.
inline TensorLayout packed_nhwc(Index n, Index h, Index w, Index c) {
    return TensorLayout{n, h, w, c, h * w * c, w * c, c, 1};
}

// (n, h, w, c) whose pixel rows lie `pixel_stride` elements apart and whose
// images are `image_h` x `image_w` pixels: a channel slice of a wider buffer
// (pixel_stride > c) or the top-left part of a padded image (image_h > h).
inline TensorLayout strided_nhwc(Index n, Index h, Index w, Index c, Index image_h, Index image_w,
                                 Index pixel_stride) {
    return TensorLayout{n, h, w, c, image_h * image_w * pixel_stride, image_w * pixel_stride, pixel_stride, 1};
}

inline bool is_packed_nhwc(const TensorLayout& l) {
    const TensorLayout packed = packed_nhwc(l.n, l.h, l.w, l.c);
    return l.n_stride == packed.n_stride && l.h_stride == packed.h_stride && l.w_stride == packed.w_stride &&
           l.c_stride == packed.c_stride;
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

#pragma once
// Internal to bcnn_cuda: an NHWC tensor's extents and element strides, as
// cuDNN descriptors (cudnn_descriptors.hpp) and the precision conversion
// kernels (precision_kernels.hpp) see it. No cuDNN here: .cu files include it.

#include "bcnn/core/shape.hpp"

namespace bcnn {
namespace cuda {
namespace detail {

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

}  // namespace detail
}  // namespace cuda
}  // namespace bcnn

#pragma once
// 2-D max and average pooling and global average pooling on device tensors,
// defined in cuda/pool2d.cpp (bcnn::cuda): cuDNN pooling and two small
// kernels. The semantics are cpu::max_pool2d_*, cpu::avg_pool2d_* and
// cpu::global_avg_pool_*'s (kernels/cpu/pool2d.hpp, global_avg_pool.hpp):
// NHWC, Keras 'same' padding with the odd pixel at the bottom/right, padded
// positions never taking part (average pooling divides by the number of
// valid pixels). Every tensor may be a channel slice of a wider buffer.
// Results agree with the CPU kernels up to rounding; max pooling's gradient
// goes to the window's maximum, and where a window holds the maximum twice
// cuDNN may pick another one than the CPU's first (tests use distinct values).
// Call through bcnn::backend (backend/pool2d.hpp).

#include "bcnn/core/tensor.hpp"
#include "bcnn/kernels/cpu/window.hpp"

namespace bcnn {
namespace cuda {

// x (N, H, W, C)  ->  y (N, OH, OW, C), the maximum of each window
void max_pool2d_forward(const Tensor<float>& x, const Window2D& window, Tensor<float>& y);
void max_pool2d_forward(const Tensor<double>& x, const Window2D& window, Tensor<double>& y);

// x (N, H, W, C), dy (N, OH, OW, C)  ->  dx (N, H, W, C), overwritten
void max_pool2d_backward(const Tensor<float>& x, const Tensor<float>& dy, const Window2D& window, Tensor<float>& dx);
void max_pool2d_backward(const Tensor<double>& x, const Tensor<double>& dy, const Window2D& window,
                         Tensor<double>& dx);

// x (N, H, W, C)  ->  y (N, OH, OW, C), the mean of each window's valid pixels
void avg_pool2d_forward(const Tensor<float>& x, const Window2D& window, Tensor<float>& y);
void avg_pool2d_forward(const Tensor<double>& x, const Window2D& window, Tensor<double>& y);

// dy (N, OH, OW, C)  ->  dx (N, H, W, C), overwritten; dx's shape gives the input size
void avg_pool2d_backward(const Tensor<float>& dy, const Window2D& window, Tensor<float>& dx);
void avg_pool2d_backward(const Tensor<double>& dy, const Window2D& window, Tensor<double>& dx);

// x (N, H, W, C)  ->  y (N, C), the mean over the pixels; N <= 65535
void global_avg_pool_forward(const Tensor<float>& x, Tensor<float>& y);
void global_avg_pool_forward(const Tensor<double>& x, Tensor<double>& y);

// dy (N, C)  ->  dx (N, H, W, C) = dy / (H * W) at every pixel; dx's shape gives the input size
void global_avg_pool_backward(const Tensor<float>& dy, Tensor<float>& dx);
void global_avg_pool_backward(const Tensor<double>& dy, Tensor<double>& dx);

}  // namespace cuda
}  // namespace bcnn

#pragma once
// Dense's dispatch point: CPU tensors run cpu::dense_*, device tensors cuda::dense_*.
//   x (N, In), weights (In, Out), bias (Out) or nullptr  ->  y (N, Out) = activation(x * weights + bias)
//   x, weights, dy (N, Out)  ->  dx, d_weights, d_bias, each nullptr when not wanted
// All tensors of a call must be on one device; each kernel checks the shapes.

#include "bcnn/backend/cuda/dense.hpp"
#include "bcnn/backend/dispatch.hpp"
#include "bcnn/kernels/cpu/dense.hpp"

namespace bcnn {
namespace backend {

template <typename T>
void dense_forward(const Tensor<T>& x, const Tensor<T>& weights, OptionalInput<T> bias, Tensor<T>& y,
                   cpu::ActivationFn activation = cpu::ActivationFn::linear) {
    const char* op = "dense_forward";
    const Device device = detail::common_device<T>(op, {{"input", x}, {"weights", weights}, {"output", y}});
    if (bias) detail::common_device<T>(op, {{"input", x}, {"bias", *bias}});
    if (device == Device::cpu) {
        cpu::dense_forward(x, weights, bias, y, activation);
        return;
    }
#ifdef BCNN_WITH_CUDA
    cuda::dense_forward(x, weights, bias, y, activation);
#else
    detail::throw_no_cuda_backend(op);
#endif
}

template <typename T>
void dense_backward(const Tensor<T>& x, const Tensor<T>& weights, const Tensor<T>& dy, OptionalOutput<T> dx,
                    OptionalOutput<T> d_weights, OptionalOutput<T> d_bias) {
    const char* op = "dense_backward";
    const Device device =
        detail::common_device<T>(op, {{"input", x}, {"weights", weights}, {"output gradient", dy}});
    if (dx) detail::common_device<T>(op, {{"input", x}, {"input gradient", *dx}});
    if (d_weights) detail::common_device<T>(op, {{"input", x}, {"weights gradient", *d_weights}});
    if (d_bias) detail::common_device<T>(op, {{"input", x}, {"bias gradient", *d_bias}});
    if (device == Device::cpu) {
        cpu::dense_backward(x, weights, dy, dx, d_weights, d_bias);
        return;
    }
#ifdef BCNN_WITH_CUDA
    cuda::dense_backward(x, weights, dy, dx, d_weights, d_bias);
#else
    detail::throw_no_cuda_backend(op);
#endif
}

}  // namespace backend
}  // namespace bcnn

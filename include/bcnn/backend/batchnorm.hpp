#pragma once
// Batch norm's dispatch points: CPU tensors run cpu::batchnorm_* (and
// cpu::fold_batchnorm), device tensors cuda::batchnorm_* (cuda::fold_batchnorm).
//   forward_training:   x (..., C), gamma, beta (C), momentum, epsilon, unbiased_moving_variance,
//                       moving_mean, moving_variance (C, updated)  ->  y, saved_mean, saved_inv_std (C)
//   forward_inference:  x, gamma, beta, moving_mean, moving_variance, epsilon  ->  y
//   backward_training:  x, gamma, saved_mean, saved_inv_std, dy  ->  dx, d_gamma, d_beta (each optional)
//   backward_inference: x, gamma, moving_mean, moving_variance, epsilon, dy  ->  dx, d_gamma, d_beta (each optional)
//   fold_batchnorm:     weights (..., K), bias (K) or nullptr, gamma, beta, moving_mean, moving_variance (K),
//                       epsilon  ->  folded_weights (same as weights), folded_bias (K)   (batchnorm_folding.hpp)
// All tensors of a call must be on one device; each kernel checks the shapes.

#include "bcnn/backend/cuda/batchnorm.hpp"
#include "bcnn/backend/dispatch.hpp"
#include "bcnn/kernels/cpu/batchnorm.hpp"
#include "bcnn/kernels/cpu/batchnorm_folding.hpp"

namespace bcnn {
namespace backend {

namespace detail {

// Checks that the gradients asked for live on x's device.
template <typename T>
void require_gradients_with_input(const char* op, const Tensor<T>& x, OptionalOutput<T> dx, OptionalOutput<T> d_gamma,
                                  OptionalOutput<T> d_beta) {
    if (dx) common_device<T>(op, {{"input", x}, {"input gradient", *dx}});
    if (d_gamma) common_device<T>(op, {{"input", x}, {"gamma gradient", *d_gamma}});
    if (d_beta) common_device<T>(op, {{"input", x}, {"beta gradient", *d_beta}});
}

}  // namespace detail

template <typename T>
void batchnorm_forward_training(const Tensor<T>& x, const Tensor<T>& gamma, const Tensor<T>& beta, double momentum,
                                double epsilon, bool unbiased_moving_variance, Tensor<T>& moving_mean,
                                Tensor<T>& moving_variance, Tensor<T>& y, Tensor<T>& saved_mean,
                                Tensor<T>& saved_inv_std) {
    const char* op = "batchnorm_forward_training";
    const Device device = detail::common_device<T>(op, {{"input", x},
                                                        {"gamma", gamma},
                                                        {"beta", beta},
                                                        {"moving mean", moving_mean},
                                                        {"moving variance", moving_variance},
                                                        {"output", y},
                                                        {"saved mean", saved_mean},
                                                        {"saved inverse std", saved_inv_std}});
    if (device == Device::cpu) {
        cpu::batchnorm_forward_training(x, gamma, beta, momentum, epsilon, unbiased_moving_variance, moving_mean,
                                        moving_variance, y, saved_mean, saved_inv_std);
        return;
    }
#ifdef BCNN_WITH_CUDA
    cuda::batchnorm_forward_training(x, gamma, beta, momentum, epsilon, unbiased_moving_variance, moving_mean,
                                     moving_variance, y, saved_mean, saved_inv_std);
#else
    detail::throw_no_cuda_backend(op);
#endif
}

template <typename T>
void batchnorm_forward_inference(const Tensor<T>& x, const Tensor<T>& gamma, const Tensor<T>& beta,
                                 const Tensor<T>& moving_mean, const Tensor<T>& moving_variance, double epsilon,
                                 Tensor<T>& y) {
    const char* op = "batchnorm_forward_inference";
    const Device device = detail::common_device<T>(op, {{"input", x},
                                                        {"gamma", gamma},
                                                        {"beta", beta},
                                                        {"moving mean", moving_mean},
                                                        {"moving variance", moving_variance},
                                                        {"output", y}});
    if (device == Device::cpu) {
        cpu::batchnorm_forward_inference(x, gamma, beta, moving_mean, moving_variance, epsilon, y);
        return;
    }
#ifdef BCNN_WITH_CUDA
    cuda::batchnorm_forward_inference(x, gamma, beta, moving_mean, moving_variance, epsilon, y);
#else
    detail::throw_no_cuda_backend(op);
#endif
}

template <typename T>
void batchnorm_backward_training(const Tensor<T>& x, const Tensor<T>& gamma, const Tensor<T>& saved_mean,
                                 const Tensor<T>& saved_inv_std, const Tensor<T>& dy, OptionalOutput<T> dx,
                                 OptionalOutput<T> d_gamma, OptionalOutput<T> d_beta) {
    const char* op = "batchnorm_backward_training";
    const Device device = detail::common_device<T>(op, {{"input", x},
                                                        {"gamma", gamma},
                                                        {"saved mean", saved_mean},
                                                        {"saved inverse std", saved_inv_std},
                                                        {"output gradient", dy}});
    detail::require_gradients_with_input<T>(op, x, dx, d_gamma, d_beta);
    if (device == Device::cpu) {
        cpu::batchnorm_backward_training(x, gamma, saved_mean, saved_inv_std, dy, dx, d_gamma, d_beta);
        return;
    }
#ifdef BCNN_WITH_CUDA
    cuda::batchnorm_backward_training(x, gamma, saved_mean, saved_inv_std, dy, dx, d_gamma, d_beta);
#else
    detail::throw_no_cuda_backend(op);
#endif
}

template <typename T>
void batchnorm_backward_inference(const Tensor<T>& x, const Tensor<T>& gamma, const Tensor<T>& moving_mean,
                                  const Tensor<T>& moving_variance, double epsilon, const Tensor<T>& dy,
                                  OptionalOutput<T> dx, OptionalOutput<T> d_gamma, OptionalOutput<T> d_beta) {
    const char* op = "batchnorm_backward_inference";
    const Device device = detail::common_device<T>(op, {{"input", x},
                                                        {"gamma", gamma},
                                                        {"moving mean", moving_mean},
                                                        {"moving variance", moving_variance},
                                                        {"output gradient", dy}});
    detail::require_gradients_with_input<T>(op, x, dx, d_gamma, d_beta);
    if (device == Device::cpu) {
        cpu::batchnorm_backward_inference(x, gamma, moving_mean, moving_variance, epsilon, dy, dx, d_gamma, d_beta);
        return;
    }
#ifdef BCNN_WITH_CUDA
    cuda::batchnorm_backward_inference(x, gamma, moving_mean, moving_variance, epsilon, dy, dx, d_gamma, d_beta);
#else
    detail::throw_no_cuda_backend(op);
#endif
}

template <typename T>
void fold_batchnorm(const Tensor<T>& weights, OptionalInput<T> bias, const Tensor<T>& gamma, const Tensor<T>& beta,
                    const Tensor<T>& moving_mean, const Tensor<T>& moving_variance, double epsilon,
                    Tensor<T>& folded_weights, Tensor<T>& folded_bias) {
    const char* op = "fold_batchnorm";
    const Device device = detail::common_device<T>(op, {{"weights", weights},
                                                        {"gamma", gamma},
                                                        {"beta", beta},
                                                        {"moving mean", moving_mean},
                                                        {"moving variance", moving_variance},
                                                        {"folded weights", folded_weights},
                                                        {"folded bias", folded_bias}});
    if (bias) detail::common_device<T>(op, {{"weights", weights}, {"bias", *bias}});
    if (device == Device::cpu) {
        cpu::fold_batchnorm(weights, bias, gamma, beta, moving_mean, moving_variance, epsilon, folded_weights,
                            folded_bias);
        return;
    }
#ifdef BCNN_WITH_CUDA
    cuda::fold_batchnorm(weights, bias, gamma, beta, moving_mean, moving_variance, epsilon, folded_weights,
                         folded_bias);
#else
    detail::throw_no_cuda_backend(op);
#endif
}

}  // namespace backend
}  // namespace bcnn

#pragma once
// Batch normalisation on device tensors with cuDNN (CUDNN_BATCHNORM_SPATIAL),
// defined in cuda/batchnorm.cpp (bcnn::cuda). The semantics are
// cpu::batchnorm_*'s (kernels/cpu/batchnorm.hpp): statistics per channel
// over every axis but the last, x of any rank >= 2; Keras' moving averages
// (moving = moving * momentum + batch * (1 - momentum)) with the unbiased
// batch variance when unbiased_moving_variance (Keras for 4-D inputs) and the
// biased one otherwise; saved_inv_std = 1 / sqrt(biased variance + epsilon).
// x, y, dy and dx may be channel slices of wider buffers, y may be x and dx
// may be dy; gamma, beta and the statistics (C) must be contiguous. Results
// agree with the CPU kernels up to rounding (cuDNN sums in its own order and
// precision), not bit for bit. fold_batchnorm is our own kernel with
// cpu::fold_batchnorm's arithmetic (kernels/cpu/batchnorm_folding.hpp).
// Call through bcnn::backend (backend/batchnorm.hpp).

#include "bcnn/core/tensor.hpp"

namespace bcnn {
namespace cuda {

// Training mode. x (..., C), gamma, beta (C) -> y (same as x), saved_mean,
// saved_inv_std (C); moving_mean, moving_variance (C) are updated in place.
// momentum in [0, 1], epsilon > 0.
void batchnorm_forward_training(const Tensor<float>& x, const Tensor<float>& gamma, const Tensor<float>& beta,
                                double momentum, double epsilon, bool unbiased_moving_variance,
                                Tensor<float>& moving_mean, Tensor<float>& moving_variance, Tensor<float>& y,
                                Tensor<float>& saved_mean, Tensor<float>& saved_inv_std);
void batchnorm_forward_training(const Tensor<double>& x, const Tensor<double>& gamma, const Tensor<double>& beta,
                                double momentum, double epsilon, bool unbiased_moving_variance,
                                Tensor<double>& moving_mean, Tensor<double>& moving_variance, Tensor<double>& y,
                                Tensor<double>& saved_mean, Tensor<double>& saved_inv_std);

// Inference mode. x (..., C), gamma, beta, moving_mean, moving_variance (C) -> y (same as x)
void batchnorm_forward_inference(const Tensor<float>& x, const Tensor<float>& gamma, const Tensor<float>& beta,
                                 const Tensor<float>& moving_mean, const Tensor<float>& moving_variance,
                                 double epsilon, Tensor<float>& y);
void batchnorm_forward_inference(const Tensor<double>& x, const Tensor<double>& gamma, const Tensor<double>& beta,
                                 const Tensor<double>& moving_mean, const Tensor<double>& moving_variance,
                                 double epsilon, Tensor<double>& y);

// Training-mode backward (through the batch statistics). x, dy (..., C),
// gamma, saved_mean, saved_inv_std (C) -> dx (..., C), d_gamma, d_beta (C),
// each nullptr when not wanted.
void batchnorm_backward_training(const Tensor<float>& x, const Tensor<float>& gamma, const Tensor<float>& saved_mean,
                                 const Tensor<float>& saved_inv_std, const Tensor<float>& dy, Tensor<float>* dx,
                                 Tensor<float>* d_gamma, Tensor<float>* d_beta);
void batchnorm_backward_training(const Tensor<double>& x, const Tensor<double>& gamma,
                                 const Tensor<double>& saved_mean, const Tensor<double>& saved_inv_std,
                                 const Tensor<double>& dy, Tensor<double>* dx, Tensor<double>* d_gamma,
                                 Tensor<double>* d_beta);

// Inference-mode backward (frozen BatchNorm: the moving statistics are
// constants). x, dy (..., C), gamma, moving_mean, moving_variance (C)
// -> dx (..., C), d_gamma, d_beta (C), each nullptr when not wanted.
void batchnorm_backward_inference(const Tensor<float>& x, const Tensor<float>& gamma,
                                  const Tensor<float>& moving_mean, const Tensor<float>& moving_variance,
                                  double epsilon, const Tensor<float>& dy, Tensor<float>* dx, Tensor<float>* d_gamma,
                                  Tensor<float>* d_beta);
void batchnorm_backward_inference(const Tensor<double>& x, const Tensor<double>& gamma,
                                  const Tensor<double>& moving_mean, const Tensor<double>& moving_variance,
                                  double epsilon, const Tensor<double>& dy, Tensor<double>* dx,
                                  Tensor<double>* d_gamma, Tensor<double>* d_beta);

// Inference-time folding of a BatchNorm into the convolution or dense layer
// before it, cpu::fold_batchnorm on the device: weights (..., K), bias (K) or
// nullptr, gamma, beta, moving_mean, moving_variance (K), epsilon > 0
// -> folded_weights (same shape as weights), folded_bias (K). All contiguous.
void fold_batchnorm(const Tensor<float>& weights, const Tensor<float>* bias, const Tensor<float>& gamma,
                    const Tensor<float>& beta, const Tensor<float>& moving_mean,
                    const Tensor<float>& moving_variance, double epsilon, Tensor<float>& folded_weights,
                    Tensor<float>& folded_bias);
void fold_batchnorm(const Tensor<double>& weights, const Tensor<double>* bias, const Tensor<double>& gamma,
                    const Tensor<double>& beta, const Tensor<double>& moving_mean,
                    const Tensor<double>& moving_variance, double epsilon, Tensor<double>& folded_weights,
                    Tensor<double>& folded_bias);

}  // namespace cuda
}  // namespace bcnn

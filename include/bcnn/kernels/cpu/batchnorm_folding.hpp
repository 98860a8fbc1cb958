#pragma once
// Inference-time BatchNorm folding: a convolution or dense layer followed by
// a BatchNorm in inference mode is one layer with rescaled weights,
//   BN(conv(x, w) + b) = conv(x, w * scale) + (b * scale + shift)
// with the BN's per-channel affine map (scale, shift) of
// batchnorm_inference_affine. The channel is the weights' last axis: the
// filters of conv2d (KH, KW, C, K), the units of dense (In, Out).
//   weights (..., K), bias (K) or nullptr, gamma, beta, moving_mean,
//   moving_variance (K)  ->  folded_weights (same shape as weights), folded_bias (K)
// Only for a forward that no backward follows: the gradients of the unfolded
// layers cannot be recovered from the folded one.

#include "bcnn/kernels/cpu/batchnorm.hpp"

namespace bcnn {
namespace cpu {

template <typename T>
void fold_batchnorm(const Tensor<T>& weights, OptionalInput<T> bias, const Tensor<T>& gamma, const Tensor<T>& beta,
                    const Tensor<T>& moving_mean, const Tensor<T>& moving_variance, double epsilon,
                    Tensor<T>& folded_weights, Tensor<T>& folded_bias) {
    const char* op = "fold_batchnorm";
    BCNN_CHECK(weights.rank() >= 1 && weights.numel() > 0,
               op << ": weights of shape " << weights.shape() << " have no output axis or are empty");
    detail::require_contiguous(weights, op, "weights");
    const Index channels = weights.dim(-1);
    const ChannelAffine affine =
        batchnorm_inference_affine(gamma, beta, moving_mean, moving_variance, epsilon, channels, op);
    if (bias) detail::require_channel_vector(*bias, channels, op, "bias");
    detail::require_shape(folded_weights, weights.shape(), op, "folded weights");
    detail::require_contiguous(folded_weights, op, "folded weights");
    detail::require_channel_vector(folded_bias, channels, op, "folded bias");
    const T* w = weights.data();
    T* folded = folded_weights.data();
    for (Index i = 0; i < weights.numel(); ++i) folded[i] = static_cast<T>(w[i] * affine.scale[i % channels]);
    for (Index k = 0; k < channels; ++k) {
        const double b = bias ? static_cast<double>(bias->data()[k]) : 0.0;
        folded_bias.data()[k] = static_cast<T>(b * affine.scale[k] + affine.shift[k]);
    }
}

}  // namespace cpu
}  // namespace bcnn

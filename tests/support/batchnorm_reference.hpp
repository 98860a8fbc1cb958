#pragma once
// Reference batch normalisation in double with plain loops, for the tests of
// the batchnorm kernels (kernels/test_batchnorm.cpp) and of batch
// normalisation fused with max pooling (kernels/test_batchnorm_max_pool.cpp).

#include <cmath>
#include <vector>

#include <bcnn/core/tensor.hpp>

namespace bcnn {
namespace testing {

// Per-channel statistics of x (..., C) over its numel / C values.
struct BatchNormStatistics {
    std::vector<double> mean, biased_variance, unbiased_variance;
};

template <typename T>
BatchNormStatistics batchnorm_statistics_reference(const Tensor<T>& x) {
    const std::vector<T> v = x.to_vector();
    const Index channels = x.dim(-1), m = x.numel() / channels;
    BatchNormStatistics s{std::vector<double>(channels, 0.0), std::vector<double>(channels, 0.0),
                          std::vector<double>(channels, 0.0)};
    for (std::size_t i = 0; i < v.size(); ++i) s.mean[i % channels] += v[i];
    for (double& mean : s.mean) mean /= m;
    for (std::size_t i = 0; i < v.size(); ++i) {
        const double d = v[i] - s.mean[i % channels];
        s.biased_variance[i % channels] += d * d;
    }
    for (Index c = 0; c < channels; ++c) {
        s.unbiased_variance[c] = s.biased_variance[c] / (m - 1);
        s.biased_variance[c] /= m;
    }
    return s;
}

// y = gamma * (x - mean) / sqrt(variance + epsilon) + beta, per channel.
inline Tensor<double> batchnorm_normalize_reference(const Tensor<double>& x, const std::vector<double>& mean,
                                                    const std::vector<double>& variance, const Tensor<double>& gamma,
                                                    const Tensor<double>& beta, double epsilon) {
    std::vector<double> v = x.to_vector();
    const std::size_t channels = mean.size();
    for (std::size_t i = 0; i < v.size(); ++i) {
        const std::size_t c = i % channels;
        v[i] = gamma.data()[c] * (v[i] - mean[c]) / std::sqrt(variance[c] + epsilon) + beta.data()[c];
    }
    return Tensor<double>::from_vector(x.shape(), v);
}

}  // namespace testing
}  // namespace bcnn

#pragma once
// Helpers shared by the convolution kernel tests: tensors converted between
// float and double, the largest magnitude of a tensor, and a scope that sets
// the process-wide convolution algorithm.

#include <algorithm>
#include <cmath>
#include <vector>

#include <bcnn/core/tensor.hpp>
#include <bcnn/kernels/cpu/conv_algorithm.hpp>

namespace bcnn {
namespace testing {

// t's values as To (a contiguous copy of the same shape).
template <typename To, typename From>
Tensor<To> converted(const Tensor<From>& t) {
    const std::vector<From> values = t.to_vector();
    return Tensor<To>::from_vector(t.shape(), std::vector<To>(values.begin(), values.end()));
}

// max |t[i]| (0 for an empty tensor)
inline double max_abs(const Tensor<double>& t) {
    double m = 0;
    for (const double v : t.to_vector()) m = std::max(m, std::abs(v));
    return m;
}

// Sets the process-wide convolution algorithm for one scope: the im2col + GEMM
// tiling must stay covered where the automatic choice takes another path.
class ConvAlgorithmScope {
public:
    explicit ConvAlgorithmScope(cpu::ConvAlgorithm algorithm) : previous_(cpu::conv_algorithm()) {
        cpu::set_conv_algorithm(algorithm);
    }
    ~ConvAlgorithmScope() { cpu::set_conv_algorithm(previous_); }
    ConvAlgorithmScope(const ConvAlgorithmScope&) = delete;
    ConvAlgorithmScope& operator=(const ConvAlgorithmScope&) = delete;

private:
    cpu::ConvAlgorithm previous_;
};

}  // namespace testing
}  // namespace bcnn

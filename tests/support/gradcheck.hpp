#pragma once
// Finite-difference gradient checks in double.
//
// A kernel's backward gives the gradient of L = sum(forward(x) .* upstream)
// with respect to each input; numerical_gradient() estimates the same
// gradient by central differences, perturbing one element of a tensor at a
// time and re-running the forward pass.

#include <algorithm>
#include <cmath>
#include <functional>

#include <bcnn/core/tensor.hpp>

namespace bcnn {
namespace testing {

// sum(a .* b) over all elements; shapes must match.
inline double dot(const Tensor<double>& a, const Tensor<double>& b) {
    BCNN_CHECK(a.shape() == b.shape(), "dot: shapes " << a.shape() << " and " << b.shape());
    const std::vector<double> av = a.to_vector(), bv = b.to_vector();
    double sum = 0;
    for (std::size_t i = 0; i < av.size(); ++i) sum += av[i] * bv[i];
    return sum;
}

// d/d(param) of sum(forward() .* upstream), by central differences with step h.
// `forward` must read `param` (captured by reference) and return the output.
inline Tensor<double> numerical_gradient(const Tensor<double>& param, const std::function<Tensor<double>()>& forward,
                                         const Tensor<double>& upstream, double h = 1e-6) {
    Tensor<double> gradient(param.shape());
    const Tensor<double> flat_param = param.is_contiguous() ? param : Tensor<double>();
    BCNN_CHECK(flat_param.defined(), "numerical_gradient: parameter of shape " << param.shape() << " must be contiguous");
    double* values = flat_param.data();
    double* grad = gradient.data();
    for (Index i = 0; i < param.numel(); ++i) {
        const double saved = values[i];
        values[i] = saved + h;
        const double plus = dot(forward(), upstream);
        values[i] = saved - h;
        const double minus = dot(forward(), upstream);
        values[i] = saved;
        grad[i] = (plus - minus) / (2 * h);
    }
    return gradient;
}

// max |analytic - numeric| / max(max |analytic|, max |numeric|): the error
// relative to the gradient's own scale (0 when both are exactly zero).
inline double relative_error(const Tensor<double>& analytic, const Tensor<double>& numeric) {
    BCNN_CHECK(analytic.shape() == numeric.shape(),
               "relative_error: shapes " << analytic.shape() << " and " << numeric.shape());
    const std::vector<double> a = analytic.to_vector(), n = numeric.to_vector();
    double diff = 0, scale = 0;
    for (std::size_t i = 0; i < a.size(); ++i) {
        diff = std::max(diff, std::abs(a[i] - n[i]));
        scale = std::max({scale, std::abs(a[i]), std::abs(n[i])});
    }
    return scale == 0 ? 0 : diff / scale;
}

// Largest |a - b| over all elements, for forward comparisons.
template <typename T>
double max_abs_diff(const Tensor<T>& a, const Tensor<T>& b) {
    BCNN_CHECK(a.shape() == b.shape(), "max_abs_diff: shapes " << a.shape() << " and " << b.shape());
    const std::vector<T> av = a.to_vector(), bv = b.to_vector();
    double diff = 0;
    for (std::size_t i = 0; i < av.size(); ++i) diff = std::max(diff, std::abs(static_cast<double>(av[i]) - bv[i]));
    return diff;
}

}  // namespace testing
}  // namespace bcnn

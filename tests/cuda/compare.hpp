#pragma once
// Helpers of the CUDA tests: NaN-poisoned device outputs (elements a kernel
// fails to write stay NaN), fresh seeds, casts between float and double
// tensors, and comparisons of GPU and CPU results: bit for bit, or as a
// relative difference over a whole tensor.

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <random>
#include <sstream>
#include <string>
#include <type_traits>
#include <vector>

#include <bcnn/backend/transfer.hpp>

namespace bcnn {
namespace testing {

// A device tensor of `shape` filled with NaN.
template <typename T>
Tensor<T> poisoned_on_device(const Shape& shape) {
    return to_device(Tensor<T>(shape, std::numeric_limits<T>::quiet_NaN()), Device::cuda);
}

// "" when `actual` (either device) and `expected` (cpu) hold the same bits;
// otherwise the first differing element, e.g. "element 12 of 30: nan vs 0.5".
template <typename T>
std::string first_bit_difference(const Tensor<T>& actual, const Tensor<T>& expected) {
    if (actual.shape() != expected.shape()) return "shape " + actual.shape().str() + " vs " + expected.shape().str();
    const std::vector<T> a = to_device(actual, Device::cpu).to_vector(), e = expected.to_vector();
    for (std::size_t i = 0; i < a.size(); ++i)
        if (std::memcmp(&a[i], &e[i], sizeof(T)) != 0) {
            std::ostringstream out;
            out << "element " << i << " of " << a.size() << ": " << +a[i] << " vs " << +e[i];
            return out.str();
        }
    return "";
}

// The limit of relative_difference for ops whose GPU path is a library call
// that sums in its own order (cuDNN, cuBLAS), against the CPU op run in
// double on the same values: 1e-4 in float, 1e-10 in double.
template <typename T>
double library_tolerance() {
    return std::is_same<T, float>::value ? 1e-4 : 1e-10;
}

// A different seed on every run; tests print it with any failure.
inline std::uint64_t fresh_seed() {
    std::random_device device;
    return (static_cast<std::uint64_t>(device()) << 32) ^ device();
}

// t (either device, any view) as a contiguous CPU tensor of To.
template <typename To, typename From>
Tensor<To> cast(const Tensor<From>& t) {
    const Tensor<From> host = to_device(t, Device::cpu);
    Tensor<To> result = Tensor<To>::uninitialized(t.shape());
    const std::vector<From> values = host.to_vector();
    for (std::size_t i = 0; i < values.size(); ++i) result.data()[i] = static_cast<To>(values[i]);
    return result;
}

// max |actual - expected| / max |expected|; infinity when the shapes differ
// or `actual` (on any device) holds a non-finite value, e.g. an unwritten
// NaN-poisoned element.
//
// min_scale: where a result is a difference of larger terms that cancel (a
// batch norm's dx; exactly zero with one value per channel), each side's
// rounding is relative to those terms, not to the result: the caller passes
// their size, and the difference is taken relative to max(max |expected|, min_scale).
template <typename T>
double relative_difference(const Tensor<T>& actual, const Tensor<double>& expected, double min_scale = 0) {
    if (actual.shape() != expected.shape()) return std::numeric_limits<double>::infinity();
    const std::vector<double> a = cast<double>(actual).to_vector(), e = expected.to_vector();
    double diff = 0, scale = min_scale;
    for (std::size_t i = 0; i < a.size(); ++i) {
        if (!std::isfinite(a[i])) return std::numeric_limits<double>::infinity();
        diff = std::max(diff, std::abs(a[i] - e[i]));
        scale = std::max(scale, std::abs(e[i]));
    }
    return scale == 0 ? diff : diff / scale;
}

}  // namespace testing
}  // namespace bcnn

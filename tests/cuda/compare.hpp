#pragma once
// Helpers of the CUDA tests: NaN-poisoned device outputs (elements a kernel
// fails to write stay NaN) and a bit-exact comparison of GPU and CPU results.

#include <cstring>
#include <limits>
#include <sstream>
#include <string>

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

}  // namespace testing
}  // namespace bcnn

// The calling thread's compute precision (include/bcnn/backend/cuda/precision.hpp).

#include "bcnn/backend/cuda/precision.hpp"

namespace bcnn {
namespace cuda {

namespace {
thread_local Precision current_precision = Precision::fp32;
}  // namespace

Precision compute_precision() { return current_precision; }
void set_compute_precision(Precision precision) { current_precision = precision; }

}  // namespace cuda
}  // namespace bcnn

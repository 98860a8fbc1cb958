// cuda::add_inplace: argument checks, then the kernel in elementwise_kernels.cu.
// Shapes as in include/bcnn/backend/cuda/elementwise.hpp.

#include "bcnn/backend/cuda/elementwise.hpp"

#include "argument_checks.hpp"
#include "check.hpp"
#include "elementwise_kernels.hpp"

namespace bcnn {
namespace cuda {

namespace {

// y (any shape) += x (same shape)
template <typename T>
void add_inplace_on_device(Tensor<T>& y, const Tensor<T>& x) {
    const char* op = "cuda::add_inplace";
    detail::require_device(y, op, "accumulator");
    detail::require_shape(x, y.shape(), op, "addend");
    if (y.numel() == 0) return;
    const RowMatrix<T> ym = y.as_rows("cuda::add_inplace accumulator"), xm = x.as_rows("cuda::add_inplace addend");
    BCNN_CUDA_CHECK(kernels::add_inplace(ym, xm), op << " on " << y.shape());
}

}  // namespace

void add_inplace(Tensor<float>& y, const Tensor<float>& x) { add_inplace_on_device(y, x); }
void add_inplace(Tensor<double>& y, const Tensor<double>& x) { add_inplace_on_device(y, x); }

}  // namespace cuda
}  // namespace bcnn

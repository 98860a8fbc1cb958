// cuda::add_inplace, scale_inplace, all_finite: argument checks, then the
// kernels in elementwise_kernels.cu.
// Shapes as in include/bcnn/backend/cuda/elementwise.hpp.

#include "bcnn/backend/cuda/elementwise.hpp"

#include "argument_checks.hpp"
#include "bcnn/backend/cuda/device.hpp"
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

// y (any shape) *= alpha
template <typename T>
void scale_inplace_on_device(Tensor<T>& y, T alpha) {
    const char* op = "cuda::scale_inplace";
    detail::require_device(y, op, "tensor");
    if (y.numel() == 0) return;
    BCNN_CUDA_CHECK(kernels::scale_inplace(y.as_rows(op), alpha), op << " on " << y.shape() << " by " << alpha);
}

// x (any shape) -> every element finite: the kernel raises a device flag, read back here.
template <typename T>
bool all_finite_on_device(const Tensor<T>& x) {
    const char* op = "cuda::all_finite";
    detail::require_device(x, op, "tensor");
    if (x.numel() == 0) return true;
    const std::shared_ptr<Storage> flag = allocate(sizeof(int));
    int* flag_data = static_cast<int*>(flag->data());
    BCNN_CUDA_CHECK(kernels::count_non_finite(x.as_rows(op), flag_data), op << " on " << x.shape());
    int non_finite = 0;
    copy_to_host(&non_finite, flag_data, sizeof(int));
    return non_finite == 0;
}

}  // namespace

void add_inplace(Tensor<float>& y, const Tensor<float>& x) { add_inplace_on_device(y, x); }
void add_inplace(Tensor<double>& y, const Tensor<double>& x) { add_inplace_on_device(y, x); }
void scale_inplace(Tensor<float>& y, float alpha) { scale_inplace_on_device(y, alpha); }
void scale_inplace(Tensor<double>& y, double alpha) { scale_inplace_on_device(y, alpha); }
bool all_finite(const Tensor<float>& x) { return all_finite_on_device(x); }
bool all_finite(const Tensor<double>& x) { return all_finite_on_device(x); }

}  // namespace cuda
}  // namespace bcnn

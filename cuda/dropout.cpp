// cuda::dropout_forward / dropout_backward: argument checks as the CPU
// kernel's, the stream positions reserved from the host Rng, then the
// kernels in dropout_kernels.cu. Shapes in include/bcnn/backend/cuda/dropout.hpp.

#include "bcnn/backend/cuda/dropout.hpp"

#include "argument_checks.hpp"
#include "check.hpp"
#include "dropout_kernels.hpp"

namespace bcnn {
namespace cuda {

namespace {

// x (any shape), rate in [0, 1) -> mask, y (same shape)
template <typename T>
void dropout_forward_on_device(const Tensor<T>& x, T rate, Rng& rng, Tensor<T>& mask, Tensor<T>& y) {
    const char* op = "cuda::dropout_forward";
    BCNN_CHECK(rate >= T(0) && rate < T(1), op << ": rate " << rate << " is outside [0, 1)");
    detail::require_device(x, op, "input");
    detail::require_shape(mask, x.shape(), op, "mask");
    detail::require_shape(y, x.shape(), op, "output");
    // As the CPU kernel: the positions are reserved even for an empty tensor or rate 0.
    const std::uint64_t first = rng.advance(static_cast<std::uint64_t>(x.numel()));
    if (x.numel() == 0) return;
    const T scale = T(1) / (T(1) - rate);
    BCNN_CUDA_CHECK(kernels::dropout_forward(x.as_rows("cuda::dropout_forward input"), rate, scale, rng.seed(), first,
                                             mask.as_rows("cuda::dropout_forward mask"),
                                             y.as_rows("cuda::dropout_forward output")),
                    op << " on input " << x.shape() << ", rate " << rate);
}

// dy, mask (same shape) -> dx = dy * mask
template <typename T>
void dropout_backward_on_device(const Tensor<T>& dy, const Tensor<T>& mask, Tensor<T>& dx) {
    const char* op = "cuda::dropout_backward";
    detail::require_device(dy, op, "output gradient");
    detail::require_shape(mask, dy.shape(), op, "mask");
    detail::require_shape(dx, dy.shape(), op, "input gradient");
    if (dy.numel() == 0) return;
    BCNN_CUDA_CHECK(kernels::dropout_backward(dy.as_rows("cuda::dropout_backward output gradient"),
                                              mask.as_rows("cuda::dropout_backward mask"),
                                              dx.as_rows("cuda::dropout_backward input gradient")),
                    op << " on output gradient " << dy.shape());
}

}  // namespace

void dropout_forward(const Tensor<float>& x, float rate, Rng& rng, Tensor<float>& mask, Tensor<float>& y) {
    dropout_forward_on_device(x, rate, rng, mask, y);
}
void dropout_forward(const Tensor<double>& x, double rate, Rng& rng, Tensor<double>& mask, Tensor<double>& y) {
    dropout_forward_on_device(x, rate, rng, mask, y);
}
void dropout_backward(const Tensor<float>& dy, const Tensor<float>& mask, Tensor<float>& dx) {
    dropout_backward_on_device(dy, mask, dx);
}
void dropout_backward(const Tensor<double>& dy, const Tensor<double>& mask, Tensor<double>& dx) {
    dropout_backward_on_device(dy, mask, dx);
}

}  // namespace cuda
}  // namespace bcnn

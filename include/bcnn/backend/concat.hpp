#pragma once
// Channel concatenation's dispatch point: CPU tensors run
// cpu::concat_channels_*, device tensors cuda::concat_channels_*.
//   inputs[i] (..., C_i) -> y (..., sum_i C_i)
//   dy (..., sum_i C_i) -> d_inputs[i] (..., C_i)
// All tensors of a call must be on one device; each kernel checks the shapes.

#include <string>
#include <vector>

#include "bcnn/backend/cuda/concat.hpp"
#include "bcnn/backend/dispatch.hpp"
#include "bcnn/kernels/cpu/concat.hpp"

namespace bcnn {
namespace backend {
namespace detail {

// The device of `wide` ("output" or "output gradient"), which every tensor of `parts` must share.
template <typename T>
Device common_device(const char* op, const char* wide_name, const Tensor<T>& wide, const char* part_name,
                     const std::vector<Tensor<T>>& parts) {
    BCNN_CHECK(wide.defined(), op << ": " << wide_name << " is an empty tensor");
    for (std::size_t i = 0; i < parts.size(); ++i) {
        BCNN_CHECK(parts[i].defined(), op << ": " << part_name << " " << i << " is an empty tensor");
        BCNN_CHECK(parts[i].device() == wide.device(),
                   op << ": " << wide_name << " is on " << wide.device() << " but " << part_name << " " << i
                      << " is on " << parts[i].device() << "; move tensors with bcnn::to_device()");
    }
    return wide.device();
}

}  // namespace detail

template <typename T>
void concat_channels_forward(const std::vector<Tensor<T>>& inputs, Tensor<T>& y) {
    const char* op = "concat_channels_forward";
    if (detail::common_device(op, "output", y, "input", inputs) == Device::cpu) {
        cpu::concat_channels_forward(inputs, y);
        return;
    }
#ifdef BCNN_WITH_CUDA
    cuda::concat_channels_forward(inputs, y);
#else
    detail::throw_no_cuda_backend(op);
#endif
}

template <typename T>
void concat_channels_backward(const Tensor<T>& dy, std::vector<Tensor<T>>& d_inputs) {
    const char* op = "concat_channels_backward";
    if (detail::common_device(op, "output gradient", dy, "input gradient", d_inputs) == Device::cpu) {
        cpu::concat_channels_backward(dy, d_inputs);
        return;
    }
#ifdef BCNN_WITH_CUDA
    cuda::concat_channels_backward(dy, d_inputs);
#else
    detail::throw_no_cuda_backend(op);
#endif
}

}  // namespace backend
}  // namespace bcnn

// cuda::concat_channels_forward / backward: the CPU kernel's shape checks
// (cpu::detail::concat_channels_shape), then one strided device-to-device
// copy per input between its rows and its channel slice of the wide tensor.

#include "bcnn/backend/cuda/concat.hpp"

#include <string>

#include "argument_checks.hpp"
#include "bcnn/kernels/cpu/concat.hpp"
#include "check.hpp"
#include "stream.hpp"

namespace bcnn {
namespace cuda {

namespace {

// The shapes of `tensors`, each a device tensor (named "<name> <i>").
template <typename T>
std::vector<Shape> device_shapes(const std::vector<Tensor<T>>& tensors, const char* op, const char* name) {
    std::vector<Shape> shapes = cpu::detail::defined_shapes(tensors, op, name);
    for (std::size_t i = 0; i < tensors.size(); ++i)
        detail::require_device(tensors[i], op, (std::string(name) + " " + std::to_string(i)).c_str());
    return shapes;
}

// to = from, two row views of the same rows and cols on the device.
template <typename T>
void copy_rows(const RowMatrix<T>& from, const RowMatrix<T>& to, const char* op, std::size_t index) {
    if (from.rows * from.cols == 0) return;
    BCNN_CUDA_CHECK(cudaMemcpy2DAsync(to.data, sizeof(T) * static_cast<std::size_t>(to.ld), from.data,
                                      sizeof(T) * static_cast<std::size_t>(from.ld),
                                      sizeof(T) * static_cast<std::size_t>(from.cols),
                                      static_cast<std::size_t>(from.rows), cudaMemcpyDeviceToDevice, detail::context_stream()),
                    op << ", input " << index << " (" << from.rows << " rows of " << from.cols << ")");
}

// inputs[i] (..., C_i) -> y (..., sum_i C_i)
template <typename T>
void concat_forward_on_device(const std::vector<Tensor<T>>& inputs, Tensor<T>& y) {
    const char* op = "cuda::concat_channels_forward";
    const Shape expected = cpu::detail::concat_channels_shape(device_shapes(inputs, op, "input"), op, "input");
    detail::require_shape(y, expected, op, "output");
    Index offset = 0;
    for (std::size_t i = 0; i < inputs.size(); ++i) {
        const Index channels = inputs[i].dim(-1);
        copy_rows(inputs[i].as_rows(op), y.channels(offset, offset + channels).as_rows(op), op, i);
        offset += channels;
    }
}

// dy (..., sum_i C_i) -> d_inputs[i] (..., C_i)
template <typename T>
void concat_backward_on_device(const Tensor<T>& dy, std::vector<Tensor<T>>& d_inputs) {
    const char* op = "cuda::concat_channels_backward";
    const Shape expected = cpu::detail::concat_channels_shape(device_shapes(d_inputs, op, "input gradient"), op,
                                                              "input gradient");
    detail::require_shape(dy, expected, op, "output gradient");
    Index offset = 0;
    for (std::size_t i = 0; i < d_inputs.size(); ++i) {
        const Index channels = d_inputs[i].dim(-1);
        copy_rows(dy.channels(offset, offset + channels).as_rows(op), d_inputs[i].as_rows(op), op, i);
        offset += channels;
    }
}

}  // namespace

void concat_channels_forward(const std::vector<Tensor<float>>& inputs, Tensor<float>& y) {
    concat_forward_on_device(inputs, y);
}
void concat_channels_forward(const std::vector<Tensor<double>>& inputs, Tensor<double>& y) {
    concat_forward_on_device(inputs, y);
}
void concat_channels_backward(const Tensor<float>& dy, std::vector<Tensor<float>>& d_inputs) {
    concat_backward_on_device(dy, d_inputs);
}
void concat_channels_backward(const Tensor<double>& dy, std::vector<Tensor<double>>& d_inputs) {
    concat_backward_on_device(dy, d_inputs);
}

}  // namespace cuda
}  // namespace bcnn

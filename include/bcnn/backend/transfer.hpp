#pragma once
// to_device: moves a tensor between the CPU and the GPU. The result is a new,
// contiguous tensor; on the tensor's own device it is the same handle (no copy).
// Needs the CUDA backend (bcnn::cuda) for any real move; without it, throws.
// empty_on / zeros_on allocate a tensor on a given device (layers' buffers,
// optimiser slots).

#include "bcnn/backend/cuda/device.hpp"
#include "bcnn/backend/dispatch.hpp"

namespace bcnn {

// t (any shape, contiguous or a row view) -> the same values on `device`.
template <typename T>
Tensor<T> to_device(const Tensor<T>& t, Device device) {
    BCNN_CHECK(t.defined(), "to_device: empty tensor");
    if (t.device() == device) return t;
#ifdef BCNN_WITH_CUDA
    const bool upload = device == Device::cuda;
    const std::size_t bytes = sizeof(T) * static_cast<std::size_t>(t.numel());
    Tensor<T> result = upload ? Tensor<T>(cuda::allocate(bytes), 0, t.shape(), Tensor<T>::contiguous_strides(t.shape()))
                              : Tensor<T>::uninitialized(t.shape());
    if (bytes == 0) return result;
    if (t.is_contiguous()) {
        if (upload)
            cuda::copy_to_device(result.data(), t.data(), bytes);
        else
            cuda::copy_to_host(result.data(), t.data(), bytes);
        return result;
    }
    const RowMatrix<T> from = t.as_rows("to_device source");
    const std::size_t row_bytes = sizeof(T) * static_cast<std::size_t>(from.cols);
    const std::size_t rows = static_cast<std::size_t>(from.rows);
    const std::size_t from_pitch = sizeof(T) * static_cast<std::size_t>(from.ld);
    if (upload)
        cuda::copy_rows_to_device(result.data(), row_bytes, from.data, from_pitch, row_bytes, rows);
    else
        cuda::copy_rows_to_host(result.data(), row_bytes, from.data, from_pitch, row_bytes, rows);
    return result;
#else
    std::ostringstream message;
    message << "to_device: cannot move a tensor of shape " << t.shape() << " from " << t.device() << " to " << device
            << ": " << backend::detail::kNoCudaBackend;
    throw Error(message.str());
#endif
}

// An uninitialised, contiguous tensor of `shape` on `device`.
template <typename T>
Tensor<T> empty_on(const Shape& shape, Device device) {
    if (device == Device::cpu) return Tensor<T>::uninitialized(shape);
#ifdef BCNN_WITH_CUDA
    const std::size_t bytes = sizeof(T) * static_cast<std::size_t>(shape.numel());
    return Tensor<T>(cuda::allocate(bytes), 0, shape, Tensor<T>::contiguous_strides(shape));
#else
    std::ostringstream message;
    message << "empty_on: cannot allocate a tensor of shape " << shape << " on " << device << ": "
            << backend::detail::kNoCudaBackend;
    throw Error(message.str());
#endif
}

// A zero-filled, contiguous tensor of `shape` on `device` (filled on the host, then moved).
template <typename T>
Tensor<T> zeros_on(const Shape& shape, Device device) {
    return to_device(Tensor<T>(shape), device);
}

}  // namespace bcnn

#pragma once
// Storage: one owned, 64-byte aligned block of memory on a device. Tensors
// share a Storage through std::shared_ptr; views point into it.

#include <cstddef>
#include <cstdlib>
#include <memory>
#include <new>

#include "bcnn/core/device.hpp"
#include "bcnn/core/error.hpp"

namespace bcnn {

constexpr std::size_t kTensorAlignment = 64;

class Storage {
public:
    using Release = void (*)(void*);

    Storage(void* data, std::size_t bytes, Device device, Release release)
        : data_(data), bytes_(bytes), device_(device), release_(release) {}
    ~Storage() {
        if (data_ && release_) release_(data_);
    }
    Storage(const Storage&) = delete;
    Storage& operator=(const Storage&) = delete;

    void* data() const { return data_; }
    std::size_t bytes() const { return bytes_; }
    Device device() const { return device_; }

    // Host memory aligned to kTensorAlignment; never nullptr (zero bytes
    // still get a valid, aligned pointer).
    static std::shared_ptr<Storage> allocate_host(std::size_t bytes) {
        const std::size_t rounded = ((bytes + kTensorAlignment - 1) / kTensorAlignment) * kTensorAlignment;
        void* data = std::aligned_alloc(kTensorAlignment, rounded == 0 ? kTensorAlignment : rounded);
        BCNN_CHECK(data != nullptr, "Storage: cannot allocate " << bytes << " bytes of host memory");
        return std::make_shared<Storage>(data, bytes, Device::cpu, &std::free);
    }

private:
    void* data_;
    std::size_t bytes_;
    Device device_;
    Release release_;
};

}  // namespace bcnn

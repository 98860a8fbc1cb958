#pragma once
// Storage: one owned, 64-byte aligned block of memory on a device. Tensors
// share a Storage through std::shared_ptr; views point into it.
// Host blocks of at least kHugePageMinBytes are aligned to and padded to
// whole kHugePageBytes, and on Linux advised to use transparent huge pages
// (madvise MADV_HUGEPAGE; Debian's default THP mode is "madvise", which
// otherwise gives them 4 KiB pages). A (32, 150, 150, 16) float activation
// is then 23 TLB entries, not 11,250: the custom CNN's training step
// (batch 32, 2 threads, 8 interleaved runs of 10 steps on the shared 2-core
// Zen 3) took 152-181 ms (median of the runs' medians 163) against
// 164-198 ms (180) with 4 KiB pages. The padding costs at most 2 MiB of
// address space a block; a huge page is resident whole once any of it is
// written (peak RSS 60-180 MB higher in bench's networks). Where free
// memory is fragmented, the kernel's THP "defrag" setting decides whether
// the first write waits for it to compact a huge page or takes small ones.

#include <cstddef>
#include <cstdlib>
#include <memory>
#include <new>

#if defined(__linux__)
#include <sys/mman.h>
#endif

#include "bcnn/core/device.hpp"
#include "bcnn/core/error.hpp"

namespace bcnn {

constexpr std::size_t kTensorAlignment = 64;
constexpr std::size_t kHugePageBytes = std::size_t(2) << 20;
constexpr std::size_t kHugePageMinBytes = std::size_t(4) << 20;

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

    // Host memory aligned to kTensorAlignment (to kHugePageBytes from
    // kHugePageMinBytes on, see the top of the file); never nullptr (zero
    // bytes still get a valid, aligned pointer).
    static std::shared_ptr<Storage> allocate_host(std::size_t bytes) {
        const bool huge = bytes >= kHugePageMinBytes;
        const std::size_t alignment = huge ? kHugePageBytes : kTensorAlignment;
        const std::size_t rounded = ((bytes + alignment - 1) / alignment) * alignment;
        void* data = std::aligned_alloc(alignment, rounded == 0 ? alignment : rounded);
        BCNN_CHECK(data != nullptr, "Storage: cannot allocate " << bytes << " bytes of host memory");
#if defined(__linux__) && defined(MADV_HUGEPAGE)
        if (huge) madvise(data, rounded, MADV_HUGEPAGE);  // advice only: without THP the pages stay small
#endif
        return std::make_shared<Storage>(data, bytes, Device::cpu, &std::free);
    }

private:
    void* data_;
    std::size_t bytes_;
    Device device_;
    Release release_;
};

}  // namespace bcnn

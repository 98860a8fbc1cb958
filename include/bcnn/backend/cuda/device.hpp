#pragma once
// The CUDA backend's device and memory functions, defined in cuda/device.cpp
// and linked from bcnn::cuda. Plain C++ declarations: callers need no CUDA
// headers. Header-only code calls them only under #ifdef BCNN_WITH_CUDA
// (defined by linking bcnn::cuda); without the library they do not link.

#include <cstddef>
#include <memory>
#include <string>

#include "bcnn/core/storage.hpp"

namespace bcnn {
namespace cuda {

// True when a CUDA device is present and runs this build's kernels. When false,
// *why_not (if given) says why, e.g. "no usable CUDA device: cudaGetDeviceCount
// returned cudaErrorNoDevice (no CUDA-capable device is detected)". Never throws.
bool device_available(std::string* why_not = nullptr);

// One line naming the device and the library versions, e.g. "NVIDIA H100 80GB
// HBM3 (compute capability 9.0, 79.1 GiB), CUDA runtime 13.0, driver 13.0,
// cuBLAS 13.1.0, cuDNN 9.19.0". Throws bcnn::Error when there is no device.
std::string describe_device();

// `bytes` of device memory (contents unspecified) on the current device, as
// Storage on Device::cuda. Served by the device's caching allocator
// (core/block_cache.hpp): when the last tensor sharing it is gone the block
// returns to the cache, and later requests of about its size reuse it, so a
// training step that repeats the last one's sizes calls no cudaMalloc.
// Throws bcnn::Error naming the size when the device is out of memory even
// after the cache gave its free blocks back.
std::shared_ptr<Storage> allocate(std::size_t bytes);

// The current device's caching allocator.
struct MemoryStats {
    std::size_t device_allocations;  // cudaMalloc calls that succeeded
    std::size_t reuses;              // allocate() calls served from the cache
    std::size_t bytes_in_use;        // held by live tensors (sizes rounded up to 512 bytes)
    std::size_t bytes_cached;        // freed, kept for reuse
};
MemoryStats memory_stats();

// Gives the current device's cached blocks back with cudaFree (e.g. before
// handing the GPU to another library).
void empty_cache();

// Synchronous copies between pageable host memory and device memory.
void copy_to_device(void* device_dst, const void* host_src, std::size_t bytes);
void copy_to_host(void* host_dst, const void* device_src, std::size_t bytes);

// The same for `rows` rows of `row_bytes` bytes each, whose starts lie
// dst_pitch and src_pitch bytes apart (tensor views seen through as_rows()).
void copy_rows_to_device(void* device_dst, std::size_t dst_pitch, const void* host_src, std::size_t src_pitch,
                         std::size_t row_bytes, std::size_t rows);
void copy_rows_to_host(void* host_dst, std::size_t dst_pitch, const void* device_src, std::size_t src_pitch,
                       std::size_t row_bytes, std::size_t rows);

}  // namespace cuda
}  // namespace bcnn

// Device discovery, device memory and host<->device copies (bcnn::cuda).

#include "bcnn/backend/cuda/device.hpp"

#include <iomanip>
#include <map>
#include <mutex>

#include "bcnn/core/block_cache.hpp"

#include "check_libraries.hpp"
#include "probe.hpp"

namespace bcnn {
namespace cuda {

bool device_available(std::string* why_not) {
    std::string reason;
    int count = 0, device = 0;
    cudaError_t status = cudaGetDeviceCount(&count);
    if (status != cudaSuccess) {
        reason = "no usable CUDA device: cudaGetDeviceCount returned " + detail::status_text(status);
    } else if (count == 0) {
        reason = "no CUDA device: cudaGetDeviceCount found 0 devices";
    } else if ((status = cudaGetDevice(&device)) != cudaSuccess) {
        reason = "CUDA device unusable: cudaGetDevice returned " + detail::status_text(status);
    } else if ((status = detail::probe_kernel_image()) != cudaSuccess) {
        int major = 0, minor = 0;
        cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, device);
        cudaDeviceGetAttribute(&minor, cudaDevAttrComputeCapabilityMinor, device);
        reason = "CUDA device " + std::to_string(device) + " (compute capability " + std::to_string(major) + "." +
                 std::to_string(minor) + ") cannot run kernels built for CUDA architectures " +
                 BCNN_CUDA_ARCHITECTURES + " (" + detail::status_text(status) +
                 "); rebuild with -DCMAKE_CUDA_ARCHITECTURES=" + std::to_string(major) + std::to_string(minor);
    }
    if (why_not) *why_not = reason;
    return reason.empty();
}

std::string describe_device() {
    const char* context = "cuda::describe_device";
    int device = 0, runtime = 0, driver = 0;
    BCNN_CUDA_CHECK(cudaGetDevice(&device), context);
    cudaDeviceProp properties{};
    BCNN_CUDA_CHECK(cudaGetDeviceProperties(&properties, device), context);
    BCNN_CUDA_CHECK(cudaRuntimeGetVersion(&runtime), context);
    BCNN_CUDA_CHECK(cudaDriverGetVersion(&driver), context);
    int cublas[3] = {}, cudnn[3] = {};
    const libraryPropertyType parts[3] = {MAJOR_VERSION, MINOR_VERSION, PATCH_LEVEL};
    for (int i = 0; i < 3; ++i) {
        BCNN_CUDA_CHECK(cublasGetProperty(parts[i], &cublas[i]), context);
        BCNN_CUDA_CHECK(cudnnGetProperty(parts[i], &cudnn[i]), context);
    }
    std::ostringstream out;
    out << properties.name << " (compute capability " << properties.major << '.' << properties.minor << ", "
        << std::fixed << std::setprecision(1) << static_cast<double>(properties.totalGlobalMem) / (1 << 30)
        << " GiB), CUDA runtime " << runtime / 1000 << '.' << runtime % 1000 / 10 << ", driver " << driver / 1000 << '.'
        << driver % 1000 / 10 << ", cuBLAS " << cublas[0] << '.' << cublas[1] << '.' << cublas[2] << ", cuDNN "
        << cudnn[0] << '.' << cudnn[1] << '.' << cudnn[2];
    return out.str();
}

namespace {

// Device number -> its cache of freed device blocks (core/block_cache.hpp).
// Never destroyed: tensors released while the program exits still find theirs.
struct DeviceCaches {
    std::mutex mutex;
    std::map<int, BlockCache*> caches;
};

DeviceCaches& device_caches() {
    static DeviceCaches* caches = new DeviceCaches();
    return *caches;
}

// cudaMalloc for the cache: nullptr when the device is out of memory (the
// cache then frees its blocks and asks again); other failures throw.
void* device_malloc(int device, std::size_t bytes) {
    void* data = nullptr;
    const cudaError_t status = cudaMalloc(&data, bytes);
    if (status == cudaErrorMemoryAllocation) {
        cudaGetLastError();  // clears the (non-sticky) error
        return nullptr;
    }
    BCNN_CUDA_CHECK(status, "cuda::allocate of " << bytes << " bytes on device " << device);
    return data;
}

// Its status is dropped: the release hook runs in destructors, and at exit
// the runtime may already be unloading (cudaErrorCudartUnloading).
void device_free(void* data) { cudaFree(data); }

BlockCache& current_device_cache(int* device_out = nullptr) {
    int device = 0;
    BCNN_CUDA_CHECK(cudaGetDevice(&device), "cuda: device memory cache");
    if (device_out) *device_out = device;
    DeviceCaches& all = device_caches();
    std::lock_guard<std::mutex> lock(all.mutex);
    BlockCache*& cache = all.caches[device];
    if (!cache) cache = new BlockCache([device](std::size_t bytes) { return device_malloc(device, bytes); }, &device_free);
    return *cache;
}

// Storage's release hook: the block goes back to the cache of its device.
void release_to_cache(void* data) {
    DeviceCaches& all = device_caches();
    std::lock_guard<std::mutex> lock(all.mutex);
    for (const auto& [device, cache] : all.caches)
        if (cache->owns(data)) {
            cache->release(data);
            return;
        }
}

}  // namespace

std::shared_ptr<Storage> allocate(std::size_t bytes) {
    int device = 0;
    BlockCache& cache = current_device_cache(&device);
    void* data = cache.acquire(bytes);
    BCNN_CHECK(bytes == 0 || data, "cuda::allocate of " << bytes << " bytes on device " << device
                                                        << ": out of device memory (cudaMalloc failed after the cache "
                                                           "gave back its free blocks; "
                                                        << cache.stats().bytes_in_use
                                                        << " bytes are held by live tensors)");
    try {
        return std::make_shared<Storage>(data, bytes, Device::cuda, &release_to_cache);
    } catch (...) {
        cache.release(data);
        throw;
    }
}

MemoryStats memory_stats() {
    const BlockCache::Stats stats = current_device_cache().stats();
    return MemoryStats{stats.allocations, stats.reuses, stats.bytes_in_use, stats.bytes_cached};
}

void empty_cache() { current_device_cache().trim(); }

void copy_to_device(void* device_dst, const void* host_src, std::size_t bytes) {
    BCNN_CUDA_CHECK(cudaMemcpy(device_dst, host_src, bytes, cudaMemcpyHostToDevice),
                    "cuda::copy_to_device of " << bytes << " bytes");
}

void copy_to_host(void* host_dst, const void* device_src, std::size_t bytes) {
    BCNN_CUDA_CHECK(cudaMemcpy(host_dst, device_src, bytes, cudaMemcpyDeviceToHost),
                    "cuda::copy_to_host of " << bytes << " bytes");
}

void copy_rows_to_device(void* device_dst, std::size_t dst_pitch, const void* host_src, std::size_t src_pitch,
                         std::size_t row_bytes, std::size_t rows) {
    BCNN_CUDA_CHECK(
        cudaMemcpy2D(device_dst, dst_pitch, host_src, src_pitch, row_bytes, rows, cudaMemcpyHostToDevice),
        "cuda::copy_rows_to_device of " << rows << " rows of " << row_bytes << " bytes (pitches " << src_pitch
                                         << " -> " << dst_pitch << ")");
}

void copy_rows_to_host(void* host_dst, std::size_t dst_pitch, const void* device_src, std::size_t src_pitch,
                       std::size_t row_bytes, std::size_t rows) {
    BCNN_CUDA_CHECK(
        cudaMemcpy2D(host_dst, dst_pitch, device_src, src_pitch, row_bytes, rows, cudaMemcpyDeviceToHost),
        "cuda::copy_rows_to_host of " << rows << " rows of " << row_bytes << " bytes (pitches " << src_pitch
                                       << " -> " << dst_pitch << ")");
}

}  // namespace cuda
}  // namespace bcnn

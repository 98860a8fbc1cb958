// Device discovery, device memory and host<->device copies (bcnn::cuda).

#include "bcnn/backend/cuda/device.hpp"

#include <iomanip>

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

// Storage's release hook. Its status is dropped: a destructor must not throw,
// and at exit the runtime may already be unloading (cudaErrorCudartUnloading).
void free_device_memory(void* data) { cudaFree(data); }

}  // namespace

// One cudaMalloc per call. The caching allocator (a later issue) will serve
// freed blocks again and come here only for fresh ones; its release hook will
// hand blocks back to the cache instead of calling cudaFree.
std::shared_ptr<Storage> allocate(std::size_t bytes) {
    void* data = nullptr;
    if (bytes > 0) BCNN_CUDA_CHECK(cudaMalloc(&data, bytes), "cuda::allocate of " << bytes << " bytes");
    try {
        return std::make_shared<Storage>(data, bytes, Device::cuda, &free_device_memory);
    } catch (...) {
        cudaFree(data);
        throw;
    }
}

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

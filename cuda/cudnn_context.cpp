// The per-thread, per-device cuDNN contexts (cudnn_context.hpp).

#include "cudnn_context.hpp"

#include <memory>

#include "check_libraries.hpp"
#include "stream.hpp"

namespace bcnn {
namespace cuda {
namespace detail {

// Statuses are dropped: a destructor must not throw.
GrowingBuffer::~GrowingBuffer() { cudaFree(data_); }

void* GrowingBuffer::get(std::size_t bytes, const std::string& context) {
    if (bytes <= bytes_) return bytes == 0 ? nullptr : data_;
    BCNN_CUDA_CHECK(cudaFree(data_), context << ": growing a scratch buffer of " << bytes_ << " bytes");
    data_ = nullptr;
    bytes_ = 0;
    BCNN_CUDA_CHECK(cudaMalloc(&data_, bytes), context << ": scratch buffer of " << bytes << " bytes");
    bytes_ = bytes;
    return data_;
}

CudnnContext::CudnnContext(int device) : device_(device) {
    BCNN_CUDA_CHECK(cudnnCreate(&handle_), "cuda: cuDNN handle for device " << device);
    try {
        BCNN_CUDA_CHECK(cudnnSetStream(handle_, context_stream()), "cuda: cuDNN stream for device " << device);
    } catch (...) {
        cudnnDestroy(handle_);
        throw;
    }
}

// Runs when the thread ends, before the CUDA runtime's own teardown at exit;
// statuses are dropped as in ~GrowingBuffer.
CudnnContext::~CudnnContext() { cudnnDestroy(handle_); }

CudnnContext& cudnn_context() {
    thread_local std::map<int, std::unique_ptr<CudnnContext>> contexts;
    int device = 0;
    BCNN_CUDA_CHECK(cudaGetDevice(&device), "cuda: cuDNN context");
    std::unique_ptr<CudnnContext>& context = contexts[device];
    if (!context) context = std::make_unique<CudnnContext>(device);
    return *context;
}

}  // namespace detail
}  // namespace cuda
}  // namespace bcnn

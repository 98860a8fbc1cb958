// The per-thread, per-device cuBLAS handles (cublas_context.hpp).

#include "cublas_context.hpp"

#include <map>
#include <memory>

#include "check_libraries.hpp"
#include "stream.hpp"

namespace bcnn {
namespace cuda {
namespace detail {

namespace {

class CublasHandle {
public:
    explicit CublasHandle(int device) {
        BCNN_CUDA_CHECK(cublasCreate(&handle_), "cuda: cuBLAS handle for device " << device);
        try {
            BCNN_CUDA_CHECK(cublasSetMathMode(handle_, CUBLAS_DEFAULT_MATH), "cuda: cuBLAS math mode");
            BCNN_CUDA_CHECK(cublasSetAtomicsMode(handle_, CUBLAS_ATOMICS_NOT_ALLOWED), "cuda: cuBLAS atomics mode");
            BCNN_CUDA_CHECK(cublasSetStream(handle_, context_stream()), "cuda: cuBLAS stream for device " << device);
        } catch (...) {
            cublasDestroy(handle_);
            throw;
        }
    }
    CublasHandle(const CublasHandle&) = delete;
    CublasHandle& operator=(const CublasHandle&) = delete;
    // Runs when the thread ends; the status is dropped: a destructor must not throw.
    ~CublasHandle() { cublasDestroy(handle_); }
    cublasHandle_t get() const { return handle_; }

private:
    cublasHandle_t handle_ = nullptr;
};

}  // namespace

cublasHandle_t cublas_handle() {
    thread_local std::map<int, std::unique_ptr<CublasHandle>> handles;
    int device = 0;
    BCNN_CUDA_CHECK(cudaGetDevice(&device), "cuda: cuBLAS handle");
    std::unique_ptr<CublasHandle>& handle = handles[device];
    if (!handle) handle = std::make_unique<CublasHandle>(device);
    return handle->get();
}

}  // namespace detail
}  // namespace cuda
}  // namespace bcnn

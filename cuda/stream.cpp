// The per-thread, per-device streams (stream.hpp).

#include "stream.hpp"

#include <map>
#include <memory>

#include "check.hpp"

namespace bcnn {
namespace cuda {
namespace detail {

namespace {

class Stream {
public:
    explicit Stream(int device) {
        BCNN_CUDA_CHECK(cudaStreamCreate(&stream_), "cuda: stream of the thread's context on device " << device);
    }
    Stream(const Stream&) = delete;
    Stream& operator=(const Stream&) = delete;
    // Runs when the thread ends; the status is dropped: a destructor must not
    // throw, and at exit the runtime may already be unloading.
    ~Stream() { cudaStreamDestroy(stream_); }
    cudaStream_t get() const { return stream_; }

private:
    cudaStream_t stream_ = nullptr;
};

}  // namespace

cudaStream_t context_stream() {
    thread_local std::map<int, std::unique_ptr<Stream>> streams;
    int device = 0;
    BCNN_CUDA_CHECK(cudaGetDevice(&device), "cuda: stream of the thread's context");
    std::unique_ptr<Stream>& stream = streams[device];
    if (!stream) stream = std::make_unique<Stream>(device);
    return stream->get();
}

}  // namespace detail
}  // namespace cuda
}  // namespace bcnn

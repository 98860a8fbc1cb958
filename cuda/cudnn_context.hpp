#pragma once
// Internal to bcnn_cuda: the cuDNN state of one host thread on one device:
// its cudnnHandle, reusable device scratch buffers (shared by all ops: calls
// run one after the other) and the convolution algorithms already chosen.
// cuDNN handles must not be shared by threads running at once, so each
// thread gets its own context per device.
// The handle runs on the thread's context stream (stream.hpp), in order with
// the thread's other ops, so scratch buffers can be reused call after call.

#include <cudnn.h>

#include <array>
#include <cstddef>
#include <map>
#include <string>

namespace bcnn {
namespace cuda {
namespace detail {

// Device memory that only grows: reused by every call, reallocated when a call
// needs more (cudaFree waits for the work still reading the old block).
class GrowingBuffer {
public:
    GrowingBuffer() = default;
    GrowingBuffer(const GrowingBuffer&) = delete;
    GrowingBuffer& operator=(const GrowingBuffer&) = delete;
    ~GrowingBuffer();

    // At least `bytes` of device memory, contents unspecified; nullptr for 0.
    // `context` names the caller in the error when cudaMalloc fails.
    void* get(std::size_t bytes, const std::string& context);

private:
    void* data_ = nullptr;
    std::size_t bytes_ = 0;
};

// What each scratch buffer holds during one op call (conv2d, pool2d, batchnorm, dense).
enum class Scratch {
    workspace,        // cuDNN's workspace; partial sums of the reduction kernels
    input,            // x, padded and/or packed
    output,           // y (conv2d: or dy), packed
    output_gradient,  // dy, packed and/or rescaled (pool2d, batchnorm)
    input_gradient,   // dx over the padded input
    filter,           // weights in cuDNN's KRSC layout
    filter_gradient,  // d_weights in KRSC layout
    statistics,       // per-channel vectors (batchnorm: batch statistics, unwanted gradients)
    count
};

// A convolution problem as far as algorithm choice goes: pass, data type,
// TF32 permission, and the extents cuDNN sees (N, H, W, C, K, KH, KW, pad_h,
// pad_w, stride_h, stride_w, groups).
using ConvKey = std::array<long long, 15>;

// The algorithm chosen for one ConvKey: its number (cudnnConvolution*Algo_t),
// the math type to run it with and its workspace.
struct ConvAlgorithm {
    int algo = 0;
    cudnnMathType_t math = CUDNN_DEFAULT_MATH;
    std::size_t workspace_bytes = 0;
};

class CudnnContext {
public:
    explicit CudnnContext(int device);
    CudnnContext(const CudnnContext&) = delete;
    CudnnContext& operator=(const CudnnContext&) = delete;
    ~CudnnContext();

    cudnnHandle_t handle() const { return handle_; }
    int device() const { return device_; }
    void* scratch(Scratch slot, std::size_t bytes, const std::string& context) {
        return buffers_[static_cast<std::size_t>(slot)].get(bytes, context);
    }
    std::map<ConvKey, ConvAlgorithm>& conv_algorithms() { return conv_algorithms_; }

private:
    int device_ = 0;
    cudnnHandle_t handle_ = nullptr;
    std::array<GrowingBuffer, static_cast<std::size_t>(Scratch::count)> buffers_;
    std::map<ConvKey, ConvAlgorithm> conv_algorithms_;
};

// The calling thread's context for its current device (cudaGetDevice),
// created on first use and destroyed when the thread ends.
CudnnContext& cudnn_context();

}  // namespace detail
}  // namespace cuda
}  // namespace bcnn

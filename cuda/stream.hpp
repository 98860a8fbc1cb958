#pragma once
// Internal to bcnn_cuda: the CUDA stream of the calling host thread's context
// on the current device. Every op of bcnn::cuda runs its kernels, cuDNN and
// cuBLAS calls and asynchronous copies on it, in call order, so a thread's
// ops never overlap each other while two host threads' contexts can run at
// once.
// The streams are blocking streams (cudaStreamCreate): they wait for the
// legacy default stream and it waits for them. The synchronous copies of
// to_device and of the ops' small host reads (cudaMemcpy) run on the legacy
// stream, so they see every op queued before them, and an op queued after a
// copy sees the copied data. The device caching allocator relies on the same
// order: a block released after an op was queued is reused only by ops queued
// later on the same stream.

#include <cuda_runtime_api.h>

namespace bcnn {
namespace cuda {
namespace detail {

// Created on the thread's first call for the device; destroyed when the thread ends.
cudaStream_t context_stream();

}  // namespace detail
}  // namespace cuda
}  // namespace bcnn

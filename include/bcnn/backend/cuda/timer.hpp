#pragma once
// Device-side timing for benchmarks, defined in cuda/timer.cpp (bcnn::cuda):
// a pair of CUDA events recorded on the calling thread's context stream, where
// its bcnn::cuda ops run. Plain C++: callers need no CUDA headers.

struct CUevent_st;  // the CUDA runtime's event type (cudaEvent_t is CUevent_st*)

namespace bcnn {
namespace cuda {

class DeviceTimer {
public:
    DeviceTimer();  // throws bcnn::Error without a usable device
    DeviceTimer(const DeviceTimer&) = delete;
    DeviceTimer& operator=(const DeviceTimer&) = delete;
    ~DeviceTimer();

    // Marks the start: work queued after this call is timed.
    void start();
    // Waits for the work queued since start() and returns the device time it
    // took, in seconds (event resolution about 0.5 microseconds).
    double stop();

private:
    CUevent_st* start_ = nullptr;
    CUevent_st* stop_ = nullptr;
};

}  // namespace cuda
}  // namespace bcnn

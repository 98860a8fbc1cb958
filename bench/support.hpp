#pragma once
// Benchmark helpers: the process's peak resident set (RSS) during one
// benchmark run, read from Linux's /proc.
//
// PeakRssMeter, constructed before the benchmark builds its model, resets the
// kernel's high-water mark VmHWM to the current RSS (writing "5" to
// /proc/self/clear_refs, Linux >= 4.0); report() then reads VmHWM from
// /proc/self/status and sets the counter "peak_rss_MB" (decimal megabytes,
// 10^6 bytes). The peak includes what the process holds before the benchmark
// (program, libraries, memory the allocator keeps), so free memory is first
// handed back to the system (glibc's malloc_trim). Where the reset fails the
// peak is the process's since it started, and the benchmark's label says so;
// where /proc/self/status has no VmHWM the counter is left out, and the label
// says that.
//
// With the CUDA backend: kCudaEngines, the GPU rows' engines (cuda: float;
// cuda_bf16: under cuda::ComputePrecisionScope(Precision::bf16)), and
// skip_without_cuda_device(), which skips a row with "not run: no CUDA device
// (why)" where no usable device is present (checked once per process).

#include <benchmark/benchmark.h>

#include <fstream>
#include <string>

#ifdef BCNN_WITH_CUDA
#include <bcnn/backend/cuda/device.hpp>
#include <bcnn/backend/precision.hpp>
#endif

#if defined(__GLIBC__)
#include <malloc.h>
#endif

namespace bcnn_bench {

// Resets VmHWM to the current RSS; false where the kernel does not allow it.
inline bool reset_peak_rss() {
#if defined(__GLIBC__)
    malloc_trim(0);
#endif
    std::ofstream clear_refs("/proc/self/clear_refs");
    clear_refs << "5";
    clear_refs.flush();
    return static_cast<bool>(clear_refs);
}

// VmHWM in KiB (as /proc/self/status gives it); -1 where it cannot be read.
inline long peak_rss_kib() {
    std::ifstream status("/proc/self/status");
    std::string key;
    long kib = -1;
    while (status >> key) {
        if (key == "VmHWM:") {
            status >> kib;
            return status ? kib : -1;
        }
        status.ignore(1 << 16, '\n');
    }
    return -1;
}

class PeakRssMeter {
public:
    PeakRssMeter() : reset_(reset_peak_rss()) {}

    void report(benchmark::State& state) const {
        const long kib = peak_rss_kib();
        if (kib < 0) {
            state.SetLabel("peak RSS unavailable: no VmHWM in /proc/self/status");
            return;
        }
        state.counters["peak_rss_MB"] = static_cast<double>(kib) * 1024.0 / 1e6;
        if (!reset_) state.SetLabel("peak RSS since process start");
    }

private:
    bool reset_;
};

#ifdef BCNN_WITH_CUDA
struct CudaEngine {
    const char* name;  // the rows' engine: cuda/<op>/..., BM_<network>/cuda
    bcnn::Precision precision;
};
constexpr CudaEngine kCudaEngines[] = {{"cuda", bcnn::Precision::fp32}, {"cuda_bf16", bcnn::Precision::bf16}};

// Skips the row, saying why, when no usable CUDA device is present; true then.
inline bool skip_without_cuda_device(benchmark::State& state) {
    static const std::string no_device = [] {
        std::string why;
        return bcnn::cuda::device_available(&why) ? std::string() : why;
    }();
    if (no_device.empty()) return false;
    state.SkipWithError(("not run: no CUDA device (" + no_device + ")").c_str());
    return true;
}
#endif

}  // namespace bcnn_bench

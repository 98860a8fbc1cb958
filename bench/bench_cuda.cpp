// cuDNN convolutions (bcnn::cuda) on the conv2d shapes of layer_shapes.hpp:
// rows cuda/conv2d/<pass>/<shape> (float), and cuda_bf16/conv2d/<pass>/<shape>
// (the same float tensors under cuda::ComputePrecisionScope(Precision::bf16):
// converted to bf16, tensor cores, converted back; the conversions are timed
// too), pairing with bcnn/conv2d/<pass>/<shape> and onednn/conv2d/<pass>/<shape>.
// Built only with the CUDA backend.
//
// Each row copies its shape's ConvWorkload inputs (the same values as the CPU
// rows) to the GPU, runs the pass once untimed (cuDNN's algorithm search
// happens there), checks that run against bcnn's CPU kernel (counter
// rel_err_vs_bcnn = max |cuda - bcnn| / max |bcnn| over the pass's outputs;
// above kMaxRelativeError the row is skipped with an error), then times the
// pass with CUDA events (manual time: device time per call, including any
// idle gaps while the host launches). Float with TF32 off (the library's
// default), so results match the CPU's to float rounding; bf16 rows within
// bf16's limit (tests/cuda/test_mixed_precision.cpp: 8 * 2^-8).
// Counters as in layer_shapes.hpp: GFLOPs and images_per_s, rates over the
// device time (computed here, so they do not depend on which clock Google
// Benchmark divides rate counters by).
//
// Without a usable GPU every row is skipped with "not run: no CUDA device (...)".
//   build/release/bench/bcnn_bench --benchmark_filter='^cuda/'
//   build/release/bench/bcnn_bench --benchmark_filter='^(bcnn|cuda)/conv2d/fwd/'

#include <benchmark/benchmark.h>

#include <algorithm>
#include <cmath>
#include <string>

#include <bcnn/backend/cuda/conv2d.hpp>
#include <bcnn/backend/cuda/device.hpp>
#include <bcnn/backend/cuda/precision.hpp>
#include <bcnn/backend/cuda/timer.hpp>
#include <bcnn/backend/transfer.hpp>

#include "layer_shapes.hpp"
#include "support.hpp"

namespace {

using namespace bcnn_bench;

// The most a row may differ from bcnn's CPU kernel (max |cuda - bcnn| / max |bcnn|).
double max_relative_error(bcnn::Precision precision) {
    return precision == bcnn::Precision::bf16 ? 8 * std::ldexp(1.0, -8) : 1e-4;
}

Tensor on_gpu(const Tensor& t) { return bcnn::to_device(t, bcnn::Device::cuda); }

// max |actual - expected| / max |expected|; infinity for non-finite values.
double relative_error(const Tensor& actual_on_gpu, const Tensor& expected) {
    const std::vector<float> a = bcnn::to_device(actual_on_gpu, bcnn::Device::cpu).to_vector(),
                             e = expected.to_vector();
    double diff = 0, scale = 0;
    for (std::size_t i = 0; i < a.size(); ++i) {
        if (!std::isfinite(a[i])) return INFINITY;
        diff = std::max(diff, std::abs(double(a[i]) - double(e[i])));
        scale = std::max(scale, std::abs(double(e[i])));
    }
    return scale == 0 ? diff : diff / scale;
}

// The CPU workload (reference values) and its tensors on the GPU.
struct CudaConvWorkload {
    ConvWorkload host;
    Tensor x, weights, bias, dy;
    Tensor y, dx, d_weights, d_bias;

    explicit CudaConvWorkload(const ConvShape& s)
        : host(s),
          x(on_gpu(host.x)),
          weights(on_gpu(host.weights)),
          bias(on_gpu(host.bias)),
          dy(on_gpu(host.dy)),
          y(on_gpu(host.y)),
          dx(on_gpu(host.dx)),
          d_weights(on_gpu(host.d_weights)),
          d_bias(on_gpu(host.d_bias)) {}

    // The pass as ConvWorkload::run does it, on the GPU.
    void run(Pass pass) {
        if (pass == Pass::fwd || pass == Pass::fwd_bwd)
            bcnn::cuda::conv2d_forward(x, weights, &bias, host.params(), y);
        const bool data = pass == Pass::bwd_data || pass == Pass::fwd_bwd;
        const bool grads = pass == Pass::bwd_weights || pass == Pass::fwd_bwd;
        if (data || grads)
            bcnn::cuda::conv2d_backward(x, weights, dy, host.params(), data ? &dx : nullptr,
                                        grads ? &d_weights : nullptr, grads ? &d_bias : nullptr);
    }

    // Runs the pass on the CPU too; the worst relative error over its outputs.
    double check(Pass pass) {
        host.run(pass);
        double worst = 0;
        if (pass == Pass::fwd || pass == Pass::fwd_bwd) worst = std::max(worst, relative_error(y, host.y));
        if (pass == Pass::bwd_data || pass == Pass::fwd_bwd) worst = std::max(worst, relative_error(dx, host.dx));
        if (pass == Pass::bwd_weights || pass == Pass::fwd_bwd) {
            worst = std::max(worst, relative_error(d_weights, host.d_weights));
            worst = std::max(worst, relative_error(d_bias, host.d_bias));
        }
        return worst;
    }
};

void run_row(benchmark::State& state, const ConvShape& shape, Pass pass, double flops_per_call,
             bcnn::Precision precision) {
    if (skip_without_cuda_device(state)) return;
    std::string error;
    try {
        const bcnn::cuda::ComputePrecisionScope scope(precision);
        CudaConvWorkload workload(shape);
        workload.run(pass);  // untimed: algorithm search, scratch buffers
        const double error_vs_bcnn = workload.check(pass);
        state.counters["rel_err_vs_bcnn"] = error_vs_bcnn;
        if (!(error_vs_bcnn <= max_relative_error(precision))) {
            error = "cuda differs from bcnn's cpu kernel: relative error " + std::to_string(error_vs_bcnn);
        } else {
            bcnn::cuda::DeviceTimer timer;
            double device_seconds = 0;
            for (auto _ : state) {
                timer.start();
                workload.run(pass);
                const double seconds = timer.stop();
                state.SetIterationTime(seconds);
                device_seconds += seconds;
            }
            const double calls = static_cast<double>(state.iterations());
            state.counters["GFLOPs"] = device_seconds > 0 ? flops_per_call * 1e-9 * calls / device_seconds : 0;
            state.counters["images_per_s"] = device_seconds > 0 ? double(kBatch) * calls / device_seconds : 0;
            return;
        }
    } catch (const std::exception& e) {
        error = e.what();
    }
    state.SkipWithError(error.c_str());
}

bool register_cuda_rows() {
    for (const CudaEngine& engine : kCudaEngines)
        for (const ConvShape& s : conv_shapes())
            for (Pass p : kAllPasses) {
                const double flops = s.flops_per_pass() * pass_multiple(p);
                const bcnn::Precision precision = engine.precision;
                benchmark::RegisterBenchmark(
                    row_name(engine.name, "conv2d", pass_name(p), s.name()).c_str(),
                    [=](benchmark::State& state) { run_row(state, s, p, flops, precision); })
                    ->Unit(benchmark::kMillisecond)
                    ->UseManualTime()
                    ->MinTime(kLayerMinTime);
            }
    return true;
}

const bool registered = register_cuda_rows();

}  // namespace

// bcnn::cpu::gemm in float: square sizes and the shape of a 3x3 convolution
// done as im2col + GEMM. The GFLOP counter is a rate: GFLOP/s, 2*m*n*k per call.

#include <benchmark/benchmark.h>

#include <vector>

#include <bcnn/bcnn.hpp>

namespace {

using bcnn::Index;

// C (m x n) = A (m x k) * B (k x n), all row-major and contiguous.
void BM_gemm_float(benchmark::State& state) {
    const Index m = state.range(0), n = state.range(1), k = state.range(2);
    bcnn::Rng rng(42);
    bcnn::Tensor<float> a(bcnn::Shape{m, k}), b(bcnn::Shape{k, n}), c(bcnn::Shape{m, n});
    rng.uniform(a, -1.0f, 1.0f);
    rng.uniform(b, -1.0f, 1.0f);
    for (auto _ : state) {
        bcnn::cpu::gemm(bcnn::cpu::Transpose::no, bcnn::cpu::Transpose::no, m, n, k, 1.0f, a.data(), k, b.data(), n,
                        0.0f, c.data(), n);
        benchmark::DoNotOptimize(c.data());
        benchmark::ClobberMemory();
    }
    const double flops_per_call = 2.0 * static_cast<double>(m) * static_cast<double>(n) * static_cast<double>(k);
    state.counters["GFLOP"] =
        benchmark::Counter(flops_per_call * 1e-9 * static_cast<double>(state.iterations()), benchmark::Counter::kIsRate);
    state.counters["threads"] = bcnn::num_threads();
}

BENCHMARK(BM_gemm_float)
    ->ArgNames({"m", "n", "k"})
    ->Args({256, 256, 256})
    ->Args({512, 512, 512})
    ->Args({1024, 1024, 1024})
    // 3x3 conv, 16 -> 16 channels, on a 150x150 image: (150*150 pixels, 3*3*16) x (3*3*16, 16).
    ->Args({22500, 16, 144})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();

}  // namespace

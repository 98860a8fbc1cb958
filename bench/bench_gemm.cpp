// bcnn::cpu::gemm in float against Eigen's GEMM on the same sizes, and the
// machine's measured FMA peak, all in the same run so the GFLOP/s counters
// compare directly (fraction of peak = BM_gemm_float GFLOP / BM_fma_peak GFLOP).
// Every GFLOP counter is a rate: GFLOP/s, 2*m*n*k flops per GEMM call.
// Sizes: square ones, and the GEMMs of convolutions done as im2col + GEMM,
// (output pixels, filters, KH*KW*Cin).

#include <benchmark/benchmark.h>

#include <Eigen/Core>

#include <vector>

#if defined(__AVX512F__) || (defined(__AVX2__) && defined(__FMA__))
#include <immintrin.h>
#endif

#include <bcnn/bcnn.hpp>

namespace {

using bcnn::Index;

void set_gflops(benchmark::State& state, double flops_per_iteration) {
    state.counters["GFLOP"] = benchmark::Counter(flops_per_iteration * 1e-9 * static_cast<double>(state.iterations()),
                                                 benchmark::Counter::kIsRate);
    state.counters["threads"] = bcnn::num_threads();
}

void set_gemm_gflops(benchmark::State& state, Index m, Index n, Index k) {
    set_gflops(state, 2.0 * static_cast<double>(m) * static_cast<double>(n) * static_cast<double>(k));
}

// Random m x k A and k x n B, row-major and contiguous, and an m x n C.
struct GemmOperands {
    bcnn::Tensor<float> a, b, c;
    GemmOperands(Index m, Index n, Index k) : a(bcnn::Shape{m, k}), b(bcnn::Shape{k, n}), c(bcnn::Shape{m, n}) {
        bcnn::Rng rng(42);
        rng.uniform(a, -1.0f, 1.0f);
        rng.uniform(b, -1.0f, 1.0f);
    }
};

// C (m x n) = A (m x k) * B (k x n) with bcnn's gemm.
void BM_gemm_float(benchmark::State& state) {
    const Index m = state.range(0), n = state.range(1), k = state.range(2);
    GemmOperands ops(m, n, k);
    for (auto _ : state) {
        bcnn::cpu::gemm(bcnn::cpu::Transpose::no, bcnn::cpu::Transpose::no, m, n, k, 1.0f, ops.a.data(), k,
                        ops.b.data(), n, 0.0f, ops.c.data(), n);
        benchmark::DoNotOptimize(ops.c.data());
        benchmark::ClobberMemory();
    }
    set_gemm_gflops(state, m, n, k);
}

// The same with B packed once outside the loop (a convolution's weights).
void BM_gemm_packed_float(benchmark::State& state) {
    const Index m = state.range(0), n = state.range(1), k = state.range(2);
    GemmOperands ops(m, n, k);
    const bcnn::cpu::PackedB<float> packed = bcnn::cpu::pack_b(bcnn::cpu::Transpose::no, k, n, ops.b.data(), n);
    for (auto _ : state) {
        bcnn::cpu::gemm(bcnn::cpu::Transpose::no, m, ops.a.data(), k, packed, 1.0f, 0.0f, ops.c.data(), n);
        benchmark::DoNotOptimize(ops.c.data());
        benchmark::ClobberMemory();
    }
    set_gemm_gflops(state, m, n, k);
}

// The same product through Eigen (threads: OpenMP, like bcnn), as the peer row.
void BM_gemm_eigen_float(benchmark::State& state) {
    const Index m = state.range(0), n = state.range(1), k = state.range(2);
    GemmOperands ops(m, n, k);
    using Matrix = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
    const Eigen::Map<const Matrix> a(ops.a.data(), m, k), b(ops.b.data(), k, n);
    Eigen::Map<Matrix> c(ops.c.data(), m, n);
    for (auto _ : state) {
        c.noalias() = a * b;
        benchmark::DoNotOptimize(ops.c.data());
        benchmark::ClobberMemory();
    }
    set_gemm_gflops(state, m, n, k);
}

// The float FMA peak of this machine with bcnn's threads: each thread runs
// 12 independent chains of vector FMAs on registers (enough to cover FMA
// latency x FMA units on current x86 cores), nothing else.
void BM_fma_peak(benchmark::State& state) {
#if defined(__AVX512F__)
    using Vector = __m512;
    const auto set1 = [](float x) { return _mm512_set1_ps(x); };
    const auto fma = [](Vector a, Vector b, Vector c) { return _mm512_fmadd_ps(a, b, c); };
    const auto sum = [](Vector v) { return _mm512_reduce_add_ps(v); };
    constexpr int lanes = 16;
#elif defined(__AVX2__) && defined(__FMA__)
    using Vector = __m256;
    const auto set1 = [](float x) { return _mm256_set1_ps(x); };
    const auto fma = [](Vector a, Vector b, Vector c) { return _mm256_fmadd_ps(a, b, c); };
    const auto sum = [](Vector v) {
        alignas(32) float lanes_out[8];
        _mm256_store_ps(lanes_out, v);
        float s = 0;
        for (float x : lanes_out) s += x;
        return s;
    };
    constexpr int lanes = 8;
#else
    state.SkipWithError("BM_fma_peak needs AVX2+FMA or AVX-512 (-march)");
    for (auto _ : state) {
    }
    return;
#endif
#if defined(__AVX512F__) || (defined(__AVX2__) && defined(__FMA__))
    constexpr int chains = 12;
    constexpr Index steps = 1 << 20;  // ~2 ms per thread: fork/join costs vanish
    const int threads = bcnn::num_threads();
    std::vector<float> results(static_cast<std::size_t>(threads));
    for (auto _ : state) {
        bcnn::parallel_for(0, threads, [&](Index t) {
            // x -> x * 0.9999 + 1e-4 stays near 1: no overflow, no denormals.
            const Vector scale = set1(0.9999f), shift = set1(1e-4f);
            Vector acc[chains];
            for (int i = 0; i < chains; ++i) acc[i] = set1(1.0f + 0.001f * static_cast<float>(i + t));
            for (Index s = 0; s < steps; ++s)
#pragma GCC unroll 12
                for (int i = 0; i < chains; ++i) acc[i] = fma(acc[i], scale, shift);
            float total = 0;
            for (int i = 0; i < chains; ++i) total += sum(acc[i]);
            results[static_cast<std::size_t>(t)] = total;
        });
        benchmark::DoNotOptimize(results.data());
        benchmark::ClobberMemory();
    }
    set_gflops(state, 2.0 * lanes * chains * static_cast<double>(steps) * threads);
#endif
}

void gemm_sizes(benchmark::internal::Benchmark* b) {
    b->ArgNames({"m", "n", "k"})
        ->Args({256, 256, 256})
        ->Args({512, 512, 512})
        ->Args({1024, 1024, 1024})
        ->Args({2048, 2048, 2048})
        // 3x3 conv, 16 -> 16 channels, on a 150x150 image.
        ->Args({22500, 16, 144})
        // 3x3 conv, 64 -> 64 and 256 -> 256 channels, on a 37x37 map.
        ->Args({1369, 64, 576})
        ->Args({1369, 256, 2304})
        // 1x1 conv 128 -> 32 and 3x3 conv 128 -> 32 on an 18x18 map (DenseNet-like).
        ->Args({324, 32, 128})
        ->Args({324, 32, 1152})
        ->Unit(benchmark::kMillisecond)
        ->UseRealTime();
}

BENCHMARK(BM_fma_peak)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_gemm_float)->Apply(gemm_sizes);
BENCHMARK(BM_gemm_packed_float)->Apply(gemm_sizes);
BENCHMARK(BM_gemm_eigen_float)->Apply(gemm_sizes);

}  // namespace

#pragma once
// The per-layer benchmark shapes, shared by the bcnn rows (bench_layers.cpp)
// and the oneDNN rows (bench_onednn.cpp), and what both report.
//
// Rows are named <engine>/<op>/<pass>/<shape>, e.g. bcnn/conv2d/fwd/c3x3_16_16_150
// and onednn/conv2d/fwd/c3x3_16_16_150: replacing the engine pairs them.
// (Google Benchmark appends the settings: the full names end in
// "/min_time:0.200/real_time", the same on every row; filter with e.g.
// --benchmark_filter='^(bcnn|onednn)/conv2d/fwd/c3x3_16_16_150/'.)
// Every shape is a batch of kBatch = 32 float images, NHWC. Shape names:
//   c<KH>x<KW>[s<stride>][v]_<C>_<K>_<H>   conv2d, C -> K channels on an H x H input
//                                        ('same' padding unless "v" = 'valid')
//   dw<KH>x<KW>_<C>_<H>                    depthwise conv2d, multiplier 1, 'same', with bias
//   s<KH>x<KW>_<C>_<K>_<H>                 separable conv2d (depthwise without bias, then 1x1 with bias)
//   bn_<C>_<H>                            batch norm over (32, H, H, C)
//   mp<K>x<K>[s<stride>]_<C>_<H>           max pool, 'valid'; ap... average pool
//   d_<In>_<Out>                          dense, (32, In) -> (32, Out), with bias
// Passes: fwd (with bias), bwd_data (the input gradient only), bwd_weights
// (weight and bias gradients), fwd_bwd (forward, then all gradients);
// batch norm: fwd (training mode), bwd (training mode: dx, d_gamma, d_beta),
// fwd_bwd, fwd_inference; pooling: fwd, bwd.
//
// Counters on every row (rates, per second of real time):
//   GFLOPs        FLOPs per call / 1e9 with this file's conventions:
//     conv2d      2 * N*OH*OW * K * KH*KW*C per pass (fwd, bwd_data, bwd_weights
//                 each; fwd_bwd 3x), bias ignored
//     depthwise   2 * N*OH*OW * C*M * KH*KW per pass
//     separable   depthwise + pointwise (2 * N*OH*OW * K * C*M) per pass, as
//                 the forward (the backward passes are counted as the forward)
//     dense       2 * N * In * Out per pass
//     batch norm  nominal, per element of x: fwd 6 (mean: add; variance: sub,
//                 mul, add; normalise: mul, add), bwd 8, fwd_bwd 14, fwd_inference 2
//     pooling     one compare or add per window element: N*OH*OW*C * KH*KW per pass
//   images_per_s  kBatch images per call
// and "threads", the OpenMP thread count of the row.
//
// Threads: every row runs with layer_threads() OpenMP threads: the value of
// OMP_NUM_THREADS when the user sets it, else 2 (the study's machine). bcnn
// and Debian's oneDNN (built with DNNL_CPU_RUNTIME=OMP) share GCC's libgomp,
// so omp_set_num_threads sets both; LayerThreads restores the previous count
// after the row, leaving the other benchmarks of bcnn_bench as they were.
// (OPENBLAS_CORETYPE, set on some machines, concerns OpenBLAS only: neither
// bcnn, whose GEMM is its own, nor oneDNN reads it.)
//
// Workloads: each shape's bcnn side is a *Workload below holding its inputs
// (uniform in [-1, 1) from kLayerSeed, the same for both engines), its
// outputs, and run(pass), the bcnn kernel calls of one pass. The bcnn rows
// time run(pass); the oneDNN rows build the same workload, run it once and
// compare their own outputs with it before timing (bench_onednn.cpp).
//
// Timing: real time in milliseconds, at least kLayerMinTime = 0.2 s per row
// (environment variable BCNN_LAYER_MIN_TIME=<seconds> to change it); the
// largest layers (VGG16's convolutions at 150x150) run one call per row.
// Repetitions are the caller's (--benchmark_repetitions).

#include <benchmark/benchmark.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <vector>

#include <bcnn/core/parallel.hpp>
#include <bcnn/core/rng.hpp>
#include <bcnn/core/tensor.hpp>
#include <bcnn/kernels/cpu/batchnorm.hpp>
#include <bcnn/kernels/cpu/conv2d.hpp>
#include <bcnn/kernels/cpu/dense.hpp>
#include <bcnn/kernels/cpu/depthwise_conv2d.hpp>
#include <bcnn/kernels/cpu/pool2d.hpp>
#include <bcnn/kernels/cpu/separable_conv2d.hpp>

namespace bcnn_bench {

using bcnn::Index;

constexpr Index kBatch = 32;
constexpr double kLayerMinTime = 0.2;  // seconds, unless BCNN_LAYER_MIN_TIME says otherwise
constexpr std::uint64_t kLayerSeed = 7;

// ---- shapes --------------------------------------------------------------------

// Output size along one axis and the padding before it ('same': TensorFlow's
// split, the odd pixel after; 'valid': none).
struct AxisGeometry {
    Index out = 0, pad_before = 0, pad_after = 0;
};

inline AxisGeometry axis_geometry(Index in, Index kernel, Index stride, bool same) {
    AxisGeometry g;
    if (same) {
        g.out = (in + stride - 1) / stride;
        const Index total = std::max<Index>((g.out - 1) * stride + kernel - in, 0);
        g.pad_before = total / 2;
        g.pad_after = total - g.pad_before;
    } else {
        g.out = (in - kernel) / stride + 1;
    }
    return g;
}

enum class Pass { fwd, bwd_data, bwd_weights, fwd_bwd };
inline const char* pass_name(Pass pass) {
    switch (pass) {
        case Pass::fwd: return "fwd";
        case Pass::bwd_data: return "bwd_data";
        case Pass::bwd_weights: return "bwd_weights";
        case Pass::fwd_bwd: return "fwd_bwd";
    }
    return "?";
}
inline double pass_multiple(Pass pass) { return pass == Pass::fwd_bwd ? 3.0 : 1.0; }
constexpr Pass kAllPasses[] = {Pass::fwd, Pass::bwd_data, Pass::bwd_weights, Pass::fwd_bwd};

// Square inputs and kernels throughout.
struct ConvShape {
    Index kernel, stride, channels, filters, size;
    bool same;
    const char* source;  // which model(s) use it, for the reader
    AxisGeometry geometry() const { return axis_geometry(size, kernel, stride, same); }
    Index out() const { return geometry().out; }
    std::string name() const {
        std::string n = "c" + std::to_string(kernel) + "x" + std::to_string(kernel);
        if (stride != 1) n += "s" + std::to_string(stride);
        if (!same) n += "v";
        return n + "_" + std::to_string(channels) + "_" + std::to_string(filters) + "_" + std::to_string(size);
    }
    double flops_per_pass() const {
        return 2.0 * double(kBatch) * double(out() * out()) * double(filters) * double(kernel * kernel * channels);
    }
    bcnn::Shape input_shape() const { return bcnn::Shape{kBatch, size, size, channels}; }
    bcnn::Shape weights_shape() const { return bcnn::Shape{kernel, kernel, channels, filters}; }
    bcnn::Shape output_shape() const { return bcnn::Shape{kBatch, out(), out(), filters}; }
};

// DenseNet201 at 150x150: ZeroPadding2D(3) -> 156, 7x7/2 'valid' stem -> 75,
// 3x3/2 max pool -> 38; dense blocks at 38, 19, 9, 4 (6, 12, 48, 32 layers of
// BN-ReLU-1x1 conv (c -> 128)-BN-ReLU-3x3 conv (128 -> 32)), transitions
// 1x1 (c -> c/2) then 2x2 average pool between them.
inline const std::vector<ConvShape>& conv_shapes() {
    static const std::vector<ConvShape> shapes = {
        // the six reference shapes
        {3, 1, 3, 16, 150, true, "reference; custom CNN conv 1"},
        {3, 1, 16, 16, 150, true, "reference; custom CNN conv 2"},
        {3, 1, 64, 64, 37, true, "reference"},
        {3, 1, 256, 256, 37, true, "reference; VGG16 block3_conv2/3"},
        {1, 1, 128, 32, 18, true, "reference"},
        {3, 1, 128, 32, 18, true, "reference"},
        // VGG16 at 150x150 (block3_conv2/3 above)
        {3, 1, 3, 64, 150, true, "VGG16 block1_conv1"},
        {3, 1, 64, 64, 150, true, "VGG16 block1_conv2"},
        {3, 1, 64, 128, 75, true, "VGG16 block2_conv1"},
        {3, 1, 128, 128, 75, true, "VGG16 block2_conv2"},
        {3, 1, 128, 256, 37, true, "VGG16 block3_conv1"},
        {3, 1, 256, 512, 18, true, "VGG16 block4_conv1"},
        {3, 1, 512, 512, 18, true, "VGG16 block4_conv2/3"},
        {3, 1, 512, 512, 9, true, "VGG16 block5_conv1/2/3"},
        // DenseNet201 at 150x150
        {7, 2, 3, 64, 156, false, "DenseNet201 conv1 (stem)"},
        {1, 1, 224, 128, 38, true, "DenseNet201 conv2 block6 1x1 bottleneck"},
        {1, 1, 480, 128, 19, true, "DenseNet201 conv3 block12 1x1 bottleneck"},
        {1, 1, 1024, 128, 9, true, "DenseNet201 conv4 block25 1x1 bottleneck"},
        {1, 1, 1760, 128, 9, true, "DenseNet201 conv4 block48 1x1 bottleneck"},
        {1, 1, 1888, 128, 4, true, "DenseNet201 conv5 block32 1x1 bottleneck"},
        {3, 1, 128, 32, 38, true, "DenseNet201 conv2 3x3 growth"},
        {3, 1, 128, 32, 19, true, "DenseNet201 conv3 3x3 growth"},
        {3, 1, 128, 32, 9, true, "DenseNet201 conv4 3x3 growth"},
        {3, 1, 128, 32, 4, true, "DenseNet201 conv5 3x3 growth"},
        {1, 1, 256, 128, 38, true, "DenseNet201 pool2_conv (transition)"},
        {1, 1, 512, 256, 19, true, "DenseNet201 pool3_conv (transition)"},
        {1, 1, 1792, 896, 9, true, "DenseNet201 pool4_conv (transition)"},
    };
    return shapes;
}

// Depthwise 3x3, multiplier 1, 'same', stride 1: the depthwise halves of the
// custom CNN's separable convolutions (the first of each pair sees C, the
// second K channels).
struct DepthwiseShape {
    Index kernel, channels, size;
    std::string name() const {
        return "dw" + std::to_string(kernel) + "x" + std::to_string(kernel) + "_" + std::to_string(channels) + "_" +
               std::to_string(size);
    }
    double flops_per_pass() const {
        return 2.0 * double(kBatch) * double(size * size) * double(channels) * double(kernel * kernel);
    }
    bcnn::Shape input_shape() const { return bcnn::Shape{kBatch, size, size, channels}; }
    bcnn::Shape weights_shape() const { return bcnn::Shape{kernel, kernel, channels, 1}; }
};

inline const std::vector<DepthwiseShape>& depthwise_shapes() {
    static const std::vector<DepthwiseShape> shapes = {{3, 16, 75},  {3, 32, 75},  {3, 32, 37},  {3, 64, 37},
                                                       {3, 64, 18},  {3, 128, 18}, {3, 128, 9},  {3, 256, 9}};
    return shapes;
}

// The custom CNN's separable convolutions at 150x150: 3x3, multiplier 1, 'same'.
struct SeparableShape {
    Index kernel, channels, filters, size;
    std::string name() const {
        return "s" + std::to_string(kernel) + "x" + std::to_string(kernel) + "_" + std::to_string(channels) + "_" +
               std::to_string(filters) + "_" + std::to_string(size);
    }
    DepthwiseShape depthwise() const { return DepthwiseShape{kernel, channels, size}; }
    double flops_per_pass() const {
        return depthwise().flops_per_pass() + 2.0 * double(kBatch) * double(size * size) * double(channels * filters);
    }
    bcnn::Shape input_shape() const { return bcnn::Shape{kBatch, size, size, channels}; }
    bcnn::Shape depthwise_weights_shape() const { return bcnn::Shape{kernel, kernel, channels, 1}; }
    bcnn::Shape pointwise_weights_shape() const { return bcnn::Shape{1, 1, channels, filters}; }
    bcnn::Shape output_shape() const { return bcnn::Shape{kBatch, size, size, filters}; }
};

inline const std::vector<SeparableShape>& separable_shapes() {
    static const std::vector<SeparableShape> shapes = {{3, 16, 32, 75},   {3, 32, 32, 75},  {3, 32, 64, 37},
                                                       {3, 64, 64, 37},   {3, 64, 128, 18}, {3, 128, 128, 18},
                                                       {3, 128, 256, 9},  {3, 256, 256, 9}};
    return shapes;
}

// Batch norm: the custom CNN's four (after each separable pair), DenseNet201's
// stem BN and two transition BNs.
enum class BatchNormPass { fwd, bwd, fwd_bwd, fwd_inference };
inline const char* pass_name(BatchNormPass pass) {
    switch (pass) {
        case BatchNormPass::fwd: return "fwd";
        case BatchNormPass::bwd: return "bwd";
        case BatchNormPass::fwd_bwd: return "fwd_bwd";
        case BatchNormPass::fwd_inference: return "fwd_inference";
    }
    return "?";
}
inline double flops_per_element(BatchNormPass pass) {
    switch (pass) {
        case BatchNormPass::fwd: return 6;
        case BatchNormPass::bwd: return 8;
        case BatchNormPass::fwd_bwd: return 14;
        case BatchNormPass::fwd_inference: return 2;
    }
    return 0;
}
constexpr BatchNormPass kBatchNormPasses[] = {BatchNormPass::fwd, BatchNormPass::bwd, BatchNormPass::fwd_bwd,
                                              BatchNormPass::fwd_inference};
constexpr double kBatchNormEpsilon = 1e-3;

struct BatchNormShape {
    Index channels, size;
    std::string name() const { return "bn_" + std::to_string(channels) + "_" + std::to_string(size); }
    double elements() const { return double(kBatch) * double(size * size) * double(channels); }
    bcnn::Shape input_shape() const { return bcnn::Shape{kBatch, size, size, channels}; }
};

inline const std::vector<BatchNormShape>& batchnorm_shapes() {
    static const std::vector<BatchNormShape> shapes = {{32, 75}, {64, 37}, {128, 18}, {256, 9},
                                                       {64, 75}, {256, 38}, {1792, 9}};
    return shapes;
}

// Pooling, 'valid': VGG16's and the custom CNN's 2x2/2 max pools, DenseNet201's
// 3x3/2 max pool and its transitions' 2x2/2 average pools.
enum class PoolPass { fwd, bwd };
inline const char* pass_name(PoolPass pass) { return pass == PoolPass::fwd ? "fwd" : "bwd"; }
constexpr PoolPass kPoolPasses[] = {PoolPass::fwd, PoolPass::bwd};

struct PoolShape {
    bool max;
    Index kernel, stride, channels, size;
    Index out() const { return axis_geometry(size, kernel, stride, false).out; }
    const char* op() const { return max ? "max_pool2d" : "avg_pool2d"; }
    std::string name() const {
        std::string n = std::string(max ? "mp" : "ap") + std::to_string(kernel) + "x" + std::to_string(kernel);
        if (stride != kernel) n += "s" + std::to_string(stride);
        return n + "_" + std::to_string(channels) + "_" + std::to_string(size);
    }
    double flops_per_pass() const {
        return double(kBatch) * double(out() * out()) * double(channels) * double(kernel * kernel);
    }
    bcnn::Shape input_shape() const { return bcnn::Shape{kBatch, size, size, channels}; }
    bcnn::Shape output_shape() const { return bcnn::Shape{kBatch, out(), out(), channels}; }
};

inline const std::vector<PoolShape>& pool_shapes() {
    static const std::vector<PoolShape> shapes = {
        {true, 2, 2, 16, 150},  {true, 2, 2, 64, 150}, {true, 2, 2, 32, 75},  {true, 2, 2, 128, 75},
        {true, 2, 2, 256, 37},  {true, 2, 2, 512, 18}, {true, 2, 2, 256, 9},  {true, 3, 2, 64, 77},
        {false, 2, 2, 128, 38}, {false, 2, 2, 256, 19}, {false, 2, 2, 896, 9}};
    return shapes;
}

// Dense: the custom CNN's first two (4x4x256 flattened -> 512 -> 128), the
// study head's first dense on VGG16 (4x4x512) and on DenseNet201 (4x4x1920).
struct DenseShape {
    Index in, out;
    std::string name() const { return "d_" + std::to_string(in) + "_" + std::to_string(out); }
    double flops_per_pass() const { return 2.0 * double(kBatch) * double(in) * double(out); }
};

inline const std::vector<DenseShape>& dense_shapes() {
    static const std::vector<DenseShape> shapes = {{4096, 512}, {512, 128}, {8192, 256}, {30720, 256}};
    return shapes;
}

// ---- running a row -------------------------------------------------------------

inline std::string row_name(const char* engine, const char* op, const char* pass, const std::string& shape) {
    return std::string(engine) + "/" + op + "/" + pass + "/" + shape;
}

// OMP_NUM_THREADS when set (and a positive number), else 2.
inline int layer_threads() {
    static const int threads = [] {
        const char* env = std::getenv("OMP_NUM_THREADS");
        const int value = env ? std::atoi(env) : 0;
        return value > 0 ? value : 2;
    }();
    return threads;
}

// Sets layer_threads() for the lifetime of a row, then restores the count.
class LayerThreads {
public:
    LayerThreads() : previous_(bcnn::num_threads()) { bcnn::set_num_threads(layer_threads()); }
    ~LayerThreads() { bcnn::set_num_threads(previous_); }
    LayerThreads(const LayerThreads&) = delete;
    LayerThreads& operator=(const LayerThreads&) = delete;

private:
    int previous_;
};

inline void set_layer_counters(benchmark::State& state, double flops_per_call) {
    const double calls = static_cast<double>(state.iterations());
    state.counters["GFLOPs"] = benchmark::Counter(flops_per_call * 1e-9 * calls, benchmark::Counter::kIsRate);
    state.counters["images_per_s"] = benchmark::Counter(double(kBatch) * calls, benchmark::Counter::kIsRate);
    state.counters["threads"] = bcnn::num_threads();
}

// The rows' minimum time: BCNN_LAYER_MIN_TIME (seconds, > 0) when set, else
// kLayerMinTime. (A benchmark's own MinTime overrides --benchmark_min_time,
// so the variable is the way to shorten the suite, e.g. under sanitizers.)
inline double layer_min_time() {
    const char* env = std::getenv("BCNN_LAYER_MIN_TIME");
    const double value = env ? std::atof(env) : 0.0;
    return value > 0 ? value : kLayerMinTime;
}

// Registers a row with the layer suite's settings.
template <typename Body>
benchmark::internal::Benchmark* register_layer_row(const std::string& name, Body body) {
    return benchmark::RegisterBenchmark(name.c_str(), body)
        ->Unit(benchmark::kMillisecond)
        ->UseRealTime()
        ->MinTime(layer_min_time());
}

// A tensor of uniform values in [-1, 1) from the suite's seed (the same for
// both engines: the same Rng calls give the same values).
inline bcnn::Tensor<float> random_tensor(bcnn::Rng& rng, const bcnn::Shape& shape) {
    bcnn::Tensor<float> t = bcnn::Tensor<float>::uninitialized(shape);
    rng.uniform(t, -1.0f, 1.0f);
    return t;
}

// ---- bcnn's side of each row ------------------------------------------------------

using Tensor = bcnn::Tensor<float>;

inline bcnn::ConvParams same_params(Index stride = 1) { return bcnn::ConvParams{stride, stride, bcnn::Padding::same}; }

// conv2d with bias. Outputs: y (fwd), dx (bwd_data), d_weights and d_bias (bwd_weights).
struct ConvWorkload {
    ConvShape shape;
    bcnn::Rng rng{kLayerSeed};
    Tensor x, weights, bias, dy;
    Tensor y, dx, d_weights, d_bias;

    explicit ConvWorkload(const ConvShape& s)
        : shape(s),
          x(random_tensor(rng, s.input_shape())),
          weights(random_tensor(rng, s.weights_shape())),
          bias(random_tensor(rng, bcnn::Shape{s.filters})),
          dy(random_tensor(rng, s.output_shape())),
          y(s.output_shape()),
          dx(s.input_shape()),
          d_weights(s.weights_shape()),
          d_bias(bcnn::Shape{s.filters}) {}

    bcnn::ConvParams params() const {
        return bcnn::ConvParams{shape.stride, shape.stride, shape.same ? bcnn::Padding::same : bcnn::Padding::valid};
    }

    void run(Pass pass) {
        if (pass == Pass::fwd || pass == Pass::fwd_bwd) bcnn::cpu::conv2d_forward(x, weights, &bias, params(), y);
        const bool data = pass == Pass::bwd_data || pass == Pass::fwd_bwd;
        const bool grads = pass == Pass::bwd_weights || pass == Pass::fwd_bwd;
        if (data || grads)
            bcnn::cpu::conv2d_backward(x, weights, dy, params(), data ? &dx : nullptr, grads ? &d_weights : nullptr,
                                       grads ? &d_bias : nullptr);
    }
};

// Depthwise conv2d with bias, 'same', multiplier 1.
struct DepthwiseWorkload {
    DepthwiseShape shape;
    bcnn::Rng rng{kLayerSeed};
    Tensor x, weights, bias, dy;
    Tensor y, dx, d_weights, d_bias;

    explicit DepthwiseWorkload(const DepthwiseShape& s)
        : shape(s),
          x(random_tensor(rng, s.input_shape())),
          weights(random_tensor(rng, s.weights_shape())),
          bias(random_tensor(rng, bcnn::Shape{s.channels})),
          dy(random_tensor(rng, s.input_shape())),
          y(s.input_shape()),
          dx(s.input_shape()),
          d_weights(s.weights_shape()),
          d_bias(bcnn::Shape{s.channels}) {}

    void run(Pass pass) {
        if (pass == Pass::fwd || pass == Pass::fwd_bwd)
            bcnn::cpu::depthwise_conv2d_forward(x, weights, &bias, same_params(), y);
        const bool data = pass == Pass::bwd_data || pass == Pass::fwd_bwd;
        const bool grads = pass == Pass::bwd_weights || pass == Pass::fwd_bwd;
        if (data || grads)
            bcnn::cpu::depthwise_conv2d_backward(x, weights, dy, same_params(), data ? &dx : nullptr,
                                                 grads ? &d_weights : nullptr, grads ? &d_bias : nullptr);
    }
};

// Separable conv2d: depthwise (no bias) then pointwise with bias. The
// constructor runs one forward, so the backward passes find depthwise_out.
struct SeparableWorkload {
    SeparableShape shape;
    bcnn::Rng rng{kLayerSeed};
    Tensor x, depthwise_weights, pointwise_weights, bias, dy;
    Tensor depthwise_out, y, d_depthwise_out, dx, d_depthwise_weights, d_pointwise_weights, d_bias;

    explicit SeparableWorkload(const SeparableShape& s)
        : shape(s),
          x(random_tensor(rng, s.input_shape())),
          depthwise_weights(random_tensor(rng, s.depthwise_weights_shape())),
          pointwise_weights(random_tensor(rng, s.pointwise_weights_shape())),
          bias(random_tensor(rng, bcnn::Shape{s.filters})),
          dy(random_tensor(rng, s.output_shape())),
          depthwise_out(s.input_shape()),
          y(s.output_shape()),
          d_depthwise_out(s.input_shape()),
          dx(s.input_shape()),
          d_depthwise_weights(s.depthwise_weights_shape()),
          d_pointwise_weights(s.pointwise_weights_shape()),
          d_bias(bcnn::Shape{s.filters}) {
        run(Pass::fwd);
    }

    void run(Pass pass) {
        if (pass == Pass::fwd || pass == Pass::fwd_bwd)
            bcnn::cpu::separable_conv2d_forward(x, depthwise_weights, pointwise_weights, &bias, same_params(),
                                                depthwise_out, y);
        const bool data = pass == Pass::bwd_data || pass == Pass::fwd_bwd;
        const bool grads = pass == Pass::bwd_weights || pass == Pass::fwd_bwd;
        if (data || grads)
            bcnn::cpu::separable_conv2d_backward(x, depthwise_weights, pointwise_weights, depthwise_out, dy,
                                                 same_params(), d_depthwise_out, data ? &dx : nullptr,
                                                 grads ? &d_depthwise_weights : nullptr,
                                                 grads ? &d_pointwise_weights : nullptr, grads ? &d_bias : nullptr);
    }
};

// Batch norm over (N, H, W, C), epsilon kBatchNormEpsilon. The constructor
// runs one training forward, so bwd finds the saved statistics.
// Outputs: y, saved_mean, saved_inv_std (fwd), y (fwd_inference), dx, d_gamma, d_beta (bwd).
struct BatchNormWorkload {
    BatchNormShape shape;
    bcnn::Rng rng{kLayerSeed};
    Tensor x, gamma, beta, moving_mean, moving_variance, dy;
    Tensor y, saved_mean, saved_inv_std, dx, d_gamma, d_beta;

    explicit BatchNormWorkload(const BatchNormShape& s)
        : shape(s),
          x(random_tensor(rng, s.input_shape())),
          gamma(random_tensor(rng, bcnn::Shape{s.channels})),
          beta(random_tensor(rng, bcnn::Shape{s.channels})),
          moving_mean(random_tensor(rng, bcnn::Shape{s.channels})),
          moving_variance(Tensor::uninitialized(bcnn::Shape{s.channels})),
          dy(random_tensor(rng, s.input_shape())),
          y(s.input_shape()),
          saved_mean(bcnn::Shape{s.channels}),
          saved_inv_std(bcnn::Shape{s.channels}),
          dx(s.input_shape()),
          d_gamma(bcnn::Shape{s.channels}),
          d_beta(bcnn::Shape{s.channels}) {
        rng.uniform(moving_variance, 0.5f, 1.5f);
        run(BatchNormPass::fwd);
    }

    void run(BatchNormPass pass) {
        if (pass == BatchNormPass::fwd_inference) {
            bcnn::cpu::batchnorm_forward_inference(x, gamma, beta, moving_mean, moving_variance, kBatchNormEpsilon, y);
            return;
        }
        if (pass != BatchNormPass::bwd)
            bcnn::cpu::batchnorm_forward_training(x, gamma, beta, bcnn::cpu::kBatchNormMomentum, kBatchNormEpsilon,
                                                  true, moving_mean, moving_variance, y, saved_mean, saved_inv_std);
        if (pass != BatchNormPass::fwd)
            bcnn::cpu::batchnorm_backward_training(x, gamma, saved_mean, saved_inv_std, dy, &dx, &d_gamma, &d_beta);
    }
};

// Max or average pooling, 'valid'. Outputs: y (fwd), dx (bwd).
struct PoolWorkload {
    PoolShape shape;
    bcnn::Rng rng{kLayerSeed};
    Tensor x, dy, y, dx;

    explicit PoolWorkload(const PoolShape& s)
        : shape(s),
          x(random_tensor(rng, s.input_shape())),
          dy(random_tensor(rng, s.output_shape())),
          y(s.output_shape()),
          dx(s.input_shape()) {}

    bcnn::Window2D window() const {
        return bcnn::Window2D{shape.kernel, shape.kernel, shape.stride, shape.stride, bcnn::Padding::valid};
    }

    void run(PoolPass pass) {
        if (pass == PoolPass::fwd) {
            if (shape.max)
                bcnn::cpu::max_pool2d_forward(x, window(), y);
            else
                bcnn::cpu::avg_pool2d_forward(x, window(), y);
        } else if (shape.max) {
            bcnn::cpu::max_pool2d_backward(x, dy, window(), dx);
        } else {
            bcnn::cpu::avg_pool2d_backward(dy, window(), dx);
        }
    }
};

// Dense with bias. Outputs as ConvWorkload's.
struct DenseWorkload {
    DenseShape shape;
    bcnn::Rng rng{kLayerSeed};
    Tensor x, weights, bias, dy;
    Tensor y, dx, d_weights, d_bias;

    explicit DenseWorkload(const DenseShape& s)
        : shape(s),
          x(random_tensor(rng, bcnn::Shape{kBatch, s.in})),
          weights(random_tensor(rng, bcnn::Shape{s.in, s.out})),
          bias(random_tensor(rng, bcnn::Shape{s.out})),
          dy(random_tensor(rng, bcnn::Shape{kBatch, s.out})),
          y(bcnn::Shape{kBatch, s.out}),
          dx(bcnn::Shape{kBatch, s.in}),
          d_weights(bcnn::Shape{s.in, s.out}),
          d_bias(bcnn::Shape{s.out}) {}

    void run(Pass pass) {
        if (pass == Pass::fwd || pass == Pass::fwd_bwd) bcnn::cpu::dense_forward(x, weights, &bias, y);
        const bool data = pass == Pass::bwd_data || pass == Pass::fwd_bwd;
        const bool grads = pass == Pass::bwd_weights || pass == Pass::fwd_bwd;
        if (data || grads)
            bcnn::cpu::dense_backward(x, weights, dy, data ? &dx : nullptr, grads ? &d_weights : nullptr,
                                      grads ? &d_bias : nullptr);
    }
};

}  // namespace bcnn_bench

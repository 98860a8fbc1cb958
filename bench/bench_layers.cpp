// bcnn's CPU kernels layer by layer: rows bcnn/<op>/<pass>/<shape> for every
// shape of layer_shapes.hpp (its header says what the shapes, passes and
// counters are). bench_onednn.cpp adds the onednn/... rows on the same shapes
// when oneDNN is found.
//
// Run (Release build, 2 cores: 238 bcnn rows and 238 oneDNN rows; the whole
// layer suite took 16 minutes on a machine shared with compilers, load ~6,
// about half of it in each engine's rows):
//   build/release/bench/bcnn_bench --benchmark_filter='^bcnn/'
//   build/release/bench/bcnn_bench --benchmark_filter='^(bcnn|onednn)/conv2d/fwd/'
// OMP_NUM_THREADS sets the thread count (2 when unset), BCNN_LAYER_MIN_TIME
// the seconds per row (0.2 when unset).

#include <benchmark/benchmark.h>

#include "layer_shapes.hpp"

namespace {

using namespace bcnn_bench;

// One row: builds the workload (untimed), then times workload.run(pass).
template <typename Workload, typename Shape, typename PassT>
void register_bcnn_row(const char* op, const Shape& shape, PassT pass, double flops_per_call) {
    register_layer_row(row_name("bcnn", op, pass_name(pass), shape.name()), [=](benchmark::State& state) {
        const LayerThreads threads;
        Workload workload(shape);
        for (auto _ : state) {
            workload.run(pass);
            benchmark::ClobberMemory();
        }
        set_layer_counters(state, flops_per_call);
    });
}

bool register_bcnn_rows() {
    for (const ConvShape& s : conv_shapes())
        for (Pass p : kAllPasses) register_bcnn_row<ConvWorkload>("conv2d", s, p, s.flops_per_pass() * pass_multiple(p));
    for (const DepthwiseShape& s : depthwise_shapes())
        for (Pass p : kAllPasses)
            register_bcnn_row<DepthwiseWorkload>("depthwise_conv2d", s, p, s.flops_per_pass() * pass_multiple(p));
    for (const SeparableShape& s : separable_shapes())
        for (Pass p : kAllPasses)
            register_bcnn_row<SeparableWorkload>("separable_conv2d", s, p, s.flops_per_pass() * pass_multiple(p));
    for (const BatchNormShape& s : batchnorm_shapes())
        for (BatchNormPass p : kBatchNormPasses)
            register_bcnn_row<BatchNormWorkload>("batchnorm", s, p, s.elements() * flops_per_element(p));
    for (const PoolShape& s : pool_shapes())
        for (PoolPass p : kPoolPasses) register_bcnn_row<PoolWorkload>(s.op(), s, p, s.flops_per_pass());
    for (const DenseShape& s : dense_shapes())
        for (Pass p : kAllPasses) register_bcnn_row<DenseWorkload>("dense", s, p, s.flops_per_pass() * pass_multiple(p));
    return true;
}

const bool registered = register_bcnn_rows();

}  // namespace

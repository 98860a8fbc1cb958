// Whole networks at the original study's sizes: batches of 32 float images of
// 150x150x3, the models built by bcnn::models with Keras' initialisers drawn
// from a fixed Rng.
//   BM_custom_cnn_train_step        the custom CNN (model 1), one Adam training step
//   BM_vgg16_backbone_forward       the VGG16 backbone, forward in inference mode
//   BM_densenet201_backbone_forward the DenseNet201 backbone, forward in inference mode
//   BM_densenet201_last_block_step  model 4 (DenseNet201 under the study's head) with
//                                   conv5 and the final bn unfrozen, one Adam training step
// A training step is train::TrainStep, what train::fit does per batch: forward
// in training mode, softmax cross-entropy, backward, Adam update. One untimed step (or forward)
// runs first, so the timed ones reuse the layers' buffers and Adam's slots.
// Counters: images/s, threads (bcnn::num_threads()), and peak_rss_MB, the
// process's peak resident set during the benchmark (bench/support.hpp).
// Each benchmark reports the median (and mean, stddev) of 3 repetitions.
//
// With the CUDA backend the same four run on the GPU as BM_<network>/cuda
// (float, TF32 off) and BM_<network>/cuda_bf16 (under
// cuda::ComputePrecisionScope(Precision::bf16)): the model behind
// nn::OnDevice, as train_bloodcells --device cuda runs it, so each step's
// time includes moving the host batch up and the logits (or features) back,
// which also waits for the device. Without a usable GPU these rows are
// skipped with "not run: no CUDA device (...)".
//
// Run (Release build; a few minutes on 2 cores, the DenseNet201 step taking longest):
//   build/release/bench/bcnn_bench --benchmark_filter='BM_(custom|vgg16|densenet)'
// OMP_NUM_THREADS sets the thread count.

#include <benchmark/benchmark.h>

#include <cstdint>
#include <memory>
#include <string>

#include <bcnn/core/parallel.hpp>
#include <bcnn/core/rng.hpp>
#include <bcnn/models/custom_cnn.hpp>
#include <bcnn/models/densenet.hpp>
#include <bcnn/models/vgg16.hpp>
#include <bcnn/nn/on_device.hpp>
#include <bcnn/optim/adam.hpp>
#include <bcnn/train/train_step.hpp>

#ifdef BCNN_WITH_CUDA
#include <bcnn/backend/cuda/precision.hpp>
#endif

#include "support.hpp"

namespace {

using bcnn::Index;
using bcnn::Tensor;

constexpr Index kBatch = 32;
constexpr Index kImageSize = 150;
constexpr int kClasses = 4;
constexpr std::uint64_t kSeed = 42;

// Random images in [0, 1). VGG16 and DenseNet201 expect preprocessed input
// (models::vgg16_preprocess, densenet_preprocess); the values do not change
// the work done, so the backbones get these as they are.
Tensor<float> random_images(bcnn::Rng& rng) {
    Tensor<float> images = Tensor<float>::uninitialized(bcnn::Shape{kBatch, kImageSize, kImageSize, 3});
    rng.uniform(images, 0.0f, 1.0f);
    return images;
}

// Labels 0, 1, ..., kClasses - 1, 0, 1, ...
Tensor<std::int32_t> cyclic_labels() {
    Tensor<std::int32_t> labels(bcnn::Shape{kBatch});
    for (Index i = 0; i < kBatch; ++i) labels.data()[i] = static_cast<std::int32_t>(i % kClasses);
    return labels;
}

void set_counters(benchmark::State& state, const bcnn_bench::PeakRssMeter& peak_rss) {
    state.counters["images/s"] = benchmark::Counter(static_cast<double>(kBatch) * static_cast<double>(state.iterations()),
                                                    benchmark::Counter::kIsRate);
    state.counters["threads"] = bcnn::num_threads();
    peak_rss.report(state);
}

// A model built after the peak-RSS reset, initialised, on `device` (behind
// nn::OnDevice unless that is the CPU), and a batch of host images.
struct Workload {
    bcnn_bench::PeakRssMeter peak_rss;  // first: the reset precedes everything below
    bcnn::Rng rng{kSeed};
    std::unique_ptr<bcnn::nn::Sequential<float>> model;
    std::unique_ptr<bcnn::nn::OnDevice<float>> on_device;
    Tensor<float> images;

    template <typename MakeModel>
    Workload(MakeModel make_model, bcnn::Device device) : model(make_model()) {
        model->initialize(rng);
        if (device != bcnn::Device::cpu) on_device = std::make_unique<bcnn::nn::OnDevice<float>>(*model, device);
        images = random_images(rng);
    }

    // The model as the benchmark runs it: host batches in, host outputs out.
    bcnn::nn::Module<float>& run() {
        return on_device ? static_cast<bcnn::nn::Module<float>&>(*on_device) : *model;
    }
};

// Times train::TrainStep (what fit does per batch) with Adam on the model of `make_model`.
template <typename MakeModel>
void time_training_step(benchmark::State& state, bcnn::Device device, MakeModel make_model) {
    Workload work(make_model, device);
    const Tensor<std::int32_t> labels = cyclic_labels();
    bcnn::optim::Adam<float> adam;
    bcnn::Rng dropout_rng(kSeed + 1);
    bcnn::train::TrainingState<float> training{work.run(), adam, dropout_rng};
    bcnn::train::TrainStep step(training);
    step(work.images, labels);
    for (auto _ : state) benchmark::DoNotOptimize(step(work.images, labels).loss);
    set_counters(state, work.peak_rss);
}

// Times an inference-mode forward of the model of `make_model`.
template <typename MakeModel>
void time_inference_forward(benchmark::State& state, bcnn::Device device, MakeModel make_model) {
    Workload work(make_model, device);
    const bcnn::nn::Context inference = bcnn::nn::inference_only_context();
    work.run().forward(work.images, inference);
    for (auto _ : state) {
        const Tensor<float> features = work.run().forward(work.images, inference);
        benchmark::DoNotOptimize(features.data());
        benchmark::ClobberMemory();
    }
    set_counters(state, work.peak_rss);
}

void custom_cnn_train_step(benchmark::State& state, bcnn::Device device) {
    time_training_step(state, device, [] { return bcnn::models::make_custom_cnn<float>(kClasses, kImageSize); });
}

void vgg16_backbone_forward(benchmark::State& state, bcnn::Device device) {
    time_inference_forward(state, device, [] { return bcnn::models::make_vgg16_backbone<float>(kImageSize); });
}

void densenet201_backbone_forward(benchmark::State& state, bcnn::Device device) {
    time_inference_forward(state, device,
                           [] { return bcnn::models::make_densenet_backbone<float>(201, kImageSize); });
}

// Model 4 fine-tuned with the last dense block unfrozen: backward runs through
// the head, bn and conv5 (whose BatchNorms use batch statistics); the frozen
// layers below only go forward.
void densenet201_last_block_step(benchmark::State& state, bcnn::Device device) {
    time_training_step(state, device, [] {
        auto model = bcnn::models::make_densenet201_classifier<float>(kClasses, kImageSize);
        bcnn::models::set_densenet_conv5_trainable(model->at(0));
        return model;
    });
}

// Settings shared by these benchmarks; each sets a fixed iteration count as
// well (steps take seconds), so that the whole file runs in a few minutes.
void whole_network(benchmark::internal::Benchmark* b) {
    b->Repetitions(3)->ReportAggregatesOnly(true)->Unit(benchmark::kMillisecond)->UseRealTime();
}

using NetworkBenchmark = void (*)(benchmark::State&, bcnn::Device);

// The networks and their timed iterations (on the CPU; the GPU rows take 10x as many).
struct Network {
    const char* name;
    NetworkBenchmark run;
    int iterations;
};
const Network kNetworks[] = {{"BM_custom_cnn_train_step", custom_cnn_train_step, 10},
                             {"BM_vgg16_backbone_forward", vgg16_backbone_forward, 3},
                             {"BM_densenet201_backbone_forward", densenet201_backbone_forward, 3},
                             {"BM_densenet201_last_block_step", densenet201_last_block_step, 3}};

#ifdef BCNN_WITH_CUDA
// The network on the GPU at `precision`; skipped, saying why, without a usable device.
void on_cuda(benchmark::State& state, NetworkBenchmark run, bcnn::Precision precision) {
    if (bcnn_bench::skip_without_cuda_device(state)) return;
    const bcnn::cuda::ComputePrecisionScope scope(precision);
    run(state, bcnn::Device::cuda);
}
#endif

bool register_networks() {
    for (const Network& network : kNetworks) {
        benchmark::RegisterBenchmark(network.name, network.run, bcnn::Device::cpu)
            ->Iterations(network.iterations)
            ->Apply(whole_network);
#ifdef BCNN_WITH_CUDA
        for (const bcnn_bench::CudaEngine& engine : bcnn_bench::kCudaEngines)
            benchmark::RegisterBenchmark((std::string(network.name) + "/" + engine.name).c_str(), on_cuda,
                                         network.run, engine.precision)
                ->Iterations(10 * network.iterations)
                ->Apply(whole_network);
#endif
    }
    return true;
}

const bool registered = register_networks();

}  // namespace

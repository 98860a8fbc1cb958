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
// Run (Release build; a few minutes on 2 cores, the DenseNet201 step taking longest):
//   build/release/bench/bcnn_bench --benchmark_filter='BM_(custom|vgg16|densenet)'
// OMP_NUM_THREADS sets the thread count.

#include <benchmark/benchmark.h>

#include <cstdint>
#include <memory>

#include <bcnn/core/parallel.hpp>
#include <bcnn/core/rng.hpp>
#include <bcnn/models/custom_cnn.hpp>
#include <bcnn/models/densenet.hpp>
#include <bcnn/models/vgg16.hpp>
#include <bcnn/optim/adam.hpp>
#include <bcnn/train/train_step.hpp>

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

// A model built after the peak-RSS reset, initialised, and a batch of images.
struct Workload {
    bcnn_bench::PeakRssMeter peak_rss;  // first: the reset precedes everything below
    bcnn::Rng rng{kSeed};
    std::unique_ptr<bcnn::nn::Sequential<float>> model;
    Tensor<float> images;

    template <typename MakeModel>
    explicit Workload(MakeModel make_model) : model(make_model()) {
        model->initialize(rng);
        images = random_images(rng);
    }
};

// Times train::TrainStep (what fit does per batch) with Adam on the model of `make_model`.
template <typename MakeModel>
void time_training_step(benchmark::State& state, MakeModel make_model) {
    Workload work(make_model);
    const Tensor<std::int32_t> labels = cyclic_labels();
    bcnn::optim::Adam<float> adam;
    bcnn::Rng dropout_rng(kSeed + 1);
    bcnn::train::TrainingState<float> training{*work.model, adam, dropout_rng};
    bcnn::train::TrainStep step(training);
    step(work.images, labels);
    for (auto _ : state) benchmark::DoNotOptimize(step(work.images, labels).loss);
    set_counters(state, work.peak_rss);
}

// Times an inference-mode forward of the model of `make_model`.
template <typename MakeModel>
void time_inference_forward(benchmark::State& state, MakeModel make_model) {
    Workload work(make_model);
    const bcnn::nn::Context inference = bcnn::nn::inference_only_context();
    work.model->forward(work.images, inference);
    for (auto _ : state) {
        const Tensor<float> features = work.model->forward(work.images, inference);
        benchmark::DoNotOptimize(features.data());
        benchmark::ClobberMemory();
    }
    set_counters(state, work.peak_rss);
}

void BM_custom_cnn_train_step(benchmark::State& state) {
    time_training_step(state, [] { return bcnn::models::make_custom_cnn<float>(kClasses, kImageSize); });
}

void BM_vgg16_backbone_forward(benchmark::State& state) {
    time_inference_forward(state, [] { return bcnn::models::make_vgg16_backbone<float>(kImageSize); });
}

void BM_densenet201_backbone_forward(benchmark::State& state) {
    time_inference_forward(state, [] { return bcnn::models::make_densenet_backbone<float>(201, kImageSize); });
}

// Model 4 fine-tuned with the last dense block unfrozen: backward runs through
// the head, bn and conv5 (whose BatchNorms use batch statistics); the frozen
// layers below only go forward.
void BM_densenet201_last_block_step(benchmark::State& state) {
    time_training_step(state, [] {
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

BENCHMARK(BM_custom_cnn_train_step)->Iterations(10)->Apply(whole_network);
BENCHMARK(BM_vgg16_backbone_forward)->Iterations(3)->Apply(whole_network);
BENCHMARK(BM_densenet201_backbone_forward)->Iterations(3)->Apply(whole_network);
BENCHMARK(BM_densenet201_last_block_step)->Iterations(3)->Apply(whole_network);

}  // namespace

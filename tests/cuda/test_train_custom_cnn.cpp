// Training on cuda must land in the same accuracy band as the same run on the
// CPU, on real images: 500 TRAIN images (125 per class, evenly spread;
// read-only, no cache written), a stratified 80/20 split, Adam through fit()
// and the background batch loader, the same seed and batches on both
// devices. The GPU runs train behind nn::OnDevice (batches go up, logits come
// back; the parameters and Adam's slots stay on the device). Float sums in
// another order make the two runs drift apart step by step, so they are
// compared by bands, not equality:
// - a small conv/BatchNorm/separable network (tests/train/test_train_real_images'
//   model and images, 48x48, 15 epochs): the CPU run reaches >= 0.5 accuracy
//   on the 100 unseen images (0.64 with 2 threads, 0.70 with 16, measured
//   2026-11-27; with 100 images a class it had reached only 0.475); the cuda
//   run must be within 0.15 of it and lower its loss;
// - the study's custom CNN (32x32, 5 epochs, lr 3e-4): in so short a run it
//   stays near chance on the CPU (0.25 after 12 epochs at 64x64, and after 20
//   at 32x32 with lr 1e-3, measured on this project's machine: its dropout
//   0.7/0.5/0.3 head needs thousands of steps), so this checks agreement, not
//   learning: the first epoch (same weights, same batches, the same dropout
//   masks on both devices) has the same mean loss within 2%, the losses stay
//   finite, and the accuracies are within 0.15.

#include <catch2/catch.hpp>

#include <cmath>
#include <cstdint>
#include <functional>
#include <memory>
#include <vector>

#include <bcnn/models/custom_cnn.hpp>
#include <bcnn/nn/on_device.hpp>
#include <bcnn/optim/adam.hpp>
#include <bcnn/train/fit.hpp>

#include "train/real_images.hpp"
#include "train/small_network.hpp"

using namespace bcnn;
using namespace bcnn::nn;

namespace {

constexpr double kBand = 0.15;

struct Run {
    double first_loss, last_loss, accuracy;
};

struct Setup {
    Index image_size;
    int epochs;
    double learning_rate;
    std::function<std::unique_ptr<Sequential<float>>()> make;
};

Run train_on(Device device, const Setup& setup, const testing::RealImages& d) {
    auto model = setup.make();
    Rng rng(10);
    model->initialize(rng);
    std::unique_ptr<OnDevice<float>> on_device;
    if (device != Device::cpu) on_device = std::make_unique<OnDevice<float>>(*model, device);
    Module<float>& trained = on_device ? static_cast<Module<float>&>(*on_device) : *model;
    optim::Adam<float> adam(setup.learning_rate);
    train::TrainingState<float> state{trained, adam, rng};
    auto train_loader = testing::real_image_batches(d.images, d.parts[0], true);
    auto test_loader = testing::real_image_batches(d.images, d.parts[1], false);
    train::FitOptions options;
    options.epochs = setup.epochs;
    const train::History history = train::fit(state, train_loader, nullptr, options);
    const train::Evaluation result = train::evaluate(trained, test_loader, 4);
    return Run{history.front().at("loss"), history.back().at("loss"), result.accuracy};
}

}  // namespace

TEST_CASE("a small network trained on cuda reaches the cpu run's accuracy band on real images",
          "[cuda][train][real-data]") {
    const Setup setup{48, 15, 1e-3, [] { return testing::small_network(48); }};
    const testing::RealImages d = testing::load_real_images(setup.image_size);
    const Run cpu_run = train_on(Device::cpu, setup, d);
    const Run gpu_run = train_on(Device::cuda, setup, d);
    INFO("cpu: loss " << cpu_run.first_loss << " -> " << cpu_run.last_loss << ", unseen accuracy " << cpu_run.accuracy
                      << "; cuda: loss " << gpu_run.first_loss << " -> " << gpu_run.last_loss
                      << ", unseen accuracy " << gpu_run.accuracy);
    CHECK(cpu_run.accuracy >= 0.5);
    CHECK(gpu_run.last_loss < gpu_run.first_loss);
    CHECK(std::abs(gpu_run.accuracy - cpu_run.accuracy) <= kBand);
}

TEST_CASE("the custom CNN trained on cuda agrees with the same run on the cpu", "[cuda][train][real-data]") {
    const Setup setup{32, 5, 3e-4, [] { return models::make_custom_cnn<float>(4, 32); }};
    const testing::RealImages d = testing::load_real_images(setup.image_size);
    const Run cpu_run = train_on(Device::cpu, setup, d);
    const Run gpu_run = train_on(Device::cuda, setup, d);
    INFO("cpu: loss " << cpu_run.first_loss << " -> " << cpu_run.last_loss << ", unseen accuracy " << cpu_run.accuracy
                      << "; cuda: loss " << gpu_run.first_loss << " -> " << gpu_run.last_loss
                      << ", unseen accuracy " << gpu_run.accuracy);
    CHECK(std::isfinite(gpu_run.last_loss));
    CHECK(std::abs(gpu_run.first_loss - cpu_run.first_loss) < 0.02 * cpu_run.first_loss);
    CHECK(std::abs(gpu_run.accuracy - cpu_run.accuracy) <= kBand);
}

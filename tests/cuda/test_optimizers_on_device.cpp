// optim::Adam and optim::SGD stepping parameters that live on cuda against the
// same optimiser stepping the same parameters on the CPU: after three steps
// with the same gradients the parameters and the slots agree to float
// rounding (relative difference < 1e-6; the device computes the CPU's
// arithmetic operation for operation, so they are usually bit-equal). The
// slots are created on the device, saved as host tensors identical to the CPU
// optimiser's file contents' shapes, and loaded back onto the device.

#include <catch2/catch.hpp>

#include <map>
#include <string>
#include <vector>

#include <bcnn/nn/dense.hpp>
#include <bcnn/nn/sequential.hpp>
#include <bcnn/optim/adam.hpp>
#include <bcnn/optim/sgd.hpp>

#include "cuda/compare.hpp"
#include "support/random.hpp"

using namespace bcnn;
using bcnn::testing::cast;
using bcnn::testing::fresh_seed;
using bcnn::testing::random_tensor;
using bcnn::testing::relative_difference;

namespace {

constexpr double kTolerance = 1e-6;

std::unique_ptr<nn::Sequential<float>> two_dense(std::uint64_t seed) {
    auto model = std::make_unique<nn::Sequential<float>>();
    model->emplace<nn::Dense<float>>(33, nn::ActivationFn::relu);
    model->emplace<nn::Dense<float>>(5);
    model->build(Shape{17});
    Rng rng(seed);
    model->initialize(rng);
    return model;
}

// Three steps of `cpu_optimizer` on a CPU model and `gpu_optimizer` on the same model on cuda.
void check_steps(optim::Optimizer<float>& cpu_optimizer, optim::Optimizer<float>& gpu_optimizer) {
    const std::uint64_t seed = fresh_seed();
    CAPTURE(seed, cpu_optimizer.type());
    auto on_cpu = two_dense(seed);
    auto on_gpu = two_dense(seed);
    on_gpu->to(Device::cuda);
    const auto cpu_params = on_cpu->named_parameters();
    const auto gpu_params = on_gpu->named_parameters();
    for (int step = 0; step < 3; ++step) {
        std::uint64_t grad_seed = seed + 100 * static_cast<std::uint64_t>(step + 1);
        for (std::size_t i = 0; i < cpu_params.size(); ++i) {
            const Tensor<float> g = random_tensor<float>(cpu_params[i].parameter->grad.shape(), grad_seed++);
            cpu_params[i].parameter->grad.copy_from(g);
            gpu_params[i].parameter->grad = to_device(g, Device::cuda);
        }
        cpu_optimizer.step(cpu_params);
        gpu_optimizer.step(gpu_params);
    }
    for (std::size_t i = 0; i < cpu_params.size(); ++i) {
        CAPTURE(cpu_params[i].name);
        CHECK(gpu_params[i].parameter->value.device() == Device::cuda);
        CHECK(relative_difference(gpu_params[i].parameter->value, cast<double>(cpu_params[i].parameter->value)) <
              kTolerance);
    }
    std::vector<io::NamedTensor> cpu_state, gpu_state;
    std::map<std::string, std::string> cpu_metadata, gpu_metadata;
    cpu_optimizer.save_state(cpu_state, cpu_metadata);
    gpu_optimizer.save_state(gpu_state, gpu_metadata);
    CHECK(cpu_metadata == gpu_metadata);
    REQUIRE(cpu_state.size() == gpu_state.size());
    for (std::size_t i = 0; i < cpu_state.size(); ++i) {
        CHECK(cpu_state[i].name == gpu_state[i].name);
        CHECK(cpu_state[i].shape == gpu_state[i].shape);
        CHECK(cpu_state[i].bytes.size() == gpu_state[i].bytes.size());
    }
}

}  // namespace

TEST_CASE("Adam on cuda parameters follows Adam on the cpu", "[cuda][optim]") {
    optim::Adam<float> on_cpu(1e-2), on_gpu(1e-2);
    check_steps(on_cpu, on_gpu);
}

TEST_CASE("SGD on cuda parameters follows SGD on the cpu: plain, momentum, nesterov", "[cuda][optim]") {
    optim::SGD<float> plain_cpu(0.1), plain_gpu(0.1);
    check_steps(plain_cpu, plain_gpu);
    optim::SGD<float> momentum_cpu(0.1, 0.9), momentum_gpu(0.1, 0.9);
    check_steps(momentum_cpu, momentum_gpu);
    optim::SGD<float> nesterov_cpu(0.1, 0.9, true), nesterov_gpu(0.1, 0.9, true);
    check_steps(nesterov_cpu, nesterov_gpu);
}

TEST_CASE("an optimiser keeps stepping after its model moves between cpu and cuda", "[cuda][optim]") {
    const std::uint64_t seed = fresh_seed();
    CAPTURE(seed);
    auto reference = two_dense(seed);
    auto moved = two_dense(seed);
    optim::Adam<float> reference_adam, moved_adam;
    const auto reference_params = reference->named_parameters();
    const auto moved_params = moved->named_parameters();
    for (int step = 0; step < 4; ++step) {
        moved->to(step % 2 == 0 ? Device::cuda : Device::cpu);  // slots follow their parameters
        std::uint64_t grad_seed = seed + 10 * static_cast<std::uint64_t>(step + 1);
        for (std::size_t i = 0; i < reference_params.size(); ++i) {
            const Tensor<float> g = random_tensor<float>(reference_params[i].parameter->grad.shape(), grad_seed++);
            reference_params[i].parameter->grad.copy_from(g);
            moved_params[i].parameter->grad = to_device(g, moved->device());
        }
        reference_adam.step(reference_params);
        moved_adam.step(moved_params);
    }
    for (std::size_t i = 0; i < reference_params.size(); ++i)
        CHECK(relative_difference(moved_params[i].parameter->value, cast<double>(reference_params[i].parameter->value)) <
              kTolerance);
}

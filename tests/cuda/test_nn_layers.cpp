// Every layer of the three models on cuda against the same layer on the CPU:
// a double-precision CPU layer is the reference; the layer under test (float
// or double) gets the same parameters (BatchNorm statistics included),
// moves to cuda with Module::to, and runs forward and backward on device
// tensors. Checked: the output, the input gradient, every parameter gradient,
// and the parameters after the step (BatchNorm's moving statistics), each as
// relative_difference (max abs error / max abs reference) below
//   single layers:                 float 1e-4,  double 1e-10 (library_tolerance)
//   composites (DenseBlock, CNN):  float 1e-3,  double 1e-9 (the whole custom CNN in double only)
// (composites chain several library sums and BatchNorm's normalisation).
// Also: Module::to(cuda) and back keeps every parameter bit for bit, buffers
// are allocated on the module's device, and a CPU input to a cuda module
// fails naming both devices.

#include <catch2/catch.hpp>

#include <functional>
#include <memory>
#include <string>

#include <bcnn/models/custom_cnn.hpp>
#include <bcnn/nn/activation.hpp>
#include <bcnn/nn/avg_pool2d.hpp>
#include <bcnn/nn/batch_norm.hpp>
#include <bcnn/nn/conv2d.hpp>
#include <bcnn/nn/dense.hpp>
#include <bcnn/nn/dense_block.hpp>
#include <bcnn/nn/depthwise_conv2d.hpp>
#include <bcnn/nn/dropout.hpp>
#include <bcnn/nn/flatten.hpp>
#include <bcnn/nn/global_avg_pool.hpp>
#include <bcnn/nn/max_pool2d.hpp>
#include <bcnn/nn/separable_conv2d.hpp>
#include <bcnn/nn/sequential.hpp>
#include <bcnn/nn/zero_pad.hpp>

#include "cuda/compare.hpp"
#include "support/random.hpp"

using namespace bcnn;
using namespace bcnn::nn;
using bcnn::testing::cast;
using bcnn::testing::fresh_seed;
using bcnn::testing::random_tensor;
using bcnn::testing::relative_difference;

namespace {

enum class Kind { single, composite };

template <typename T>
double tolerance(Kind kind) {
    const double single = testing::library_tolerance<T>();
    return kind == Kind::single ? single : single * 10;
}

// Random values for every parameter and buffer of `module` (double, CPU):
// gamma in [0.5, 1.5], moving variance in [0.5, 2], the rest in [-0.5, 0.5].
void randomize(Module<double>& module, std::uint64_t seed) {
    for (const auto& p : module.named_parameters()) {
        const std::string& name = p.name;
        double low = -0.5, high = 0.5;
        if (name.find("gamma") != std::string::npos) low = 0.5, high = 1.5;
        if (name.find("moving_variance") != std::string::npos) low = 0.5, high = 2.0;
        p.parameter->value.copy_from(random_tensor<double>(p.parameter->value.shape(), seed++, low, high));
    }
}

// `to`'s parameters (CPU, same architecture) set to `from`'s values, cast to T.
template <typename T>
void copy_parameters(Module<double>& from, Module<T>& to) {
    const auto source = from.named_parameters();
    const auto target = to.named_parameters();
    REQUIRE(source.size() == target.size());
    for (std::size_t i = 0; i < source.size(); ++i) {
        REQUIRE(source[i].name == target[i].name);
        target[i].parameter->value.copy_from(cast<T>(source[i].parameter->value));
    }
}

// The module a factory makes, in double (reference) or T (under test).
using Factory = std::function<void(std::unique_ptr<Module<double>>&, std::unique_ptr<Module<float>>&,
                                   std::unique_ptr<Module<double>>&)>;

// One forward (training or inference) and backward of `test` on cuda against `reference` on the CPU.
template <typename T>
void check_on_cuda(Module<double>& reference, Module<T>& test, const Shape& input, Kind kind, bool training,
                   std::uint64_t seed) {
    CAPTURE(seed, reference.type(), training);
    reference.build(input);
    test.build(input);
    randomize(reference, seed);
    copy_parameters(reference, test);
    test.to(Device::cuda);
    CHECK(test.device() == Device::cuda);
    for (const auto& p : test.named_parameters()) {
        CHECK(p.parameter->value.device() == Device::cuda);
        if (p.parameter->grad.defined()) CHECK(p.parameter->grad.device() == Device::cuda);
    }
    const double tol = tolerance<T>(kind);
    Shape batch{3};
    for (Index extent : input) batch.push_back(extent);
    const Tensor<double> x = random_tensor<double>(batch, seed + 100);
    Rng reference_rng(seed), test_rng(seed);
    const Tensor<double> y_ref = reference.forward(x, Context{training, &reference_rng});
    const Tensor<T> y = test.forward(to_device(cast<T>(x), Device::cuda), Context{training, &test_rng});
    CHECK(y.device() == Device::cuda);
    CHECK(relative_difference(y, y_ref) < tol);

    const Tensor<double> dy = random_tensor<double>(y_ref.shape(), seed + 200);
    const Tensor<double> dx_ref = reference.backward(dy, true);
    const Tensor<T> dx = test.backward(to_device(cast<T>(dy), Device::cuda), true);
    CHECK(dx.device() == Device::cuda);
    CHECK(relative_difference(dx, dx_ref) < tol);

    const auto expected = reference.named_parameters();
    const auto actual = test.named_parameters();
    for (std::size_t i = 0; i < expected.size(); ++i) {
        CAPTURE(expected[i].name);
        CHECK(relative_difference(actual[i].parameter->value, expected[i].parameter->value) < tol);
        if (expected[i].parameter->grad.defined())
            CHECK(relative_difference(actual[i].parameter->grad, expected[i].parameter->grad) < tol);
    }
}

// Runs check_on_cuda for a layer made by make<T>() in float and double, training and inference.
template <typename Make>
void check_layer(Make make, const Shape& input, Kind kind = Kind::single) {
    const std::uint64_t seed = fresh_seed();
    for (bool training : {true, false}) {
        {
            auto reference = make(double{});
            auto test = make(float{});
            check_on_cuda<float>(*reference, *test, input, kind, training, seed);
        }
        {
            auto reference = make(double{});
            auto test = make(double{});
            check_on_cuda<double>(*reference, *test, input, kind, training, seed + 1);
        }
    }
}

}  // namespace

TEST_CASE("Conv2D on cuda equals Conv2D on the cpu", "[cuda][nn]") {
    check_layer([](auto t) { using T = decltype(t);
                    return std::make_unique<Conv2D<T>>(4, 3, 2, Padding::same, ActivationFn::relu); },
                Shape{7, 9, 5});
    check_layer([](auto t) { using T = decltype(t);
                    return std::make_unique<Conv2D<T>>(6, 1, 1, Padding::valid, ActivationFn::linear, false); },
                Shape{5, 4, 3});
}

TEST_CASE("DepthwiseConv2D and SeparableConv2D on cuda equal the cpu layers", "[cuda][nn]") {
    check_layer([](auto t) { using T = decltype(t);
                    return std::make_unique<DepthwiseConv2D<T>>(3, 1, Padding::same, 2, ActivationFn::relu); },
                Shape{6, 7, 4});
    check_layer([](auto t) { using T = decltype(t);
                    return std::make_unique<SeparableConv2D<T>>(6, 3, 2, Padding::same, ActivationFn::relu); },
                Shape{9, 8, 5});
}

TEST_CASE("Dense and Activation on cuda equal the cpu layers", "[cuda][nn]") {
    check_layer([](auto t) { using T = decltype(t); return std::make_unique<Dense<T>>(5, ActivationFn::relu); },
                Shape{12});
    check_layer([](auto t) { using T = decltype(t); return std::make_unique<Dense<T>>(4); }, Shape{7});
    check_layer([](auto t) { using T = decltype(t); return std::make_unique<Activation<T>>(ActivationFn::relu); },
                Shape{4, 5, 3});
}

TEST_CASE("BatchNormalization on cuda equals the cpu layer, training and inference", "[cuda][nn]") {
    check_layer([](auto t) { using T = decltype(t); return std::make_unique<BatchNormalization<T>>(0.9); },
                Shape{5, 6, 7});
    check_layer([](auto t) { using T = decltype(t); return std::make_unique<BatchNormalization<T>>(); },
                Shape{9});
}

TEST_CASE("pooling, padding, flatten and dropout on cuda equal the cpu layers", "[cuda][nn]") {
    check_layer([](auto t) { using T = decltype(t); return std::make_unique<MaxPooling2D<T>>(2); }, Shape{8, 6, 3});
    check_layer([](auto t) { using T = decltype(t);
                    return std::make_unique<MaxPooling2D<T>>(3, Size2D(2), Padding::same); },
                Shape{7, 8, 2});
    check_layer([](auto t) { using T = decltype(t);
                    return std::make_unique<AveragePooling2D<T>>(3, Size2D(2), Padding::same); },
                Shape{7, 5, 3});
    check_layer([](auto t) { using T = decltype(t); return std::make_unique<GlobalAveragePooling2D<T>>(); },
                Shape{5, 6, 4});
    check_layer([](auto t) { using T = decltype(t);
                    return std::make_unique<ZeroPadding2D<T>>(std::pair<Index, Index>{1, 2},
                                                              std::pair<Index, Index>{3, 0}); },
                Shape{4, 5, 3});
    check_layer([](auto t) { using T = decltype(t); return std::make_unique<Flatten<T>>(); }, Shape{3, 4, 2});
    check_layer([](auto t) { using T = decltype(t); return std::make_unique<Dropout<T>>(0.3); }, Shape{6, 5, 4});
}

TEST_CASE("DenseBlock and the custom CNN on cuda equal the cpu modules", "[cuda][nn]") {
    check_layer([](auto t) { using T = decltype(t); return std::make_unique<DenseBlock<T>>(3, 4, 8, 1.001e-5, "conv2"); },
                Shape{6, 5, 3}, Kind::composite);
    const std::uint64_t seed = fresh_seed();
    auto reference = models::make_custom_cnn<double>(4, 32);
    auto test = models::make_custom_cnn<double>(4, 32);
    // In double: in float, one of its ~10^5 ReLU inputs may land within rounding of 0 on one side
    // on the CPU and the other on the GPU, which flips a whole gradient element.
    // Built by make_custom_cnn: check_on_cuda's build() is then a no-op.
    check_on_cuda<double>(*reference, *test, Shape{32, 32, 3}, Kind::composite, true, seed);
}

TEST_CASE("a DenseBlock's inference-only forward on cuda (1_bn folded on the device) equals the cpu's folded one",
          "[cuda][nn]") {
    const std::uint64_t seed = fresh_seed();
    CAPTURE(seed);
    DenseBlock<double> reference(2, 4, 8, 1.001e-5, "conv2");
    DenseBlock<float> test(2, 4, 8, 1.001e-5, "conv2");
    reference.build(Shape{5, 6, 3});
    test.build(Shape{5, 6, 3});
    randomize(reference, seed);
    copy_parameters(reference, test);
    test.to(Device::cuda);
    const Tensor<double> x = random_tensor<double>(Shape{2, 5, 6, 3}, seed + 1);
    const Tensor<double> y_ref = reference.forward(x, inference_only_context());
    const Tensor<float> y = test.forward(to_device(cast<float>(x), Device::cuda), inference_only_context());
    CHECK(relative_difference(y, y_ref) < tolerance<float>(Kind::composite));
}

TEST_CASE("Module::to(cuda) and back keeps every parameter bit for bit", "[cuda][nn]") {
    auto model = models::make_custom_cnn<float>(4, 32);
    Rng rng(fresh_seed());
    model->initialize(rng);
    std::vector<Tensor<float>> before;
    for (const auto& p : model->named_parameters()) before.push_back(p.parameter->value.clone());
    model->to(Device::cuda);
    for (Module<float>* child : model->children()) CHECK(child->device() == Device::cuda);
    model->to(Device::cpu);
    const auto after = model->named_parameters();
    for (std::size_t i = 0; i < before.size(); ++i) {
        CHECK(after[i].parameter->value.device() == Device::cpu);
        CHECK(testing::first_bit_difference(after[i].parameter->value, before[i]) == "");
    }
}

TEST_CASE("a module built and initialised after to(cuda) lives on cuda", "[cuda][nn]") {
    Sequential<float> model;
    model.emplace<Conv2D<float>>(3, 3, 1, Padding::same, ActivationFn::relu);
    model.emplace<BatchNormalization<float>>();
    model.to(Device::cuda);
    model.build(Shape{5, 5, 2});
    Rng rng(3);
    model.initialize(rng);
    for (const auto& p : model.named_parameters()) CHECK(p.parameter->value.device() == Device::cuda);
    const Tensor<float> y = model.forward(to_device(Tensor<float>(Shape{1, 5, 5, 2}, 0.5f), Device::cuda),
                                          Context{});
    CHECK(y.device() == Device::cuda);
    CHECK_THROWS_WITH(model.forward(Tensor<float>(Shape{1, 5, 5, 2}), Context{}),
                      Catch::Contains("conv2d_forward: input is on cpu but weights is on cuda"));
}

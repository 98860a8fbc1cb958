// Modules and devices on the CPU: Module::to(Device::cpu) round trips keep
// the same parameters and the same results bit for bit; the device is
// inherited by children and by parameters built later; OnDevice on the CPU is
// the model itself (names, outputs, gradients); without the CUDA backend a
// move to cuda fails with one clear message. The dispatch points the layers
// call run the CPU kernels on CPU tensors, bit for bit.

#include <bcnn/backend/elementwise.hpp>
#include <bcnn/backend/separable_conv2d.hpp>
#include <bcnn/backend/zero_pad.hpp>
#include <bcnn/models/custom_cnn.hpp>
#include <bcnn/nn/dense_block.hpp>
#include <bcnn/nn/on_device.hpp>
#include <bcnn/nn/sequential_tail.hpp>
#include <bcnn/nn/zero_pad.hpp>
#include <catch2/catch.hpp>
#include <cstring>
#include <string>
#include <vector>

#include "nn/layer_checks.hpp"

using namespace bcnn;
using namespace bcnn::nn;
using namespace bcnn::testing;

namespace {

template <typename T>
bool same_bits(const Tensor<T>& a, const Tensor<T>& b) {
    const std::vector<T> x = a.to_vector(), y = b.to_vector();
    return a.shape() == b.shape() && std::memcmp(x.data(), y.data(), x.size() * sizeof(T)) == 0;
}

// One training step's output, input gradient and parameter gradients (copies).
struct StepResult {
    Tensor<float> y, dx;
    std::vector<Tensor<float>> grads;
};

StepResult training_step(Module<float>& model, const Tensor<float>& x, std::uint64_t seed) {
    Rng rng(seed);
    StepResult result;
    result.y = model.forward(x, Context{true, &rng}).clone();
    result.dx = model.backward(random_tensor<float>(result.y.shape(), seed + 1), true).clone();
    for (const auto& p : model.named_parameters())
        if (p.parameter->grad.defined()) result.grads.push_back(p.parameter->grad.clone());
    return result;
}

void check_same(const StepResult& a, const StepResult& b) {
    CHECK(same_bits(a.y, b.y));
    CHECK(same_bits(a.dx, b.dx));
    REQUIRE(a.grads.size() == b.grads.size());
    for (std::size_t i = 0; i < a.grads.size(); ++i) CHECK(same_bits(a.grads[i], b.grads[i]));
}

}  // namespace

TEST_CASE("Module::to(Device::cpu) keeps the parameters and the results bit for bit", "[nn][device]") {
    auto model = models::make_custom_cnn<float>(4, 32);
    Rng init(5);
    model->initialize(init);
    const Tensor<float> x = random_tensor<float>(Shape{2, 32, 32, 3}, 9, 0, 1);
    const StepResult before = training_step(*model, x, 21);

    std::vector<Parameter<float>*> objects;
    std::vector<const float*> data;
    for (const auto& p : model->named_parameters()) {
        objects.push_back(p.parameter);
        data.push_back(p.parameter->value.data());
    }
    CHECK(model->device() == Device::cpu);
    model->to(Device::cpu);
    CHECK(model->device() == Device::cpu);
    for (Module<float>* child : model->children()) CHECK(child->device() == Device::cpu);
    const auto after_move = model->named_parameters();
    REQUIRE(after_move.size() == objects.size());
    for (std::size_t i = 0; i < objects.size(); ++i) {
        CHECK(after_move[i].parameter == objects[i]);        // the same Parameter objects
        CHECK(after_move[i].parameter->value.data() == data[i]);  // not even copied: already there
        CHECK(after_move[i].parameter->value.device() == Device::cpu);
    }
    check_same(before, training_step(*model, x, 21));
}

TEST_CASE("a DenseBlock on the CPU dispatches to the CPU kernels bit for bit after Module::to", "[nn][device]") {
    DenseBlock<float> block(2, 4, 8, 1.001e-5, "conv2");
    block.build(Shape{5, 6, 3});
    Rng init(2);
    block.initialize(init);
    const Tensor<float> x = random_tensor<float>(Shape{2, 5, 6, 3}, 4);
    const StepResult before = training_step(block, x, 7);
    block.to(Device::cpu);
    check_same(before, training_step(block, x, 7));
    for (Module<float>* layer : block.children()) {
        CHECK(layer->device() == Device::cpu);
        for (Module<float>* child : layer->children()) CHECK(child->device() == Device::cpu);
    }
}

TEST_CASE("OnDevice on the CPU is the model: names, outputs and gradients", "[nn][device]") {
    auto model = models::make_custom_cnn<float>(4, 32);
    Rng init(6);
    model->initialize(init);
    const Tensor<float> x = random_tensor<float>(Shape{3, 32, 32, 3}, 10, 0, 1);
    const StepResult direct = training_step(*model, x, 31);
    OnDevice<float> wrapped(*model, Device::cpu);
    CHECK(wrapped.name() == model->name());
    CHECK(wrapped.output_shape() == model->output_shape());
    CHECK(parameter_names(wrapped) == parameter_names(*model));
    CHECK(wrapped.device() == Device::cpu);
    check_same(direct, training_step(wrapped, x, 31));

    SequentialTail<float> head(*model, 14);
    OnDevice<float> wrapped_head(head, Device::cpu);
    CHECK(parameter_names(wrapped_head) == parameter_names(*model));
}

TEST_CASE("OnDevice refuses a module with parameters of its own", "[nn][device]") {
    Dense<float> dense(3, ActivationFn::linear, true, "dense");
    dense.build(Shape{4});
    CHECK_THROWS_WITH(OnDevice<float>(dense, Device::cpu),
                      Catch::Contains("OnDevice: Dense 'dense'") && Catch::Contains("has parameters of its own"));
    Sequential<float> unbuilt;
    unbuilt.emplace<Dense<float>>(2);
    CHECK_THROWS_WITH(OnDevice<float>(unbuilt, Device::cpu), Catch::Contains("is not built"));
}

#ifndef BCNN_WITH_CUDA
TEST_CASE("without the CUDA backend a module cannot move to cuda", "[nn][device]") {
    Dense<float> dense(3);
    dense.build(Shape{4});
    CHECK_THROWS_WITH(dense.to(Device::cuda),
                      Catch::Contains("to_device: cannot move a tensor of shape (4, 3) from cpu to cuda") &&
                          Catch::Contains("built without the CUDA backend"));
}
#endif

TEST_CASE("the dispatch points layers use run the CPU kernels on CPU tensors, bit for bit", "[nn][device][backend]") {
    SECTION("conv2d with a fused ReLU") {
        const Tensor<float> x = random_tensor<float>(Shape{2, 7, 6, 5}, 1);
        const Tensor<float> w = random_tensor<float>(Shape{3, 3, 5, 4}, 2);
        const Tensor<float> b = random_tensor<float>(Shape{4}, 3);
        const ConvParams params{2, 1, Padding::same};
        Tensor<float> expected(Shape{2, 4, 6, 4}), y(Shape{2, 4, 6, 4});
        cpu::conv2d_forward(x, w, &b, params, expected, cpu::ActivationFn::relu);
        backend::conv2d_forward(x, w, &b, params, y, cpu::ActivationFn::relu);
        CHECK(same_bits(y, expected));
    }
    SECTION("separable conv2d, forward and backward") {
        const Tensor<float> x = random_tensor<float>(Shape{2, 6, 5, 3}, 4);
        const Tensor<float> dw = random_tensor<float>(Shape{3, 3, 3, 1}, 5);
        const Tensor<float> pw = random_tensor<float>(Shape{1, 1, 3, 4}, 6);
        const Tensor<float> b = random_tensor<float>(Shape{4}, 7);
        const ConvParams params{1, 1, Padding::same};
        Tensor<float> mid_a(Shape{2, 6, 5, 3}), mid_b(Shape{2, 6, 5, 3}), ya(Shape{2, 6, 5, 4}), yb(Shape{2, 6, 5, 4});
        cpu::separable_conv2d_forward(x, dw, pw, &b, params, mid_a, ya, cpu::ActivationFn::relu);
        backend::separable_conv2d_forward(x, dw, pw, &b, params, mid_b, yb, cpu::ActivationFn::relu);
        CHECK(same_bits(ya, yb));
        const Tensor<float> dy = random_tensor<float>(ya.shape(), 8);
        Tensor<float> scratch_a(mid_a.shape()), scratch_b(mid_a.shape()), dxa(x.shape()), dxb(x.shape());
        Tensor<float> ddwa(dw.shape()), ddwb(dw.shape()), dpwa(pw.shape()), dpwb(pw.shape()), dba(b.shape()),
            dbb(b.shape());
        cpu::separable_conv2d_backward(x, dw, pw, mid_a, dy, params, scratch_a, &dxa, &ddwa, &dpwa, &dba);
        backend::separable_conv2d_backward(x, dw, pw, mid_b, dy, params, scratch_b, &dxb, &ddwb, &dpwb, &dbb);
        CHECK(same_bits(dxa, dxb));
        CHECK(same_bits(ddwa, ddwb));
        CHECK(same_bits(dpwa, dpwb));
        CHECK(same_bits(dba, dbb));
    }
    SECTION("zero padding") {
        const Tensor<float> x = random_tensor<float>(Shape{2, 3, 4, 5}, 9);
        const cpu::Padding2D pad{1, 2, 0, 3};
        Tensor<float> expected(Shape{2, 6, 7, 5}), y(Shape{2, 6, 7, 5});
        cpu::zero_pad2d_forward(x, pad, expected);
        backend::zero_pad2d_forward(x, pad, y);
        CHECK(same_bits(y, expected));
        Tensor<float> dxa(x.shape()), dxb(x.shape());
        cpu::zero_pad2d_backward(expected, pad, dxa);
        backend::zero_pad2d_backward(expected, pad, dxb);
        CHECK(same_bits(dxa, dxb));
    }
    SECTION("copy and add_inplace into a channel slice leave the neighbours alone") {
        Tensor<float> wide = random_tensor<float>(Shape{2, 3, 3, 7}, 10);
        const Tensor<float> original = wide.clone();
        const Tensor<float> part = random_tensor<float>(Shape{2, 3, 3, 2}, 11);
        backend::copy(part, wide.channels(3, 5));
        CHECK(same_bits(wide.channels(3, 5).clone(), part));
        Tensor<float> slice = wide.channels(3, 5);
        backend::add_inplace(slice, part);
        Tensor<float> doubled = part.clone();
        cpu::add_inplace(doubled, part);
        CHECK(same_bits(wide.channels(3, 5).clone(), doubled));
        CHECK(same_bits(wide.channels(0, 3).clone(), original.channels(0, 3).clone()));
        CHECK(same_bits(wide.channels(5, 7).clone(), original.channels(5, 7).clone()));
    }
    SECTION("empty_on and zeros_on on the CPU") {
        const Tensor<float> empty = empty_on<float>(Shape{3, 2}, Device::cpu);
        CHECK(empty.shape() == Shape{3, 2});
        CHECK(empty.device() == Device::cpu);
        const Tensor<float> zeros = zeros_on<float>(Shape{4}, Device::cpu);
        CHECK(zeros.to_vector() == std::vector<float>(4, 0.0f));
    }
}

TEST_CASE("the dispatch points name both devices of mixed operands", "[nn][device][backend]") {
    const Tensor<float> x(Shape{1, 2, 2, 1});
    Tensor<float> y(Shape{1, 2, 2, 1});
    Tensor<float> unset;
    CHECK_THROWS_WITH(backend::copy(x, unset), Catch::Contains("copy: destination is an empty tensor"));
    CHECK_THROWS_WITH(backend::add_inplace(unset, x), Catch::Contains("add_inplace: accumulator is an empty tensor"));
}

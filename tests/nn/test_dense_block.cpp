// DenseLayer and DenseBlock (DenseNet's concatenation without copies): names
// and shapes, forward against a reference built from plain layers and
// copy-based concatenation, in both BatchNorm modes, in float and double;
// gradients by finite differences (BatchNorm in training mode); channel
// slices read and written without touching their neighbours; frozen layers
// and the early stop of backward; argument errors.

#include <bcnn/kernels/cpu/concat.hpp>
#include <bcnn/nn/activation.hpp>
#include <bcnn/nn/dense_block.hpp>
#include <bcnn/nn/sequential.hpp>
#include <catch2/catch.hpp>
#include <string>
#include <vector>

#include "nn/layer_checks.hpp"
#include "support/layer_gradcheck.hpp"

using namespace bcnn;
using namespace bcnn::nn;
using namespace bcnn::testing;

namespace {

constexpr double kEpsilon = 1.001e-5;

// Random gamma, beta and moving statistics for every BatchNorm, random kernels.
template <typename T>
void randomize_all(Module<T>& module, std::uint64_t seed) {
    for (const auto& p : module.named_parameters()) {
        const std::string& name = p.name;
        const Shape shape = p.parameter->value.shape();
        Tensor<double> values;
        if (name.size() >= 6 && name.compare(name.size() - 6, 6, "/gamma") == 0)
            values = random_tensor<double>(shape, seed++, 0.5, 1.5);
        else if (name.find("moving_variance") != std::string::npos)
            values = random_tensor<double>(shape, seed++, 0.5, 2.0);
        else
            values = random_tensor<double>(shape, seed++, -0.5, 0.5);
        Tensor<T> converted(shape);
        for (Index i = 0; i < values.numel(); ++i) converted.data()[i] = static_cast<T>(values.data()[i]);
        p.parameter->value.copy_from(converted);
    }
}

// The layer as plain modules: BN -> ReLU -> Conv 1x1 -> BN -> ReLU -> Conv 3x3 'same'.
template <typename T>
std::unique_ptr<Sequential<T>> reference_layer(const Shape& input_shape, Index growth, Index bottleneck) {
    auto ref = std::make_unique<Sequential<T>>("reference");
    ref->template emplace<BatchNormalization<T>>(0.99, kEpsilon);
    ref->template emplace<Activation<T>>(ActivationFn::relu);
    ref->template emplace<Conv2D<T>>(bottleneck, 1, 1, Padding::valid, ActivationFn::linear, false);
    ref->template emplace<BatchNormalization<T>>(0.99, kEpsilon);
    ref->template emplace<Activation<T>>(ActivationFn::relu);
    ref->template emplace<Conv2D<T>>(growth, 3, 1, Padding::same, ActivationFn::linear, false);
    ref->build(input_shape);
    return ref;
}

// Copies `from`'s parameters into `to`, in named_parameters() order (same shapes).
template <typename T>
void copy_parameters(Module<T>& from, Module<T>& to) {
    const auto source = from.named_parameters(), target = to.named_parameters();
    REQUIRE(source.size() == target.size());
    for (std::size_t i = 0; i < source.size(); ++i) target[i].parameter->value.copy_from(source[i].parameter->value);
}

// The block computed with reference layers and copy-based concatenation:
// h = x; for each layer h = concat(h, layer(h)).
template <typename T>
Tensor<T> reference_block(DenseBlock<T>& block, const Tensor<T>& x, Index growth, Index bottleneck,
                          const Context& context) {
    Tensor<T> h = x.clone();
    for (std::size_t i = 0; i < block.size(); ++i) {
        const Shape in{h.dim(1), h.dim(2), h.dim(3)};
        auto layer = reference_layer<T>(in, growth, bottleneck);
        copy_parameters<T>(block.layer(i), *layer);
        const Tensor<T> out = layer->forward(h, context);
        Tensor<T> next(Shape{h.dim(0), h.dim(1), h.dim(2), h.dim(3) + growth});
        cpu::concat_channels_forward<T>({h, out}, next);
        h = next;
    }
    return h;
}

template <typename T>
std::unique_ptr<DenseBlock<T>> make_block(int layers, Index growth, Index bottleneck, const Shape& input_shape) {
    auto block = std::make_unique<DenseBlock<T>>(layers, growth, bottleneck, kEpsilon, "conv2");
    block->build(input_shape);
    randomize_all<T>(*block, 5);
    return block;
}

}  // namespace

TEST_CASE("DenseLayer and DenseBlock have Keras' DenseNet layers, shapes and counts", "[nn][dense_block]") {
    DenseBlock<float> block(3, 32, 128, kEpsilon, "conv2");
    CHECK(block.build(Shape{38, 38, 64}) == Shape{38, 38, 160});
    REQUIRE(block.size() == 3);
    CHECK(block.layer(2).name() == "block3");
    CHECK(block.layer(2).input_shape() == Shape{38, 38, 128});
    CHECK(block.layer(2).output_shape() == Shape{38, 38, 32});
    const std::vector<std::string> names = parameter_names(block.layer(0));
    CHECK(names == std::vector<std::string>{"0_bn/gamma", "0_bn/beta", "0_bn/moving_mean", "0_bn/moving_variance",
                                            "1_conv/kernel", "1_bn/gamma", "1_bn/beta", "1_bn/moving_mean",
                                            "1_bn/moving_variance", "2_conv/kernel"});
    CHECK(parameter(block, "block1/1_conv/kernel").value.shape() == Shape{1, 1, 64, 128});
    CHECK(parameter(block, "block3/0_bn/gamma").value.shape() == Shape{128});
    CHECK(parameter(block, "block3/2_conv/kernel").value.shape() == Shape{3, 3, 128, 32});
    // Per layer reading c channels: BN(c) 4c (2c of them moving statistics),
    // Conv 1x1 c*128, BN(128) 512 (256), Conv 3x3 9*128*32.
    Index total = 0, buffers = 0;
    for (Index c : {64, 96, 128}) {
        total += 4 * c + c * 128 + 512 + 9 * 128 * 32;
        buffers += 2 * c + 256;
    }
    CHECK(block.count_params() == total);
    CHECK(block.count_trainable_params() == total - buffers);
    CHECK(parameter(block, "block1/0_bn/moving_variance").value.to_vector() == std::vector<float>(64, 1.0f));
}

TEST_CASE("DenseBlock forward equals plain layers with copy-based concatenation", "[nn][dense_block]") {
    const Index growth = 3, bottleneck = 5;
    auto block = make_block<double>(3, growth, bottleneck, Shape{6, 5, 4});
    const Tensor<double> x = random_tensor<double>(Shape{2, 6, 5, 4}, 21, -2.0, 2.0);
    for (bool training : {false, true}) {
        INFO("training " << training);
        const Context context{training, nullptr};
        const Tensor<double> expected = reference_block<double>(*block, x, growth, bottleneck, context);
        const Tensor<double> y = block->forward(x, context);
        CHECK(y.shape() == Shape{2, 6, 5, 13});
        CHECK(max_abs_diff(y, expected) < 1e-12);
        CHECK(max_abs_diff(y.channels(0, 4), x) == 0.0);  // the input, copied once
        CHECK(max_abs(y.channels(4, 13)) > 0.1);
    }

    SECTION("float against the double reference") {
        // Fresh blocks: the training forward above moved the moving statistics.
        auto block_d = make_block<double>(3, growth, bottleneck, Shape{6, 5, 4});
        auto block_f = make_block<float>(3, growth, bottleneck, Shape{6, 5, 4});
        const Tensor<double> expected = reference_block<double>(*block_d, x, growth, bottleneck, Context{});
        Tensor<float> x_f(x.shape());
        for (Index i = 0; i < x.numel(); ++i) x_f.data()[i] = static_cast<float>(x.data()[i]);
        const Tensor<float> y_f = block_f->forward(x_f, Context{});
        double diff = 0;
        for (Index i = 0; i < y_f.numel(); ++i)
            diff = std::max(diff, std::abs(double(y_f.data()[i]) - expected.to_vector()[static_cast<std::size_t>(i)]));
        CHECK(diff < 1e-5 * max_abs(expected));
    }
}

TEST_CASE("DenseBlock inference_only forward folds 1_bn into 1_conv with the same output", "[nn][dense_block]") {
    const Index growth = 3, bottleneck = 5;
    auto block = make_block<double>(3, growth, bottleneck, Shape{6, 5, 4});
    const Tensor<double> x = random_tensor<double>(Shape{2, 6, 5, 4}, 23, -2.0, 2.0);
    const Tensor<double> expected = reference_block<double>(*block, x, growth, bottleneck, Context{});
    const Tensor<double> unfolded = block->forward(x, Context{}).clone();
    const Tensor<double> folded = block->forward(x, inference_only_context());
    CHECK(max_abs_diff(folded, expected) < 1e-12);
    CHECK(max_abs_diff(folded, unfolded) < 1e-12);
    CHECK(max_abs(folded.channels(4, 13)) > 0.1);
    CHECK_THROWS_WITH(block->backward(Tensor<double>(folded.shape()), true),
                      Catch::Contains("backward() after an inference_only forward (1_bn was folded into 1_conv)"));
    // With training on, inference_only changes nothing: backward works.
    Context training{true, nullptr};
    training.inference_only = true;
    const Tensor<double> y = block->forward(x, training);
    CHECK_NOTHROW(block->backward(Tensor<double>(y.shape()), true));
}

TEST_CASE("DenseBlock gradients match finite differences", "[nn][dense_block][gradcheck]") {
    // 2 layers, growth 2, 5x5 input, BatchNorm in training mode (batch statistics).
    auto block = make_block<double>(2, 2, 3, Shape{5, 5, 3});
    const Tensor<double> x = random_tensor<double>(Shape{2, 5, 5, 3}, 31, -2.0, 2.0);
    SECTION("training") { check_module_gradients(*block, x, true); }
    SECTION("inference") { check_module_gradients(*block, x, false); }
}

TEST_CASE("DenseLayer gradients match finite differences, reading and writing channel slices", "[nn][dense_block][gradcheck]") {
    DenseLayer<double> layer(2, 3, kEpsilon, "block1");
    layer.build(Shape{4, 5, 3});
    randomize_all<double>(layer, 40);
    const Tensor<double> x = random_tensor<double>(Shape{2, 4, 5, 3}, 41, -2.0, 2.0);
    check_module_gradients(layer, x, true);

    SECTION("forward_into a slice leaves the neighbouring channels alone") {
        // Buffer of 7 channels: the layer reads [0, 3) and writes [4, 6).
        Tensor<double> buffer = random_tensor<double>(Shape{2, 4, 5, 7}, 42);
        buffer.channels(0, 3).copy_from(x);
        const Tensor<double> before = buffer.clone();
        const Context context{true, nullptr};
        layer.forward_into(buffer.channels(0, 3), buffer.channels(4, 6), context);
        const Tensor<double> expected = layer.forward(x, context).clone();
        CHECK(max_abs_diff(buffer.channels(4, 6), expected) < 1e-14);
        CHECK(max_abs_diff(buffer.channels(0, 4), before.channels(0, 4)) == 0.0);
        CHECK(max_abs_diff(buffer.channels(6, 7), before.channels(6, 7)) == 0.0);
        CHECK_THROWS_WITH(layer.forward_into(buffer.channels(0, 3), buffer.channels(3, 6), context),
                          Catch::Contains("Conv2D '2_conv': output has shape (2, 4, 5, 3), expected (2, 4, 5, 2)"));
    }
}

TEST_CASE("DenseBlock reads its input from a channel slice and gives its input gradient as a slice",
          "[nn][dense_block]") {
    auto block = make_block<double>(2, 2, 3, Shape{5, 5, 3});
    const Tensor<double> x = random_tensor<double>(Shape{2, 5, 5, 3}, 51, -2.0, 2.0);
    const Context context{true, nullptr};
    const Tensor<double> y = block->forward(x, context).clone();
    const Tensor<double> dy = random_tensor<double>(y.shape(), 52);
    const Tensor<double> dx = block->backward(dy, true).clone();

    Tensor<double> wide = random_tensor<double>(Shape{2, 5, 5, 6}, 53);
    wide.channels(2, 5).copy_from(x);
    const Tensor<double> wide_before = wide.clone();
    CHECK(max_abs_diff(block->forward(wide.channels(2, 5), context), y) == 0.0);
    const Tensor<double> dx_view = block->backward(dy, true);
    CHECK(dx_view.shape() == x.shape());
    CHECK(max_abs_diff(dx_view, dx) == 0.0);
    CHECK(max_abs_diff(wide, wide_before) == 0.0);  // the input is only read
}

TEST_CASE("DenseBlock reuses its buffers from step to step", "[nn][dense_block]") {
    auto block = make_block<double>(3, 2, 3, Shape{4, 4, 2});
    check_buffers_reused<double>(*block, random_tensor<double>(Shape{2, 4, 4, 2}, 61), true);
}

TEST_CASE("a frozen DenseBlock computes no weight gradients and backward stops before frozen layers",
          "[nn][dense_block]") {
    auto block = make_block<double>(3, 2, 3, Shape{4, 4, 2});
    const Tensor<double> x = random_tensor<double>(Shape{2, 4, 4, 2}, 71);
    const Context inference{false, nullptr};  // both modes then use the moving statistics
    const Tensor<double> y = block->forward(x, inference);
    const Tensor<double> dy = random_tensor<double>(y.shape(), 72);
    const Tensor<double> trainable_dx = block->backward(dy, true).clone();
    const Tensor<double> last_kernel_grad = parameter(*block, "block3/2_conv/kernel").grad.clone();

    block->set_trainable(false);
    CHECK(block->count_trainable_params() == 0);
    for (const auto& p : block->named_parameters())
        if (!p.parameter->is_buffer) p.parameter->grad.fill(123.0);
    block->forward(x, inference);
    CHECK(max_abs_diff(block->backward(dy, true), trainable_dx) == 0.0);
    for (const auto& p : block->named_parameters())
        if (!p.parameter->is_buffer)
            for (double g : p.parameter->grad.to_vector()) REQUIRE(g == 123.0);

    SECTION("frozen, no input gradient wanted: nothing runs, not even on a block never run forward") {
        auto fresh = make_block<double>(3, 2, 3, Shape{4, 4, 2});
        fresh->set_trainable(false);
        CHECK_FALSE(fresh->backward(dy, false).defined());
        DenseLayer<double> layer(2, 3, kEpsilon, "block1");
        layer.build(Shape{4, 4, 2});
        layer.set_trainable(false);
        CHECK_FALSE(layer.backward(dy.channels(0, 2), false).defined());
        // A trainable layer never run forward has nothing to differentiate.
        layer.set_trainable(true);
        CHECK_THROWS(layer.backward(dy.channels(0, 2), false));
    }
    SECTION("only the last layer trainable: its gradients as before, the others untouched") {
        block->layer(2).set_trainable(true);
        block->forward(x, inference);
        CHECK_FALSE(block->backward(dy, false).defined());
        CHECK(max_abs_diff(parameter(*block, "block3/2_conv/kernel").grad, last_kernel_grad) < 1e-14);
        for (const auto& p : block->named_parameters())
            if (!p.parameter->is_buffer && p.name.rfind("block3/", 0) != 0)
                for (double g : p.parameter->grad.to_vector()) REQUIRE(g == 123.0);
    }
}

TEST_CASE("DenseLayer and DenseBlock reject bad arguments and inputs", "[nn][dense_block][errors]") {
    CHECK_THROWS_WITH(DenseBlock<float>(0, 32, 128), Catch::Contains("DenseBlock: layers must be positive, got 0"));
    CHECK_THROWS_WITH(DenseLayer<float>(0, 128), Catch::Contains("DenseLayer: growth_rate must be positive, got 0"));
    CHECK_THROWS_WITH(DenseLayer<float>(32, 0),
                      Catch::Contains("DenseLayer: bottleneck_channels must be positive, got 0"));
    DenseBlock<float> block(2, 4, 8, kEpsilon, "conv2");
    CHECK_THROWS_WITH(block.build(Shape{16, 3}),
                      Catch::Contains("DenseBlock 'conv2': input must be an image (height, width, channels), got (16, 3)"));
    block.build(Shape{5, 5, 3});
    Tensor<float> wrong(Shape{1, 5, 5, 4});
    CHECK_THROWS_WITH(block.forward(wrong, Context{}),
                      Catch::Contains("DenseBlock 'conv2': input has shape (1, 5, 5, 4), expected (N, 5, 5, 3)"));
    CHECK_THROWS_WITH(block.layer(2), Catch::Contains("DenseBlock 'conv2': no layer 2 of 2"));
}

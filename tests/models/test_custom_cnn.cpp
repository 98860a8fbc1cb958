// The study's custom CNN: Keras' per-layer parameter counts and totals, the
// output shape of every layer, the summary text, a float training step on
// 150x150 images, gradients through a small network of the same layers, and
// an overfit test (a small model of the same family learns 8 random images).

#include <bcnn/kernels/cpu/softmax_cross_entropy.hpp>
#include <bcnn/models/custom_cnn.hpp>
#include <catch2/catch.hpp>
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "support/layer_gradcheck.hpp"

using namespace bcnn;
using namespace bcnn::nn;
using bcnn::testing::random_tensor;

namespace {

std::vector<Index> trainable_layer_params(Sequential<float>& model) {
    std::vector<Index> counts;
    for (Module<float>* layer : model.children())
        if (layer->count_params() > 0) counts.push_back(layer->count_params());
    return counts;
}

bool all_finite(const Tensor<float>& t) {
    for (float v : t.to_vector())
        if (!std::isfinite(v)) return false;
    return true;
}

// One step of plain gradient descent: p -= lr * grad for every trainable parameter.
template <typename T>
void gradient_descent_step(Module<T>& model, T learning_rate) {
    for (const auto& p : model.named_parameters()) {
        if (!p.trainable) continue;
        T* value = p.parameter->value.data();
        const T* grad = p.parameter->grad.data();
        for (Index i = 0; i < p.parameter->value.numel(); ++i) value[i] -= learning_rate * grad[i];
    }
}

// Loss and correct predictions (arg-max of the logits) in inference mode.
struct Evaluation {
    float loss;
    int correct;
};

Evaluation evaluate(Sequential<float>& model, const Tensor<float>& x, const Tensor<std::int32_t>& labels) {
    const Tensor<float> logits = model.forward(x, Context{});
    Tensor<float> probabilities(logits.shape());
    const float loss = cpu::softmax_cross_entropy_forward(logits, labels, probabilities);
    int correct = 0;
    for (Index n = 0; n < logits.dim(0); ++n) {
        Index best = 0;
        for (Index k = 1; k < logits.dim(1); ++k)
            if (logits(n, k) > logits(n, best)) best = k;
        correct += best == labels(n);
    }
    return {loss, correct};
}

}  // namespace

TEST_CASE("custom CNN has Keras' parameter counts, layer by layer and in total", "[models][custom_cnn]") {
    auto model = models::make_custom_cnn<float>();
    CHECK(trainable_layer_params(*model) == std::vector<Index>{448, 2320, 688, 1344, 128, 2400, 4736, 256, 8896, 17664,
                                                               512, 34176, 68096, 1024, 2097664, 65664, 8256, 260});
    CHECK(model->count_params() == 2314532);
    CHECK(model->count_trainable_params() == 2313572);
    CHECK(model->count_params() - model->count_trainable_params() == 960);  // 2 * (32 + 64 + 128 + 256)
    CHECK(model->input_shape() == Shape{150, 150, 3});
}

TEST_CASE("custom CNN layers are named like Keras' and have Keras' output shapes", "[models][custom_cnn]") {
    auto model = models::make_custom_cnn<float>();
    struct Row {
        const char* name;
        Shape shape;
    };
    const std::vector<Row> expected = {{"conv2d", {150, 150, 16}},
                                       {"conv2d_1", {150, 150, 16}},
                                       {"max_pooling2d", {75, 75, 16}},
                                       {"separable_conv2d", {75, 75, 32}},
                                       {"separable_conv2d_1", {75, 75, 32}},
                                       {"batch_normalization", {75, 75, 32}},
                                       {"max_pooling2d_1", {37, 37, 32}},
                                       {"separable_conv2d_2", {37, 37, 64}},
                                       {"separable_conv2d_3", {37, 37, 64}},
                                       {"batch_normalization_1", {37, 37, 64}},
                                       {"max_pooling2d_2", {18, 18, 64}},
                                       {"separable_conv2d_4", {18, 18, 128}},
                                       {"separable_conv2d_5", {18, 18, 128}},
                                       {"batch_normalization_2", {18, 18, 128}},
                                       {"max_pooling2d_3", {9, 9, 128}},
                                       {"dropout", {9, 9, 128}},
                                       {"separable_conv2d_6", {9, 9, 256}},
                                       {"separable_conv2d_7", {9, 9, 256}},
                                       {"batch_normalization_3", {9, 9, 256}},
                                       {"max_pooling2d_4", {4, 4, 256}},
                                       {"dropout_1", {4, 4, 256}},
                                       {"flatten", {4096}},
                                       {"dense", {512}},
                                       {"dropout_2", {512}},
                                       {"dense_1", {128}},
                                       {"dropout_3", {128}},
                                       {"dense_2", {64}},
                                       {"dropout_4", {64}},
                                       {"dense_3", {4}}};
    REQUIRE(model->size() == expected.size());
    for (std::size_t i = 0; i < expected.size(); ++i) {
        INFO("layer " << i);
        CHECK(model->at(i).name() == expected[i].name);
        CHECK(model->at(i).output_shape() == expected[i].shape);
    }
    CHECK(dynamic_cast<Dropout<float>&>(model->at(15)).rate() == 0.2);
    CHECK(dynamic_cast<Dropout<float>&>(model->at(20)).rate() == 0.2);
    CHECK(dynamic_cast<Dropout<float>&>(model->at(23)).rate() == 0.7);
    CHECK(dynamic_cast<Dropout<float>&>(model->at(25)).rate() == 0.5);
    CHECK(dynamic_cast<Dropout<float>&>(model->at(27)).rate() == 0.3);

    auto small = models::make_custom_cnn<float>(3, 32);  // 32 -> 16 -> 8 -> 4 -> 2 -> 1
    CHECK(small->at(21).output_shape() == Shape{256});
    CHECK(small->output_shape() == Shape{3});
}

TEST_CASE("custom CNN summary reads like Keras'", "[models][custom_cnn]") {
    auto model = models::make_custom_cnn<float>();
    const std::string summary = model->summary();
    const std::string head =
        "Model: \"sequential\"\n"
        "_________________________________________________________________\n"
        " Layer (type)                Output Shape              Param #\n"
        "=================================================================\n"
        " conv2d (Conv2D)             (None, 150, 150, 16)      448\n"
        "\n"
        " conv2d_1 (Conv2D)           (None, 150, 150, 16)      2320\n"
        "\n"
        " max_pooling2d (MaxPooling2D) (None, 75, 75, 16)       0\n"
        "\n"
        " separable_conv2d (SeparableConv2D) (None, 75, 75, 32) 688\n"
        "\n"
        " separable_conv2d_1 (SeparableConv2D) (None, 75, 75, 32) 1344\n"
        "\n"
        " batch_normalization (BatchNormalization) (None, 75, 75, 32) 128\n";
    CHECK(summary.substr(0, head.size()) == head);
    const std::string tail =
        " dense_3 (Dense)             (None, 4)                 260\n"
        "=================================================================\n"
        "Total params: 2,314,532\n"
        "Trainable params: 2,313,572\n"
        "Non-trainable params: 960\n"
        "_________________________________________________________________\n";
    REQUIRE(summary.size() > tail.size());
    CHECK(summary.substr(summary.size() - tail.size()) == tail);
}

TEST_CASE("custom CNN trains a step on 150x150 float images with finite values", "[models][custom_cnn]") {
    auto model = models::make_custom_cnn<float>();
    Rng rng(10);
    model->initialize(rng);
    const auto x = random_tensor<float>(Shape{2, 150, 150, 3}, 1, 0.0f, 1.0f);
    const Tensor<float> logits = model->forward(x, Context{true, &rng});
    REQUIRE(logits.shape() == Shape{2, 4});
    CHECK(all_finite(logits));
    Tensor<float> probabilities(logits.shape()), d_logits(logits.shape());
    const auto labels = Tensor<std::int32_t>::from_vector(Shape{2}, {1, 3});
    const float loss = cpu::softmax_cross_entropy_forward(logits, labels, probabilities);
    CHECK(std::isfinite(loss));
    cpu::softmax_cross_entropy_backward(probabilities, labels, d_logits);
    CHECK_FALSE(model->backward(d_logits, false).defined());
    for (const auto& p : model->named_parameters()) {
        INFO(p.name);
        CHECK(all_finite(p.parameter->value));
        if (p.trainable) {
            CHECK(all_finite(p.parameter->grad));
            CHECK(testing::max_abs_diff(p.parameter->grad, Tensor<float>(p.parameter->grad.shape())) > 0);
        }
    }
    const Tensor<float> eval_logits = model->forward(x, Context{});
    CHECK(all_finite(eval_logits));
}

TEST_CASE("custom CNN rejects sizes it cannot build", "[models][custom_cnn][errors]") {
    CHECK_THROWS_WITH(models::make_custom_cnn<float>(4, 31),
                      Catch::Contains("make_custom_cnn: image_size must be at least 32 (five 2x2 poolings), got 31"));
    CHECK_THROWS_WITH(models::make_custom_cnn<float>(1),
                      Catch::Contains("make_custom_cnn: classes must be at least 2, got 1"));
}

TEST_CASE("gradients flow through a small network of the custom CNN's layers", "[models][custom_cnn][gradcheck]") {
    for (const bool training : {true, false}) {
        Sequential<double> model;
        model.emplace<Conv2D<double>>(2, 3, 1, Padding::same, ActivationFn::relu);
        model.emplace<SeparableConv2D<double>>(3, 3, 1, Padding::same, ActivationFn::relu);
        model.emplace<BatchNormalization<double>>();
        model.emplace<MaxPooling2D<double>>(2);
        model.emplace<Dropout<double>>(0.3);
        model.emplace<Flatten<double>>();
        model.emplace<Dense<double>>(4, ActivationFn::relu);
        model.emplace<Dense<double>>(3);
        model.build(Shape{4, 4, 2});
        Rng rng(3);
        model.initialize(rng);
        // Larger kernels than glorot's so the signal is not tiny in inference mode.
        for (const auto& p : model.named_parameters())
            if (p.name.find("kernel") != std::string::npos)
                p.parameter->value.copy_from(random_tensor<double>(p.parameter->value.shape(), 4));
        INFO((training ? "training" : "inference"));
        testing::check_module_gradients(model, random_tensor<double>(Shape{2, 4, 4, 2}, 5), training);
    }
}

// Plain gradient descent cannot fit the full model through its 0.7 dropout in
// a few steps (the study trains it with Adam), so a small model of the same
// family (two Conv2D, separable blocks with BatchNorm and pooling, dropout,
// Flatten, Dense head) learns 8 random images; its BatchNorm layers use
// momentum 0.9 so the moving statistics catch up within the test.
TEST_CASE("a small model of the custom CNN's family overfits 8 images with gradient descent",
          "[models][custom_cnn][overfit]") {
    Sequential<float> model;
    model.emplace<Conv2D<float>>(8, 3, 1, Padding::same, ActivationFn::relu);
    model.emplace<Conv2D<float>>(8, 3, 1, Padding::same, ActivationFn::relu);
    model.emplace<MaxPooling2D<float>>(2);
    for (const Index filters : {16, 32}) {
        model.emplace<SeparableConv2D<float>>(filters, 3, 1, Padding::same, ActivationFn::relu);
        model.emplace<SeparableConv2D<float>>(filters, 3, 1, Padding::same, ActivationFn::relu);
        model.emplace<BatchNormalization<float>>(0.9);
        model.emplace<MaxPooling2D<float>>(2);
        model.emplace<Dropout<float>>(0.2);
    }
    model.emplace<Flatten<float>>();
    model.emplace<Dense<float>>(64, ActivationFn::relu);
    model.emplace<Dropout<float>>(0.3);
    model.emplace<Dense<float>>(32, ActivationFn::relu);
    model.emplace<Dense<float>>(4);
    model.build(Shape{16, 16, 3});
    Rng rng(10);
    model.initialize(rng);

    const auto x = random_tensor<float>(Shape{8, 16, 16, 3}, 1, 0.0f, 1.0f);
    const auto labels = Tensor<std::int32_t>::from_vector(Shape{8}, {0, 1, 2, 3, 3, 2, 1, 0});
    Tensor<float> probabilities(Shape{8, 4}), d_logits(Shape{8, 4});
    const Evaluation start = evaluate(model, x, labels);
    // Until every image is right with a small loss (checked every 10 steps), at most 400 steps.
    Evaluation now = start;
    int steps = 0;
    while (steps < 400 && !(now.correct == 8 && now.loss < 0.1f * start.loss)) {
        cpu::softmax_cross_entropy_forward(model.forward(x, Context{true, &rng}), labels, probabilities);
        cpu::softmax_cross_entropy_backward(probabilities, labels, d_logits);
        model.backward(d_logits, false);
        gradient_descent_step(model, 0.05f);
        if (++steps % 10 == 0) now = evaluate(model, x, labels);
    }
    INFO("after " << steps << " steps: loss " << start.loss << " -> " << now.loss << ", correct " << start.correct
                  << " -> " << now.correct);
    CHECK(start.correct < 8);
    CHECK(now.correct == 8);
    CHECK(now.loss < 0.1f * start.loss);
}

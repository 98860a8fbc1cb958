// DenseNet121/169/201 (Keras Applications, include_top=False) and the study's
// model 4 (DenseNet201 under the study's head): layer names, output shapes
// and parameter counts as tf_keras 2.21 reports them, parameter names, a
// forward pass, the torch-mode preprocessing against hand-computed values,
// the frozen backbone (backward never reaches it) and the unfrozen conv5
// block, and weight files that do not fit, naming the tensors.
// Equality with Keras' own outputs is tests/keras (densenet201_matches_keras).

#include <bcnn/io/weights.hpp>
#include <bcnn/models/densenet.hpp>
#include <bcnn/models/vgg16.hpp>
#include <catch2/catch.hpp>
#include <cmath>
#include <string>
#include <vector>

#include "nn/layer_checks.hpp"
#include "support/layer_table.hpp"
#include "support/temp_dir.hpp"

using namespace bcnn;
using namespace bcnn::nn;
using bcnn::testing::random_tensor;
using bcnn::testing::LayerRow;
using bcnn::testing::check_layers;
using bcnn::testing::all_finite;

namespace {

// Sets every trainable parameter's gradient to `value`.
void fill_gradients(Module<float>& module, float value) {
    for (const auto& p : module.named_parameters())
        if (!p.parameter->is_buffer) p.parameter->grad.fill(value);
}

// Whether every gradient of `module` still holds `value`.
bool gradients_all(Module<float>& module, float value) {
    for (const auto& p : module.named_parameters())
        if (!p.parameter->is_buffer)
            for (float g : p.parameter->grad.to_vector())
                if (g != value) return false;
    return true;
}

Module<float>& child(Module<float>& model, const std::string& name) {
    for (Module<float>* c : model.children())
        if (c->name() == name) return *c;
    FAIL("no child " << name);
    throw;  // unreachable: FAIL throws
}

}  // namespace

TEST_CASE("DenseNet201 backbone has Keras' layers, output shapes and parameter counts", "[models][densenet]") {
    auto model = models::make_densenet_backbone<float>(201);
    CHECK(model->name() == "densenet201");
    CHECK(model->input_shape() == Shape{150, 150, 3});
    // tf_keras 2.21, DenseNet201(include_top=False, input_shape=(150, 150, 3)), its
    // layers' parameters summed per bcnn child (conv2 = every conv2_block* layer).
    check_layers(*model, {{"zero_padding2d", {156, 156, 3}, 0},     {"conv1", {75, 75, 64}, 9664},
                          {"zero_padding2d_1", {77, 77, 64}, 0},    {"pool1", {38, 38, 64}, 0},
                          {"conv2", {38, 38, 256}, 338304},         {"pool2_bn", {38, 38, 256}, 1024},
                          {"pool2_relu", {38, 38, 256}, 0},         {"pool2_conv", {38, 38, 128}, 32768},
                          {"pool2_pool", {19, 19, 128}, 0},         {"conv3", {19, 19, 512}, 930048},
                          {"pool3_bn", {19, 19, 512}, 2048},        {"pool3_relu", {19, 19, 512}, 0},
                          {"pool3_conv", {19, 19, 256}, 131072},    {"pool3_pool", {9, 9, 256}, 0},
                          {"conv4", {9, 9, 1792}, 8180736},         {"pool4_bn", {9, 9, 1792}, 7168},
                          {"pool4_relu", {9, 9, 1792}, 0},          {"pool4_conv", {9, 9, 896}, 1605632},
                          {"pool4_pool", {4, 4, 896}, 0},           {"conv5", {4, 4, 1920}, 7075840},
                          {"bn", {4, 4, 1920}, 7680},               {"relu", {4, 4, 1920}, 0}});
    CHECK(model->output_shape() == Shape{4, 4, 1920});
    CHECK(model->count_params() == 18321984);
    CHECK(model->count_trainable_params() == 18092928);
    CHECK(dynamic_cast<DenseBlock<float>&>(model->at(14)).size() == 48);
    CHECK(dynamic_cast<DenseBlock<float>&>(model->at(19)).size() == 32);

    const auto params = model->named_parameters();
    REQUIRE(params.size() == 1004);  // Keras: len(model.weights)
    CHECK(params[0].name == "conv1/conv/kernel");
    CHECK(params[0].parameter->value.shape() == Shape{7, 7, 3, 64});
    CHECK(params[1].name == "conv1/bn/gamma");
    CHECK(params[4].name == "conv1/bn/moving_variance");
    CHECK(params[5].name == "conv2/block1/0_bn/gamma");
    CHECK(params[9].name == "conv2/block1/1_conv/kernel");
    CHECK(params[9].parameter->value.shape() == Shape{1, 1, 64, 128});
    CHECK(params[14].name == "conv2/block1/2_conv/kernel");
    CHECK(params[14].parameter->value.shape() == Shape{3, 3, 128, 32});
    CHECK(params.back().name == "bn/moving_variance");
    CHECK(params.back().parameter->value.shape() == Shape{1920});
    bool found_transition = false;
    for (const auto& p : params)
        if (p.name == "pool4_conv/kernel") {
            found_transition = true;
            CHECK(p.parameter->value.shape() == Shape{1, 1, 1792, 896});
        }
    CHECK(found_transition);

    CHECK(models::make_densenet_backbone<float>(201, 32)->output_shape() == Shape{1, 1, 1920});
    CHECK(models::make_densenet_backbone<float>(201, 224)->output_shape() == Shape{7, 7, 1920});
}

TEST_CASE("DenseNet121 and DenseNet169 come from the same code with Keras' counts", "[models][densenet]") {
    // tf_keras 2.21, include_top=False, 150x150x3: total, trainable, weight tensors.
    auto d121 = models::make_densenet_backbone<float>(121);
    CHECK(d121->name() == "densenet121");
    CHECK(d121->output_shape() == Shape{4, 4, 1024});
    CHECK(d121->count_params() == 7037504);
    CHECK(d121->count_trainable_params() == 6953856);
    CHECK(d121->named_parameters().size() == 604);
    CHECK(child(*d121, "conv4").count_params() == 2873856);
    CHECK(child(*d121, "conv5").count_params() == 2186240);

    auto d169 = models::make_densenet_backbone<float>(169);
    CHECK(d169->name() == "densenet169");
    CHECK(d169->output_shape() == Shape{4, 4, 1664});
    CHECK(d169->count_params() == 12642880);
    CHECK(d169->count_trainable_params() == 12484480);
    CHECK(d169->named_parameters().size() == 844);
    CHECK(child(*d169, "pool4_conv").count_params() == 819200);
    CHECK(child(*d169, "conv5").count_params() == 5994496);
}

TEST_CASE("DenseNet201 classifier is the frozen backbone under the study's head, with Keras' counts",
          "[models][densenet]") {
    auto model = models::make_densenet201_classifier<float>();
    CHECK(model->name() == "sequential");
    CHECK(model->size() == 11);
    CHECK(model->at(0).name() == "densenet201");
    CHECK(model->at(1).output_shape() == Shape{30720});
    CHECK(model->at(2).count_params() == 4 * 30720);
    CHECK(model->at(3).name() == "dense");
    CHECK(model->at(3).count_params() == 7864576);  // 30720 * 256 + 256
    CHECK(model->at(10).name() == "dense_3");
    CHECK(model->output_shape() == Shape{4});
    // Keras (tf_keras 2.21) with base.trainable = False: 26,351,876 total, 7,967,940 trainable.
    CHECK(model->count_params() == 26351876);
    CHECK(model->count_trainable_params() == 7967940);
    CHECK_FALSE(model->at(0).trainable());
    const auto params = model->named_parameters();
    CHECK(params.front().name == "densenet201/conv1/conv/kernel");
    CHECK_FALSE(params.front().trainable);
    CHECK(params.back().name == "dense_3/bias");

    SECTION("conv5 and the final bn unfreeze for fine-tuning, and freeze again") {
        models::set_densenet_conv5_trainable(model->at(0));
        // Keras: trainable = name.startswith("conv5_") or name == "bn": 6,982,400 weights.
        CHECK(model->count_trainable_params() == 7967940 + 6982400);
        for (const auto& p : model->named_parameters()) {
            const bool top = p.name.rfind("densenet201/conv5/", 0) == 0 || p.name.rfind("densenet201/bn/", 0) == 0;
            if (p.name.rfind("densenet201/", 0) == 0) CHECK(p.trainable == (top && !p.parameter->is_buffer));
        }
        models::set_densenet_conv5_trainable(model->at(0), false);
        CHECK(model->count_trainable_params() == 7967940);
    }
}

TEST_CASE("DenseNet and its classifier run forward on small images", "[models][densenet]") {
    Rng rng(7);
    auto backbone = models::make_densenet_backbone<float>(121, 32);
    backbone->initialize(rng);
    const auto pixels = random_tensor<float>(Shape{2, 32, 32, 3}, 3, 0.0f, 255.0f);
    Tensor<float> x(pixels.shape());
    models::densenet_preprocess(pixels, x);
    const Tensor<float> features = backbone->forward(x, Context{});
    CHECK(features.shape() == Shape{2, 1, 1, 1024});
    CHECK(all_finite(features));
    CHECK(testing::max_abs_diff(features, Tensor<float>(features.shape())) > 0);

    auto classifier = models::make_densenet201_classifier<float>(3, 32);
    classifier->initialize(rng);
    const Tensor<float> logits = classifier->forward(x, Context{});
    CHECK(logits.shape() == Shape{2, 3});
    CHECK(all_finite(logits));
}

TEST_CASE("the frozen DenseNet201 costs no backward: training reaches the head only", "[models][densenet]") {
    auto model = models::make_densenet201_classifier<float>(4, 32);
    Rng rng(9);
    model->initialize(rng);
    Module<float>& backbone = model->at(0);
    fill_gradients(backbone, 123.0f);
    const Tensor<float> dy = random_tensor<float>(Shape{2, 4}, 10);
    const Context training{true, &rng};

    SECTION("the backbone never ran forward, so a backward into it would throw") {
        Tensor<float> h = random_tensor<float>(Shape{2, 1, 1, 1920}, 11, 0.0f, 2.0f);
        for (std::size_t i = 1; i < model->size(); ++i) h = model->at(i).forward(h, training);
        CHECK_FALSE(model->backward(dy, false).defined());
        CHECK(gradients_all(backbone, 123.0f));
        CHECK(testing::max_abs(testing::parameter(*model, "dense/kernel").grad) > 0);
    }
    SECTION("conv5 and bn unfrozen: their gradients are set, conv4's never touched") {
        models::set_densenet_conv5_trainable(backbone);
        const Tensor<float> pixels = random_tensor<float>(Shape{2, 32, 32, 3}, 12, 0.0f, 255.0f);
        Tensor<float> x(pixels.shape());
        models::densenet_preprocess(pixels, x);
        model->forward(x, training);
        CHECK_FALSE(model->backward(dy, false).defined());
        CHECK(gradients_all(child(backbone, "conv4"), 123.0f));
        CHECK(gradients_all(child(backbone, "conv1"), 123.0f));
        CHECK_FALSE(gradients_all(child(backbone, "conv5"), 123.0f));
        CHECK_FALSE(gradients_all(child(backbone, "bn"), 123.0f));
        for (const auto& p : child(backbone, "conv5").named_parameters())
            if (!p.parameter->is_buffer) REQUIRE(all_finite(p.parameter->grad));
    }
}

TEST_CASE("DenseNet preprocessing is Keras' torch mode: /255, ImageNet mean and std", "[models][densenet]") {
    // Two pixels, RGB (10, 20, 30) and (255, 0, 128).
    const auto rgb = Tensor<double>::from_vector(Shape{1, 1, 2, 3}, {10, 20, 30, 255, 0, 128});
    const double mean[3] = {0.485, 0.456, 0.406}, std_dev[3] = {0.229, 0.224, 0.225};
    const double pixels[6] = {10, 20, 30, 255, 0, 128};
    std::vector<double> expected(6);
    for (int i = 0; i < 6; ++i) expected[i] = (pixels[i] / 255 - mean[i % 3]) / std_dev[i % 3];
    Tensor<double> y(rgb.shape());
    models::densenet_preprocess(rgb, y);
    CHECK(y.to_vector() == expected);

    SECTION("pixels scaled to [0, 1] with input_scale 255") {
        Tensor<double> scaled = rgb.clone();
        for (Index i = 0; i < scaled.numel(); ++i) scaled.data()[i] /= 255;
        models::densenet_preprocess(scaled, y, 255.0);
        const std::vector<double> got = y.to_vector();
        for (std::size_t i = 0; i < got.size(); ++i) CHECK(got[i] == Approx(expected[i]).epsilon(1e-12));
    }
    SECTION("in place, and into a channel slice with the neighbours untouched") {
        Tensor<double> inplace = rgb.clone();
        models::densenet_preprocess(inplace, inplace);
        CHECK(inplace.to_vector() == expected);
        Tensor<double> wide(Shape{1, 1, 2, 5});
        wide.fill(-1);
        Tensor<double> slice = wide.channels(1, 4);
        models::densenet_preprocess(rgb, slice);
        CHECK(wide.to_vector() == std::vector<double>{-1, expected[0], expected[1], expected[2], -1,  //
                                                      -1, expected[3], expected[4], expected[5], -1});
    }
    SECTION("float gives the values of Keras' float32 arithmetic, bit for bit") {
        const auto rgb_f = Tensor<float>::from_vector(Shape{1, 1, 1, 3}, {10, 20, 30});
        Tensor<float> y_f(rgb_f.shape());
        models::densenet_preprocess(rgb_f, y_f);
        CHECK(y_f.to_vector() == std::vector<float>{(10.0f / 255.0f - 0.485f) / 0.229f,
                                                    (20.0f / 255.0f - 0.456f) / 0.224f,
                                                    (30.0f / 255.0f - 0.406f) / 0.225f});
        // Batches already divided by 255 give the same bits.
        const auto scaled_f = Tensor<float>::from_vector(Shape{1, 1, 1, 3}, {10.0f / 255, 20.0f / 255, 30.0f / 255});
        Tensor<float> y_scaled(rgb_f.shape());
        models::densenet_preprocess(scaled_f, y_scaled, 255.0f);
        CHECK(y_scaled.to_vector() == y_f.to_vector());
    }
}

TEST_CASE("DenseNet rejects what it cannot build or preprocess", "[models][densenet][errors]") {
    CHECK_THROWS_WITH(models::make_densenet_backbone<float>(120),
                      Catch::Contains("densenet_block_layers: DenseNet120 is not one of 121, 169, 201"));
    CHECK_THROWS_WITH(models::make_densenet_backbone<float>(201, 31),
                      Catch::Contains("make_densenet_backbone: image_size must be at least 32, got 31"));
    CHECK_THROWS_WITH(models::make_densenet201_classifier<float>(1),
                      Catch::Contains("make_densenet201_classifier: classes must be at least 2, got 1"));
    auto vgg16 = models::make_vgg16_backbone<float>(32);
    CHECK_THROWS_WITH(models::set_densenet_conv5_trainable(*vgg16),
                      Catch::Contains("set_densenet_conv5_trainable: model 'vgg16' has no layer 'conv5'"));
    Tensor<float> rgba(Shape{1, 2, 2, 4}), y4(Shape{1, 2, 2, 4});
    CHECK_THROWS_WITH(models::densenet_preprocess(rgba, y4),
                      Catch::Contains("densenet_preprocess: x has shape (1, 2, 2, 4), expected (N, H, W, 3) RGB"));
    Tensor<float> rgb(Shape{1, 2, 2, 3}), small(Shape{1, 2, 1, 3});
    CHECK_THROWS_WITH(models::densenet_preprocess(rgb, small),
                      Catch::Contains("densenet_preprocess: y has shape (1, 2, 1, 3), expected (1, 2, 2, 3)"));
    CHECK_THROWS_WITH(models::densenet_preprocess(rgb, rgb, 0.0f),
                      Catch::Contains("densenet_preprocess: input_scale must be positive, got 0"));
}

TEST_CASE("DenseNet201 weights load into the classifier's backbone; other models' files do not fit",
          "[models][densenet][io]") {
    testing::TempDir dir;
    auto densenet = models::make_densenet_backbone<float>(201, 32);
    Rng rng(11);
    densenet->initialize(rng);
    const std::string densenet_file = dir.file("densenet201.safetensors");
    io::save_weights(densenet_file, *densenet);

    auto classifier = models::make_densenet201_classifier<float>(4, 32);
    io::load_weights(densenet_file, classifier->at(0));
    const auto source = densenet->named_parameters();
    const auto loaded = classifier->at(0).named_parameters();
    REQUIRE(source.size() == loaded.size());
    for (std::size_t i = 0; i < source.size(); ++i) {
        INFO(source[i].name);
        REQUIRE(loaded[i].name == source[i].name);
        REQUIRE(testing::max_abs_diff(loaded[i].parameter->value, source[i].parameter->value) == 0);
    }

    SECTION("a VGG16 file given to DenseNet201") {
        auto vgg16 = models::make_vgg16_backbone<float>(32);
        const std::string vgg16_file = dir.file("vgg16.safetensors");
        io::save_weights(vgg16_file, *vgg16);
        CHECK_THROWS_WITH(io::load_weights(vgg16_file, *densenet),
                          Catch::Contains("does not fit model 'densenet201': missing 1004 tensors (conv1/conv/kernel, "
                                          "conv1/bn/gamma, conv1/bn/beta, conv1/bn/moving_mean, "
                                          "conv1/bn/moving_variance, ...), unexpected 26 (block1_conv1/kernel, "
                                          "block1_conv1/bias, block1_conv2/kernel, block1_conv2/bias, "
                                          "block2_conv1/kernel, ...)"));
        CHECK_THROWS_WITH(io::load_weights(densenet_file, *vgg16),
                          Catch::Contains("does not fit model 'vgg16': missing 26 tensors (block1_conv1/kernel, ") &&
                              Catch::Contains("unexpected 1004 (conv1/conv/kernel, "));
    }
    SECTION("a DenseNet121 file given to DenseNet201: the extra layers and every changed shape named") {
        auto d121 = models::make_densenet_backbone<float>(121, 32);
        const std::string d121_file = dir.file("densenet121.safetensors");
        io::save_weights(d121_file, *d121);
        // DenseNet201 has 24 more conv4 layers and 16 more conv5 layers, of 10 tensors each.
        CHECK_THROWS_WITH(io::load_weights(d121_file, *densenet),
                          Catch::Contains("missing 400 tensors (conv4/block25/0_bn/gamma, conv4/block25/0_bn/beta, ") &&
                              Catch::Contains("tensor \"pool4_bn/gamma\" has shape (1024) in the file, (1792) in the "
                                              "model"));
    }
    SECTION("the whole classifier's file is not a backbone file") {
        const std::string classifier_file = dir.file("classifier.safetensors");
        io::save_weights(classifier_file, *classifier);
        CHECK_THROWS_WITH(io::load_weights(classifier_file, *densenet),
                          Catch::Contains("missing 1004 tensors (conv1/conv/kernel, ") &&
                              Catch::Contains("unexpected 1020 (densenet201/conv1/conv/kernel, "));
    }
}

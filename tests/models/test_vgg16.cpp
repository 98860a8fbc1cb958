// VGG16 (Keras Applications, include_top=False) and the study's model 3:
// Keras' layer names, output shapes and parameter counts, a forward pass,
// the caffe-mode preprocessing against hand-computed values, and weight files
// that do not fit (VGG16 <-> custom CNN) failing with the tensors named.
// Equality with Keras' own outputs is tests/keras (run_keras_check.sh, bcnn_vs_keras.cpp).

#include <bcnn/io/weights.hpp>
#include <bcnn/models/custom_cnn.hpp>
#include <bcnn/models/vgg16.hpp>
#include <catch2/catch.hpp>
#include <cmath>
#include <string>
#include <vector>

#include "support/gradcheck.hpp"
#include "support/random.hpp"
#include "support/layer_table.hpp"
#include "support/temp_dir.hpp"

using namespace bcnn;
using namespace bcnn::nn;
using bcnn::testing::random_tensor;
using bcnn::testing::LayerRow;
using bcnn::testing::check_layers;
using bcnn::testing::all_finite;

TEST_CASE("VGG16 backbone has Keras' layer names, output shapes and parameter counts", "[models][vgg16]") {
    auto model = models::make_vgg16_backbone<float>();
    CHECK(model->name() == "vgg16");
    CHECK(model->input_shape() == Shape{150, 150, 3});
    check_layers(*model, {{"block1_conv1", {150, 150, 64}, 1792},     {"block1_conv2", {150, 150, 64}, 36928},
                          {"block1_pool", {75, 75, 64}, 0},           {"block2_conv1", {75, 75, 128}, 73856},
                          {"block2_conv2", {75, 75, 128}, 147584},    {"block2_pool", {37, 37, 128}, 0},
                          {"block3_conv1", {37, 37, 256}, 295168},    {"block3_conv2", {37, 37, 256}, 590080},
                          {"block3_conv3", {37, 37, 256}, 590080},    {"block3_pool", {18, 18, 256}, 0},
                          {"block4_conv1", {18, 18, 512}, 1180160},   {"block4_conv2", {18, 18, 512}, 2359808},
                          {"block4_conv3", {18, 18, 512}, 2359808},   {"block4_pool", {9, 9, 512}, 0},
                          {"block5_conv1", {9, 9, 512}, 2359808},     {"block5_conv2", {9, 9, 512}, 2359808},
                          {"block5_conv3", {9, 9, 512}, 2359808},     {"block5_pool", {4, 4, 512}, 0}});
    CHECK(model->output_shape() == Shape{4, 4, 512});
    CHECK(model->count_params() == 14714688);
    CHECK(model->count_trainable_params() == 14714688);

    const auto params = model->named_parameters();
    REQUIRE(params.size() == 26);
    CHECK(params.front().name == "block1_conv1/kernel");
    CHECK(params.front().parameter->value.shape() == Shape{3, 3, 3, 64});
    CHECK(params[1].name == "block1_conv1/bias");
    CHECK(params.back().name == "block5_conv3/bias");

    CHECK(models::make_vgg16_backbone<float>(32)->output_shape() == Shape{1, 1, 512});
    CHECK(models::make_vgg16_backbone<float>(224)->output_shape() == Shape{7, 7, 512});
}

TEST_CASE("VGG16 classifier is the frozen backbone under the study's head, with Keras' counts",
          "[models][vgg16]") {
    auto model = models::make_vgg16_classifier<float>();
    CHECK(model->name() == "sequential");
    check_layers(*model, {{"vgg16", {4, 4, 512}, 14714688},
                          {"flatten", {8192}, 0},
                          {"batch_normalization", {8192}, 32768},
                          {"dense", {256}, 2097408},
                          {"dropout", {256}, 0},
                          {"batch_normalization_1", {256}, 1024},
                          {"dense_1", {128}, 32896},
                          {"dropout_1", {128}, 0},
                          {"dense_2", {64}, 8256},
                          {"dropout_2", {64}, 0},
                          {"dense_3", {4}, 260}});
    CHECK(dynamic_cast<Dropout<float>&>(model->at(4)).rate() == 0.7);
    CHECK(dynamic_cast<Dropout<float>&>(model->at(7)).rate() == 0.5);
    CHECK(dynamic_cast<Dropout<float>&>(model->at(9)).rate() == 0.3);
    // Keras (tf_keras 2.21) with base.trainable = False: 16,887,300 total,
    // 2,155,716 trainable, 14,731,584 non-trainable (backbone + BN moving statistics).
    CHECK(model->count_params() == 16887300);
    CHECK(model->count_trainable_params() == 2155716);
    CHECK_FALSE(model->at(0).trainable());
    const auto params = model->named_parameters();
    CHECK(params.front().name == "vgg16/block1_conv1/kernel");
    CHECK_FALSE(params.front().trainable);
    CHECK(params.back().name == "dense_3/bias");
    CHECK(params.back().trainable);

    model->at(0).set_trainable(true);
    CHECK(model->count_trainable_params() == 2155716 + 14714688);
    CHECK(models::make_vgg16_classifier<float>(3, 32)->output_shape() == Shape{3});
}

TEST_CASE("VGG16 and its classifier run forward on small images", "[models][vgg16]") {
    Rng rng(7);
    auto backbone = models::make_vgg16_backbone<float>(32);
    backbone->initialize(rng);
    const auto pixels = random_tensor<float>(Shape{2, 32, 32, 3}, 3, 0.0f, 255.0f);
    Tensor<float> x(pixels.shape());
    models::vgg16_preprocess(pixels, x);
    const Tensor<float> features = backbone->forward(x, Context{});
    CHECK(features.shape() == Shape{2, 1, 1, 512});
    CHECK(all_finite(features));
    CHECK(testing::max_abs_diff(features, Tensor<float>(features.shape())) > 0);

    auto classifier = models::make_vgg16_classifier<float>(4, 32);
    classifier->initialize(rng);
    const Tensor<float> logits = classifier->forward(x, Context{});
    CHECK(logits.shape() == Shape{2, 4});
    CHECK(all_finite(logits));
}

TEST_CASE("VGG16 preprocessing is Keras' caffe mode: RGB to BGR minus the ImageNet means", "[models][vgg16]") {
    // Two pixels, RGB (10, 20, 30) and (255, 0, 128).
    const auto rgb = Tensor<double>::from_vector(Shape{1, 1, 2, 3}, {10, 20, 30, 255, 0, 128});
    const std::vector<double> expected = {30 - 103.939, 20 - 116.779, 10 - 123.68,
                                          128 - 103.939, 0 - 116.779, 255 - 123.68};
    Tensor<double> y(rgb.shape());
    models::vgg16_preprocess(rgb, y);
    CHECK(y.to_vector() == expected);

    SECTION("pixels scaled to [0, 1] with input_scale 255") {
        Tensor<double> scaled = rgb.clone();
        for (Index i = 0; i < scaled.numel(); ++i) scaled.data()[i] /= 255;
        models::vgg16_preprocess(scaled, y, 255.0);
        const std::vector<double> got = y.to_vector();
        for (std::size_t i = 0; i < got.size(); ++i) CHECK(got[i] == Approx(expected[i]).epsilon(1e-12));
    }
    SECTION("in place") {
        Tensor<double> inplace = rgb.clone();
        models::vgg16_preprocess(inplace, inplace);
        CHECK(inplace.to_vector() == expected);
    }
    SECTION("into a channel slice of a wider buffer, neighbours untouched") {
        Tensor<double> wide(Shape{1, 1, 2, 5});
        wide.fill(-1);
        Tensor<double> slice = wide.channels(1, 4);
        models::vgg16_preprocess(rgb, slice);
        CHECK(wide.to_vector() == std::vector<double>{-1, expected[0], expected[1], expected[2], -1,  //
                                                      -1, expected[3], expected[4], expected[5], -1});
    }
    SECTION("float gives the same values as Keras' float32 arithmetic") {
        const auto rgb_f = Tensor<float>::from_vector(Shape{1, 1, 1, 3}, {10, 20, 30});
        Tensor<float> y_f(rgb_f.shape());
        models::vgg16_preprocess(rgb_f, y_f);
        CHECK(y_f.to_vector() == std::vector<float>{30.0f - 103.939f, 20.0f - 116.779f, 10.0f - 123.68f});
    }
}

TEST_CASE("VGG16 preprocessing rejects what is not an RGB batch", "[models][vgg16][errors]") {
    Tensor<float> rgba(Shape{1, 2, 2, 4}), y4(Shape{1, 2, 2, 4});
    CHECK_THROWS_WITH(models::vgg16_preprocess(rgba, y4),
                      Catch::Contains("vgg16_preprocess: x has shape (1, 2, 2, 4), expected (N, H, W, 3) RGB"));
    Tensor<float> rgb(Shape{1, 2, 2, 3}), small(Shape{1, 2, 1, 3});
    CHECK_THROWS_WITH(models::vgg16_preprocess(rgb, small),
                      Catch::Contains("vgg16_preprocess: y has shape (1, 2, 1, 3), expected (1, 2, 2, 3)"));
    Tensor<float> flat(Shape{4, 3});
    CHECK_THROWS_WITH(models::vgg16_preprocess(flat, flat),
                      Catch::Contains("vgg16_preprocess: x must have rank 4, got shape (4, 3)"));
}

TEST_CASE("VGG16 rejects sizes it cannot build", "[models][vgg16][errors]") {
    CHECK_THROWS_WITH(models::make_vgg16_backbone<float>(31),
                      Catch::Contains("make_vgg16_backbone: image_size must be at least 32 (five 2x2 poolings), got 31"));
    CHECK_THROWS_WITH(models::make_vgg16_classifier<float>(1),
                      Catch::Contains("make_vgg16_classifier: classes must be at least 2, got 1"));
    Sequential<float> model;
    CHECK_THROWS_WITH(models::add_study_head(model, 1), Catch::Contains("add_study_head: classes must be at least 2, got 1"));
}

TEST_CASE("a VGG16 weights file loads into the classifier's backbone", "[models][vgg16][io]") {
    testing::TempDir dir;
    auto backbone = models::make_vgg16_backbone<float>(32);
    Rng rng(11);
    backbone->initialize(rng);
    io::save_weights(dir.file("vgg16.safetensors"), *backbone);

    auto classifier = models::make_vgg16_classifier<float>(4, 32);
    io::load_weights(dir.file("vgg16.safetensors"), classifier->at(0));
    const auto source = backbone->named_parameters();
    const auto loaded = classifier->at(0).named_parameters();
    REQUIRE(source.size() == loaded.size());
    for (std::size_t i = 0; i < source.size(); ++i) {
        INFO(source[i].name);
        CHECK(loaded[i].name == source[i].name);
        CHECK(testing::max_abs_diff(loaded[i].parameter->value, source[i].parameter->value) == 0);
    }
}

TEST_CASE("VGG16 and custom CNN weight files do not load into each other, naming the tensors",
          "[models][vgg16][io][errors]") {
    testing::TempDir dir;
    auto vgg16 = models::make_vgg16_backbone<float>(32);
    auto custom = models::make_custom_cnn<float>();
    const std::string vgg16_file = dir.file("vgg16.safetensors"), custom_file = dir.file("custom.safetensors");
    io::save_weights(vgg16_file, *vgg16);
    io::save_weights(custom_file, *custom);

    CHECK_THROWS_WITH(io::load_weights(vgg16_file, *custom),
                      Catch::Contains("does not fit model 'sequential': missing 52 tensors (conv2d/kernel, conv2d/bias, "
                                      "conv2d_1/kernel, conv2d_1/bias, separable_conv2d/depthwise_kernel, ...), "
                                      "unexpected 26 (block1_conv1/kernel, block1_conv1/bias, block1_conv2/kernel, "
                                      "block1_conv2/bias, block2_conv1/kernel, ...)"));
    CHECK_THROWS_WITH(io::load_weights(custom_file, *vgg16),
                      Catch::Contains("does not fit model 'vgg16': missing 26 tensors (block1_conv1/kernel, "
                                      "block1_conv1/bias, block1_conv2/kernel, block1_conv2/bias, block2_conv1/kernel, "
                                      "...), unexpected 52 (conv2d/kernel, conv2d/bias, conv2d_1/kernel, conv2d_1/bias, "
                                      "separable_conv2d/depthwise_kernel, ...)"));
    // The whole classifier's file is not a backbone file: its names carry the "vgg16/" prefix.
    auto classifier = models::make_vgg16_classifier<float>(4, 32);
    const std::string classifier_file = dir.file("classifier.safetensors");
    io::save_weights(classifier_file, *classifier);
    CHECK_THROWS_WITH(io::load_weights(classifier_file, *vgg16),
                      Catch::Contains("missing 26 tensors (block1_conv1/kernel, ") &&
                          Catch::Contains("unexpected 42 (vgg16/block1_conv1/kernel, "));
    // A backbone for another image size fits (convolutions do not depend on it); the
    // head of a classifier for another size does not, and the error gives both shapes.
    auto classifier_64 = models::make_vgg16_classifier<float>(4, 64);
    CHECK_THROWS_WITH(io::load_weights(classifier_file, *classifier_64),
                      Catch::Contains("tensor \"batch_normalization/gamma\" has shape (512) in the file, (2048) in the model"));
}

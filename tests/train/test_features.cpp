// The frozen-backbone feature path: a backbone's features computed once
// (compute_features, in batches, preprocessing done by the loader) and the
// head alone (nn::SequentialTail) on them give the whole model's logits,
// for VGG16 and DenseNet201; training the head on the features with fit()
// is training the whole frozen model on the images, and its checkpoint is
// the whole model's. Features computed in other batches differ from the
// whole model's in the last bits (GEMM blocking depends on the batch: about
// 1e-7 relative), so training is compared with plain SGD, whose updates are
// linear in the gradients (Adam's normalisation turns such differences in
// near-zero gradients into differences of up to its learning rate), within
// 1e-3: the head's first BatchNorm normalises 4 samples, which amplifies them
// to about 2e-4 of the largest parameter, as much as between two feature
// passes in batches of 3 and 5. A misaligned sample, a dropout draw or a
// BatchNorm mode that differed would change the parameters by far more.

#include <bcnn/io/checkpoint.hpp>
#include <bcnn/models/densenet.hpp>
#include <bcnn/models/vgg16.hpp>
#include <bcnn/nn/sequential_tail.hpp>
#include <bcnn/optim/sgd.hpp>
#include <bcnn/train/features.hpp>
#include <bcnn/train/fit.hpp>
#include <catch2/catch.hpp>
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <functional>
#include <memory>
#include <random>
#include <vector>

#include "support/gradcheck.hpp"
#include "support/temp_dir.hpp"

using namespace bcnn;

namespace {

using Preprocess = std::function<void(Tensor<float>&)>;

struct Images {
    Tensor<std::uint8_t> pixels;  // (n, size, size, 3)
    Tensor<std::int32_t> labels;  // (n), 0 1 2 3 0 ...
    std::vector<Index> all;
};

Images random_images(Index n, Index size, unsigned seed) {
    Images set{Tensor<std::uint8_t>(Shape{n, size, size, 3}), Tensor<std::int32_t>(Shape{n}), {}};
    std::mt19937 generator(seed);
    std::uniform_int_distribution<int> byte(0, 255);
    for (Index i = 0; i < set.pixels.numel(); ++i) set.pixels.data()[i] = static_cast<std::uint8_t>(byte(generator));
    for (Index i = 0; i < n; ++i) {
        set.labels.data()[i] = static_cast<std::int32_t>(i % 4);
        set.all.push_back(i);
    }
    return set;
}

// The program's transform: the backbone's preprocessing on one /255 sample (H, W, 3).
data::SampleTransform as_transform(const Preprocess& preprocess) {
    return [preprocess](const Tensor<float>& image, std::uint64_t, Index) {
        Tensor<float> x = image.reshape(Shape{1, image.dim(0), image.dim(1), image.dim(2)});
        preprocess(x);
    };
}

// The images as one float batch (/255), preprocessed as a whole.
Tensor<float> preprocessed_batch(const Images& set, const Preprocess& preprocess) {
    Tensor<float> x = Tensor<float>::uninitialized(set.pixels.shape());
    for (Index i = 0; i < x.numel(); ++i) x.data()[i] = static_cast<float>(set.pixels.data()[i]) / 255.0f;
    preprocess(x);
    return x;
}

double max_abs(const Tensor<float>& t) {
    double m = 0;
    for (float v : t.to_vector()) m = std::max(m, static_cast<double>(std::fabs(v)));
    return m;
}

// max |a - b| / max |a|
double relative_difference(const Tensor<float>& a, const Tensor<float>& b) {
    return testing::max_abs_diff(a, b) / max_abs(a);
}

// Whole-model logits on the images vs the head's logits on features computed in batches of 2.
void check_head_on_features(nn::Sequential<float>& model, const Preprocess& preprocess) {
    const Images set = random_images(5, 32, 17);
    const Tensor<float> whole = model.forward(preprocessed_batch(set, preprocess), nn::Context{}).clone();
    REQUIRE(whole.shape() == Shape{5, 4});

    data::BatchLoaderOptions options;
    options.batch_size = 2;
    options.shuffle = false;
    options.transform = as_transform(preprocess);
    data::BatchLoader loader(set.pixels, set.labels, set.all, options);
    Index last_done = 0;
    const Tensor<float> features = train::compute_features(model.at(0), loader, 5, [&](Index done, Index total) {
        CHECK(total == 5);
        CHECK(done > last_done);
        last_done = done;
    });
    CHECK(last_done == 5);
    CHECK(features.shape() == Shape{5, 1, 1, model.at(0).output_shape()[2]});

    nn::SequentialTail<float> head(model, 1);
    const Tensor<float> from_features = head.forward(features, nn::Context{});
    INFO("max |logits| " << max_abs(whole));
    CHECK(max_abs(whole) > 1e-3);
    CHECK(relative_difference(whole, from_features) < 1e-5);
}

// Sets every BatchNorm's moving statistics to random values (mean in
// [-0.5, 0.5), variance in [0.5, 1.5)), so that inference uses them.
void randomize_moving_statistics(nn::Module<float>& model, std::uint64_t seed) {
    Rng rng(seed);
    for (const auto& p : model.named_parameters()) {
        const std::string& name = p.name;
        if (name.size() >= 11 && name.compare(name.size() - 11, 11, "moving_mean") == 0)
            rng.uniform(p.parameter->value, -0.5f, 0.5f);
        else if (name.size() >= 15 && name.compare(name.size() - 15, 15, "moving_variance") == 0)
            rng.uniform(p.parameter->value, 0.5f, 1.5f);
    }
}

}  // namespace

TEST_CASE("VGG16: the head on features computed once gives the whole model's logits", "[train][features][vgg16]") {
    auto model = models::make_vgg16_classifier<float>(4, 32);
    Rng rng(5);
    model->initialize(rng);
    randomize_moving_statistics(*model, 6);
    check_head_on_features(*model, [](Tensor<float>& x) { models::vgg16_preprocess(x, x, 255.0f); });
}

TEST_CASE("DenseNet201: the head on features computed once gives the whole model's logits",
          "[train][features][densenet]") {
    auto model = models::make_densenet201_classifier<float>(4, 32);
    Rng rng(7);
    model->initialize(rng);
    randomize_moving_statistics(*model, 8);
    check_head_on_features(*model, [](Tensor<float>& x) { models::densenet_preprocess(x, x, 255.0f); });
}

TEST_CASE("training the head on cached features is training the frozen model on images", "[train][features][fit]") {
    testing::TempDir dir;
    const Preprocess preprocess = [](Tensor<float>& x) { models::vgg16_preprocess(x, x, 255.0f); };
    const Images set = random_images(10, 32, 23);
    const auto initial_model = [] {  // the same weights every call
        auto model = models::make_vgg16_classifier<float>(4, 32);
        Rng init(3);
        model->initialize(init);
        return model;
    };
    auto whole = initial_model(), cached = initial_model();

    data::BatchLoaderOptions shuffled;
    shuffled.batch_size = 4;
    shuffled.seed = 11;
    const std::vector<Index> train{0, 1, 2, 3, 4, 5, 6, 7}, validation{8, 9};
    train::FitOptions fit_options;
    fit_options.epochs = 2;

    // The whole model on images, preprocessed by the loaders.
    data::BatchLoaderOptions on_images = shuffled;
    on_images.transform = as_transform(preprocess);
    data::BatchLoader images_train(set.pixels, set.labels, train, on_images);
    on_images.shuffle = false;
    data::BatchLoader images_validation(set.pixels, set.labels, validation, on_images);
    optim::SGD<float> sgd_whole(0.05);
    Rng dropout_whole(9);
    train::TrainingState<float> state_whole{*whole, sgd_whole, dropout_whole};
    const train::History history_whole = train::fit(state_whole, images_train, &images_validation, fit_options);

    // The head on features computed once (in order, batches of 3).
    data::BatchLoaderOptions in_order;
    in_order.batch_size = 3;
    in_order.shuffle = false;
    in_order.transform = as_transform(preprocess);
    data::BatchLoader feature_pass(set.pixels, set.labels, set.all, in_order);
    const Tensor<float> features = train::compute_features(cached->at(0), feature_pass, 10);
    nn::SequentialTail<float> head(*cached, 1);
    data::BatchLoader features_train(features, set.labels, train, shuffled);
    data::BatchLoaderOptions plain = shuffled;
    plain.shuffle = false;
    data::BatchLoader features_validation(features, set.labels, validation, plain);
    optim::SGD<float> sgd_head(0.05);
    Rng dropout_head(9);
    train::TrainingState<float> state_head{head, sgd_head, dropout_head};
    const train::History history_head = train::fit(state_head, features_train, &features_validation, fit_options);

    REQUIRE(history_head.size() == 2);
    for (std::size_t e = 0; e < 2; ++e)
        for (const char* key : {"loss", "accuracy", "val_loss", "val_accuracy"}) {
            INFO("epoch " << e + 1 << " " << key);
            CHECK(history_head[e].at(key) == Approx(history_whole[e].at(key)).epsilon(1e-5));
        }
    // Same parameters, by name: the head trained alike, the backbone untouched.
    auto reference = initial_model();
    const auto a = whole->named_parameters(), b = cached->named_parameters(), start = reference->named_parameters();
    REQUIRE(a.size() == b.size());
    for (std::size_t i = 0; i < a.size(); ++i) {
        INFO(a[i].name);
        REQUIRE(a[i].name == b[i].name);
        if (a[i].name.rfind("vgg16/", 0) == 0) {
            CHECK(testing::max_abs_diff(b[i].parameter->value, start[i].parameter->value) == 0);
        } else {
            CHECK(testing::max_abs_diff(a[i].parameter->value, start[i].parameter->value) > 0);
            CHECK(relative_difference(a[i].parameter->value, b[i].parameter->value) < 1e-3);
        }
    }
    // A checkpoint written through the head is the whole model's.
    const std::string checkpoint = dir.file("head.safetensors");
    io::save_checkpoint(checkpoint, head, sgd_head, io::CheckpointState());
    auto restored = models::make_vgg16_classifier<float>(4, 32);
    optim::SGD<float> sgd_restored(0.05);
    io::load_checkpoint(checkpoint, *restored, sgd_restored);
    const auto c = restored->named_parameters();
    for (std::size_t i = 0; i < b.size(); ++i) {
        INFO(b[i].name);
        CHECK(testing::max_abs_diff(b[i].parameter->value, c[i].parameter->value) == 0);
    }
}

TEST_CASE("compute_features leaves rows the loader does not serve at zero and checks its source",
          "[train][features]") {
    auto backbone = models::make_vgg16_backbone<float>(32);
    Rng rng(2);
    backbone->initialize(rng);
    const Images set = random_images(4, 32, 29);
    data::BatchLoader some(set.pixels, set.labels, {3, 1}, {2, false, 0, 2, {}});
    const Tensor<float> features = train::compute_features(*backbone, some, 4);
    REQUIRE(features.shape() == Shape{4, 1, 1, 512});
    CHECK(max_abs(features.slice(0, 0, 1)) == 0);
    CHECK(max_abs(features.slice(0, 2, 3)) == 0);
    CHECK(max_abs(features.slice(0, 1, 2)) > 0);
    CHECK(max_abs(features.slice(0, 3, 4)) > 0);

    data::BatchLoader beyond(set.pixels, set.labels, {0, 3}, {2, false, 0, 2, {}});
    CHECK_THROWS_WITH(train::compute_features(*backbone, beyond, 3),
                      Catch::Contains("compute_features: the loader served sample 3 of a source of 3"));
}

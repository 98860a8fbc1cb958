// recalibrate_batch_norm(): the moving statistics become the plain mean of the
// batches' statistics, the layers' momenta are restored, frozen layers and
// weights are untouched.

#include <catch2/catch.hpp>

#include <cstdint>
#include <random>
#include <vector>

#include <bcnn/nn/batch_norm.hpp>
#include <bcnn/nn/sequential.hpp>
#include <bcnn/train/recalibrate_batch_norm.hpp>

using namespace bcnn;

namespace {

struct Images {
    Tensor<std::uint8_t> pixels;
    Tensor<std::int32_t> labels;
    std::vector<Index> indices;
};

// n random (4, 3, 2) images.
Images random_images(Index n, unsigned seed) {
    Images set{Tensor<std::uint8_t>(Shape{n, 4, 3, 2}), Tensor<std::int32_t>(Shape{n}), {}};
    std::mt19937 generator(seed);
    std::uniform_int_distribution<int> byte(0, 255);
    for (Index i = 0; i < set.pixels.numel(); ++i) set.pixels.data()[i] = static_cast<std::uint8_t>(byte(generator));
    for (Index i = 0; i < n; ++i) {
        set.labels.data()[i] = 0;
        set.indices.push_back(i);
    }
    return set;
}

// Per channel of the images indices [first, first + count): mean and unbiased variance (Keras' moving variance), /255.
double batch_statistic(const Images& set, Index first, Index count, int channel, bool variance) {
    std::vector<double> values;
    for (Index i = first; i < first + count; ++i)
        for (Index p = 0; p < 12; ++p) values.push_back(set.pixels.data()[(i * 12 + p) * 2 + channel] / 255.0);
    double mean = 0;
    for (double v : values) mean += v;
    mean /= static_cast<double>(values.size());
    if (!variance) return mean;
    double ss = 0;
    for (double v : values) ss += (v - mean) * (v - mean);
    return ss / static_cast<double>(values.size() - 1);
}

}  // namespace

TEST_CASE("recalibrate_batch_norm sets moving statistics to the mean of the batches' statistics",
          "[train][batchnorm]") {
    const Images set = random_images(12, 4);
    nn::Sequential<float> model;
    auto& bn = model.emplace<nn::BatchNormalization<float>>(0.99);
    auto& frozen = model.emplace<nn::BatchNormalization<float>>(0.9);
    model.build(Shape{4, 3, 2});
    Rng rng(1);
    model.initialize(rng);
    frozen.set_trainable(false);
    data::BatchLoaderOptions options;
    options.batch_size = 4;
    options.shuffle = false;  // 3 batches in order: images 0-3, 4-7, 8-11
    data::BatchLoader loader(set.pixels, set.labels, set.indices, options);

    SECTION("all batches") {
        CHECK(train::recalibrate_batch_norm(model, loader, 100, rng) == 3);
        for (int c = 0; c < 2; ++c) {
            double mean = 0, variance = 0;
            for (Index b = 0; b < 3; ++b) {
                mean += batch_statistic(set, b * 4, 4, c, false) / 3;
                variance += batch_statistic(set, b * 4, 4, c, true) / 3;
            }
            const auto named = model.named_parameters();
            CHECK(named[2].name == "batch_normalization/moving_mean");
            CHECK(named[2].parameter->value.data()[c] == Approx(mean).epsilon(1e-5));
            CHECK(named[3].parameter->value.data()[c] == Approx(variance).epsilon(1e-5));
            // The frozen layer keeps its initial statistics.
            CHECK(named[6].parameter->value.data()[c] == 0.0f);
            CHECK(named[7].parameter->value.data()[c] == 1.0f);
        }
        CHECK(bn.momentum() == 0.99);
        CHECK(frozen.momentum() == 0.9);
    }
    SECTION("the first batch only") {
        CHECK(train::recalibrate_batch_norm(model, loader, 1, rng) == 1);
        const auto named = model.named_parameters();
        CHECK(named[2].parameter->value.data()[1] == Approx(batch_statistic(set, 0, 4, 1, false)).epsilon(1e-5));
        CHECK_THROWS_WITH(train::recalibrate_batch_norm(model, loader, 0, rng),
                          Catch::Contains("max_batches must be >= 1, got 0"));
    }
}

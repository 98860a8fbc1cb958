// fit(), evaluate() and predict() on the study's custom CNN: Adam overfits a
// tiny set to 100% training accuracy, the logs and callbacks see every epoch, a
// non-finite loss stops training with an error naming the epoch and batch,
// TrainStep (fit's per-batch step) matches fit and updates nothing on a NaN loss,
// and predict() agrees with evaluate().

#include <bcnn/models/custom_cnn.hpp>
#include <bcnn/optim/adam.hpp>
#include <bcnn/train/fit.hpp>
#include <bcnn/train/learning_rate_warmup.hpp>
#include <catch2/catch.hpp>
#include <cstdint>
#include <limits>
#include <random>
#include <vector>

using namespace bcnn;
using namespace bcnn::train;

namespace {

// n random RGB images (n, size, size, 3) and labels 0, 1, ..., classes-1, 0, 1, ...
struct TinySet {
    Tensor<std::uint8_t> images;
    Tensor<std::int32_t> labels;
    std::vector<Index> indices;
};

TinySet tiny_set(Index n, Index size, int classes, unsigned seed) {
    TinySet set{Tensor<std::uint8_t>(Shape{n, size, size, 3}), Tensor<std::int32_t>(Shape{n}), {}};
    std::mt19937 generator(seed);
    std::uniform_int_distribution<int> byte(0, 255);
    for (Index i = 0; i < set.images.numel(); ++i) set.images.data()[i] = static_cast<std::uint8_t>(byte(generator));
    for (Index i = 0; i < n; ++i) {
        set.labels.data()[i] = static_cast<std::int32_t>(i % classes);
        set.indices.push_back(i);
    }
    return set;
}

data::BatchLoader loader_of(const TinySet& set, Index batch_size, bool shuffle) {
    data::BatchLoaderOptions options;
    options.batch_size = batch_size;
    options.shuffle = shuffle;
    options.seed = 7;
    return data::BatchLoader(set.images, set.labels, set.indices, options);
}

// Ends training once the epoch's training accuracy (as fit() logs it, in
// training mode) has been perfect for `needed` epochs in a row and the loss
// has fallen below `loss_fraction` of the first epoch's. Both at once: which
// comes first depends on the step's rounding (a kernel summing in another
// order moves it by epochs), so stopping on one and asserting the other would
// test the rounding.
class StopWhenFitted : public Callback<float> {
public:
    StopWhenFitted(int needed, double loss_fraction) : needed_(needed), loss_fraction_(loss_fraction) {}
    void on_epoch_end(int, const Logs& logs, TrainingState<float>& state) override {
        if (epochs_seen++ == 0) first_loss_ = logs.at("loss");
        in_a_row_ = logs.at("accuracy") == 1.0 ? in_a_row_ + 1 : 0;
        if (in_a_row_ >= needed_ && logs.at("loss") < loss_fraction_ * first_loss_) state.stop_training = true;
    }
    int epochs_seen = 0;

private:
    int needed_, in_a_row_ = 0;
    double loss_fraction_, first_loss_ = 0;
};

// Records, before each training batch, the epoch, the batch and the learning rate.
class BatchRecorder : public Callback<float> {
public:
    struct Seen {
        int epoch, batch;
        double lr;
    };
    void on_batch_begin(int epoch, int batch, TrainingState<float>& state) override {
        seen.push_back({epoch, batch, state.optimizer.learning_rate()});
    }
    std::vector<Seen> seen;
};

}  // namespace

// The study's model, dropout 0.7 included, with Adam's defaults. Accuracy is
// the training accuracy fit() logs (training mode, as Keras reports it): in
// inference mode the BatchNorm moving statistics (momentum 0.99) need over a
// thousand steps to catch up with the batch statistics, here as in Keras.
TEST_CASE("fit with Adam makes the custom CNN reach 100% training accuracy on 8 images", "[train][fit][overfit]") {
    auto model = models::make_custom_cnn<float>(4, 32);
    Rng rng(10);
    model->initialize(rng);
    optim::Adam<float> adam;  // Keras defaults, lr 0.001
    TrainingState<float> state{*model, adam, rng};
    const TinySet set = tiny_set(8, 32, 4, 1);
    auto loader = loader_of(set, 8, true);  // one step per epoch

    FitOptions options;
    options.epochs = 400;
    StopWhenFitted stop(5, 0.1);  // 5 perfect epochs, loss down tenfold from ln(4)
    const History history = fit(state, loader, nullptr, options, {&stop});

    INFO("stopped after " << history.size() << " epochs; loss " << history.front().at("loss") << " -> "
                          << history.back().at("loss"));
    CHECK(history.front().at("accuracy") < 1.0);
    CHECK(history.size() < 400);
    for (std::size_t e = history.size() - 5; e < history.size(); ++e) CHECK(history[e].at("accuracy") == 1.0);
    CHECK(history.back().at("loss") < 0.1 * history.front().at("loss"));  // down tenfold from ln(4)
    CHECK(stop.epochs_seen == static_cast<int>(history.size()));
    CHECK(state.epoch == static_cast<int>(history.size()));
    CHECK(adam.iterations() == static_cast<std::int64_t>(history.size()));
}

TEST_CASE("fit logs every epoch, resumes at initial_epoch and runs only the epochs left", "[train][fit]") {
    auto model = models::make_custom_cnn<float>(4, 32);
    Rng rng(3);
    model->initialize(rng);
    optim::Adam<float> adam;
    TrainingState<float> state{*model, adam, rng};
    const TinySet set = tiny_set(6, 32, 4, 2);
    auto loader = loader_of(set, 4, true);  // 2 batches per epoch, the last one short
    auto validation = loader_of(set, 4, false);
    FitOptions options;
    options.epochs = 5;
    options.initial_epoch = 3;
    const History history = fit(state, loader, &validation, options);
    REQUIRE(history.size() == 2);
    CHECK(state.epoch == 5);
    CHECK(adam.iterations() == 4);
    for (const Logs& logs : history)
        for (const char* key : {"loss", "accuracy", "val_loss", "val_accuracy", "lr", "seconds"})
            CHECK(logs.count(key) == 1);
    const Evaluation now = evaluate(*model, validation, 4);
    CHECK(history.back().at("val_loss") == Approx(now.loss).epsilon(1e-12));
    CHECK(history.back().at("val_accuracy") == now.accuracy);
    CHECK(history.back().at("lr") == Approx(0.001));
    CHECK(fit(state, loader, nullptr, options).front().count("val_loss") == 0);

    options.initial_epoch = 6;
    CHECK_THROWS_WITH(fit(state, loader, nullptr, options), Catch::Contains("fit: epochs 5 with initial_epoch 6"));
}

TEST_CASE("fit stops with an error naming the epoch and batch when the loss is not finite", "[train][fit][errors]") {
    auto model = models::make_custom_cnn<float>(4, 32);
    Rng rng(4);
    model->initialize(rng);
    bool poisoned = false;
    for (const auto& p : model->named_parameters())
        if (p.name == "dense_3/bias") {
            p.parameter->value.data()[2] = std::numeric_limits<float>::quiet_NaN();
            poisoned = true;
        }
    REQUIRE(poisoned);
    optim::Adam<float> adam;
    TrainingState<float> state{*model, adam, rng};
    const TinySet set = tiny_set(4, 32, 4, 3);
    auto loader = loader_of(set, 4, false);
    FitOptions options;
    options.epochs = 2;
    CHECK_THROWS_WITH(fit(state, loader, nullptr, options), Catch::Contains("training diverged at epoch 1, batch 1"));
    CHECK(adam.iterations() == 0);  // no step was taken with the bad gradients
}

TEST_CASE("predict gives probabilities whose arg-max is evaluate's prediction", "[train][fit]") {
    auto model = models::make_custom_cnn<float>(4, 32);
    Rng rng(5);
    model->initialize(rng);
    const TinySet set = tiny_set(5, 32, 4, 4);
    auto loader = loader_of(set, 2, false);
    const Evaluation evaluation = evaluate(*model, loader, 4);
    REQUIRE(evaluation.predictions.size() == 5);
    CHECK(evaluation.sample_indices == set.indices);

    Tensor<float> images(set.images.shape());
    for (Index i = 0; i < images.numel(); ++i) images.data()[i] = static_cast<float>(set.images.data()[i]) / 255.0f;
    const Tensor<float> probabilities = predict(*model, images);
    REQUIRE(probabilities.shape() == Shape{5, 4});
    for (Index n = 0; n < 5; ++n) {
        double sum = 0;
        Index best = 0;
        for (Index k = 0; k < 4; ++k) {
            sum += probabilities(n, k);
            if (probabilities(n, k) > probabilities(n, best)) best = k;
        }
        CHECK(sum == Approx(1.0).epsilon(1e-5));
        CHECK(best == evaluation.predictions[static_cast<std::size_t>(n)]);
    }
}

TEST_CASE("fit calls on_batch_begin before every batch; LearningRateWarmup ramps the rate over optimiser steps",
          "[train][fit][callbacks]") {
    auto model = models::make_custom_cnn<float>(4, 32);
    Rng rng(4);
    model->initialize(rng);
    optim::Adam<float> adam(0.123);  // warm-up overrides it from the first step
    TrainingState<float> state{*model, adam, rng};
    const TinySet set = tiny_set(6, 32, 4, 3);
    auto loader = loader_of(set, 4, true);  // 2 batches per epoch
    LearningRateWarmup<float> warmup(1e-3, 4);
    BatchRecorder recorder;  // after warm-up in the list, so it sees the rate the step uses
    FitOptions options;
    options.epochs = 2;
    fit(state, loader, nullptr, options, {&warmup, &recorder});
    REQUIRE(recorder.seen.size() == 4);
    const double expected_lr[] = {0.25e-3, 0.5e-3, 0.75e-3, 1e-3};
    for (int i = 0; i < 4; ++i) {
        INFO("step " << i);
        CHECK(recorder.seen[i].epoch == i / 2);
        CHECK(recorder.seen[i].batch == i % 2);
        CHECK(recorder.seen[i].lr == Approx(expected_lr[i]).epsilon(1e-12));
    }

    // After warm-up the rate is left alone (e.g. to ReduceLROnPlateau); resuming continues by the step count.
    adam.set_learning_rate(2e-4);
    options.initial_epoch = 2;
    options.epochs = 3;
    recorder.seen.clear();
    fit(state, loader, nullptr, options, {&warmup, &recorder});
    CHECK(recorder.seen.at(0).lr == 2e-4);
    CHECK(recorder.seen.at(1).lr == 2e-4);
    CHECK(adam.iterations() == 6);

    CHECK_THROWS_WITH(LearningRateWarmup<float>(1e-3, 0), Catch::Contains("steps must be >= 1, got 0"));
    CHECK_THROWS_WITH(LearningRateWarmup<float>(0.0, 10), Catch::Contains("target learning rate must be > 0, got 0"));
}

TEST_CASE("TrainStep is fit's step: the same batch gives the same weights, and a NaN loss updates nothing",
          "[train][fit]") {
    const TinySet set = tiny_set(4, 32, 4, 5);
    auto by_fit = models::make_custom_cnn<float>(4, 32), by_step = models::make_custom_cnn<float>(4, 32);
    Rng init_fit(3), init_step(3);
    by_fit->initialize(init_fit);
    by_step->initialize(init_step);

    optim::Adam<float> adam_fit, adam_step;
    Rng dropout_fit(9), dropout_step(9);
    TrainingState<float> state_fit{*by_fit, adam_fit, dropout_fit}, state_step{*by_step, adam_step, dropout_step};
    auto loader = loader_of(set, 4, false);
    FitOptions options;
    options.epochs = 1;
    const History history = fit(state_fit, loader, nullptr, options);

    loader.start_epoch(0);
    data::Batch batch;
    REQUIRE(loader.next(batch));
    TrainStep step(state_step);
    const BatchResult result = step(batch.images, batch.labels);
    CHECK(result.loss == Approx(history[0].at("loss")).epsilon(1e-12));
    CHECK(result.predictions.size() == 4);
    const auto a = by_fit->named_parameters(), b = by_step->named_parameters();
    REQUIRE(a.size() == b.size());
    for (std::size_t i = 0; i < a.size(); ++i) {
        INFO(a[i].name);
        CHECK(a[i].parameter->value.to_vector() == b[i].parameter->value.to_vector());
    }

    REQUIRE(b.back().name == "dense_3/bias");
    b.back().parameter->value.data()[0] = std::numeric_limits<float>::quiet_NaN();
    const auto before = b.front().parameter->value.to_vector();
    CHECK_THROWS_AS(step(batch.images, batch.labels), TrainingDiverged);
    CHECK(adam_step.iterations() == 1);
    CHECK(b.front().parameter->value.to_vector() == before);
}

// train::LossScaler (dynamic loss scaling for fp16) and its use in TrainStep,
// on the CPU: a power-of-two scale without overflow gives the unscaled step
// bit for bit; an overflow skips the step (parameters and Adam state
// untouched) and backs the scale off; finite steps grow it; options are
// checked. Also the precision names of --precision (backend/precision.hpp).

#include <bcnn/backend/precision.hpp>
#include <bcnn/optim/adam.hpp>
#include <bcnn/train/train_step.hpp>
#include <catch2/catch.hpp>
#include <cstdint>
#include <limits>
#include <map>
#include <string>
#include <vector>

#include "support/random.hpp"
#include "train/small_network.hpp"

using namespace bcnn;
using namespace bcnn::train;

namespace {

// One trainable parameter with the given gradient, and one frozen one whose
// (non-finite) gradient the scaler must ignore.
struct TwoParameters {
    nn::Parameter<float> trained{"kernel", Tensor<float>::from_vector(Shape{3}, {1, 2, 3}),
                                 Tensor<float>::from_vector(Shape{3}, {8, -4, 2})};
    nn::Parameter<float> frozen{"frozen", Tensor<float>::from_vector(Shape{1}, {0}),
                                Tensor<float>::from_vector(Shape{1}, {std::numeric_limits<float>::infinity()})};
    std::vector<nn::NamedParameter<float>> named() {
        return {{"a/kernel", true, &trained}, {"b/frozen", false, &frozen}};
    }
};

Tensor<std::int32_t> labels_of(std::vector<std::int32_t> labels) {
    return Tensor<std::int32_t>::from_vector(Shape{static_cast<Index>(labels.size())}, labels);
}

// Adam's slots as saved: name -> bytes.
std::map<std::string, std::vector<char>> adam_slots(const optim::Adam<float>& adam) {
    std::vector<io::NamedTensor> tensors;
    std::map<std::string, std::string> metadata;
    adam.save_state(tensors, metadata);
    std::map<std::string, std::vector<char>> slots;
    for (const io::NamedTensor& t : tensors) slots[t.name] = t.bytes;
    return slots;
}

}  // namespace

TEST_CASE("LossScaler unscales finite gradients, grows after growth_interval steps, backs off on overflow",
          "[train][loss_scaler]") {
    LossScalerOptions options;
    options.initial_scale = 4;
    options.growth_interval = 3;
    LossScaler scaler(options);
    TwoParameters p;
    CHECK(scaler.scale() == 4);

    REQUIRE(scaler.unscale(p.named()));
    CHECK(p.trained.grad.to_vector() == std::vector<float>{2, -1, 0.5f});
    CHECK(std::isinf(p.frozen.grad.data()[0]));  // frozen: neither checked nor unscaled
    REQUIRE(scaler.unscale(p.named()));
    CHECK(scaler.scale() == 4);
    CHECK(scaler.finite_steps() == 2);
    REQUIRE(scaler.unscale(p.named()));  // the third finite step in a row
    CHECK(scaler.scale() == 8);
    CHECK(scaler.finite_steps() == 0);
    CHECK(p.trained.grad.to_vector() == std::vector<float>{0.125f, -0.0625f, 0.03125f});

    p.trained.grad.data()[1] = std::numeric_limits<float>::quiet_NaN();
    CHECK_FALSE(scaler.unscale(p.named()));
    CHECK(scaler.scale() == 4);
    CHECK(scaler.skipped_steps() == 1);
    CHECK(p.trained.grad.data()[0] == 0.125f);  // left as it was
    p.trained.grad.data()[1] = std::numeric_limits<float>::infinity();
    CHECK_FALSE(scaler.unscale(p.named()));
    CHECK(scaler.scale() == 2);
    CHECK(scaler.skipped_steps() == 2);
}

TEST_CASE("LossScaler never backs off below min_scale and has PyTorch's defaults", "[train][loss_scaler]") {
    const LossScaler defaults;
    CHECK(defaults.scale() == 32768);
    CHECK(defaults.options().growth_interval == 2000);
    CHECK(defaults.options().growth_factor == 2);
    CHECK(defaults.options().backoff_factor == 0.5);
    CHECK(defaults.options().min_scale == 1);

    LossScalerOptions options;
    options.initial_scale = 2;
    options.min_scale = 1;
    LossScaler scaler(options);
    TwoParameters p;
    p.trained.grad.data()[0] = std::numeric_limits<float>::infinity();
    CHECK_FALSE(scaler.unscale(p.named()));
    CHECK(scaler.scale() == 1);
    CHECK_FALSE(scaler.unscale(p.named()));
    CHECK(scaler.scale() == 1);
}

TEST_CASE("LossScaler checks its options", "[train][loss_scaler]") {
    auto with = [](auto change) {
        LossScalerOptions options;
        change(options);
        return options;
    };
    CHECK_THROWS_WITH(LossScaler(with([](LossScalerOptions& o) { o.initial_scale = 0.5; })),
                      Catch::Contains("initial_scale must be finite and >= min_scale (1), got 0.5"));
    CHECK_THROWS_WITH(LossScaler(with([](LossScalerOptions& o) { o.initial_scale = 1.0 / 0.0; })),
                      Catch::Contains("initial_scale must be finite"));
    CHECK_THROWS_WITH(LossScaler(with([](LossScalerOptions& o) { o.min_scale = 0; })),
                      Catch::Contains("min_scale must be finite and > 0, got 0"));
    CHECK_THROWS_WITH(LossScaler(with([](LossScalerOptions& o) { o.growth_factor = 1; })),
                      Catch::Contains("growth_factor must be finite and > 1, got 1"));
    CHECK_THROWS_WITH(LossScaler(with([](LossScalerOptions& o) { o.backoff_factor = 1; })),
                      Catch::Contains("backoff_factor must be in (0, 1), got 1"));
    CHECK_THROWS_WITH(LossScaler(with([](LossScalerOptions& o) { o.backoff_factor = 0; })),
                      Catch::Contains("backoff_factor must be in (0, 1), got 0"));
    CHECK_THROWS_WITH(LossScaler(with([](LossScalerOptions& o) { o.growth_interval = 0; })),
                      Catch::Contains("growth_interval must be >= 1, got 0"));
}

TEST_CASE("TrainStep with a power-of-two loss scale gives the unscaled step bit for bit", "[train][loss_scaler]") {
    const Index size = 16;
    auto plain = testing::small_network(size), scaled = testing::small_network(size);
    Rng init_plain(5), init_scaled(5);
    plain->initialize(init_plain);
    scaled->initialize(init_scaled);
    optim::Adam<float> adam_plain, adam_scaled;
    Rng rng_plain(1), rng_scaled(1);
    TrainingState<float> state_plain{*plain, adam_plain, rng_plain}, state_scaled{*scaled, adam_scaled, rng_scaled};
    LossScaler scaler;  // 2^15
    TrainStep step_plain(state_plain), step_scaled(state_scaled, &scaler);
    const Tensor<std::int32_t> labels = labels_of({0, 1, 2, 3, 1, 2});
    for (std::uint64_t s = 0; s < 3; ++s) {
        const Tensor<float> images = testing::random_tensor<float>(Shape{6, size, size, 3}, 100 + s, 0.0f, 1.0f);
        const BatchResult a = step_plain(images, labels), b = step_scaled(images, labels);
        CHECK(a.loss == b.loss);
        CHECK_FALSE(step_scaled.skipped());
    }
    CHECK(scaler.finite_steps() == 3);
    CHECK(adam_scaled.iterations() == 3);
    const auto a = plain->named_parameters(), b = scaled->named_parameters();
    REQUIRE(a.size() == b.size());
    for (std::size_t i = 0; i < a.size(); ++i) {
        INFO(a[i].name);
        CHECK(a[i].parameter->value.to_vector() == b[i].parameter->value.to_vector());
        if (a[i].parameter->grad.defined())
            CHECK(a[i].parameter->grad.to_vector() == b[i].parameter->grad.to_vector());
    }
    CHECK(adam_slots(adam_plain) == adam_slots(adam_scaled));
}

TEST_CASE("TrainStep skips a step whose scaled gradients overflow and backs the scale off", "[train][loss_scaler]") {
    const Index size = 16;
    auto model = testing::small_network(size);
    Rng init(5), rng(1);
    model->initialize(init);
    optim::Adam<float> adam;
    TrainingState<float> state{*model, adam, rng};
    const Tensor<std::int32_t> labels = labels_of({0, 1, 2, 3});
    const Tensor<float> images = testing::random_tensor<float>(Shape{4, size, size, 3}, 7, 0.0f, 1.0f);

    LossScaler normal;
    TrainStep first(state, &normal);
    first(images, labels);  // creates Adam's slots
    REQUIRE_FALSE(first.skipped());

    LossScalerOptions huge;
    huge.initial_scale = 1e300;  // beyond float: the scaled loss gradient is inf
    LossScaler overflowing(huge);
    TrainStep step(state, &overflowing);
    std::vector<std::vector<float>> before;
    for (const auto& p : model->named_parameters()) before.push_back(p.parameter->value.to_vector());
    const auto slots_before = adam_slots(adam);
    step(images, labels);
    CHECK(step.skipped());
    CHECK(overflowing.scale() == 5e299);
    CHECK(overflowing.skipped_steps() == 1);
    CHECK(adam.iterations() == 1);
    CHECK(adam_slots(adam) == slots_before);
    std::size_t i = 0, compared = 0;
    for (const auto& p : model->named_parameters()) {
        INFO(p.name);
        // BatchNorm's moving statistics move in the forward pass, before the overflow shows.
        if (!p.parameter->is_buffer) {
            CHECK(p.parameter->value.to_vector() == before[i]);
            ++compared;
        }
        ++i;
    }
    CHECK(compared == 15);
}

TEST_CASE("all_finite and scale_inplace on the CPU see only their slice", "[train][loss_scaler]") {
    Tensor<float> wide = testing::random_tensor<float>(Shape{2, 3, 5}, 11);
    Tensor<float> slice = wide.channels(1, 3);
    const std::vector<float> before = wide.to_vector();
    CHECK(backend::all_finite(slice));
    wide.data()[0] = std::numeric_limits<float>::infinity();  // channel 0: outside the slice
    CHECK(backend::all_finite(slice));
    CHECK_FALSE(backend::all_finite(wide));
    backend::scale_inplace(slice, 0.5f);
    const std::vector<float> after = wide.to_vector();
    for (std::size_t i = 1; i < after.size(); ++i) {
        const Index channel = static_cast<Index>(i % 5);
        CHECK(after[i] == (channel >= 1 && channel < 3 ? before[i] * 0.5f : before[i]));
    }
    slice.data()[1] = std::numeric_limits<float>::quiet_NaN();  // element (0, 0, 2)
    CHECK_FALSE(backend::all_finite(slice));
}

TEST_CASE("Precision names parse back and a bad one names itself", "[train][precision]") {
    for (Precision p : {Precision::fp32, Precision::bf16, Precision::fp16})
        CHECK(parse_precision(precision_name(p)) == p);
    CHECK(std::string(precision_name(Precision::bf16)) == "bf16");
    CHECK_THROWS_WITH(parse_precision("fp8"), Catch::Contains("precision 'fp8' is not one of fp32, bf16, fp16"));
    CHECK_THROWS_WITH(parse_precision("BF16"), Catch::Contains("'BF16'"));
}

// Weights files and full checkpoints: bit-exact round trips (parameters,
// buffers, optimiser state, epoch, generator, metadata), bit-exact resumed
// training, and load errors that name what does not fit. Also the number
// text used in their metadata.

#include <catch2/catch.hpp>

#include <cstring>
#include <fstream>
#include <iterator>
#include <memory>

#include <bcnn/io/checkpoint.hpp>
#include <bcnn/kernels/cpu/softmax_cross_entropy.hpp>
#include <bcnn/nn/dense.hpp>
#include <bcnn/nn/sequential.hpp>
#include <bcnn/optim/adam.hpp>
#include <bcnn/optim/sgd.hpp>

#include "support/random.hpp"
#include "support/temp_dir.hpp"

using namespace bcnn;

namespace {

// y = x + shift. In training, the buffer moving_mean follows the batch mean
// of x (as BatchNorm's moving statistics do), so checkpoints carry a buffer
// that training changes.
template <typename T>
class Shift : public nn::Module<T> {
public:
    const char* type() const override { return "Shift"; }
    const char* default_name() const override { return "shift"; }

    void do_initialize(Rng& rng) override {
        rng.uniform(shift_->value, T(-0.1), T(0.1));
        moving_mean_->value.fill(T(0));
    }

    // x (N, F) -> y (N, F)
    Tensor<T> forward(const Tensor<T>& x, const nn::Context& context) override {
        this->check_input(x);
        const Index n = x.dim(0), f = x.dim(1);
        Tensor<T>& y = this->reuse(output_, x.shape());
        const T* in = x.data();
        T* out = y.data();
        for (Index r = 0; r < n; ++r)
            for (Index c = 0; c < f; ++c) out[r * f + c] = in[r * f + c] + shift_->value.data()[c];
        if (context.training)
            for (Index c = 0; c < f; ++c) {
                T mean = 0;
                for (Index r = 0; r < n; ++r) mean += in[r * f + c] / T(n);
                T& moving = moving_mean_->value.data()[c];
                moving = T(0.9) * moving + T(0.1) * mean;
            }
        return y;
    }

    // dy (N, F) -> dx (N, F) = dy; d shift = column sums of dy.
    Tensor<T> backward(const Tensor<T>& dy, bool need_input_grad) override {
        const Index n = dy.dim(0), f = dy.dim(1);
        if (this->trainable()) {
            T* grad = shift_->grad.data();
            for (Index c = 0; c < f; ++c) {
                grad[c] = 0;
                for (Index r = 0; r < n; ++r) grad[c] += dy.data()[r * f + c];
            }
        }
        if (!need_input_grad) return Tensor<T>();
        Tensor<T>& dx = this->reuse(input_grad_, dy.shape());
        dx.copy_from(dy);
        return dx;
    }

protected:
    Shape do_build(const Shape& input_shape) override {
        shift_ = &this->add_parameter("shift", input_shape);
        moving_mean_ = &this->add_parameter("moving_mean", input_shape, true);
        return input_shape;
    }

private:
    nn::Parameter<T>* shift_ = nullptr;
    nn::Parameter<T>* moving_mean_ = nullptr;
    Tensor<T> output_, input_grad_;
};

// dense (4 -> hidden, relu), shift, dense_1 (hidden -> 3, named `last` when
// given); initialised from `seed`.
template <typename T>
std::unique_ptr<nn::Sequential<T>> make_model(std::uint64_t seed, Index hidden = 6, const std::string& last = "") {
    auto model = std::make_unique<nn::Sequential<T>>();
    model->template emplace<nn::Dense<T>>(hidden, nn::ActivationFn::relu);
    model->template emplace<Shift<T>>();
    model->template emplace<nn::Dense<T>>(3, nn::ActivationFn::linear, true, last);
    model->build(Shape{4});
    Rng rng(seed);
    model->initialize(rng);
    return model;
}

// Trains `epochs` epochs of 3 batches of 4 samples (12 fixed samples,
// 3 classes), reshuffled each epoch with `rng`: forward, softmax
// cross-entropy, backward, optimiser step.
template <typename T>
void train(nn::Module<T>& model, optim::Optimizer<T>& optimizer, Rng& rng, int epochs) {
    const Tensor<T> x = testing::random_tensor<T>(Shape{12, 4}, 21);
    const nn::Context context{true, &rng};
    for (int epoch = 0; epoch < epochs; ++epoch) {
        std::vector<Index> order(12);
        for (Index i = 0; i < 12; ++i) order[i] = i;
        for (Index i = 11; i > 0; --i) std::swap(order[i], order[rng.next_below(static_cast<std::uint64_t>(i + 1))]);
        for (Index batch = 0; batch < 3; ++batch) {
            Tensor<T> xb(Shape{4, 4});
            Tensor<std::int32_t> yb(Shape{4});
            for (Index r = 0; r < 4; ++r) {
                const Index sample = order[batch * 4 + r];
                for (Index c = 0; c < 4; ++c) xb(r, c) = x(sample, c);
                yb(r) = static_cast<std::int32_t>(sample % 3);
            }
            const Tensor<T> logits = model.forward(xb, context);
            Tensor<T> probabilities(logits.shape()), d_logits(logits.shape());
            cpu::softmax_cross_entropy_forward(logits, yb, probabilities);
            cpu::softmax_cross_entropy_backward(probabilities, yb, d_logits);
            model.backward(d_logits, false);
            optimizer.step(model.named_parameters());
        }
    }
}

template <typename T>
std::vector<std::vector<T>> values_of(nn::Module<T>& model) {
    std::vector<std::vector<T>> values;
    for (const auto& p : model.named_parameters()) values.push_back(p.parameter->value.to_vector());
    return values;
}

// The optimiser's saved state: tensor names and bytes, and metadata.
template <typename T>
std::pair<std::vector<std::pair<std::string, std::vector<char>>>, std::map<std::string, std::string>> state_of(
    const optim::Optimizer<T>& optimizer) {
    std::vector<io::NamedTensor> tensors;
    std::map<std::string, std::string> metadata;
    optimizer.save_state(tensors, metadata);
    std::vector<std::pair<std::string, std::vector<char>>> out;
    for (const auto& t : tensors) out.emplace_back(t.name, t.bytes);
    return {out, metadata};
}

std::string read_bytes(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

}  // namespace

TEST_CASE("format_number writes doubles as Python's repr and they read back exactly", "[io][metadata]") {
    const std::vector<std::pair<double, std::string>> cases = {
        {0.001, "0.001"}, {1e-4, "0.0001"}, {1e-5, "1e-05"}, {3.0, "3.0"}, {0.1 + 0.2, "0.30000000000000004"},
        {1e16, "1e+16"}, {1e15, "1000000000000000.0"}, {123.456, "123.456"}, {-0.0, "-0.0"}, {0.0, "0.0"},
        {1.5e-7, "1.5e-07"}, {2.5e20, "2.5e+20"}, {1e100, "1e+100"}, {1e-5 * 0.3, "3e-06"}, {0.5, "0.5"},
        {5e-324, "5e-324"}, {1.7976931348623157e308, "1.7976931348623157e+308"},
        {12345678901234567.0, "1.2345678901234568e+16"}, {-2.75, "-2.75"}};
    for (const auto& [value, text] : cases) {
        CHECK(io::format_number(value) == text);
        CHECK(io::parse_number<double>(text, "x") == value);
    }
    CHECK(io::format_number(std::nan("")) == "nan");
    CHECK(io::format_number(-INFINITY) == "-inf");
    CHECK(std::isinf(io::parse_number<double>("inf", "x")));
    const Tensor<double> random = testing::random_tensor<double>(Shape{200}, 3, -1e-3, 1e3);
    for (double v : random.to_vector()) CHECK(io::parse_number<double>(io::format_number(v), "x") == v);
    CHECK(io::parse_number<std::int64_t>("-12", "x") == -12);
    CHECK_THROWS_WITH(io::parse_number<int>("12a", "metadata \"bcnn.epoch\""),
                      Catch::Contains("metadata \"bcnn.epoch\" is \"12a\", which is not a valid number"));
    CHECK_THROWS_WITH(io::parse_number<double>("", "lr"), Catch::Contains("lr is \"\""));
}

TEST_CASE("weights round-trip bit for bit, buffers included", "[io][checkpoint]") {
    testing::TempDir dir;
    const std::string path = dir.file("weights.safetensors");
    auto model = make_model<double>(1);
    optim::Adam<double> adam;
    Rng rng(2);
    train(*model, adam, rng, 1);  // moving_mean is no longer zero
    io::save_weights(path, *model);
    CHECK(dir.list() == std::vector<std::string>{"weights.safetensors"});

    const io::SafetensorsFile file = io::SafetensorsFile::open(path);
    CHECK(file.metadata().at("bcnn.format") == "weights-1");
    CHECK(file.metadata().at("bcnn.model") == "sequential");
    CHECK(file.entries().size() == 6);
    CHECK(file.find("shift/moving_mean") != nullptr);

    auto other = make_model<double>(99);
    REQUIRE(values_of(*other) != values_of(*model));
    io::load_weights(path, *other);
    CHECK(values_of(*other) == values_of(*model));
    bool buffer_trained = false;
    for (double v : model->named_parameters()[3].parameter->value.to_vector()) buffer_trained |= v != 0.0;
    CHECK(buffer_trained);
}

TEST_CASE("a checkpoint restores parameters, buffers, optimiser state, epoch, generator and metadata exactly",
          "[io][checkpoint]") {
    testing::TempDir dir;
    const std::string path = dir.file("checkpoint.safetensors");
    auto model = make_model<double>(1);
    optim::Adam<double> adam(0.01);
    Rng rng(42);
    train(*model, adam, rng, 2);
    adam.set_learning_rate(0.003);
    io::CheckpointState saved;
    saved.epoch = 2;
    saved.rng = rng;
    saved.metadata = {{"history", "loss=1.0,0.9"}, {"best.val_accuracy", "0.75"}};
    io::save_checkpoint(path, *model, adam, saved);
    CHECK(dir.list() == std::vector<std::string>{"checkpoint.safetensors"});

    const io::SafetensorsFile file = io::SafetensorsFile::open(path);
    CHECK(file.metadata().at("bcnn.format") == "checkpoint-1");
    CHECK(file.metadata().at("bcnn.epoch") == "2");
    CHECK(file.metadata().at("bcnn.rng.seed") == "42");
    CHECK(file.metadata().at("bcnn.rng.counter") == std::to_string(rng.counter()));
    CHECK(file.metadata().at("optimizer.iterations") == "6");
    CHECK(file.find("model/shift/moving_mean") != nullptr);
    CHECK(file.find("optimizer/m/dense/kernel") != nullptr);
    CHECK(file.find("optimizer/v/dense_1/bias") != nullptr);
    CHECK(file.find("optimizer/m/shift/moving_mean") == nullptr);  // buffers have no optimiser state

    auto restored = make_model<double>(7);
    optim::Adam<double> fresh;
    const io::CheckpointState loaded = io::load_checkpoint(path, *restored, fresh);
    CHECK(values_of(*restored) == values_of(*model));
    CHECK(state_of(fresh) == state_of(adam));
    CHECK(fresh.iterations() == 6);
    CHECK(fresh.learning_rate() == 0.003);
    CHECK(loaded.epoch == 2);
    CHECK(loaded.rng.seed() == 42);
    CHECK(loaded.rng.counter() == rng.counter());
    CHECK(rng.counter() > 0);
    CHECK(loaded.metadata == saved.metadata);
}

TEST_CASE("SGD momentum state round-trips through a checkpoint", "[io][checkpoint]") {
    testing::TempDir dir;
    const std::string path = dir.file("sgd.safetensors");
    auto model = make_model<float>(1);
    optim::SGD<float> sgd(0.1, 0.9, true);
    Rng rng(3);
    train(*model, sgd, rng, 1);
    io::save_checkpoint(path, *model, sgd, {1, rng, {}});
    auto restored = make_model<float>(2);
    optim::SGD<float> fresh(0.5, 0.9, true);
    io::load_checkpoint(path, *restored, fresh);
    CHECK(state_of(fresh) == state_of(sgd));
    CHECK(fresh.learning_rate() == Approx(0.1));
    CHECK(values_of(*restored) == values_of(*model));
}

TEST_CASE("training 2 epochs, checkpointing and resuming for 2 more equals 4 straight epochs bit for bit",
          "[io][checkpoint]") {
    testing::TempDir dir;
    const std::string path = dir.file("resume.safetensors");

    auto straight = make_model<float>(5);
    optim::Adam<float> straight_adam(0.01);
    Rng straight_rng(77);
    train(*straight, straight_adam, straight_rng, 2);
    straight_adam.set_learning_rate(0.003);  // as a schedule would
    train(*straight, straight_adam, straight_rng, 2);

    {
        auto first = make_model<float>(5);
        optim::Adam<float> adam(0.01);
        Rng rng(77);
        train(*first, adam, rng, 2);
        adam.set_learning_rate(0.003);
        io::save_checkpoint(path, *first, adam, {2, rng, {{"note", "half way"}}});
    }

    auto resumed = make_model<float>(1234);  // different initial weights, overwritten by the load
    optim::Adam<float> adam;                 // default learning rate, restored from the file
    io::CheckpointState state = io::load_checkpoint(path, *resumed, adam);
    CHECK(state.epoch == 2);
    train(*resumed, adam, state.rng, 2);

    CHECK(values_of(*resumed) == values_of(*straight));
    CHECK(state_of(adam) == state_of(straight_adam));
    CHECK(adam.iterations() == 12);
    CHECK(state.rng.counter() == straight_rng.counter());
}

TEST_CASE("loading names missing, unexpected and mismatched tensors and changes nothing", "[io][checkpoint]") {
    testing::TempDir dir;
    const std::string weights = dir.file("w.safetensors");
    const std::string checkpoint = dir.file("c.safetensors");
    auto model = make_model<float>(1);
    optim::Adam<float> adam;
    Rng rng(1);
    train(*model, adam, rng, 1);
    io::save_weights(weights, *model);
    io::save_checkpoint(checkpoint, *model, adam, {1, rng, {}});

    SECTION("missing and unexpected names") {
        auto renamed = make_model<float>(2, 6, "logits");
        const auto before = values_of(*renamed);
        CHECK_THROWS_WITH(io::load_weights(weights, *renamed),
                          "'" + weights + "' does not fit model 'sequential': missing 2 tensors (logits/kernel, "
                                          "logits/bias), unexpected 2 (dense_1/kernel, dense_1/bias)");
        CHECK(values_of(*renamed) == before);
        optim::Adam<float> fresh;
        CHECK_THROWS_WITH(io::load_checkpoint(checkpoint, *renamed, fresh),
                          Catch::Contains("missing 2 tensors (model/logits/kernel, model/logits/bias), unexpected 2 "
                                          "(model/dense_1/kernel, model/dense_1/bias)"));
        CHECK(values_of(*renamed) == before);
        CHECK(fresh.iterations() == 0);
        // The optimiser's own check, by parameter name.
        const io::SafetensorsFile file = io::SafetensorsFile::open(checkpoint);
        CHECK_THROWS_WITH(fresh.load_state(file, renamed->named_parameters()),
                          Catch::Contains("does not fit this Adam optimizer's parameters: missing 4 tensors "
                                          "(optimizer/m/logits/kernel, optimizer/v/logits/kernel, "
                                          "optimizer/m/logits/bias, optimizer/v/logits/bias), unexpected 4 "
                                          "(optimizer/m/dense_1/bias, "));
    }
    SECTION("long lists are cut after five names, with the full counts") {
        nn::Sequential<float> other;
        for (const char* name : {"a", "b", "c", "d"}) other.emplace<nn::Dense<float>>(4, nn::ActivationFn::linear, true, name);
        other.build(Shape{4});
        CHECK_THROWS_WITH(io::load_weights(weights, other),
                          Catch::Contains("missing 8 tensors (a/kernel, a/bias, b/kernel, b/bias, c/kernel, ...), "
                                          "unexpected 6 (dense/kernel, dense/bias, shift/shift, shift/moving_mean, "
                                          "dense_1/kernel, ...)"));
    }
    SECTION("shape mismatches name the tensor and both shapes") {
        auto wider = make_model<float>(2, 7);
        CHECK_THROWS_WITH(io::load_weights(weights, *wider),
                          Catch::Contains("tensor \"dense/kernel\" has shape (4, 6) in the file, (4, 7) in the model; "
                                          "tensor \"dense/bias\" has shape (6) in the file, (7) in the model"));
        optim::Adam<float> fresh;
        const io::SafetensorsFile file = io::SafetensorsFile::open(checkpoint);
        CHECK_THROWS_WITH(fresh.load_state(file, wider->named_parameters()),
                          Catch::Contains("tensor \"optimizer/m/dense/kernel\" has shape (4, 6) in the file, (4, 7) "
                                          "in the model"));
    }
    SECTION("dtype mismatches name the tensor and both dtypes") {
        auto doubles = make_model<double>(2);
        CHECK_THROWS_WITH(io::load_weights(weights, *doubles),
                          Catch::Contains("tensor \"dense/kernel\" has dtype F32 in the file, F64 in the model"));
    }
    SECTION("a truncated file") {
        const std::string bytes = read_bytes(weights);
        const std::string truncated = dir.file("truncated.safetensors");
        std::ofstream(truncated, std::ios::binary) << bytes.substr(0, bytes.size() - 10);
        CHECK_THROWS_WITH(io::load_weights(truncated, *model),
                          Catch::Contains("'" + truncated + "'") && Catch::Contains("truncated?"));
        optim::Adam<float> fresh;
        CHECK_THROWS_WITH(io::load_checkpoint(truncated, *model, fresh), Catch::Contains("truncated?"));
    }
    SECTION("weights and checkpoints are not mistaken for each other") {
        optim::Adam<float> fresh;
        CHECK_THROWS_WITH(io::load_checkpoint(weights, *model, fresh),
                          "'" + weights + "' is a weights-only file (bcnn.format \"weights-1\"), not a checkpoint; "
                                          "load it with load_weights()");
        CHECK_THROWS_WITH(io::load_weights(checkpoint, *model),
                          "'" + checkpoint + "' is a full checkpoint (bcnn.format \"checkpoint-1\"), not a weights "
                                             "file; load it with load_checkpoint()");
        // A plain safetensors file (e.g. converted pretrained weights) loads as weights, not as a checkpoint.
        const std::string plain = dir.file("plain.safetensors");
        std::vector<io::NamedTensor> tensors;
        for (const auto& p : model->named_parameters()) tensors.push_back(io::named_tensor(p.name, p.parameter->value));
        io::save_safetensors(plain, tensors);
        auto other = make_model<float>(3);
        io::load_weights(plain, *other);
        CHECK(values_of(*other) == values_of(*model));
        CHECK_THROWS_WITH(io::load_checkpoint(plain, *model, fresh),
                          Catch::Contains("is not a bcnn checkpoint: it has no \"bcnn.format\" metadata"));
    }
    SECTION("the optimiser's type and hyperparameters must match, and a failed load changes nothing") {
        auto target = make_model<float>(2);
        const auto before = values_of(*target);
        optim::SGD<float> sgd;
        CHECK_THROWS_WITH(io::load_checkpoint(checkpoint, *target, sgd),
                          "'" + checkpoint + "' holds Adam optimizer state; this optimizer is SGD");
        optim::Adam<float> other_beta(1e-3, 0.8);
        CHECK_THROWS_WITH(io::load_checkpoint(checkpoint, *target, other_beta),
                          Catch::Contains("the saved Adam has beta_1 = 0.9, this one 0.8"));
        CHECK(values_of(*target) == before);
        CHECK(other_beta.iterations() == 0);
    }
    SECTION("reserved metadata keys are refused") {
        CHECK_THROWS_WITH(io::save_checkpoint(dir.file("bad.safetensors"), *model, adam, {1, rng, {{"bcnn.epoch", "9"}}}),
                          Catch::Contains("metadata key \"bcnn.epoch\" is reserved"));
        CHECK_THROWS_WITH(io::save_checkpoint(dir.file("bad.safetensors"), *model, adam, {-1, rng, {}}),
                          Catch::Contains("epoch must be >= 0, got -1"));
    }
    std::vector<std::string> files = dir.list();
    for (const std::string& name : files) CHECK(name.find(".tmp") == std::string::npos);
}

// Callbacks with Keras' logic on scripted logs: ReduceLROnPlateau's
// wait/cooldown/min_lr, EarlyStopping's stop epoch and restored weights,
// ModelCheckpoint's saves on improvement only, CSVLogger's exact text.

#include <catch2/catch.hpp>

#include <fstream>
#include <iterator>

#include <bcnn/nn/dense.hpp>
#include <bcnn/nn/sequential.hpp>
#include <bcnn/optim/adam.hpp>
#include <bcnn/optim/sgd.hpp>
#include <bcnn/train/csv_logger.hpp>
#include <bcnn/train/early_stopping.hpp>
#include <bcnn/train/model_checkpoint.hpp>
#include <bcnn/train/reduce_lr_on_plateau.hpp>

#include "support/temp_dir.hpp"

using namespace bcnn;
using namespace bcnn::train;

namespace {

// A built model, an optimiser and a generator to make a TrainingState from.
struct Fixture {
    nn::Sequential<float> model;
    optim::Adam<float> optimizer;
    Rng rng{5};
    TrainingState<float> state{model, optimizer, rng};

    explicit Fixture(double learning_rate = 1e-3) : optimizer(learning_rate) {
        model.emplace<nn::Dense<float>>(2);
        model.build(Shape{3});
        model.initialize(rng);
    }

    // Marks the weights with `value`, as if an epoch of training had changed them.
    void mark_weights(float value) {
        for (const auto& p : model.named_parameters()) p.parameter->value.fill(value);
    }
    bool weights_are(float value) {
        for (const auto& p : model.named_parameters())
            for (float v : p.parameter->value.to_vector())
                if (v != value) return false;
        return true;
    }
};

std::string read_text(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

}  // namespace

TEST_CASE("ReduceLROnPlateau follows Keras' wait logic down to the min_lr floor", "[train][callbacks]") {
    Fixture f(1e-5);
    ReduceLROnPlateau<float> reduce;  // val_accuracy, factor 0.3, patience 2, min_delta 1e-4, min_lr 1e-6
    reduce.on_train_begin(f.state);
    const std::vector<double> accuracy = {0.50, 0.60, 0.60005, 0.59, 0.61, 0.6, 0.6, 0.6, 0.6, 0.6, 0.7};
    // e2: 0.60005 is not > 0.6 + 1e-4 (wait 1); e3: wait 2 -> 3e-6; e4 improves; e5, e6: wait 2 ->
    // max(9e-7, 1e-6); e8, e9: lr == min_lr, no reduction and wait keeps growing; e10 improves.
    const double reduced = 1e-5 * 0.3;
    const std::vector<double> lr = {1e-5, 1e-5, 1e-5, reduced, reduced, reduced, 1e-6, 1e-6, 1e-6, 1e-6, 1e-6};
    const std::vector<int> wait = {0, 0, 1, 0, 0, 1, 0, 1, 2, 3, 0};
    for (int epoch = 0; epoch < static_cast<int>(accuracy.size()); ++epoch) {
        reduce.on_epoch_end(epoch, {{"loss", 1.0}, {"val_accuracy", accuracy[epoch]}}, f.state);
        INFO("epoch " << epoch);
        CHECK(f.optimizer.learning_rate() == lr[epoch]);
        CHECK(reduce.wait() == wait[epoch]);
    }
    CHECK(reduce.best() == 0.7);
    CHECK(reduce.messages() == std::vector<std::string>{"Epoch 4: ReduceLROnPlateau reducing learning rate to 3e-06.",
                                                        "Epoch 7: ReduceLROnPlateau reducing learning rate to 1e-06."});
    reduce.on_train_begin(f.state);
    CHECK(reduce.best() == -INFINITY);
    CHECK(reduce.wait() == 0);
}

TEST_CASE("ReduceLROnPlateau's cooldown and min mode behave as Keras'", "[train][callbacks]") {
    Fixture f(1.0);
    // val_loss -> min mode; patience 1, factor 0.5, no min_delta, cooldown 2, no floor.
    ReduceLROnPlateau<float> reduce("val_loss", 0.5, 1, MonitorMode::automatic, 0.0, 2, 0.0);
    std::vector<std::string> seen;
    reduce.set_message_handler([&](const std::string& message) { seen.push_back(message); });
    reduce.on_train_begin(f.state);
    const std::vector<double> loss = {1.0, 1.0, 1.0, 1.0, 1.0, 0.5};
    // e1: reduce, cooldown 2; e2: cooldown 2 -> 1, still cooling; e3: 1 -> 0, wait 1 -> reduce; e4: cooling;
    // e5: improves.
    const std::vector<double> lr = {1.0, 0.5, 0.5, 0.25, 0.25, 0.25};
    for (int epoch = 0; epoch < 6; ++epoch) {
        reduce.on_epoch_end(epoch, {{"val_loss", loss[epoch]}}, f.state);
        INFO("epoch " << epoch);
        CHECK(f.optimizer.learning_rate() == lr[epoch]);
    }
    CHECK(seen == reduce.messages());
    CHECK(seen.size() == 2);

    ReduceLROnPlateau<float> missing;
    CHECK_THROWS_WITH(missing.on_epoch_end(0, {{"loss", 1.0}, {"accuracy", 0.5}}, f.state),
                      "ReduceLROnPlateau: monitored key \"val_accuracy\" is not in the logs (present: accuracy, loss)");
    CHECK_THROWS_WITH(ReduceLROnPlateau<float>("val_loss", 1.0), Catch::Contains("factor must be in (0, 1), got 1"));
}

TEST_CASE("EarlyStopping stops after patience epochs and restores the best weights", "[train][callbacks]") {
    const std::vector<double> loss = {1.0, 0.8, 0.85, 0.9, 0.95, 0.5};
    auto run = [&](EarlyStopping<float>& stopping, Fixture& f) {
        stopping.on_train_begin(f.state);
        int last = -1;
        for (int epoch = 0; epoch < static_cast<int>(loss.size()) && !f.state.stop_training; ++epoch) {
            f.mark_weights(static_cast<float>(epoch));
            stopping.on_epoch_end(epoch, {{"val_loss", loss[epoch]}}, f.state);
            last = epoch;
        }
        stopping.on_train_end(f.state);
        return last;
    };
    SECTION("restore_best_weights") {
        Fixture f;
        EarlyStopping<float> stopping("val_loss", 0.0, 2, MonitorMode::automatic, true);
        // e1 is the best; e2, e3 do not improve: wait reaches 2 at e3.
        CHECK(run(stopping, f) == 3);
        CHECK(f.state.stop_training);
        CHECK(stopping.stopped_epoch() == 3);
        CHECK(stopping.best_epoch() == 1);
        CHECK(f.weights_are(1.0f));
        CHECK(stopping.messages() ==
              std::vector<std::string>{"Epoch 4: early stopping", "Restoring model weights from the end of the best epoch: 2."});
    }
    SECTION("without restoring, the last weights stay") {
        Fixture f;
        EarlyStopping<float> stopping("val_loss", 0.0, 2);
        CHECK(run(stopping, f) == 3);
        CHECK(f.weights_are(3.0f));
    }
    SECTION("min_delta: smaller changes do not count as improvements") {
        Fixture f;
        EarlyStopping<float> stopping("val_loss", 0.25, 1, MonitorMode::automatic, true);
        // e1: 0.8 + 0.25 is not < 1.0, wait 1 >= 1: stop; the best is still e0.
        CHECK(run(stopping, f) == 1);
        CHECK(f.weights_are(0.0f));
    }
    SECTION("patience larger than the run: no stop, best weights restored at the end") {
        Fixture f;
        EarlyStopping<float> stopping("val_loss", 0.0, 10, MonitorMode::automatic, true);
        CHECK(run(stopping, f) == 5);
        CHECK(stopping.stopped_epoch() == 0);
        CHECK(f.weights_are(5.0f));  // e5 (0.5) is the best
    }
    SECTION("max mode for accuracy, and a missing key") {
        Fixture f;
        EarlyStopping<float> stopping("val_accuracy", 0.0, 1);
        stopping.on_train_begin(f.state);
        stopping.on_epoch_end(0, {{"val_accuracy", 0.5}}, f.state);
        stopping.on_epoch_end(1, {{"val_accuracy", 0.6}}, f.state);
        CHECK_FALSE(f.state.stop_training);
        stopping.on_epoch_end(2, {{"val_accuracy", 0.6}}, f.state);
        CHECK(f.state.stop_training);
        CHECK_THROWS_WITH(stopping.on_epoch_end(3, {{"val_loss", 0.5}}, f.state),
                          "EarlyStopping: monitored key \"val_accuracy\" is not in the logs (present: val_loss)");
    }
}

TEST_CASE("ModelCheckpoint writes the full checkpoint only when the monitored value improves", "[train][callbacks]") {
    testing::TempDir dir;
    const std::string path = dir.file("best.safetensors");
    Fixture f;
    f.state.metadata["history"] = "run 1";
    ModelCheckpoint<float> checkpoint(path, "val_accuracy");
    checkpoint.on_train_begin(f.state);
    const std::vector<double> accuracy = {0.5, 0.6, 0.55, 0.7, 0.7};
    const std::vector<int> saved_epoch = {1, 2, 2, 4, 4};  // epochs completed in the file
    std::string previous;
    for (int epoch = 0; epoch < 5; ++epoch) {
        f.mark_weights(static_cast<float>(epoch));
        f.rng.advance(10);
        checkpoint.on_epoch_end(epoch, {{"val_accuracy", accuracy[epoch]}}, f.state);
        INFO("epoch " << epoch);
        CHECK(dir.list() == std::vector<std::string>{"best.safetensors"});  // no temporary files left
        const std::string bytes = read_text(path);
        const bool improved = saved_epoch[epoch] == epoch + 1;
        CHECK((bytes == previous) == !improved);
        previous = bytes;
        const io::SafetensorsFile file = io::SafetensorsFile::open(path);
        CHECK(file.metadata().at("bcnn.epoch") == std::to_string(saved_epoch[epoch]));
        CHECK(file.metadata().at("history") == "run 1");
        CHECK(file.tensor<float>("model/dense/bias").to_vector() ==
              std::vector<float>(2, static_cast<float>(saved_epoch[epoch] - 1)));
    }
    CHECK(checkpoint.best() == 0.7);
    CHECK(checkpoint.messages() == std::vector<std::string>{
                                       "Epoch 1: val_accuracy improved from -inf to 0.50000, saving model to " + path,
                                       "Epoch 2: val_accuracy improved from 0.50000 to 0.60000, saving model to " + path,
                                       "Epoch 3: val_accuracy did not improve from 0.60000",
                                       "Epoch 4: val_accuracy improved from 0.60000 to 0.70000, saving model to " + path,
                                       "Epoch 5: val_accuracy did not improve from 0.70000"});

    // The file is a complete checkpoint of epoch 4 (index 3).
    Fixture restored;
    const io::CheckpointState state = io::load_checkpoint(path, restored.model, restored.optimizer);
    CHECK(restored.weights_are(3.0f));
    CHECK(state.epoch == 4);
    CHECK(state.rng.counter() == f.rng.counter() - 10);
}

TEST_CASE("ModelCheckpoint saves every epoch without save_best_only and honours a threshold", "[train][callbacks]") {
    testing::TempDir dir;
    Fixture f;
    ModelCheckpoint<float> every(dir.file("last.safetensors"), "val_loss", false);
    for (int epoch = 0; epoch < 2; ++epoch) {
        f.mark_weights(static_cast<float>(epoch));
        every.on_epoch_end(epoch, {}, f.state);  // no monitored value needed
        CHECK(io::SafetensorsFile::open(dir.file("last.safetensors")).metadata().at("bcnn.epoch") ==
              std::to_string(epoch + 1));
    }
    CHECK(every.messages().back() == "Epoch 2: saving model to " + dir.file("last.safetensors"));

    const std::string path = dir.file("resumed.safetensors");
    ModelCheckpoint<float> resumed(path, "val_loss", true, MonitorMode::automatic, 0.4);
    resumed.on_epoch_end(0, {{"val_loss", 0.5}}, f.state);
    CHECK(dir.list() == std::vector<std::string>{"last.safetensors"});
    resumed.on_epoch_end(1, {{"val_loss", 0.3}}, f.state);
    CHECK(dir.list() == std::vector<std::string>{"last.safetensors", "resumed.safetensors"});
    CHECK_THROWS_WITH(resumed.on_epoch_end(2, {{"loss", 0.3}}, f.state),
                      "ModelCheckpoint: monitored key \"val_loss\" is not in the logs (present: loss)");
}

TEST_CASE("CSVLogger writes Keras' layout, one flushed row per epoch", "[train][callbacks]") {
    testing::TempDir dir;
    const std::string path = dir.file("history.csv");
    Fixture f;
    CSVLogger<float> logger(path);
    logger.on_train_begin(f.state);
    logger.on_epoch_end(0, {{"loss", 0.6931471805599453}, {"accuracy", 0.5}, {"val_loss", 0.7}, {"val_accuracy", 0.25}, {"lr", 0.001}},
                        f.state);
    const std::string header = "epoch,accuracy,loss,lr,val_accuracy,val_loss\n";
    const std::string row0 = "0,0.5,0.6931471805599453,0.001,0.25,0.7\n";
    CHECK(read_text(path) == header + row0);  // on disk before training ends
    logger.on_epoch_end(1, {{"loss", 0.5}, {"accuracy", 0.75}, {"val_loss", 0.1 + 0.2}, {"val_accuracy", 1.0}, {"lr", 0.0003}},
                        f.state);
    logger.on_epoch_end(2, {{"loss", 0.25}, {"accuracy", 0.8}, {"lr", 3e-06}}, f.state);
    logger.on_train_end(f.state);
    const std::string rows = row0 + "1,0.75,0.5,0.0003,1.0,0.30000000000000004\n" + "2,0.8,0.25,3e-06,NA,NA\n";
    CHECK(read_text(path) == header + rows);

    SECTION("append continues the file without a second header") {
        CSVLogger<float> more(path, ',', true);
        more.on_train_begin(f.state);
        more.on_epoch_end(3, {{"loss", 0.125}, {"accuracy", 0.9}, {"val_loss", 0.2}, {"val_accuracy", 0.5}, {"lr", 1e-4}},
                          f.state);
        more.on_train_end(f.state);
        CHECK(read_text(path) == header + rows + "3,0.9,0.125,0.0001,0.5,0.2\n");
    }
    SECTION("append refuses different columns; a new key is an error; without append the file starts over") {
        CSVLogger<float> other(path, ',', true);
        other.on_train_begin(f.state);
        CHECK_THROWS_WITH(other.on_epoch_end(3, {{"loss", 0.1}}, f.state),
                          Catch::Contains("cannot append to '" + path + "': its columns are \"epoch,accuracy,loss,lr,"
                                          "val_accuracy,val_loss\", the logs' \"epoch,loss\""));
        CSVLogger<float> fresh(path, ';');
        fresh.on_train_begin(f.state);
        fresh.on_epoch_end(0, {{"loss", 2.0}}, f.state);
        CHECK_THROWS_WITH(fresh.on_epoch_end(1, {{"loss", 1.0}, {"accuracy", 0.5}}, f.state),
                          Catch::Contains("log key \"accuracy\" of epoch 1 is not a column of the file (epoch;loss)"));
        fresh.on_train_end(f.state);
        CHECK(read_text(path) == "epoch;loss\n0;2.0\n");
    }
}

// train_bloodcells: trains one of the original study's models (its custom
// CNN, or a pretrained VGG16 / DenseNet201 backbone under its head) on the
// blood-cell images and writes RUN/ with the best checkpoint, history.csv,
// report.md, curves.png and confusion matrices. With the whole backbone
// frozen and no augmentation, the backbone's features are computed once
// (feature_cache.hpp) and the head trains on them. With --device cuda the
// model trains and scores on the GPU (device_choice.hpp). Exit status:
// 0 done, 1 error, 2 bad usage.

#include <algorithm>
#include <cctype>
#include <cstdint>
#include <filesystem>
#include <iostream>
#include <memory>

#include <bcnn/data/batch_loader.hpp>
#include <bcnn/io/weights.hpp>
#include <bcnn/nn/on_device.hpp>
#include <bcnn/nn/sequential_tail.hpp>
#include <bcnn/optim/adam.hpp>
#include <bcnn/report/plots.hpp>
#include <bcnn/train/csv_logger.hpp>
#include <bcnn/train/learning_rate_warmup.hpp>
#include <bcnn/train/model_checkpoint.hpp>
#include <bcnn/train/recalibrate_batch_norm.hpp>
#include <bcnn/train/reduce_lr_on_plateau.hpp>

#include "data_sets.hpp"
#include "device_choice.hpp"
#include "feature_cache.hpp"
#include "model_choice.hpp"
#include "options.hpp"
#include "run_report.hpp"

namespace bloodcells {
namespace {

// Training batches are shuffled (and augmented with --augment); others keep their order.
enum class Feed { training, shuffled_plain, in_order };

// What the loaders serve: images (augmented when training with --augment,
// then preprocessed for the model), or the backbone's cached features.
struct Source {
    const Options& options;
    const ModelChoice& choice;
    const FeatureCache* features;  // nullptr: images
};

bcnn::data::BatchLoader make_loader(const Part& part, const Source& source, Feed feed) {
    const Options& options = source.options;
    bcnn::data::BatchLoaderOptions loader;
    loader.batch_size = options.batch;
    loader.shuffle = feed != Feed::in_order;
    loader.seed = options.seed;
    // Same seed and indices, so features come in the same batches and orders as images would.
    if (source.features)
        return bcnn::data::BatchLoader(source.features->of(part), part.images.labels, part.indices, loader);
    bcnn::data::SampleTransform augment;
    if (feed == Feed::training && options.augment) {
        bcnn::data::Augmentation policy;
        policy.horizontal_flip = policy.vertical_flip = policy.rotate90 = true;
        policy.max_shift = options.image_size / 16;
        policy.max_brightness_change = 0.1;
        augment = bcnn::data::random_augmentation(policy, options.seed);
    }
    const bcnn::data::SampleTransform& preprocess = source.choice.preprocess;
    if (augment && preprocess)
        loader.transform = [augment, preprocess](const bcnn::Tensor<float>& image, std::uint64_t epoch, bcnn::Index i) {
            augment(image, epoch, i);
            preprocess(image, epoch, i);
        };
    else
        loader.transform = augment ? augment : preprocess;
    return bcnn::data::BatchLoader(part.images.images, part.images.labels, part.indices, loader);
}

std::vector<bcnn::report::EpochRecord> epoch_records(const bcnn::train::History& history) {
    std::vector<bcnn::report::EpochRecord> records;
    for (std::size_t e = 0; e < history.size(); ++e) {
        const auto& logs = history[e];
        records.push_back({static_cast<int>(e + 1), logs.at("loss"), logs.at("accuracy"), logs.at("val_loss"),
                           logs.at("val_accuracy")});
    }
    return records;
}

// "pooled test (10% ...)" -> "confusion_pooled_test.png"; the first test set gets "confusion.png".
std::string picture_name(const Part& part, bool first) {
    if (first) return "confusion.png";
    std::string name = "confusion_";
    for (char c : part.name.substr(0, part.name.find(" ("))) name += std::isalnum(static_cast<unsigned char>(c)) ? static_cast<char>(std::tolower(c)) : '_';
    return name + ".png";
}

int run(const Options& options) {
    const double start = bcnn::steady_seconds();
    if (options.threads > 0) bcnn::set_num_threads(options.threads);
    require_device(options);
    const bcnn::Device device = chosen_device(options);
    const ComputePrecision precision(options);  // the whole run: features, training, evaluation
    std::filesystem::create_directories(options.out);
    // The model first: a --weights file that does not fit fails before the images load.
    bcnn::Rng rng(options.seed);  // drives initialisation, then dropout
    const ModelChoice choice = choose_model(options, rng);
    if (!choice.warning.empty()) std::cout << "WARNING: " << choice.warning << "\n";
    std::cout << "loading images from " << options.data << " ...\n" << std::flush;
    const DataSets data = load_data_sets(options);
    for (const auto& note : data.notes) std::cout << "  " << note << "\n";

    bcnn::nn::Sequential<float>& model = *choice.model;
    RunRecord record;
    record.options = &options;
    record.data = &data;
    record.model_notes = choice.notes;
    record.model_notes.push_back("Device: " + device_description(options));
    record.model_notes.push_back("Precision: " + ComputePrecision::describe(options));
    record.warning = choice.warning;
    record.model_summary = model.summary();
    std::cout << record.model_summary << std::flush;
    for (const auto& note : choice.notes) std::cout << note << "\n";

    // A frozen backbone without augmentation: its features once, then the head alone
    // (whose parameters, and so checkpoints, are the whole model's).
    std::unique_ptr<FeatureCache> features;
    std::unique_ptr<bcnn::nn::SequentialTail<float>> head;
    if (choice.backbone_frozen && !options.augment) {
        std::cout << "computing the frozen backbone's features once ...\n" << std::flush;
        features = std::make_unique<FeatureCache>(choice, data, options, std::cout);
        head = std::make_unique<bcnn::nn::SequentialTail<float>>(model, 1);
        record.model_notes.push_back("Feature cache: used. The frozen backbone's features were computed once (or read "
                                     "from the cache folder) in " + bcnn::report::format_duration(features->seconds()) +
                                     "; every epoch, validation and test ran the head alone on them");
        for (const std::string& note : features->notes()) record.model_notes.push_back("Feature cache: " + note);
    } else if (choice.has_backbone) {
        const char* why = options.augment ? "--augment changes the images every epoch" : "part of the backbone trains";
        record.model_notes.push_back(std::string("Feature cache: not used (") + why +
                                     "); every step runs the whole model");
    }
    bcnn::nn::Module<float>& on_host = head ? static_cast<bcnn::nn::Module<float>&>(*head) : model;
    std::unique_ptr<bcnn::nn::OnDevice<float>> on_device;
    if (device != bcnn::Device::cpu) on_device = std::make_unique<bcnn::nn::OnDevice<float>>(on_host, device);
    bcnn::nn::Module<float>& trained = on_device ? static_cast<bcnn::nn::Module<float>&>(*on_device) : on_host;
    const Source source{options, choice, features.get()};

    bcnn::optim::Adam<float> optimizer(options.learning_rate);
    bcnn::train::ReduceLROnPlateau<float> reduce_lr("val_accuracy", 0.3, 2, bcnn::train::MonitorMode::automatic, 1e-4, 0, 1e-6);
    bcnn::train::ModelCheckpoint<float> checkpoint(options.out + "/best.safetensors", "val_accuracy");
    bcnn::train::CSVLogger<float> csv(options.out + "/history.csv");
    reduce_lr.set_message_handler([&](const std::string& m) {
        std::cout << "  " << m << "\n";
        record.callback_messages.push_back(m);
    });

    auto train_loader = make_loader(data.train, source, Feed::training);
    auto validation_loader = make_loader(data.validation, source, Feed::in_order);
    bcnn::train::TrainingState<float> state{trained, optimizer, rng};
    bcnn::train::FitOptions fit;
    fit.epochs = options.epochs;
    fit.progress = &std::cout;
    fit.progress_terminal = bcnn::stdout_is_terminal();
    OnHost checkpoint_on_host(checkpoint, device);  // the checkpoint file is written from the host
    bcnn::train::Callback<float>* saving = &checkpoint;
    if (device != bcnn::Device::cpu) saving = &checkpoint_on_host;
    std::vector<bcnn::train::Callback<float>*> callbacks{&reduce_lr, saving, &csv};
    const auto warmup_steps = static_cast<std::int64_t>(options.warmup_epochs * static_cast<double>(train_loader.batches_per_epoch()) + 0.5);
    bcnn::train::LearningRateWarmup<float> warmup(options.learning_rate, std::max<std::int64_t>(warmup_steps, 1));
    if (warmup_steps > 0) callbacks.insert(callbacks.begin(), &warmup);
    const double train_start = bcnn::steady_seconds();
    fit.loss_scaler = precision.loss_scaler();
    record.history = bcnn::train::fit(state, train_loader, &validation_loader, fit, callbacks);
    record.train_seconds = bcnn::steady_seconds() - train_start;
    if (const bcnn::train::LossScaler* scaler = precision.loss_scaler())
        record.model_notes.push_back("Loss scaling: final scale " + bcnn::io::format_number(scaler->scale()) + ", " +
                                     std::to_string(scaler->skipped_steps()) +
                                     " steps skipped for overflowing fp16 gradients");
    bcnn::report::plot_training_curves(options.out + "/curves.png", epoch_records(record.history));

    if (options.recalibrate_bn) {
        for (const Part& part : data.tests) {
            auto loader = make_loader(part, source, Feed::in_order);
            record.tests_as_trained.push_back(bcnn::train::evaluate(trained, loader, 4));
        }
        auto loader = make_loader(data.train, source, Feed::shuffled_plain);
        record.recalibration_batches = bcnn::train::recalibrate_batch_norm(trained, loader, loader.batches_per_epoch(), rng);
        trained.to(bcnn::Device::cpu);
        bcnn::io::save_weights(options.out + "/recalibrated.safetensors", model);
        trained.to(device);
        std::cout << "BatchNorm statistics re-estimated over " << record.recalibration_batches << " training batches\n";
    }
    for (const Part& part : data.tests) {
        auto loader = make_loader(part, source, Feed::in_order);
        const double t0 = bcnn::steady_seconds();
        TestResult result{&part, bcnn::train::evaluate(trained, loader, 4), 0, picture_name(part, record.tests.empty())};
        result.seconds = bcnn::steady_seconds() - t0;
        bcnn::report::plot_confusion_matrix(options.out + "/" + result.picture, result.evaluation.confusion,
                                            class_names(), choice.display_name + " - " + part.name);
        if (options.recalibrate_bn) {
            const auto& as_trained = record.tests_as_trained[record.tests.size()];
            std::cout << part.name << " as trained: accuracy " << bcnn::report::format_percent(as_trained.accuracy)
                      << ", macro F1 " << detail::fixed(as_trained.confusion.macro_average().f1, 4) << "\n";
        }
        std::cout << part.name << ": accuracy " << bcnn::report::format_percent(result.evaluation.accuracy)
                  << ", macro F1 " << detail::fixed(result.evaluation.confusion.macro_average().f1, 4) << "\n"
                  << result.evaluation.confusion.report(class_names()) << std::flush;
        record.tests.push_back(std::move(result));
    }
    record.total_seconds = bcnn::steady_seconds() - start;
    write_report(options.out + "/report.md", record);
    std::cout << "training throughput " << detail::fixed(training_throughput(record), 1) << " images/s; wall time "
              << bcnn::report::format_duration(record.total_seconds) << "; report: " << options.out << "/report.md\n";
    if (!choice.warning.empty()) std::cout << "WARNING: " << choice.warning << "\n";
    return 0;
}

}  // namespace
}  // namespace bloodcells

int main(int argc, char** argv) {
    bloodcells::Options options;
    try {
        if (!bloodcells::parse_options(argc, argv, options)) {
            std::cout << bloodcells::usage();
            return 0;
        }
    } catch (const bloodcells::UsageError& error) {
        std::cerr << "train_bloodcells: " << error.what() << "\n\n" << bloodcells::usage();
        return 2;
    }
    try {
        return bloodcells::run(options);
    } catch (const std::exception& error) {
        std::cerr << "train_bloodcells: error: " << error.what() << "\n";
        return 1;
    }
}

#pragma once
// Command-line options of train_bloodcells. Bad usage throws UsageError
// (the program prints it with the usage and exits 2).

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include <bcnn/backend/precision.hpp>

namespace bloodcells {

struct UsageError : std::runtime_error {
    using std::runtime_error::runtime_error;
};

enum class Protocol { held_out, pooled };

// The models --model knows: the study's custom CNN, and its transfer-learning
// models (a pretrained backbone under the study's head).
inline const std::vector<std::string>& model_names() {
    static const std::vector<std::string> names{"custom", "vgg16", "densenet201"};
    return names;
}

struct Options {
    std::string model = "custom";
    std::string weights;                        // converted backbone weights (vgg16, densenet201)
    bool random_backbone_weights = false;       // path tests only: the backbone keeps random weights
    bool unfreeze_last_block = false;           // train VGG16's block5 / DenseNet201's conv5 and bn too
    std::string data = BCNN_DEFAULT_DATA_DIR;  // the blood-cells folder (or its images/ folder)
    std::string out = "runs/custom";            // without --out: runs/<model>
    std::string cache;                          // decoded-image and feature cache; default $XDG_CACHE_HOME/bcnn
    bool use_cache = true;
    Protocol protocol = Protocol::held_out;
    int epochs = 10;
    int batch = 32;
    std::uint64_t seed = 10;
    // Not Keras' 1e-3: with it the study's model stays at chance on the full
    // data (README, "Results"); at 3e-4 it left that plateau in epoch 1.
    double learning_rate = 3e-4;
    double warmup_epochs = 0;   // linear learning-rate warm-up over this many epochs (0: none)
    int image_size = 150;
    int threads = 0;            // 0: all cores
    bool cuda = false;          // --device cuda: train and score on the GPU
    bcnn::Precision precision = bcnn::Precision::fp32;  // --precision: the GPU's convolutions and dense layers
    int limit_per_class = 0;    // 0: every image; else N of each class in each folder, evenly spaced
    bool augment = false;
    bool recalibrate_bn = false;  // re-estimate BatchNorm statistics after training (not Keras)
    bool strict = false;
    std::vector<std::string> command_line;
};

inline const char* usage() {
    return "usage: train_bloodcells [options]\n"
           "Trains and evaluates a white-blood-cell classifier (EOSINOPHIL, LYMPHOCYTE, MONOCYTE, NEUTROPHIL).\n"
           "\n"
           "  --model NAME        custom (the original study's 5-block CNN), or a pretrained backbone under the\n"
           "                      study's head: vgg16, densenet201 (needs --weights)  [custom]\n"
           "  --weights FILE      the backbone's ImageNet weights, converted from Keras' or torchvision's\n"
           "                      official file by weights/convert_keras.py or convert_torchvision.py\n"
           "  --unfreeze-last-block  also train the backbone's last block (VGG16 block5, DenseNet201 conv5\n"
           "                      and its final BatchNorm); default: the whole backbone is frozen, as in the\n"
           "                      study, and without --augment its features are computed once (kept in\n"
           "                      memory and in the cache folder) and only the head trains on them\n"
           "  --random-backbone-weights  no --weights: keep the backbone random (tests the program's path\n"
           "                      only; the report warns that its accuracies mean nothing)\n"
           "  --data DIR          blood-cells data folder                            [" BCNN_DEFAULT_DATA_DIR "]\n"
           "  --protocol P        held-out: train/validate on TRAIN, test on TEST and TEST_SIMPLE (default);\n"
           "                      pooled: TRAIN+TEST pooled, shuffled, split 80/10/10 (the original study's)\n"
           "  --epochs N          epochs                                             [10]\n"
           "  --batch B           batch size                                         [32]\n"
           "  --seed S            seed of initialisation, splits, shuffles, dropout  [10]\n"
           "  --lr X              Adam learning rate; Keras' 0.001 stalls at chance [0.0003]\n"
           "  --warmup-epochs E   raise the learning rate linearly over the first E epochs [0]\n"
           "  --recalibrate-bn    after training, re-estimate BatchNorm's moving statistics over one pass of\n"
           "                      the training images (precise BN; not Keras); tests report both scores\n"
           "  --augment           random flips, 90-degree rotations, shifts, brightness\n"
           "  --out RUN           output folder (checkpoint, history, report, plots) [runs/MODEL]\n"
           "  --cache DIR         decoded-image and feature cache [$XDG_CACHE_HOME/bcnn or ~/.cache/bcnn]\n"
           "  --no-cache          decode every image, compute every feature, write no cache\n"
           "  --image-size N      images are resized to N x N                        [150]\n"
           "  --limit N           use only N images of each class per folder, evenly spaced (quick runs)\n"
           "  --threads N         CPU threads                                        [all cores]\n"
           "  --device D          cpu, or cuda: train, score and compute the frozen backbone's features on\n"
           "                      the GPU (needs bcnn built with its CUDA backend and a usable GPU) [cpu]\n"
           "  --precision P       fp32, or mixed precision on the GPU's tensor cores (needs --device cuda):\n"
           "                      bf16 or fp16 convolutions and dense layers with float accumulation and\n"
           "                      float master weights; fp16 adds dynamic loss scaling       [fp32]\n"
           "  --strict            stop at the first unreadable image instead of skipping it\n"
           "  --help              this text\n";
}

namespace detail {

inline long long parse_integer(const std::string& flag, const std::string& text, long long low, long long high) {
    char* end = nullptr;
    const long long value = std::strtoll(text.c_str(), &end, 10);
    if (text.empty() || *end != '\0' || value < low || value > high)
        throw UsageError(flag + " expects a whole number from " + std::to_string(low) + " to " + std::to_string(high) +
                         ", got '" + text + "'");
    return value;
}

inline double parse_positive(const std::string& flag, const std::string& text) {
    char* end = nullptr;
    const double value = std::strtod(text.c_str(), &end);
    if (text.empty() || *end != '\0' || !(value > 0) || value > 1e3)
        throw UsageError(flag + " expects a positive number, got '" + text + "'");
    return value;
}

// The backbone options fit --model: a backbone model needs exactly one of
// --weights (an existing file) and --random-backbone-weights; custom takes none.
inline void check_model_options(const Options& options) {
    if (options.model == "custom") {
        for (const auto& [given, flag] : {std::pair{!options.weights.empty(), "--weights"},
                                          std::pair{options.random_backbone_weights, "--random-backbone-weights"},
                                          std::pair{options.unfreeze_last_block, "--unfreeze-last-block"}})
            if (given)
                throw UsageError(std::string(flag) + " is for a pretrained backbone (--model vgg16 or densenet201); " +
                                 "the custom model is trained from scratch");
        return;
    }
    if (options.weights.empty() && !options.random_backbone_weights)
        throw UsageError("--model " + options.model +
                         " needs --weights FILE, the backbone's ImageNet weights converted by "
                         "weights/convert_keras.py or weights/convert_torchvision.py --model " + options.model +
                         " (weights/README.md); --random-backbone-weights runs it without them, for path tests only");
    if (!options.weights.empty() && options.random_backbone_weights)
        throw UsageError("--weights and --random-backbone-weights exclude each other");
    if (!options.weights.empty() && !std::filesystem::is_regular_file(options.weights))
        throw UsageError("--weights: no such file '" + options.weights + "'");
}

}  // namespace detail

// Parses argv; returns false when --help was asked for.
inline bool parse_options(int argc, char** argv, Options& options) {
    bool out_given = false;
    for (int i = 0; i < argc; ++i) options.command_line.emplace_back(argv[i]);
    for (int i = 1; i < argc; ++i) {
        const std::string flag = argv[i];
        auto value = [&]() -> std::string {
            if (i + 1 >= argc) throw UsageError(flag + " needs a value");
            return argv[++i];
        };
        if (flag == "--help" || flag == "-h") return false;
        if (flag == "--model") {
            options.model = value();
            if (std::find(model_names().begin(), model_names().end(), options.model) == model_names().end()) {
                std::string known;
                for (const std::string& name : model_names()) known += (known.empty() ? "" : ", ") + name;
                throw UsageError("--model '" + options.model + "' is not available; this build knows: " + known);
            }
        } else if (flag == "--weights") {
            options.weights = value();
        } else if (flag == "--random-backbone-weights") {
            options.random_backbone_weights = true;
        } else if (flag == "--unfreeze-last-block") {
            options.unfreeze_last_block = true;
        } else if (flag == "--data") {
            options.data = value();
        } else if (flag == "--protocol") {
            const std::string p = value();
            if (p == "held-out") options.protocol = Protocol::held_out;
            else if (p == "pooled") options.protocol = Protocol::pooled;
            else throw UsageError("--protocol expects held-out or pooled, got '" + p + "'");
        } else if (flag == "--epochs") {
            options.epochs = static_cast<int>(detail::parse_integer(flag, value(), 1, 100000));
        } else if (flag == "--batch") {
            options.batch = static_cast<int>(detail::parse_integer(flag, value(), 1, 100000));
        } else if (flag == "--seed") {
            options.seed = static_cast<std::uint64_t>(detail::parse_integer(flag, value(), 0, (1LL << 62)));
        } else if (flag == "--lr") {
            options.learning_rate = detail::parse_positive(flag, value());
        } else if (flag == "--warmup-epochs") {
            options.warmup_epochs = detail::parse_positive(flag, value());
        } else if (flag == "--recalibrate-bn") {
            options.recalibrate_bn = true;
        } else if (flag == "--augment") {
            options.augment = true;
        } else if (flag == "--out") {
            options.out = value();
            out_given = true;
        } else if (flag == "--cache") {
            options.cache = value();
        } else if (flag == "--no-cache") {
            options.use_cache = false;
        } else if (flag == "--image-size") {
            options.image_size = static_cast<int>(detail::parse_integer(flag, value(), 32, 1024));
        } else if (flag == "--limit") {
            options.limit_per_class = static_cast<int>(detail::parse_integer(flag, value(), 1, 1000000));
        } else if (flag == "--threads") {
            options.threads = static_cast<int>(detail::parse_integer(flag, value(), 1, 1024));
        } else if (flag == "--device") {
            const std::string d = value();
            if (d == "cpu") options.cuda = false;
            else if (d == "cuda") options.cuda = true;
            else throw UsageError("--device expects cpu or cuda, got '" + d + "'");
        } else if (flag == "--precision") {
            const std::string p = value();
            try {
                options.precision = bcnn::parse_precision(p);
            } catch (const bcnn::Error&) {
                throw UsageError("--precision expects fp32, bf16 or fp16, got '" + p + "'");
            }
        } else if (flag == "--strict") {
            options.strict = true;
        } else {
            throw UsageError("unknown option '" + flag + "'");
        }
    }
    detail::check_model_options(options);
    if (options.precision != bcnn::Precision::fp32 && !options.cuda)
        throw UsageError(std::string("--precision ") + bcnn::precision_name(options.precision) +
                         " needs --device cuda: mixed precision runs on the GPU's tensor cores; the CPU trains in "
                         "fp32 only");
    if (!out_given) options.out = "runs/" + options.model;
    return true;
}

// The cache folder: --cache, else $XDG_CACHE_HOME/bcnn, else ~/.cache/bcnn, else none.
inline std::string cache_folder(const Options& options) {
    if (!options.use_cache) return "";
    if (!options.cache.empty()) return options.cache;
    if (const char* xdg = std::getenv("XDG_CACHE_HOME"); xdg && *xdg) return std::string(xdg) + "/bcnn";
    if (const char* home = std::getenv("HOME"); home && *home) return std::string(home) + "/.cache/bcnn";
    return "";
}

}  // namespace bloodcells

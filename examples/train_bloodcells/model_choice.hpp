#pragma once
// The model of a run (--model): the study's custom CNN, or one of its
// transfer-learning models, a pretrained backbone (VGG16, DenseNet201) under
// the study's head (models::make_study_classifier), with
//   - the backbone's weights loaded from --weights (io::load_weights: a file
//     that does not fit is an error naming every tensor that does not), or
//     left random with --random-backbone-weights (path tests only; warned);
//   - the backbone's input preprocessing, as a BatchLoader transform on the
//     loader's /255 samples: the one its weights expect
//     (models/weights_preprocessing.hpp: Keras' caffe mode for VGG16 and torch
//     mode for DenseNet201 from Keras' files, torch mode for both from
//     torchvision's); the custom CNN takes the /255 images as they are;
//   - the backbone frozen, as in the study, or its last block trainable
//     (--unfreeze-last-block: VGG16's block5_conv1..3, DenseNet201's conv5
//     and final bn). Frozen BatchNorm layers keep running in inference mode
//     while the rest trains (nn/batch_norm.hpp);
//   - how the report and the plots name it, and what they say about it.

#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include <bcnn/data/batch_loader.hpp>
#include <bcnn/data/sha256.hpp>
#include <bcnn/io/safetensors.hpp>
#include <bcnn/io/weights.hpp>
#include <bcnn/models/custom_cnn.hpp>
#include <bcnn/models/densenet.hpp>
#include <bcnn/models/vgg16.hpp>
#include <bcnn/models/weights_preprocessing.hpp>

#include "options.hpp"

namespace bloodcells {

struct ModelChoice {
    std::unique_ptr<bcnn::nn::Sequential<float>> model;  // built and initialised (or loaded)
    std::string display_name;                 // "custom CNN", "VGG16", "DenseNet201"
    bool has_backbone = false;                // model->at(0) is a pretrained backbone, model->at(1...) the head
    bool backbone_frozen = false;             // has_backbone and no part of it trains
    bcnn::data::SampleTransform preprocess;   // applied to each /255 sample (H, W, 3); empty for custom
    std::vector<std::string> notes;           // for the report: weights, what trains, preprocessing
    std::string warning;                      // non-empty when the accuracies are not what they seem
    std::string backbone_id;                  // what the backbone's weights are (keys the feature cache)
};

namespace detail {

// SHA-256 of a file's bytes, as hex.
inline std::string file_sha256(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    BCNN_CHECK(in.is_open(), "cannot open '" << path << "'");
    bcnn::data::Sha256 hash;
    std::vector<char> buffer(1 << 20);
    while (in.read(buffer.data(), static_cast<std::streamsize>(buffer.size())) || in.gcount() > 0)
        hash.update(buffer.data(), static_cast<std::size_t>(in.gcount()));
    return hash.hex();
}

// "block5" children of a VGG16 backbone become trainable (block5_pool has no weights).
inline void unfreeze_vgg16_block5(bcnn::nn::Module<float>& backbone) {
    int found = 0;
    for (bcnn::nn::Module<float>* child : backbone.children())
        if (child->name().rfind("block5_conv", 0) == 0) {
            child->set_trainable(true);
            ++found;
        }
    BCNN_CHECK(found == 3, "unfreeze_vgg16_block5: '" << backbone.name() << "' has " << found
                                                      << " block5 convolutions, expected 3");
}

// Loads --weights into the backbone; errors say which file and what to pass instead.
inline void load_backbone_weights(const Options& options, bcnn::nn::Module<float>& backbone) {
    try {
        bcnn::io::load_weights(options.weights, backbone);
    } catch (const bcnn::Error& error) {
        throw bcnn::Error("--weights '" + options.weights + "' cannot be the " + options.model +
                          " backbone's weights: " + error.what() + "\n--model " + options.model +
                          " needs the file that weights/convert_keras.py (or convert_torchvision.py) --model " +
                          options.model + " writes from the official ImageNet file (weights/README.md)");
    }
}

// MD5 of Keras' official ImageNet file of each backbone (weights/README.md).
inline std::string official_md5(const std::string& model) {
    if (model == "vgg16") return "6d6bbae143d832006294945121d1f1fc";
    if (model == "densenet201") return "c13680b51ded0fb44dff2d8f86ac8bb1";
    return "";
}

// torchvision's official ImageNet file of each backbone; the hex digits of its
// name begin its SHA-256 (weights/README.md).
inline std::string official_torchvision_file(const std::string& model) {
    if (model == "vgg16") return "vgg16-397923af.pth";
    if (model == "densenet201") return "densenet201-c1103571.pth";
    return "";
}

// Whether a source named `name` with SHA-256 `sha256` is torchvision's official file of `model`.
inline bool is_official_torchvision(const std::string& model, const std::string& name, const std::string& sha256) {
    const std::string official = official_torchvision_file(model);
    if (official.empty() || name != official) return false;
    const std::size_t dash = official.rfind('-'), dot = official.rfind('.');
    return sha256.rfind(official.substr(dash + 1, dot - dash - 1), 0) == 0;
}

struct WeightsDescription {
    std::string sha256;   // of the file
    std::string note;     // "Backbone weights: FILE (sha256 ...), converted from SOURCE (md5 ...)"
    std::string warning;  // when SOURCE is not Keras' official ImageNet file, or the file does not say
};

// What the report says about the --weights file, judged by the hash of its
// source that the converter recorded: the MD5 of a Keras file
// (convert_keras.py), the SHA-256 of a torchvision file (convert_torchvision.py).
inline WeightsDescription describe_weights(const Options& options) {
    WeightsDescription out;
    std::string& note = out.note;
    out.sha256 = file_sha256(options.weights);
    note = "Backbone weights: `" + options.weights + "` (sha256 " + out.sha256 + ")";
    const auto metadata = bcnn::io::SafetensorsFile::open(options.weights).metadata();
    const auto source = metadata.find("bcnn.source"), md5 = metadata.find("bcnn.source_md5"),
               sha256 = metadata.find("bcnn.source_sha256");
    if (source != metadata.end()) note += ", converted from `" + source->second + "`";
    if (md5 == metadata.end() && sha256 != metadata.end()) {
        note += " (sha256 " + sha256->second + ")";
        if (source != metadata.end() && is_official_torchvision(options.model, source->second, sha256->second)) {
            note += ", torchvision's official ImageNet file";
            return out;
        }
        out.warning = "the backbone weights '" + options.weights + "' were not converted from torchvision's official "
                      "ImageNet file (" + official_torchvision_file(options.model) + "), nor from Keras': "
                      "accuracies are not those of ImageNet transfer learning";
        return out;
    }
    if (md5 == metadata.end()) {
        out.warning = "the backbone weights '" + options.weights +
                      "' do not say what they were converted from (no bcnn.source_md5 or bcnn.source_sha256): they "
                      "may not be ImageNet's";
        return out;
    }
    note += " (md5 " + md5->second + ")";
    if (md5->second == official_md5(options.model)) {
        note += ", Keras' official ImageNet file";
        return out;
    }
    out.warning = "the backbone weights '" + options.weights +
                  "' were not converted from Keras' official ImageNet file (md5 " + md5->second + ", official " +
                  official_md5(options.model) + "): accuracies are not those of ImageNet transfer learning";
    return out;
}

// A batch preprocessing function (rgb batch, output batch, input scale)
// applied in place to one /255 sample (H, W, 3) as a one-image batch.
template <typename BatchPreprocess>
bcnn::data::SampleTransform per_sample(BatchPreprocess preprocess) {
    return [preprocess](const bcnn::Tensor<float>& image, std::uint64_t, bcnn::Index) {
        bcnn::Tensor<float> batch = image.reshape(bcnn::Shape{1, image.dim(0), image.dim(1), image.dim(2)});
        preprocess(batch, batch, 255.0f);
    };
}

}  // namespace detail

// Builds the model of `options` for (image_size, image_size, 3) images and
// sets its weights: the custom CNN and the head from `rng` (Keras'
// initialisers), the backbone from --weights (or, with
// --random-backbone-weights, from `rng` after the head).
inline ModelChoice choose_model(const Options& options, bcnn::Rng& rng) {
    ModelChoice choice;
    if (options.model == "custom") {
        choice.model = bcnn::models::make_custom_cnn<float>(4, options.image_size);
        choice.model->initialize(rng);
        choice.display_name = "custom CNN";
        return choice;
    }
    const bool vgg = options.model == "vgg16";
    choice.model = bcnn::models::make_study_classifier<float>(
        vgg ? bcnn::models::make_vgg16_backbone<float>(options.image_size)
            : bcnn::models::make_densenet_backbone<float>(201, options.image_size),
        4);
    choice.display_name = vgg ? "VGG16" : "DenseNet201";
    choice.has_backbone = true;
    choice.notes.push_back(choice.display_name + " backbone (Keras Applications, include_top=False) under the study's "
                           "head: Flatten, BatchNorm, Dense 256/128/64 with Dropout 0.7/0.5/0.3, Dense(4)");
    bcnn::nn::Module<float>& backbone = choice.model->at(0);
    for (std::size_t i = 1; i < choice.model->size(); ++i) choice.model->at(i).initialize(rng);
    if (options.random_backbone_weights) {
        backbone.initialize(rng);
        choice.warning = "RANDOM BACKBONE: --random-backbone-weights left the " + choice.display_name +
                         " backbone with random weights (Keras' initialisers), not ImageNet's. This run only tests "
                         "the program's path; its accuracies mean nothing.";
        choice.notes.push_back("Backbone weights: **random** (--random-backbone-weights), not pretrained");
        choice.backbone_id = "random, seed " + std::to_string(options.seed) + ", drawn after the head's";
    } else {
        detail::load_backbone_weights(options, backbone);
        detail::WeightsDescription weights = detail::describe_weights(options);
        choice.warning = weights.warning;
        choice.backbone_id = "weights sha256 " + weights.sha256;
        choice.notes.push_back(weights.note);
    }
    if (options.unfreeze_last_block) {
        if (vgg)
            detail::unfreeze_vgg16_block5(backbone);
        else
            bcnn::models::set_densenet_conv5_trainable(backbone);
        choice.notes.push_back(
            std::string("Backbone frozen except its last block (--unfreeze-last-block): ") +
            (vgg ? "block5_conv1..3 train" : "conv5 and the final bn train (their BatchNorms on batch statistics)") +
            "; the rest runs in inference mode");
    } else {
        choice.backbone_frozen = true;
        choice.notes.push_back("Backbone frozen, as in the study: only the head trains");
    }
    const bool torch_mode = !vgg || (!options.random_backbone_weights &&
                                     bcnn::models::preprocessing_of_weights(options.weights) ==
                                         bcnn::models::InputPreprocessing::torch);
    if (torch_mode) {
        choice.preprocess = detail::per_sample(bcnn::models::densenet_preprocess<float>);
        choice.notes.push_back(std::string("Input preprocessing: torch mode (pixels / 255, minus the ImageNet mean, "
                                           "divided by its std), ") +
                               (vgg ? "as torchvision's VGG16 weights expect" : "Keras' DenseNet preprocessing"));
    } else {
        choice.preprocess = detail::per_sample(bcnn::models::vgg16_preprocess<float>);
        choice.notes.push_back("Input preprocessing: Keras' VGG16 (caffe mode: 0..255 pixels, RGB to BGR, ImageNet "
                               "channel means subtracted)");
    }
    return choice;
}

}  // namespace bloodcells

#pragma once
// Which input preprocessing a converted backbone's weights expect. Weights
// converted from Keras' files (weights/convert_keras.py) expect their model's
// own Keras mode: caffe for VGG16 (vgg16_preprocess), torch for DenseNet
// (densenet_preprocess). Weights converted from torchvision's files
// (weights/convert_torchvision.py) expect torch mode for every model, VGG16
// included, and their metadata says so: bcnn.preprocessing = "torch".

#include <string>

#include "bcnn/io/safetensors.hpp"

namespace bcnn {
namespace models {

enum class InputPreprocessing {
    model_default,  // the model's Keras preprocessing
    torch,          // x / 255, minus the ImageNet mean, divided by its std, RGB (densenet_preprocess)
};

// Reads the metadata of the weights file at `path`; an unknown mode is an error naming the file.
inline InputPreprocessing preprocessing_of_weights(const std::string& path) {
    const auto metadata = io::SafetensorsFile::open(path).metadata();
    const auto mode = metadata.find("bcnn.preprocessing");
    if (mode == metadata.end()) return InputPreprocessing::model_default;
    BCNN_CHECK(mode->second == "torch", "'" << path << "': bcnn.preprocessing is \"" << mode->second
                                            << "\", expected \"torch\" or no such key");
    return InputPreprocessing::torch;
}

}  // namespace models
}  // namespace bcnn

#pragma once
// DenseNet121, DenseNet169 and DenseNet201 as Keras Applications builds them
// with include_top=False (keras.applications.DenseNet201, ...), their input
// preprocessing, the original study's model 4 (the frozen DenseNet201 under
// the study's head), and the switch that unfreezes the last dense block for
// fine-tuning.
//
// Backbone (growth rate 32, bottleneck 4 x 32, compression 0.5, every
// BatchNorm with epsilon 1.001e-5, convolutions without bias), a Sequential
// named "densenet121" / "densenet169" / "densenet201" whose children are
//   zero_padding2d    ZeroPadding2D(3)
//   conv1             Sequential: conv (Conv 7x7 stride 2 'valid', 64), bn, relu
//   zero_padding2d_1  ZeroPadding2D(1)
//   pool1             MaxPool 3x3 stride 2 'valid'
//   conv2             DenseBlock of 6 layers (nn/dense_block.hpp)
//   pool2_bn, pool2_relu, pool2_conv (1x1, half the channels), pool2_pool (AvgPool 2x2 stride 2)
//   conv3             DenseBlock of 12 layers; then pool3_*
//   conv4             DenseBlock of 24 / 32 / 48 layers (121 / 169 / 201); then pool4_*
//   conv5             DenseBlock of 16 / 32 / 32 layers
//   bn, relu          the final BatchNorm and ReLU
// Parameter names follow Keras' layer names, with '/' where bcnn nests:
//   Keras conv1/conv/kernel          = bcnn conv1/conv/kernel
//   Keras conv2_block1_0_bn/gamma    = bcnn conv2/block1/0_bn/gamma
//   Keras pool2_conv/kernel, bn/beta = bcnn pool2_conv/kernel, bn/beta
// (weights/convert_keras.py maps Keras' official files onto these names).
// For 150x150x3 inputs: DenseNet201 -> (4, 4, 1920), 18,321,984 parameters
// counting the BatchNorm moving statistics (18,092,928 trainable);
// DenseNet169 -> (4, 4, 1664), 12,642,880; DenseNet121 -> (4, 4, 1024), 7,037,504.

#include <array>
#include <memory>
#include <string>

#include "bcnn/models/preprocess.hpp"
#include "bcnn/models/study_head.hpp"
#include "bcnn/nn/activation.hpp"
#include "bcnn/nn/avg_pool2d.hpp"
#include "bcnn/nn/batch_norm.hpp"
#include "bcnn/nn/conv2d.hpp"
#include "bcnn/nn/dense_block.hpp"
#include "bcnn/nn/max_pool2d.hpp"
#include "bcnn/nn/sequential.hpp"
#include "bcnn/nn/zero_pad.hpp"

namespace bcnn {
namespace models {

inline constexpr double kDenseNetEpsilon = 1.001e-5;  // every BatchNorm of Keras' DenseNets
inline constexpr Index kDenseNetGrowthRate = 32;
inline constexpr Index kDenseNetBottleneckChannels = 4 * kDenseNetGrowthRate;
inline constexpr double kDenseNetCompression = 0.5;  // a transition keeps this share of the channels

// Keras' "torch" preprocessing constants (ImageNet's channel statistics of
// pixel values in [0, 1]), in RGB order.
inline constexpr double kImageNetTorchMeanRGB[3] = {0.485, 0.456, 0.406};
inline constexpr double kImageNetTorchStdRGB[3] = {0.229, 0.224, 0.225};

// Layers of the four dense blocks of DenseNet121, 169 or 201.
inline std::array<int, 4> densenet_block_layers(int variant) {
    switch (variant) {
        case 121: return {6, 12, 24, 16};
        case 169: return {6, 12, 32, 32};
        case 201: return {6, 12, 48, 32};
        default: break;
    }
    throw Error("densenet_block_layers: DenseNet" + std::to_string(variant) + " is not one of 121, 169, 201");
}

// The DenseNets' input preprocessing, Keras' preprocess_input in "torch" mode
// (keras.applications.densenet.preprocess_input):
//   x (N, H, W, 3) RGB -> y (N, H, W, 3) RGB, per channel c
//   y[..., c] = (x[..., c] / 255 - mean[c]) / std[c]
//   mean = (0.485, 0.456, 0.406), std = (0.229, 0.224, 0.225)
// for pixel values 0..255 (input_scale 1, as Keras computes it, in T). For
// batches already divided by 255 (data::BatchLoader's) pass input_scale 255:
// x is then divided by 255 / 255 = 1. x and y may be the same tensor (in
// place) or channel-slice views.
template <typename T>
void densenet_preprocess(const Tensor<T>& rgb, Tensor<T>& y, T input_scale = T(1)) {
    BCNN_CHECK(input_scale > T(0), "densenet_preprocess: input_scale must be positive, got " << input_scale);
    const T divisor = T(255) / input_scale;
    T mean[3], std_dev[3];
    for (int c = 0; c < 3; ++c) {
        mean[c] = static_cast<T>(kImageNetTorchMeanRGB[c]);
        std_dev[c] = static_cast<T>(kImageNetTorchStdRGB[c]);
    }
    detail::for_each_rgb_pixel("densenet_preprocess", rgb, y, [&](const T* in, T* out) {
        for (int c = 0; c < 3; ++c) out[c] = (in[c] / divisor - mean[c]) / std_dev[c];
    });
}

// The backbone DenseNet`variant` (121, 169 or 201), built for
// (image_size, image_size, 3), named as described above. Its weights are
// zero: call initialize(rng) (Keras' initialisers) or load converted weights
// (io::load_weights) before use. image_size >= 32, as Keras requires.
template <typename T>
std::unique_ptr<nn::Sequential<T>> make_densenet_backbone(int variant = 201, Index image_size = 150) {
    const std::array<int, 4> blocks = densenet_block_layers(variant);
    BCNN_CHECK(image_size >= 32, "make_densenet_backbone: image_size must be at least 32, got " << image_size);
    using nn::ActivationFn;
    const double momentum = cpu::kBatchNormMomentum;
    auto model = std::make_unique<nn::Sequential<T>>("densenet" + std::to_string(variant));

    model->template emplace<nn::ZeroPadding2D<T>>(3, "zero_padding2d");
    auto stem = std::make_unique<nn::Sequential<T>>("conv1");
    stem->template emplace<nn::Conv2D<T>>(64, 7, 2, Padding::valid, ActivationFn::linear, false, "conv");
    stem->template emplace<nn::BatchNormalization<T>>(momentum, kDenseNetEpsilon, "bn");
    stem->template emplace<nn::Activation<T>>(ActivationFn::relu, "relu");
    model->add(std::move(stem));
    model->template emplace<nn::ZeroPadding2D<T>>(1, "zero_padding2d_1");
    model->template emplace<nn::MaxPooling2D<T>>(3, 2, Padding::valid, "pool1");

    Index channels = 64;
    for (int b = 0; b < 4; ++b) {
        model->template emplace<nn::DenseBlock<T>>(blocks[b], kDenseNetGrowthRate, kDenseNetBottleneckChannels,
                                                   kDenseNetEpsilon, "conv" + std::to_string(b + 2));
        channels += blocks[b] * kDenseNetGrowthRate;
        if (b == 3) break;
        // Transition: BN -> ReLU -> 1x1 convolution to half the channels -> 2x2 average pool.
        const std::string name = "pool" + std::to_string(b + 2);
        channels = static_cast<Index>(static_cast<double>(channels) * kDenseNetCompression);
        model->template emplace<nn::BatchNormalization<T>>(momentum, kDenseNetEpsilon, name + "_bn");
        model->template emplace<nn::Activation<T>>(ActivationFn::relu, name + "_relu");
        model->template emplace<nn::Conv2D<T>>(channels, 1, 1, Padding::valid, ActivationFn::linear, false,
                                               name + "_conv");
        model->template emplace<nn::AveragePooling2D<T>>(2, 2, Padding::valid, name + "_pool");
    }
    model->template emplace<nn::BatchNormalization<T>>(momentum, kDenseNetEpsilon, "bn");
    model->template emplace<nn::Activation<T>>(ActivationFn::relu, "relu");
    model->build(Shape{image_size, image_size, 3});
    return model;
}

// The study's model 4, a Sequential named "sequential": the DenseNet201
// backbone (child 0, "densenet201", frozen as in the study) under the
// study's head (study_head.hpp). For 150x150 and 4 classes the first Dense
// has 4 * 4 * 1920 * 256 + 256 = 7,864,576 parameters. Parameter names are
// "densenet201/conv1/conv/kernel", ..., "batch_normalization/gamma",
// "dense/kernel", ..., "dense_3/bias". Load converted ImageNet weights into
// the backbone alone with io::load_weights(path, model->at(0)). Output: logits.
template <typename T>
std::unique_ptr<nn::Sequential<T>> make_densenet201_classifier(int classes = 4, Index image_size = 150) {
    BCNN_CHECK(classes >= 2, "make_densenet201_classifier: classes must be at least 2, got " << classes);
    return make_study_classifier<T>(make_densenet_backbone<T>(201, image_size), classes);
}

// Fine-tuning: makes the last dense block ("conv5") and the final BatchNorm
// ("bn") of a DenseNet backbone trainable (or frozen again), leaving the rest
// as it is, like setting `trainable` on Keras' layers conv5_* and bn. With the
// classifier, pass model->at(0); backward then runs through the head, bn and
// conv5 only. Throws when `backbone` has no such children.
template <typename T>
void set_densenet_conv5_trainable(nn::Module<T>& backbone, bool trainable = true) {
    for (const char* name : {"conv5", "bn"}) {
        nn::Module<T>* found = nullptr;
        for (nn::Module<T>* child : backbone.children())
            if (child->name() == name) found = child;
        BCNN_CHECK(found, "set_densenet_conv5_trainable: model '" << backbone.name() << "' has no layer '" << name
                                                                  << "': pass a DenseNet backbone (the classifier's "
                                                                     "model->at(0))");
        found->set_trainable(trainable);
    }
}

}  // namespace models
}  // namespace bcnn

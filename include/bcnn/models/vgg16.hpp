#pragma once
// VGG16 as Keras Applications builds it with include_top=False
// (keras.applications.VGG16), its input preprocessing, and the original
// study's model 3: the frozen backbone under the study's head.
//
// Backbone: five blocks of 3x3 'same' convolutions with ReLU, each block
// ending in a 2x2 max pool (stride 2, 'valid'):
//   block1: 64, 64    block2: 128, 128    block3: 256 x3
//   block4: 512 x3    block5: 512 x3
// Layers are named as Keras names them (block1_conv1, block1_conv2,
// block1_pool, ..., block5_pool), so parameters are "block1_conv1/kernel"
// (3, 3, 3, 64) HWIO and "block1_conv1/bias" (64), the names that
// weights/convert_keras.py gives Keras' official ImageNet weights.
// 14,714,688 parameters; 150x150x3 -> (4, 4, 512).

#include <memory>
#include <string>

#include "bcnn/models/preprocess.hpp"
#include "bcnn/models/study_head.hpp"
#include "bcnn/nn/conv2d.hpp"
#include "bcnn/nn/max_pool2d.hpp"
#include "bcnn/nn/sequential.hpp"

namespace bcnn {
namespace models {

// Keras' "caffe" preprocessing means (the ImageNet training set's channel
// means), in BGR order.
inline constexpr double kImageNetCaffeMeanBGR[3] = {103.939, 116.779, 123.68};

// VGG16's input preprocessing, Keras' preprocess_input in "caffe" mode
// (keras.applications.vgg16.preprocess_input):
//   x (N, H, W, 3) RGB -> y (N, H, W, 3) BGR with the ImageNet channel means
//   subtracted, no other scaling:
//   y[..., 0] = s*B - 103.939, y[..., 1] = s*G - 116.779, y[..., 2] = s*R - 123.68
// where s = input_scale. VGG16 expects pixel values 0..255: s = 1 for such
// input, s = 255 for batches already divided by 255 (data::BatchLoader's).
// x and y may be the same tensor (in place) or channel-slice views.
template <typename T>
void vgg16_preprocess(const Tensor<T>& rgb, Tensor<T>& bgr, T input_scale = T(1)) {
    const T mean_b = static_cast<T>(kImageNetCaffeMeanBGR[0]);
    const T mean_g = static_cast<T>(kImageNetCaffeMeanBGR[1]);
    const T mean_r = static_cast<T>(kImageNetCaffeMeanBGR[2]);
    detail::for_each_rgb_pixel("vgg16_preprocess", rgb, bgr, [&](const T* in, T* out) {
        const T r = in[0] * input_scale, g = in[1] * input_scale, b = in[2] * input_scale;
        out[0] = b - mean_b;
        out[1] = g - mean_g;
        out[2] = r - mean_r;
    });
}

// The backbone, a Sequential named "vgg16" (Keras' model name) built for
// (image_size, image_size, 3). Its weights are zero: call initialize(rng)
// (Keras' initialisers) or load converted weights (io::load_weights) before
// use. image_size >= 32 (five 2x2 poolings), as Keras requires.
template <typename T>
std::unique_ptr<nn::Sequential<T>> make_vgg16_backbone(Index image_size = 150) {
    BCNN_CHECK(image_size >= 32,
               "make_vgg16_backbone: image_size must be at least 32 (five 2x2 poolings), got " << image_size);
    struct Block {
        Index filters;
        int convolutions;
    };
    auto model = std::make_unique<nn::Sequential<T>>("vgg16");
    const Block blocks[] = {{64, 2}, {128, 2}, {256, 3}, {512, 3}, {512, 3}};
    for (int b = 0; b < 5; ++b) {
        const std::string block = "block" + std::to_string(b + 1);
        for (int c = 1; c <= blocks[b].convolutions; ++c)
            model->template emplace<nn::Conv2D<T>>(blocks[b].filters, 3, 1, Padding::same, nn::ActivationFn::relu, true,
                                                   block + "_conv" + std::to_string(c));
        model->template emplace<nn::MaxPooling2D<T>>(2, 2, Padding::valid, block + "_pool");
    }
    model->build(Shape{image_size, image_size, 3});
    return model;
}

// The study's model 3, a Sequential named "sequential": the VGG16 backbone
// (child 0, named "vgg16", frozen as in the study) and the study's head
// (study_head.hpp). For 150x150 and 4 classes: 16,887,300 parameters, of
// which 2,155,716 trainable; the first Dense has 8192 * 256 + 256 = 2,097,408.
// Parameter names are "vgg16/block1_conv1/kernel", ..., "batch_normalization/gamma",
// "dense/kernel", ..., "dense_3/bias". Load converted ImageNet weights into
// the backbone alone with io::load_weights(path, model->at(0)); unfreeze it
// with model->at(0).set_trainable(true). Output: logits (classes).
template <typename T>
std::unique_ptr<nn::Sequential<T>> make_vgg16_classifier(int classes = 4, Index image_size = 150) {
    BCNN_CHECK(classes >= 2, "make_vgg16_classifier: classes must be at least 2, got " << classes);
    return make_study_classifier<T>(make_vgg16_backbone<T>(image_size), classes);
}

}  // namespace models
}  // namespace bcnn

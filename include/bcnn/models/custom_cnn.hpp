#pragma once
// The original study's custom CNN ("Model 1"), as its Keras code builds it
// for 150x150x3 images scaled to [0, 1]:
//   Conv2D(16, 3x3, same, relu) -> Conv2D(16, 3x3, same, relu) -> MaxPool(2)
//   four blocks, f = 32, 64, 128, 256:
//     SeparableConv2D(f, 3x3, same, relu) x2 -> BatchNorm -> MaxPool(2)
//     (Dropout(0.2) after the blocks with f = 128 and 256)
//   Flatten -> Dense(512, relu) -> Dropout(0.7) -> Dense(128, relu) -> Dropout(0.5)
//   -> Dense(64, relu) -> Dropout(0.3) -> Dense(classes)
// The study's last layer is Dense(4, activation='softmax'); here it outputs
// logits (same parameters, 260 for 4 classes): the loss applies softmax
// (cpu::softmax_cross_entropy) and predict() returns probabilities.
// For 150x150: 2,314,532 parameters, 960 of them BatchNorm moving statistics
// (non-trainable), exactly Keras' count; Flatten gives 4 * 4 * 256 = 4096.

#include <memory>

#include "bcnn/nn/batch_norm.hpp"
#include "bcnn/nn/conv2d.hpp"
#include "bcnn/nn/dense.hpp"
#include "bcnn/nn/dropout.hpp"
#include "bcnn/nn/flatten.hpp"
#include "bcnn/nn/max_pool2d.hpp"
#include "bcnn/nn/separable_conv2d.hpp"
#include "bcnn/nn/sequential.hpp"

namespace bcnn {
namespace models {

// The model, built for (image_size, image_size, 3) inputs and named as Keras
// names it ("sequential", layers "conv2d", "conv2d_1", "max_pooling2d", ...).
// Its weights are zero: call initialize(rng) (Keras' initialisers) or load
// weights before use. image_size >= 32 (five 2x2 poolings).
template <typename T>
std::unique_ptr<nn::Sequential<T>> make_custom_cnn(int classes = 4, Index image_size = 150) {
    BCNN_CHECK(classes >= 2, "make_custom_cnn: classes must be at least 2, got " << classes);
    BCNN_CHECK(image_size >= 32,
               "make_custom_cnn: image_size must be at least 32 (five 2x2 poolings), got " << image_size);
    using nn::ActivationFn;
    auto model = std::make_unique<nn::Sequential<T>>("sequential");
    model->template emplace<nn::Conv2D<T>>(16, 3, 1, Padding::same, ActivationFn::relu);
    model->template emplace<nn::Conv2D<T>>(16, 3, 1, Padding::same, ActivationFn::relu);
    model->template emplace<nn::MaxPooling2D<T>>(2);
    for (const Index filters : {32, 64, 128, 256}) {
        model->template emplace<nn::SeparableConv2D<T>>(filters, 3, 1, Padding::same, ActivationFn::relu);
        model->template emplace<nn::SeparableConv2D<T>>(filters, 3, 1, Padding::same, ActivationFn::relu);
        model->template emplace<nn::BatchNormalization<T>>();
        model->template emplace<nn::MaxPooling2D<T>>(2);
        if (filters >= 128) model->template emplace<nn::Dropout<T>>(0.2);
    }
    model->template emplace<nn::Flatten<T>>();
    model->template emplace<nn::Dense<T>>(512, ActivationFn::relu);
    model->template emplace<nn::Dropout<T>>(0.7);
    model->template emplace<nn::Dense<T>>(128, ActivationFn::relu);
    model->template emplace<nn::Dropout<T>>(0.5);
    model->template emplace<nn::Dense<T>>(64, ActivationFn::relu);
    model->template emplace<nn::Dropout<T>>(0.3);
    model->template emplace<nn::Dense<T>>(classes);
    model->build(Shape{image_size, image_size, 3});
    return model;
}

}  // namespace models
}  // namespace bcnn

#pragma once
// The small network the real-image training tests fit (tests/train and
// tests/cuda): conv-BN-pool twice, a separable block, global average
// pooling, logits for the 4 classes. BatchNorm momentum 0.9 so the moving
// statistics settle within a short run.

#include <memory>

#include <bcnn/nn/batch_norm.hpp>
#include <bcnn/nn/conv2d.hpp>
#include <bcnn/nn/dense.hpp>
#include <bcnn/nn/global_avg_pool.hpp>
#include <bcnn/nn/max_pool2d.hpp>
#include <bcnn/nn/separable_conv2d.hpp>
#include <bcnn/nn/sequential.hpp>

namespace bcnn {
namespace testing {

// Built for (image_size, image_size, 3) inputs; weights zero until initialize().
inline std::unique_ptr<nn::Sequential<float>> small_network(Index image_size) {
    using namespace bcnn::nn;
    auto model = std::make_unique<Sequential<float>>();
    model->emplace<Conv2D<float>>(16, 3, 1, Padding::same, ActivationFn::relu);
    model->emplace<BatchNormalization<float>>(0.9);
    model->emplace<MaxPooling2D<float>>(2);
    model->emplace<Conv2D<float>>(32, 3, 1, Padding::same, ActivationFn::relu);
    model->emplace<BatchNormalization<float>>(0.9);
    model->emplace<MaxPooling2D<float>>(2);
    model->emplace<SeparableConv2D<float>>(64, 3, 1, Padding::same, ActivationFn::relu);
    model->emplace<BatchNormalization<float>>(0.9);
    model->emplace<MaxPooling2D<float>>(2);
    model->emplace<GlobalAveragePooling2D<float>>();
    model->emplace<Dense<float>>(4);
    model->build(Shape{image_size, image_size, 3});
    return model;
}

}  // namespace testing
}  // namespace bcnn

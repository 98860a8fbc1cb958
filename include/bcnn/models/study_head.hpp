#pragma once
// The original study's classification head, shared by its transfer-learning
// models (VGG16, DenseNet201): on the backbone's feature map
//   Flatten -> BatchNorm -> Dense(256, relu) -> Dropout(0.7) -> BatchNorm
//   -> Dense(128, relu) -> Dropout(0.5) -> Dense(64, relu) -> Dropout(0.3)
//   -> Dense(classes)
// The study's last layer is Dense(4, activation='softmax'); here it outputs
// logits (same parameters), as make_custom_cnn does.
// Layer names are the ones Keras gives these layers in a fresh session when
// the study writes Sequential([backbone, Flatten(), BatchNormalization(), ...]):
//   flatten, batch_normalization, dense, dropout, batch_normalization_1,
//   dense_1, dropout_1, dense_2, dropout_2, dense_3
// so a Keras model of the study saved with save_weights converts by name
// (weights/convert_keras.py). BatchNormalization uses Keras' defaults
// (momentum 0.99, epsilon 1e-3). make_study_classifier puts a backbone under it.

#include <memory>

#include "bcnn/nn/batch_norm.hpp"
#include "bcnn/nn/dense.hpp"
#include "bcnn/nn/dropout.hpp"
#include "bcnn/nn/flatten.hpp"
#include "bcnn/nn/sequential.hpp"

namespace bcnn {
namespace models {

// Appends the study's head to `model` (not yet built); its layers take
// Sequential's automatic names listed above.
template <typename T>
void add_study_head(nn::Sequential<T>& model, int classes) {
    BCNN_CHECK(classes >= 2, "add_study_head: classes must be at least 2, got " << classes);
    using nn::ActivationFn;
    model.template emplace<nn::Flatten<T>>();
    model.template emplace<nn::BatchNormalization<T>>();
    model.template emplace<nn::Dense<T>>(256, ActivationFn::relu);
    model.template emplace<nn::Dropout<T>>(0.7);
    model.template emplace<nn::BatchNormalization<T>>();
    model.template emplace<nn::Dense<T>>(128, ActivationFn::relu);
    model.template emplace<nn::Dropout<T>>(0.5);
    model.template emplace<nn::Dense<T>>(64, ActivationFn::relu);
    model.template emplace<nn::Dropout<T>>(0.3);
    model.template emplace<nn::Dense<T>>(classes);
}

// The study's transfer-learning model (models 3 and 4): a Sequential named
// "sequential" holding `backbone` (built; child 0, frozen as in the study)
// under the study's head, built for the backbone's input. Converted backbone
// weights load into model->at(0).
template <typename T>
std::unique_ptr<nn::Sequential<T>> make_study_classifier(std::unique_ptr<nn::Module<T>> backbone, int classes) {
    BCNN_CHECK(backbone && backbone->built(), "make_study_classifier: the backbone must be built");
    const Shape input_shape = backbone->input_shape();
    auto model = std::make_unique<nn::Sequential<T>>("sequential");
    model->add(std::move(backbone)).set_trainable(false);
    add_study_head(*model, classes);
    model->build(input_shape);
    return model;
}

}  // namespace models
}  // namespace bcnn

#!/usr/bin/env python3
"""The Keras side of the comparisons with bcnn (run by run_keras_check.sh).

    compare_keras.py --model vgg16|densenet201 --out DIR [--batch 2] [--image-size 150]

Builds, with tf_keras (Keras 2) and seeded random weights:
  - the backbone, Keras Applications' own builder with include_top=False,
    weights=None, input_shape=(S, S, 3): VGG16 or DenseNet201;
  - the study's model on it (model 3 with VGG16, model 4 with DenseNet201):
    Sequential([backbone (frozen), Flatten(), BatchNormalization(),
    Dense(256, relu), Dropout(0.7), BatchNormalization(), Dense(128, relu),
    Dropout(0.5), Dense(64, relu), Dropout(0.3), Dense(4, softmax)]).
Every weight is random and non-zero, so that every tensor's mapping changes
the outputs:
  - VGG16: He-normal kernels, biases U(-10, 10);
  - DenseNet201: He-normal kernels (no biases), BatchNorm gamma U(0.5, 1.5)
    and beta U(-0.5, 0.5), and moving statistics set to the batch
    statistics each BatchNorm sees on another random batch (one training
    pass with momentum 0), so that activations keep their scale through
    the 200 layers;
  - the head: He-normal kernels, biases U(-0.5, 0.5), BatchNorm moving
    statistics near (but not at) those of the features it sees, their
    variance floored at half the features' mean square (set_batch_norm).
Writes into --out:
  MODEL_backbone.h5        backbone.save_weights (the official files' layout)
  MODEL_classifier.h5      model.save_weights
  keras_outputs.safetensors
    input                    (B, S, S, 3) RGB pixel values 0..255
    preprocessed             keras.applications.MODEL.preprocess_input(input)
    backbone_output          backbone(preprocessed), inference
    classifier_logits        the model's last Dense before its softmax, inference
    classifier_probabilities the model's output (softmax), inference
"""

import argparse
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import tf_keras as keras  # noqa: E402

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "weights"))
from convert_keras import write_safetensors  # noqa: E402

layers = keras.layers


def he_normal(rng, shape):
    """Kernels that keep activations at the input's scale through ReLU layers."""
    fan_in = int(np.prod(shape[:-1]))
    return rng.normal(0.0, np.sqrt(2.0 / fan_in), size=shape).astype(np.float32)


def randomize_kernel_layer(rng, layer, bias_scale):
    weights = layer.get_weights()
    randomized = [he_normal(rng, weights[0].shape)]
    if len(weights) == 2:
        randomized.append(rng.uniform(-bias_scale, bias_scale, size=weights[1].shape).astype(np.float32))
    layer.set_weights(randomized)


def set_batch_norm(rng, layer, features):
    """gamma, beta random; moving mean and variance near those of `features` (N, C).

    The variance of each feature over the batch's few images is floored at
    half the layer's mean square, as statistics over many images would be:
    otherwise features that hardly vary within the batch are scaled up,
    float32 rounding included, and the comparison measures that rounding.
    """
    channels = features.shape[-1]
    mean = features.mean(axis=0)
    variance = features.var(axis=0) + 0.25 * mean ** 2 + 0.5 * np.mean(features ** 2)
    layer.set_weights([
        rng.uniform(0.5, 1.5, size=channels).astype(np.float32),
        rng.uniform(-0.5, 0.5, size=channels).astype(np.float32),
        (mean * rng.uniform(0.5, 1.5, size=channels)).astype(np.float32),
        (variance * rng.uniform(0.5, 1.5, size=channels)).astype(np.float32),
    ])


def random_pixels(rng, batch, size):
    return np.round(rng.uniform(0, 255, size=(batch, size, size, 3))).astype(np.float32)


def make_vgg16(rng, size, batch):
    backbone = keras.applications.VGG16(include_top=False, weights=None, input_shape=(size, size, 3))
    for layer in backbone.layers:
        if isinstance(layer, layers.Conv2D):
            randomize_kernel_layer(rng, layer, bias_scale=10.0)  # activations are ~100 (pixels minus means)
    return backbone, keras.applications.vgg16.preprocess_input


def make_densenet201(rng, size, batch):
    backbone = keras.applications.DenseNet201(include_top=False, weights=None, input_shape=(size, size, 3))
    batch_norms = []
    for layer in backbone.layers:
        if isinstance(layer, layers.Conv2D):
            randomize_kernel_layer(rng, layer, bias_scale=0.0)
        elif isinstance(layer, layers.BatchNormalization):
            gamma, beta, moving_mean, moving_variance = layer.get_weights()
            layer.set_weights([rng.uniform(0.5, 1.5, size=gamma.shape).astype(np.float32),
                               rng.uniform(-0.5, 0.5, size=beta.shape).astype(np.float32),
                               moving_mean, moving_variance])
            batch_norms.append(layer)
    # Moving statistics: those of another batch, from one training pass with momentum 0.
    preprocess = keras.applications.densenet.preprocess_input
    calibration = preprocess(random_pixels(rng, batch, size))
    for layer in batch_norms:
        layer.momentum = 0.0
    backbone(calibration, training=True)
    for layer in batch_norms:
        layer.momentum = 0.99
        moving_variance = layer.get_weights()[3]
        if not np.all(moving_variance > 0) or np.allclose(moving_variance, 1.0):
            sys.exit(f"compare_keras.py: BatchNorm '{layer.name}' was not calibrated")
    return backbone, preprocess


BACKBONES = {"vgg16": make_vgg16, "densenet201": make_densenet201}


def study_classifier(backbone, classes):
    """The study's head (include/bcnn/models/study_head.hpp) under `backbone`."""
    return keras.Sequential([
        backbone,
        layers.Flatten(),
        layers.BatchNormalization(),
        layers.Dense(256, activation="relu"),
        layers.Dropout(0.7),
        layers.BatchNormalization(),
        layers.Dense(128, activation="relu"),
        layers.Dropout(0.5),
        layers.Dense(64, activation="relu"),
        layers.Dropout(0.3),
        layers.Dense(classes, activation="softmax"),
    ])


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", required=True, choices=sorted(BACKBONES))
    parser.add_argument("--out", required=True)
    parser.add_argument("--seed", type=int, default=1234)
    parser.add_argument("--batch", type=int, default=2)
    parser.add_argument("--image-size", type=int, default=150)
    parser.add_argument("--classes", type=int, default=4)
    args = parser.parse_args()
    keras.utils.set_random_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    size = args.image_size
    start = time.monotonic()

    backbone, preprocess_input = BACKBONES[args.model](rng, size, args.batch)
    backbone.trainable = False
    model = study_classifier(backbone, args.classes)
    model.build((None, size, size, 3))
    expected_names = [args.model, "flatten", "batch_normalization", "dense", "dropout", "batch_normalization_1",
                      "dense_1", "dropout_1", "dense_2", "dropout_2", "dense_3"]
    names = [layer.name for layer in model.layers]
    if names != expected_names:
        sys.exit(f"compare_keras.py: Keras named the layers {names}, expected {expected_names}")

    pixels = random_pixels(rng, args.batch, size)
    preprocessed = preprocess_input(pixels.copy())

    # Head weights, layer by layer, with BatchNorm statistics near those of its input.
    h = backbone(preprocessed, training=False).numpy()
    backbone_output = h
    h = model.layers[1](h).numpy()
    for layer in model.layers[2:]:
        if isinstance(layer, layers.BatchNormalization):
            set_batch_norm(rng, layer, h)
        elif isinstance(layer, layers.Dense):
            randomize_kernel_layer(rng, layer, bias_scale=0.5)
        h = layer(h, training=False).numpy()

    probabilities = model(preprocessed, training=False).numpy()
    model.layers[-1].activation = keras.activations.linear
    logits = model(preprocessed, training=False).numpy()
    model.layers[-1].activation = keras.activations.softmax
    if not np.allclose(probabilities, h, rtol=1e-5, atol=1e-7):
        sys.exit("compare_keras.py: the model's output differs from its layers applied one by one")

    os.makedirs(args.out, exist_ok=True)
    backbone.save_weights(os.path.join(args.out, f"{args.model}_backbone.h5"))
    model.save_weights(os.path.join(args.out, f"{args.model}_classifier.h5"))
    outputs = [("input", pixels), ("preprocessed", preprocessed), ("backbone_output", backbone_output),
               ("classifier_logits", logits), ("classifier_probabilities", probabilities)]
    write_safetensors(os.path.join(args.out, "keras_outputs.safetensors"),
                      [(name, np.ascontiguousarray(value, dtype="<f4")) for name, value in outputs],
                      {"bcnn.source": "tests/keras/compare_keras.py", "model": args.model, "seed": str(args.seed)})
    print(f"compare_keras.py: Keras {args.model} outputs for {args.batch} images of {size}x{size} in {args.out} "
          f"({time.monotonic() - start:.1f} s): backbone {backbone_output.shape} max |y| "
          f"{np.abs(backbone_output).max():.4g} ({np.mean(backbone_output > 0):.0%} positive), "
          f"logits {logits.shape} max |y| {np.abs(logits).max():.4g}")


if __name__ == "__main__":
    main()

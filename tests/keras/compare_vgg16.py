#!/usr/bin/env python3
"""The Keras side of the VGG16 comparison (run by run_keras_check.sh).

Builds, with tf_keras (Keras 2) and seeded random weights:
  - VGG16(include_top=False, weights=None, input_shape=(S, S, 3)), Keras
    Applications' own builder;
  - the study's model 3: Sequential([that VGG16 (frozen), Flatten(),
    BatchNormalization(), Dense(256, relu), Dropout(0.7), BatchNormalization(),
    Dense(128, relu), Dropout(0.5), Dense(64, relu), Dropout(0.3),
    Dense(4, softmax)]).
Every weight is random and non-zero (biases included), and the BatchNorm
moving statistics are set near the statistics of the features they see, so
that every tensor's mapping changes the outputs. Writes into --out:
  vgg16_backbone.h5       backbone.save_weights (the official files' layout)
  vgg16_classifier.h5     model.save_weights
  keras_outputs.safetensors
    input                    (B, S, S, 3) RGB pixel values 0..255
    preprocessed             keras.applications.vgg16.preprocess_input(input)
    backbone_output          backbone(preprocessed), inference
    classifier_logits        the model's last Dense before its softmax, inference
    classifier_probabilities the model's output (softmax), inference
"""

import argparse
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import tf_keras as keras  # noqa: E402

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "weights"))
from convert_keras import write_safetensors  # noqa: E402


def he_normal(rng, shape):
    """Kernels that keep activations at the input's scale through ReLU layers."""
    fan_in = int(np.prod(shape[:-1]))
    return rng.normal(0.0, np.sqrt(2.0 / fan_in), size=shape).astype(np.float32)


def randomize_kernel_layer(rng, layer, bias_scale):
    kernel, bias = layer.get_weights()
    layer.set_weights([he_normal(rng, kernel.shape),
                       rng.uniform(-bias_scale, bias_scale, size=bias.shape).astype(np.float32)])


def set_batch_norm(rng, layer, features):
    """gamma, beta random; moving mean and variance near those of `features` (N, C)."""
    channels = features.shape[-1]
    mean = features.mean(axis=0)
    variance = features.var(axis=0) + 0.25 * mean ** 2 + 1e-2 * (np.abs(features).max() + 1.0)
    layer.set_weights([
        rng.uniform(0.5, 1.5, size=channels).astype(np.float32),
        rng.uniform(-0.5, 0.5, size=channels).astype(np.float32),
        (mean * rng.uniform(0.5, 1.5, size=channels)).astype(np.float32),
        (variance * rng.uniform(0.5, 1.5, size=channels)).astype(np.float32),
    ])


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", required=True)
    parser.add_argument("--seed", type=int, default=1234)
    parser.add_argument("--batch", type=int, default=2)
    parser.add_argument("--image-size", type=int, default=150)
    parser.add_argument("--classes", type=int, default=4)
    args = parser.parse_args()
    keras.utils.set_random_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    size = args.image_size

    backbone = keras.applications.VGG16(include_top=False, weights=None, input_shape=(size, size, 3))
    for layer in backbone.layers:
        if isinstance(layer, keras.layers.Conv2D):
            randomize_kernel_layer(rng, layer, bias_scale=10.0)  # activations are ~100 (pixels minus means)
    backbone.trainable = False

    layers = keras.layers
    model = keras.Sequential([
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
        layers.Dense(args.classes, activation="softmax"),
    ])
    model.build((None, size, size, 3))
    expected_names = ["vgg16", "flatten", "batch_normalization", "dense", "dropout", "batch_normalization_1",
                      "dense_1", "dropout_1", "dense_2", "dropout_2", "dense_3"]
    names = [layer.name for layer in model.layers]
    if names != expected_names:
        sys.exit(f"compare_vgg16.py: Keras named the layers {names}, expected {expected_names}")

    pixels = np.round(rng.uniform(0, 255, size=(args.batch, size, size, 3))).astype(np.float32)
    preprocessed = keras.applications.vgg16.preprocess_input(pixels.copy())

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
        sys.exit("compare_vgg16.py: the model's output differs from its layers applied one by one")

    os.makedirs(args.out, exist_ok=True)
    backbone.save_weights(os.path.join(args.out, "vgg16_backbone.h5"))
    model.save_weights(os.path.join(args.out, "vgg16_classifier.h5"))
    outputs = [("input", pixels), ("preprocessed", preprocessed), ("backbone_output", backbone_output),
               ("classifier_logits", logits), ("classifier_probabilities", probabilities)]
    write_safetensors(os.path.join(args.out, "keras_outputs.safetensors"),
                      [(name, np.ascontiguousarray(value, dtype="<f4")) for name, value in outputs],
                      {"bcnn.source": "tests/keras/compare_vgg16.py", "seed": str(args.seed)})
    print(f"compare_vgg16.py: Keras outputs for {args.batch} images of {size}x{size} in {args.out}: "
          f"backbone {backbone_output.shape} max |y| {np.abs(backbone_output).max():.4g} "
          f"({np.mean(backbone_output > 0):.0%} positive), logits {logits.shape} max |y| {np.abs(logits).max():.4g}")


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""The torchvision side of the comparisons with bcnn (run by run_keras_check.sh).

    compare_torch.py --model vgg16|densenet201 --out DIR [--seed 1234] [--batch 2] [--image-size 150]

Builds torchvision.models.vgg16 or densenet201 (weights=None: nothing is
downloaded) with seeded random weights, every one of them non-zero so that
every tensor's mapping changes the output:
  - convolutions He-normal (fan in), VGG16's biases U(-0.5, 0.5);
  - DenseNet201's BatchNorms: weight U(0.5, 1.5), bias U(-0.5, 0.5), and
    running statistics those of another random batch (one training-mode pass
    with momentum 1), so that activations keep their scale through 200 layers.
Saves the state dict with torch.save in both formats and computes, in eval
mode and float32, on random RGB images:
  preprocessed     torchvision's preprocessing of the models' weights (the last
                   steps of IMAGENET1K_V1.transforms(), without the resize and
                   crop): convert_image_dtype (/ 255), normalize(mean, std)
  backbone_output  VGG16: model.features(x); DenseNet: relu(model.features(x)),
                   as torchvision's forward does before pooling (bcnn's
                   backbone, like Keras' include_top=False, ends in bn, relu)
Writes into --out:
  MODEL_zip.pth             torch.save(state_dict) (zip, the default since torch 1.6)
  MODEL_legacy.pth          the same, _use_new_zipfile_serialization=False (the official 2017 files' format)
  torch_outputs.safetensors input (B, S, S, 3) pixel values 0..255, preprocessed, backbone_output; NHWC
Also printed: the output's change when torch computes in float64 (float32
rounding, for scale) and, for DenseNet201, in float64 when every BatchNorm's
epsilon is bcnn's 1.001e-5 instead of torchvision's 1e-5.
"""

import argparse
import os
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F
import torchvision
from torchvision.transforms import functional as TF

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "weights"))
from convert_keras import write_safetensors  # noqa: E402

BCNN_DENSENET_EPSILON = 1.001e-5  # models::kDenseNetEpsilon (Keras')


def randomize(model, generator):
    for module in model.modules():
        if isinstance(module, torch.nn.Conv2d):
            fan_in = module.weight[0].numel()
            module.weight.copy_(torch.randn(module.weight.shape, generator=generator) * (2.0 / fan_in) ** 0.5)
            if module.bias is not None:
                module.bias.copy_(torch.rand(module.bias.shape, generator=generator) - 0.5)
        elif isinstance(module, torch.nn.BatchNorm2d):
            module.weight.copy_(torch.rand(module.weight.shape, generator=generator) + 0.5)
            module.bias.copy_(torch.rand(module.bias.shape, generator=generator) - 0.5)


def calibrate_batch_norms(model, x):
    """Running statistics := those of batch x (training mode, momentum 1)."""
    batch_norms = [m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    for m in batch_norms:
        m.momentum = 1.0
    model.train()
    model.features(x)
    model.eval()
    for m in batch_norms:
        m.momentum = 0.1
        if torch.allclose(m.running_var, torch.ones_like(m.running_var)) or not bool((m.running_var > 0).all()):
            sys.exit("compare_torch.py: a BatchNorm was not calibrated")


def backbone(model, name, x):
    features = model.features(x)
    return F.relu(features) if name.startswith("densenet") else features


def relative(a, b):
    """max |a - b| / max |b|, as bcnn_vs_keras measures."""
    return float((a.double() - b.double()).abs().max() / b.double().abs().max())


MODELS = {"vgg16": (torchvision.models.vgg16, torchvision.models.VGG16_Weights),
          "densenet201": (torchvision.models.densenet201, torchvision.models.DenseNet201_Weights)}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", required=True, choices=sorted(MODELS))
    parser.add_argument("--out", required=True)
    parser.add_argument("--seed", type=int, default=1234)
    parser.add_argument("--batch", type=int, default=2)
    parser.add_argument("--image-size", type=int, default=150)
    args = parser.parse_args()
    start = time.monotonic()
    generator = torch.Generator().manual_seed(args.seed)
    builder, weights = MODELS[args.model]
    preset = weights.IMAGENET1K_V1.transforms()  # its mean and std; no download

    def preprocess(pixels):  # (B, S, S, 3) uint8 -> (B, 3, S, S) float32
        return TF.normalize(TF.convert_image_dtype(pixels.permute(0, 3, 1, 2), torch.float), preset.mean, preset.std)

    def random_pixels():
        return torch.randint(0, 256, (args.batch, args.image_size, args.image_size, 3), generator=generator,
                             dtype=torch.uint8)

    with torch.no_grad():
        model = builder(weights=None).eval()
        randomize(model, generator)
        if args.model.startswith("densenet"):
            calibrate_batch_norms(model, preprocess(random_pixels()))
        pixels = random_pixels()
        x = preprocess(pixels)
        y = backbone(model, args.model, x)

        # For scale: float32 rounding, and bcnn's BatchNorm epsilon (in float64, where rounding does not hide it).
        y64 = backbone(model.double(), args.model, x.double())
        notes = [f"float32 vs float64 {relative(y, y64):.3g}"]
        if args.model.startswith("densenet"):
            for m in model.modules():
                if isinstance(m, torch.nn.BatchNorm2d):
                    m.eps = BCNN_DENSENET_EPSILON
            notes.append(f"BatchNorm epsilon {BCNN_DENSENET_EPSILON} vs 1e-5 (float64) "
                         f"{relative(backbone(model, args.model, x.double()), y64):.3g}")
        model.float()  # the float32 weights again, exactly

    os.makedirs(args.out, exist_ok=True)
    state_dict = model.state_dict()
    torch.save(state_dict, os.path.join(args.out, f"{args.model}_zip.pth"))
    torch.save(state_dict, os.path.join(args.out, f"{args.model}_legacy.pth"), _use_new_zipfile_serialization=False)
    nhwc = [("input", pixels.float()), ("preprocessed", x.permute(0, 2, 3, 1)),
            ("backbone_output", y.permute(0, 2, 3, 1))]
    write_safetensors(os.path.join(args.out, "torch_outputs.safetensors"),
                      [(name, np.ascontiguousarray(value.numpy(), dtype="<f4")) for name, value in nhwc],
                      {"bcnn.source": "tests/keras/compare_torch.py", "model": args.model, "seed": str(args.seed),
                       "torch": torch.__version__, "torchvision": torchvision.__version__})
    print(f"compare_torch.py: torchvision {torchvision.__version__} {args.model} outputs for {args.batch} images of "
          f"{args.image_size}x{args.image_size} in {args.out} ({time.monotonic() - start:.1f} s): backbone "
          f"{tuple(y.permute(0, 2, 3, 1).shape)} max |y| {float(y.abs().max()):.4g} "
          f"({float((y > 0).float().mean()):.0%} positive); output change with {'; '.join(notes)}")


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Converts Keras HDF5 weights to a safetensors file with bcnn's tensor names.

usage: python3 weights/convert_keras.py IN.h5 OUT.safetensors --model MODEL
           [--expect-official] [--classes N] [--image-size N]

MODEL is one of:
  vgg16             Keras Applications' VGG16(include_top=False), e.g. the
                    official vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5;
                    load into models::make_vgg16_backbone (or the classifier's
                    model->at(0)).
  vgg16_classifier  the study's model 3 saved by Keras (save_weights of
                    Sequential([VGG16(...), Flatten(), BatchNormalization(), ...]));
                    load into models::make_vgg16_classifier(classes, image_size).
  densenet121, densenet169, densenet201
                    Keras Applications' DenseNet121/169/201(include_top=False),
                    e.g. the official densenet201_weights_tf_dim_ordering_tf_kernels_notop.h5;
                    load into models::make_densenet_backbone(121/169/201, ...)
                    (or the DenseNet201 classifier's model->at(0)).
  densenet201_classifier
                    the study's model 4 saved by Keras (save_weights of
                    Sequential([DenseNet201(...), Flatten(), BatchNormalization(), ...]));
                    load into models::make_densenet201_classifier(classes, image_size).

DenseNet names: Keras' layer names, with '/' where bcnn nests its modules
(the stem is a Sequential "conv1", a dense block a DenseBlock "conv2" of
layers "block1", ...):
  conv1/conv/kernel, conv1/bn/gamma       -> the same
  conv2_block1_0_bn/gamma                 -> conv2/block1/0_bn/gamma
  conv2_block1_1_conv/kernel              -> conv2/block1/1_conv/kernel
  pool2_bn/beta, pool2_conv/kernel, bn/moving_mean -> the same
Keras stores a layer named "conv1/conv" as the nested HDF5 group conv1/conv.

Input: the HDF5 layout that Keras' save_weights writes (and model.save, under
"model_weights"), which is the layout of Keras Applications' official files:
top-level attribute layer_names; per layer group an attribute weight_names
listing its datasets in Keras' order. Weight names are read in both Keras 2
form ("block1_conv1/kernel:0") and the Keras 1 form of the older official
files ("block1_conv1_W_1:0").

Checks, all fatal (exit status 1, the tensors named):
  - the file's MD5 when it is an official file: its name is the official one
    for MODEL, or --expect-official is given;
  - every tensor of the file maps to a bcnn tensor of MODEL (none left over),
    every bcnn tensor of MODEL is found (none missing), and each has the
    expected shape and dtype float32.
Kernels keep Keras' layouts (conv HWIO, dense (in, out)), which are bcnn's.
The output is written atomically (a temporary file renamed into place), in
the order of bcnn's named_parameters(), with metadata bcnn.format weights-1,
bcnn.model, and the source file's name and MD5.

Only h5py and numpy are needed; nothing is downloaded.
"""

import argparse
import hashlib
import json
import os
import re
import sys
import tempfile
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional, Tuple

import numpy as np

CONVERTER = "weights/convert_keras.py"


class ConversionError(Exception):
    """A problem with the input file or its mapping; the message names it."""


# ---- what a model expects -------------------------------------------------------------------------


@dataclass(frozen=True)
class OfficialFile:
    name: str
    md5: str
    url: str


@dataclass
class ModelSpec:
    """bcnn's tensors of one model and how Keras' names map onto them.

    tensors: (bcnn name, shape) in the order of bcnn's named_parameters().
    rules: (regular expression, replacement) pairs; a Keras weight name
      ("layer/.../variable", see keras_weight_name) that fully matches a rule's
      expression gets the bcnn name expression.sub(replacement); the first
      matching rule wins.
    """

    name: str  # bcnn's model name ("bcnn.model" metadata)
    tensors: List[Tuple[str, Tuple[int, ...]]]
    rules: List[Tuple["re.Pattern[str]", str]]
    shapes: Dict[str, Tuple[int, ...]] = field(init=False)

    def __post_init__(self) -> None:
        self.shapes = dict(self.tensors)

    def bcnn_name(self, keras_name: str) -> Optional[str]:
        for pattern, replacement in self.rules:
            if pattern.fullmatch(keras_name):
                return pattern.sub(replacement, keras_name)
        return None


def rule(expression: str, replacement: str) -> Tuple["re.Pattern[str]", str]:
    return re.compile(expression), replacement


# VGG16 (models/vgg16.hpp): blocks of (filters, convolutions).
VGG16_BLOCKS = [(64, 2), (128, 2), (256, 3), (512, 3), (512, 3)]

VGG16_OFFICIAL = OfficialFile(
    name="vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5",
    md5="6d6bbae143d832006294945121d1f1fc",
    url="https://storage.googleapis.com/tensorflow/keras-applications/vgg16/"
    "vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5",
)


def vgg16_tensors(prefix: str = "") -> List[Tuple[str, Tuple[int, ...]]]:
    tensors = []
    channels = 3
    for block, (filters, convolutions) in enumerate(VGG16_BLOCKS, start=1):
        for conv in range(1, convolutions + 1):
            layer = f"{prefix}block{block}_conv{conv}"
            tensors.append((f"{layer}/kernel", (3, 3, channels, filters)))
            tensors.append((f"{layer}/bias", (filters,)))
            channels = filters
    return tensors


def vgg16_feature_size(image_size: int) -> int:
    """Flattened size of VGG16's output for image_size x image_size inputs."""
    if image_size < 32:
        raise ConversionError(f"--image-size must be at least 32 for VGG16, got {image_size}")
    side = image_size
    for _ in VGG16_BLOCKS:
        side //= 2
    return side * side * VGG16_BLOCKS[-1][0]


BATCH_NORM_VARIABLES = ("gamma", "beta", "moving_mean", "moving_variance")


def batch_norm_tensors(name: str, channels: int) -> List[Tuple[str, Tuple[int, ...]]]:
    return [(f"{name}/{v}", (channels,)) for v in BATCH_NORM_VARIABLES]


def study_head_tensors(features: int, classes: int) -> List[Tuple[str, Tuple[int, ...]]]:
    """The study's head (models/study_head.hpp) on `features` flattened inputs."""

    def dense(name: str, n_in: int, n_out: int) -> List[Tuple[str, Tuple[int, ...]]]:
        return [(f"{name}/kernel", (n_in, n_out)), (f"{name}/bias", (n_out,))]

    return (batch_norm_tensors("batch_normalization", features) + dense("dense", features, 256)
            + batch_norm_tensors("batch_normalization_1", 256) + dense("dense_1", 256, 128)
            + dense("dense_2", 128, 64) + dense("dense_3", 64, classes))


# The head's Keras names equal bcnn's (Keras' automatic names in a fresh session).
STUDY_HEAD_RULE = rule(r"(?:batch_normalization(?:_1)?/(?:gamma|beta|moving_mean|moving_variance)"
                       r"|dense(?:_[123])?/(?:kernel|bias))", r"\g<0>")
VGG16_LAYER = r"block[1-5]_conv[1-3]/(?:kernel|bias)"


def vgg16_spec(args: argparse.Namespace) -> ModelSpec:
    return ModelSpec("vgg16", vgg16_tensors(), [rule(VGG16_LAYER, r"\g<0>")])


def vgg16_classifier_spec(args: argparse.Namespace) -> ModelSpec:
    # The backbone is the nested model "vgg16" in a Sequential; a functional
    # model (Model(base.input, head(base.output))) has its layers at the top.
    return ModelSpec(
        "sequential",
        vgg16_tensors("vgg16/") + study_head_tensors(vgg16_feature_size(args.image_size), args.classes),
        [rule(rf"(?:vgg16/)?({VGG16_LAYER})", r"vgg16/\1"), STUDY_HEAD_RULE],
    )


# DenseNet (models/densenet.hpp): layers of the four dense blocks per variant;
# growth rate 32, bottleneck 4 x 32, transitions keep half the channels.
DENSENET_BLOCKS = {121: (6, 12, 24, 16), 169: (6, 12, 32, 32), 201: (6, 12, 48, 32)}
DENSENET_GROWTH = 32
DENSENET_BOTTLENECK = 4 * DENSENET_GROWTH

DENSENET_OFFICIAL_MD5 = {121: "30ee3e1110167f948a6b9946edeeb738", 169: "b8c4d4c20dd625c148057b9ff1c1176b",
                         201: "c13680b51ded0fb44dff2d8f86ac8bb1"}  # tf_keras' densenet.py file_hash


def densenet_official(variant: int) -> OfficialFile:
    name = f"densenet{variant}_weights_tf_dim_ordering_tf_kernels_notop.h5"
    return OfficialFile(name=name, md5=DENSENET_OFFICIAL_MD5[variant],
                        url=f"https://storage.googleapis.com/tensorflow/keras-applications/densenet/{name}")


def densenet_tensors(variant: int, prefix: str = "") -> List[Tuple[str, Tuple[int, ...]]]:
    """bcnn's DenseNet tensors in named_parameters() order."""
    tensors = []

    def conv(name: str, size: int, n_in: int, n_out: int) -> None:
        tensors.append((f"{prefix}{name}/kernel", (size, size, n_in, n_out)))

    def batch_norm(name: str, channels: int) -> None:
        tensors.extend(batch_norm_tensors(prefix + name, channels))

    conv("conv1/conv", 7, 3, 64)
    batch_norm("conv1/bn", 64)
    channels = 64
    for block, layers in enumerate(DENSENET_BLOCKS[variant], start=2):
        for i in range(1, layers + 1):
            layer = f"conv{block}/block{i}"
            batch_norm(f"{layer}/0_bn", channels)
            conv(f"{layer}/1_conv", 1, channels, DENSENET_BOTTLENECK)
            batch_norm(f"{layer}/1_bn", DENSENET_BOTTLENECK)
            conv(f"{layer}/2_conv", 3, DENSENET_BOTTLENECK, DENSENET_GROWTH)
            channels += DENSENET_GROWTH
        if block < 5:
            batch_norm(f"pool{block}_bn", channels)
            conv(f"pool{block}_conv", 1, channels, channels // 2)
            channels //= 2
    batch_norm("bn", channels)
    return tensors


def densenet_feature_size(variant: int, image_size: int) -> int:
    """Flattened size of DenseNet's output for image_size x image_size inputs."""
    if image_size < 32:
        raise ConversionError(f"--image-size must be at least 32 for DenseNet, got {image_size}")
    side = (image_size + 6 - 7) // 2 + 1  # ZeroPadding2D(3), 7x7 stride-2 convolution
    side = (side + 2 - 3) // 2 + 1  # ZeroPadding2D(1), 3x3 stride-2 max pool
    for _ in range(3):
        side //= 2  # the transitions' 2x2 average pools
    blocks = DENSENET_BLOCKS[variant]
    channels = 64
    for block, layers in enumerate(blocks):
        channels += layers * DENSENET_GROWTH
        if block < len(blocks) - 1:
            channels //= 2
    return side * side * channels


BATCH_NORM_VARIABLE = "(?:" + "|".join(BATCH_NORM_VARIABLES) + ")"
# Keras' DenseNet weight names -> bcnn's (see the module docstring): (expression, replacement).
DENSENET_RENAMES = [
    (rf"(conv1/(?:conv/kernel|bn/{BATCH_NORM_VARIABLE}))", r"\1"),
    (rf"(conv[2-5])_(block[1-9][0-9]*)_([01]_bn/{BATCH_NORM_VARIABLE}|[12]_conv/kernel)", r"\1/\2/\3"),
    (rf"(pool[2-4]_(?:bn/{BATCH_NORM_VARIABLE}|conv/kernel)|bn/{BATCH_NORM_VARIABLE})", r"\1"),
]


def densenet_rules(model: str = "") -> List[Tuple["re.Pattern[str]", str]]:
    """The renames; with `model` ("densenet201") for the backbone nested in a
    classifier: Keras' names optionally under "model/", bcnn's always."""
    keras_prefix, bcnn_prefix = (rf"(?:{model}/)?", f"{model}/") if model else ("", "")
    return [rule(rf"{keras_prefix}(?:{expression})", bcnn_prefix + replacement)
            for expression, replacement in DENSENET_RENAMES]


def densenet_spec(variant: int) -> Callable[[argparse.Namespace], ModelSpec]:
    def spec(args: argparse.Namespace) -> ModelSpec:
        return ModelSpec(f"densenet{variant}", densenet_tensors(variant), densenet_rules())
    return spec


def densenet201_classifier_spec(args: argparse.Namespace) -> ModelSpec:
    # As vgg16_classifier: the backbone nested as "densenet201", or its layers at the top.
    return ModelSpec(
        "sequential",
        densenet_tensors(201, "densenet201/") + study_head_tensors(densenet_feature_size(201, args.image_size),
                                                                   args.classes),
        densenet_rules("densenet201") + [STUDY_HEAD_RULE],
    )


# --model name -> its spec.
MODELS: Dict[str, Callable[[argparse.Namespace], ModelSpec]] = {
    "vgg16": vgg16_spec,
    "vgg16_classifier": vgg16_classifier_spec,
    "densenet121": densenet_spec(121),
    "densenet169": densenet_spec(169),
    "densenet201": densenet_spec(201),
    "densenet201_classifier": densenet201_classifier_spec,
}

# --model name -> Keras Applications' official file of its weights.
OFFICIAL_FILES: Dict[str, OfficialFile] = {
    "vgg16": VGG16_OFFICIAL,
    **{f"densenet{variant}": densenet_official(variant) for variant in DENSENET_BLOCKS},
}


# ---- reading Keras' HDF5 ---------------------------------------------------------------------------


def hdf5_string_list(group: "h5py.Group", name: str) -> List[str]:
    """An attribute holding a list of names, as Keras reads it (possibly split
    into name0, name1, ... when too large for one HDF5 object header)."""
    if name in group.attrs:
        chunks = [group.attrs[name]]
    else:
        chunks = []
        while f"{name}{len(chunks)}" in group.attrs:
            chunks.append(group.attrs[f"{name}{len(chunks)}"])
    return [item.decode("utf8") if isinstance(item, bytes) else str(item) for chunk in chunks for item in chunk]


LEGACY_VARIABLES = {"W": "kernel", "b": "bias"}  # Keras 1 names: "<layer>_W_1:0", "<layer>_b_1:0"


def keras_weight_name(layer: str, weight: str) -> str:
    """The name "layer/.../variable" of a weight stored in layer group `layer`.

    Keras 2 stores "block1_conv1/kernel:0" in group "block1_conv1"; a nested
    model (group "vgg16") stores its layers' names "block1_conv1/kernel:0",
    which become "vgg16/block1_conv1/kernel"; Keras 1 stored "block1_conv1_W_1:0".
    """
    name = re.sub(r":\d+$", "", weight)
    if name.startswith(layer + "/"):
        return name
    legacy = re.fullmatch(re.escape(layer) + r"_(W|b)(?:_\d+)?", name)
    if legacy:
        return f"{layer}/{LEGACY_VARIABLES[legacy.group(1)]}"
    return f"{layer}/{name}"


def read_keras_weights(path: str) -> Dict[str, np.ndarray]:
    """Every weight of a Keras HDF5 weights file, by keras_weight_name, in file order."""
    import h5py  # here, not at the top: convert_torchvision.py uses this module without h5py

    try:
        file = h5py.File(path, "r")
    except OSError as e:
        raise ConversionError(f"cannot read '{path}' as HDF5: {e}") from None
    with file:
        root = file["model_weights"] if "layer_names" not in file.attrs and "model_weights" in file else file
        layers = hdf5_string_list(root, "layer_names")
        if not layers:
            raise ConversionError(f"'{path}' has no attribute layer_names: not a Keras weights file")
        weights: Dict[str, np.ndarray] = {}
        for layer in layers:
            if layer not in root:
                raise ConversionError(f"'{path}': layer_names lists '{layer}' but the file has no such group")
            group = root[layer]
            for weight in hdf5_string_list(group, "weight_names"):
                if weight not in group:
                    raise ConversionError(f"'{path}': layer '{layer}' lists weight '{weight}' that is not in the file")
                name = keras_weight_name(layer, weight)
                if name in weights:
                    raise ConversionError(f"'{path}': weight '{name}' appears twice")
                weights[name] = group[weight][()]
        return weights


# ---- checks and mapping ------------------------------------------------------------------------------


def digest_of(path: str, algorithm: str) -> str:
    """The hex digest of a file's bytes by hashlib's `algorithm` ("md5", "sha256")."""
    digest = hashlib.new(algorithm)
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def check_official(path: str, model: str, md5: str, expect_official: bool) -> None:
    """An official file (by its name, or --expect-official) must have the official MD5."""
    base = os.path.basename(path)
    for other, official in OFFICIAL_FILES.items():
        if official.name == base and other != model:
            raise ConversionError(f"'{path}' is named as the official file of --model {other}, not --model {model}")
    official = OFFICIAL_FILES.get(model)
    if not (expect_official or (official and base == official.name)):
        return
    if official is None:
        raise ConversionError(f"--expect-official: --model {model} has no official Keras file")
    if md5 != official.md5:
        raise ConversionError(f"'{path}' has MD5 {md5}, but the official {official.name} has {official.md5} "
                              f"(from {official.url}): the file is damaged or not the official one")


def listed(names: List[str], limit: int = 10) -> str:
    shown = ", ".join(names[:limit])
    return shown + (f", ... ({len(names)} in all)" if len(names) > limit else "")


PROBLEMS_LISTED = 10  # shape, dtype and duplicate problems named in an error; the rest are counted


def map_weights(keras: Dict[str, np.ndarray], spec: ModelSpec) -> List[Tuple[str, np.ndarray]]:
    """The file's weights under bcnn's names, in spec order; every problem at once."""
    found: Dict[str, np.ndarray] = {}
    left_over, problems = [], []
    for keras_name, value in keras.items():
        name = spec.bcnn_name(keras_name)
        if name is None or name not in spec.shapes:
            left_over.append(keras_name)
            continue
        if name in found:
            problems.append(f"two of the file's weights map to '{name}' (the second is '{keras_name}')")
            continue
        if value.dtype.kind != "f" or value.dtype.itemsize != 4:
            problems.append(f"'{keras_name}' has dtype {value.dtype}, expected float32")
        elif tuple(value.shape) != spec.shapes[name]:
            problems.append(f"'{keras_name}' has shape {tuple(value.shape)}, but bcnn's '{name}' "
                            f"is {spec.shapes[name]}")
        found[name] = value
    missing = [name for name, _ in spec.tensors if name not in found]
    if len(problems) > PROBLEMS_LISTED:  # e.g. every layer of another DenseNet's last blocks
        problems[PROBLEMS_LISTED:] = [f"... ({len(problems)} shape, dtype or duplicate problems in all)"]
    if left_over:
        problems.insert(0, f"{len(left_over)} left-over tensors with no place in bcnn's model: {listed(left_over)}")
    if missing:
        problems.insert(0, f"{len(missing)} of bcnn's tensors missing from the file: {listed(missing)}")
    if problems:
        raise ConversionError("the file does not fit --model: " + "; ".join(problems))
    return [(name, np.ascontiguousarray(found[name], dtype="<f4")) for name, _ in spec.tensors]


# ---- writing safetensors ---------------------------------------------------------------------------


def safetensors_bytes(tensors: List[Tuple[str, np.ndarray]], metadata: Dict[str, str]) -> List[bytes]:
    """The parts of a safetensors file: u64 little-endian header length, the
    JSON header (padded with spaces to 8 bytes), then each tensor's data in
    order. Only F32 tensors (bcnn's weights) are written."""
    header: Dict[str, object] = {"__metadata__": dict(metadata)}
    offset = 0
    for name, array in tensors:
        if array.dtype != np.dtype("<f4"):
            raise ConversionError(f"safetensors writer: '{name}' must be little-endian float32, got {array.dtype}")
        header[name] = {"dtype": "F32", "shape": list(array.shape), "data_offsets": [offset, offset + array.nbytes]}
        offset += array.nbytes
    text = json.dumps(header, separators=(",", ":")).encode("utf8")
    text += b" " * (-len(text) % 8)
    return [len(text).to_bytes(8, "little"), text] + [array.tobytes(order="C") for _, array in tensors]


def write_atomically(path: str, parts: List[bytes]) -> None:
    """Writes `parts` to a temporary file beside `path`, then renames it over `path`."""
    directory = os.path.dirname(os.path.abspath(path))
    fd, temporary = tempfile.mkstemp(prefix=os.path.basename(path) + ".", suffix=".tmp", dir=directory)
    try:
        umask = os.umask(0)
        os.umask(umask)
        os.fchmod(fd, 0o666 & ~umask)  # as a plainly created file, not mkstemp's 0600
        with os.fdopen(fd, "wb") as out:
            for part in parts:
                out.write(part)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temporary, path)
    except BaseException:
        try:
            os.unlink(temporary)
        except FileNotFoundError:
            pass
        raise


def write_safetensors(path: str, tensors: List[Tuple[str, np.ndarray]], metadata: Dict[str, str]) -> None:
    write_atomically(path, safetensors_bytes(tensors, metadata))


# ---- the command ---------------------------------------------------------------------------------------


def convert(source: str, target: str, model: str, spec: ModelSpec, expect_official: bool) -> int:
    """Converts `source` for --model `model` (whose tensors are `spec`) into
    `target`; returns the number of tensors."""
    if not os.path.isfile(source):
        raise ConversionError(f"'{source}' does not exist or is not a file")
    md5 = digest_of(source, "md5")
    check_official(source, model, md5, expect_official)
    tensors = map_weights(read_keras_weights(source), spec)
    return write_converted(target, tensors, spec, CONVERTER, source, {"bcnn.source_md5": md5})


def write_converted(target: str, tensors: List[Tuple[str, np.ndarray]], spec: ModelSpec, converter: str, source: str,
                    extra: Dict[str, str]) -> int:
    """Writes a converter's output with the metadata every converted file has
    (format, model, converter, source name) and `extra`; returns the tensor count."""
    write_safetensors(target, tensors, {
        "bcnn.format": "weights-1",
        "bcnn.model": spec.name,
        "bcnn.converter": converter,
        "bcnn.source": os.path.basename(source),
        **extra,
    })
    return len(tensors)


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="convert_keras.py",
                                     description="Converts Keras HDF5 weights to safetensors with bcnn's names.")
    parser.add_argument("source", metavar="IN.h5")
    parser.add_argument("target", metavar="OUT.safetensors")
    parser.add_argument("--model", required=True, choices=sorted(MODELS))
    parser.add_argument("--expect-official", action="store_true",
                        help="the input is the model's official Keras file: its MD5 must match")
    parser.add_argument("--classes", type=int, default=4, help="classes of a classifier's last Dense (default 4)")
    parser.add_argument("--image-size", type=int, default=150,
                        help="a classifier's input size, which sets its first Dense (default 150)")
    args = parser.parse_args(argv)
    try:
        if args.classes < 2:
            raise ConversionError(f"--classes must be at least 2, got {args.classes}")
        spec = MODELS[args.model](args)
        count = convert(args.source, args.target, args.model, spec, args.expect_official)
    except (ConversionError, OSError) as e:  # OSError: e.g. the output's folder does not exist
        print(f"convert_keras.py: error: {e}", file=sys.stderr)
        return 1
    print(f"convert_keras.py: wrote {count} tensors of bcnn's {spec.name} ({args.model}) to {args.target}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

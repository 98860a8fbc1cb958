#!/usr/bin/env python3
"""Converts a torchvision state dict (.pth) to a safetensors file with bcnn's tensor names.

usage: python3 weights/convert_torchvision.py IN.pth OUT.safetensors --model MODEL [--expect-official]

MODEL is one of:
  vgg16         torchvision.models.vgg16's state dict, e.g. the official
                vgg16-397923af.pth; load into models::make_vgg16_backbone.
  densenet121, densenet169, densenet201
                torchvision.models.densenetN's, e.g. densenet201-c1103571.pth;
                load into models::make_densenet_backbone(N, ...).

bcnn's models are the backbones (Keras' include_top=False), so the file's
classifier (VGG16: classifier.0/3/6, DenseNet: classifier) is expected and
dropped, as are the BatchNorms' num_batches_tracked counters. Everything else
maps by name (the names are convert_keras.py's, which are bcnn's):
  VGG16     features.{0,2,5,7,10,12,14,17,19,21,24,26,28}.weight, .bias
              -> block1_conv1 ... block5_conv3 /kernel, /bias
  DenseNet  features.conv0.weight                    -> conv1/conv/kernel
            features.norm0.*                         -> conv1/bn/*
            features.denseblockB.denselayerL.norm1.* -> conv{B+1}/blockL/0_bn/*
              .conv1.weight, .norm2.*, .conv2.weight -> .../1_conv/kernel, 1_bn/*, 2_conv/kernel
              (the old official files say norm.1, conv.1, norm.2, conv.2: both are read)
            features.transitionT.norm.*, .conv.weight -> pool{T+1}_bn/*, pool{T+1}_conv/kernel
            features.norm5.*                         -> bn/*
  BatchNorm weight, bias, running_mean, running_var -> gamma, beta, moving_mean, moving_variance.
Convolution weights are transposed from torch's (out, in, kh, kw) to bcnn's
(kh, kw, in, out); shapes in error messages are after that transpose.

The weights expect torchvision's input preprocessing, not Keras': RGB / 255,
minus the ImageNet mean, divided by its std (for VGG16 that is not Keras'
caffe mode). The output says so in its metadata, bcnn.preprocessing = "torch"
(Keras-converted files have no such key: each model's Keras mode).
torchvision's BatchNorm epsilon is 1e-5, bcnn's DenseNet (Keras') 1.001e-5:
each BatchNorm's scale 1/sqrt(var + eps) changes by 5e-9 / (var + 1e-5)
relative, at most 5e-4 on a channel of zero variance. With the random
weights and statistics of tests/keras/compare_torch.py (which prints it),
DenseNet201's output changes by 1.4e-6 to 2.0e-6 relative in float64, a
tenth of float32 rounding (1.3e-5 to 2.0e-5): bcnn keeps its 1.001e-5.

Input: both formats torch.save writes, read with pickle, zipfile and numpy
(no torch): the zip archive of torch >= 1.6 (ARCHIVE/data.pkl, the storages
in ARCHIVE/data/KEY) and the legacy format of the 2017 official files (magic
number, protocol 1001, system info, the pickled object, the storage keys,
then each storage as an int64 element count and its raw bytes). The pickle is
read with a restricted unpickler that builds only dicts, tensors and storages
(collections.OrderedDict, torch._utils._rebuild_tensor(_v2),
_rebuild_parameter, torch.*Storage): any other global is an error, nothing
in the file is executed.

Checks, all fatal (exit status 1, the tensors named):
  - an official file (named as above, or --expect-official) must have the
    SHA-256 whose first hex digits are its name's suffix (torchvision's own
    check: only these digits are published);
  - every tensor maps to a bcnn tensor of MODEL (none left over), every bcnn
    tensor is found (none missing), with the expected shape and dtype float32
    (a tensor of another dtype is named with it).
The output is written atomically in bcnn's named_parameters() order with
metadata bcnn.format weights-1, bcnn.model, bcnn.converter, bcnn.source,
bcnn.source_sha256 and bcnn.preprocessing. Nothing is downloaded.
"""

import argparse
import collections
import os
import pickle
import re
import struct
import sys
import zipfile
from dataclasses import dataclass
from typing import BinaryIO, Dict, List, Optional, Tuple

import numpy as np

from convert_keras import (VGG16_BLOCKS, ConversionError, ModelSpec, densenet_tensors, digest_of, listed, map_weights,
                           vgg16_tensors, write_converted)

CONVERTER = "weights/convert_torchvision.py"


# ---- the official files ----------------------------------------------------------------------------------

# --model -> torchvision's file name; its suffix is the first hex digits of the file's SHA-256.
OFFICIAL_FILES = {
    "vgg16": "vgg16-397923af.pth",
    "densenet121": "densenet121-a639ec97.pth",
    "densenet169": "densenet169-b2777c0a.pth",
    "densenet201": "densenet201-c1103571.pth",
}
OFFICIAL_URL = "https://download.pytorch.org/models/"


def check_official(path: str, model: str, sha256: str, expect_official: bool) -> None:
    """An official file (by its name, or --expect-official) must have the SHA-256 its name promises."""
    base = os.path.basename(path)
    for other, name in OFFICIAL_FILES.items():
        if name == base and other != model:
            raise ConversionError(f"'{path}' is named as the official file of --model {other}, not --model {model}")
    official = OFFICIAL_FILES[model]
    if not (expect_official or base == official):
        return
    prefix = re.fullmatch(r".*-([0-9a-f]+)\.pth", official).group(1)
    if not sha256.startswith(prefix):
        raise ConversionError(f"'{path}' has SHA-256 {sha256}, but the official {official} ({OFFICIAL_URL}{official}) "
                              f"has one starting {prefix}: the file is damaged or not the official one")


# ---- reading torch.save's formats ---------------------------------------------------------------------------

# torch storage type -> (numpy dtype, or None where numpy has none, bytes per element).
STORAGE_TYPES = {
    "FloatStorage": ("<f4", 4), "DoubleStorage": ("<f8", 8), "HalfStorage": ("<f2", 2), "BFloat16Storage": (None, 2),
    "LongStorage": ("<i8", 8), "IntStorage": ("<i4", 4), "ShortStorage": ("<i2", 2), "CharStorage": ("i1", 1),
    "ByteStorage": ("u1", 1), "BoolStorage": ("?", 1),
}


@dataclass
class Storage:
    """One torch storage: its type's name, element count, and (once read) its bytes."""
    type_name: str
    numel: int
    data: Optional[bytes] = None

    @property
    def itemsize(self) -> int:
        return STORAGE_TYPES[self.type_name][1]


@dataclass
class StorageView:
    """Elements offset .. offset + numel of a storage: all of it, or a legacy file's view into it (view_metadata)."""
    root: Storage
    offset: int
    numel: int


@dataclass
class TensorRef:
    """What torch._utils._rebuild_tensor(_v2) gets: materialised by to_array once the storages are read."""
    storage: StorageView
    offset: int
    size: Tuple[int, ...]
    stride: Tuple[int, ...]


def rebuild_tensor(storage, storage_offset, size, stride, *unused) -> TensorRef:
    # _rebuild_tensor(storage, offset, size, stride) of old files;
    # _rebuild_tensor_v2(..., requires_grad, backward_hooks[, metadata]) since torch 0.4.
    view = storage if isinstance(storage, StorageView) else StorageView(storage, 0, storage.numel)
    return TensorRef(view, int(storage_offset), tuple(int(n) for n in size), tuple(int(s) for s in stride))


def rebuild_parameter(data, requires_grad, backward_hooks) -> TensorRef:
    return data


class StorageType(str):
    """A torch.*Storage class named in the pickle (persistent ids carry it)."""


class StateDictUnpickler(pickle.Unpickler):
    """Builds dicts, tensors and storages only; persistent ids go to `storage`."""

    GLOBALS = {
        ("collections", "OrderedDict"): collections.OrderedDict,
        ("torch._utils", "_rebuild_tensor"): rebuild_tensor,
        ("torch._utils", "_rebuild_tensor_v2"): rebuild_tensor,
        ("torch._utils", "_rebuild_parameter"): rebuild_parameter,
        **{("torch", name): StorageType(name) for name in STORAGE_TYPES},
    }

    def __init__(self, file: BinaryIO, path: str, storage=None):
        super().__init__(file)
        self.path = path
        self.storage = storage

    def find_class(self, module: str, name: str):
        found = self.GLOBALS.get((module, name))
        if found is None:
            raise ConversionError(f"'{self.path}': the pickle needs {module}.{name}, which a state dict of tensors "
                                  f"does not; refusing to load it")
        return found

    def persistent_load(self, pid):
        if self.storage is None or not (isinstance(pid, tuple) and pid and pid[0] == "storage"):
            raise ConversionError(f"'{self.path}': unexpected persistent id {pid!r} in the pickle")
        return self.storage(*pid[1:])


def load_pickle(file: BinaryIO, path: str, storage=None):
    try:
        return StateDictUnpickler(file, path, storage).load()
    except ConversionError:
        raise
    except Exception as e:  # a damaged or truncated pickle
        raise ConversionError(f"'{path}': cannot read it as a torch.save file: {e}") from None


def storage_of(path: str, storages: Dict[str, Storage], storage_type: str, key: str, numel: int) -> Storage:
    if not isinstance(storage_type, StorageType):
        raise ConversionError(f"'{path}': storage '{key}' has type {storage_type!r}, not a torch storage type")
    return storages.setdefault(str(key), Storage(storage_type, int(numel)))


def read_zip(path: str) -> object:
    """torch.save's zip format: ARCHIVE/data.pkl and the storages' bytes in ARCHIVE/data/KEY."""
    with zipfile.ZipFile(path) as archive:
        pickles = [name for name in archive.namelist() if re.fullmatch(r"[^/]+/data\.pkl", name)]
        if len(pickles) != 1:
            raise ConversionError(f"'{path}' is a zip archive with {len(pickles)} ARCHIVE/data.pkl, "
                                  f"not a torch.save file")
        prefix = pickles[0][: -len("data.pkl")]
        if f"{prefix}byteorder" in archive.namelist() and archive.read(f"{prefix}byteorder") != b"little":
            raise ConversionError(f"'{path}' holds big-endian storages, which this converter does not read")
        storages: Dict[str, Storage] = {}
        with archive.open(pickles[0]) as f:
            obj = load_pickle(f, path, lambda storage_type, key, location, numel:
                              storage_of(path, storages, storage_type, key, numel))
        for key, storage in storages.items():
            try:
                storage.data = archive.read(f"{prefix}data/{key}")
            except KeyError:
                raise ConversionError(f"'{path}': storage '{key}' is not in the archive") from None
            if len(storage.data) != storage.numel * storage.itemsize:
                raise ConversionError(f"'{path}': storage '{key}' has {len(storage.data)} bytes, not the "
                                      f"{storage.numel} elements its tensors say")
        return obj


LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
LEGACY_PROTOCOL = 1001


def read_legacy(path: str) -> object:
    """torch.save's format before torch 1.6 (the official 2017 files'): see the module docstring."""
    storages: Dict[str, Storage] = {}

    def storage(storage_type, key, location, numel, view_metadata):
        root = storage_of(path, storages, storage_type, key, numel)
        if view_metadata is None:
            return root
        _, offset, view_numel = view_metadata  # (view key, element offset, element count)
        return StorageView(root, int(offset), int(view_numel))

    with open(path, "rb") as f:
        if load_pickle(f, path) != LEGACY_MAGIC:
            raise ConversionError(f"'{path}' is neither a zip archive nor a legacy torch.save file (no magic number)")
        if load_pickle(f, path) != LEGACY_PROTOCOL:
            raise ConversionError(f"'{path}': legacy torch.save protocol other than {LEGACY_PROTOCOL}")
        system = load_pickle(f, path)
        if not (isinstance(system, dict) and system.get("little_endian")):
            raise ConversionError(f"'{path}' holds big-endian storages, which this converter does not read")
        obj = load_pickle(f, path, storage)
        keys = load_pickle(f, path)
        if not isinstance(keys, list):
            raise ConversionError(f"'{path}': a legacy torch.save file lists its storages' keys here, not {keys!r}")
        for key in keys:
            if key not in storages:
                raise ConversionError(f"'{path}' holds storage '{key}' that no tensor uses")
            numel_bytes = f.read(8)
            s = storages[key]
            if len(numel_bytes) != 8 or struct.unpack("<q", numel_bytes)[0] != s.numel:
                raise ConversionError(f"'{path}': storage '{key}' does not have the {s.numel} elements its tensors say")
            s.data = f.read(s.numel * s.itemsize)
            if len(s.data) != s.numel * s.itemsize:
                raise ConversionError(f"'{path}' is truncated in storage '{key}'")
    return obj


def to_array(path: str, name: str, tensor: TensorRef) -> np.ndarray:
    """The tensor's elements as a numpy array of its shape (a copy)."""
    view = tensor.storage
    dtype = STORAGE_TYPES[view.root.type_name][0]
    if dtype is None:
        raise ConversionError(f"'{path}': tensor '{name}' is a {view.root.type_name}, expected float32 (FloatStorage)")
    if view.root.data is None:
        raise ConversionError(f"'{path}': tensor '{name}' has a storage without data")
    elements = np.frombuffer(view.root.data, dtype=dtype)[view.offset:view.offset + view.numel]
    size, stride, offset = tensor.size, tensor.stride, tensor.offset
    last = offset + sum((n - 1) * s for n, s in zip(size, stride))  # its last element's index
    if not (len(size) == len(stride) and min(size + stride + (offset,)) >= 0 and (0 in size or last < len(elements))):
        raise ConversionError(f"'{path}': tensor '{name}' (size {size}, stride {stride}, offset {offset}) does not "
                              f"fit its storage of {len(elements)} elements")
    return np.lib.stride_tricks.as_strided(elements[offset:], shape=size,
                                           strides=[s * elements.itemsize for s in stride]).copy()


def read_state_dict(path: str) -> Dict[str, np.ndarray]:
    """name -> array of every tensor in a torch.save'd state dict, in file order."""
    with open(path, "rb") as f:
        is_zip = f.read(4) == b"PK\x03\x04"  # a zip archive's first local header, as torch.load tells them apart
    obj = read_zip(path) if is_zip else read_legacy(path)
    if not isinstance(obj, dict):
        raise ConversionError(f"'{path}' holds a {type(obj).__name__}, not a state dict")
    not_tensors = [str(name) for name, value in obj.items() if not isinstance(value, TensorRef)]
    if not_tensors:
        raise ConversionError(f"'{path}': not a state dict of tensors: {listed(not_tensors)} are not tensors")
    return {name: to_array(path, name, tensor) for name, tensor in obj.items()}


# ---- torchvision's names ----------------------------------------------------------------------------------------

TORCH_VARIABLES = {"kernel": "weight", "bias": "bias", "gamma": "weight", "beta": "bias",
                   "moving_mean": "running_mean", "moving_variance": "running_var"}
DENSE_LAYER_MODULES = {"0_bn": "norm1", "1_conv": "conv1", "1_bn": "norm2", "2_conv": "conv2"}
DENSENET_MODULES = {"conv1/conv": "features.conv0", "conv1/bn": "features.norm0", "bn": "features.norm5"}
# The top and the BatchNorms' counters: in the file, not in bcnn's backbones.
DROPPED = re.compile(r"classifier\.(?:\d+\.)?(?:weight|bias)|(.+)\.num_batches_tracked")


def vgg16_torch_names() -> Dict[str, str]:
    """torchvision name -> bcnn name. features holds Conv2d, ReLU per convolution, a MaxPool2d per block."""
    names, index = {}, 0
    for block, (_, convolutions) in enumerate(VGG16_BLOCKS, start=1):
        for conv in range(1, convolutions + 1):
            for variable in ("kernel", "bias"):
                names[f"features.{index}.{TORCH_VARIABLES[variable]}"] = f"block{block}_conv{conv}/{variable}"
            index += 2
        index += 1
    return names


def densenet_torch_names(variant: int) -> Dict[str, str]:
    """torchvision name (current and old form) -> bcnn name, for every bcnn tensor."""
    names = {}
    for name, _ in densenet_tensors(variant):
        module, variable = name.rsplit("/", 1)
        suffix = "." + TORCH_VARIABLES[variable]
        layer = re.fullmatch(r"conv([2-5])/block(\d+)/(\w+)", module)
        transition = re.fullmatch(r"pool([2-4])_(bn|conv)", module)
        if layer:
            block, index, part = layer.groups()
            current = f"features.denseblock{int(block) - 1}.denselayer{index}.{DENSE_LAYER_MODULES[part]}"
            old = current[:-1] + "." + current[-1]  # norm1 -> norm.1
            names[current + suffix] = names[old + suffix] = name
        elif transition:
            block, part = transition.groups()
            names[f"features.transition{int(block) - 1}.{'norm' if part == 'bn' else 'conv'}{suffix}"] = name
        else:
            names[DENSENET_MODULES[module] + suffix] = name
    return names


class TorchSpec(ModelSpec):
    """A ModelSpec whose names come from a table (torchvision name -> bcnn name) instead of rules."""

    def __init__(self, name: str, tensors: List[Tuple[str, Tuple[int, ...]]], names: Dict[str, str]):
        super().__init__(name, tensors, [])
        self.names = names

    def bcnn_name(self, torch_name: str) -> Optional[str]:
        return self.names.get(torch_name)


def model_spec(model: str) -> TorchSpec:
    if model == "vgg16":
        return TorchSpec("vgg16", vgg16_tensors(), vgg16_torch_names())
    variant = int(model[len("densenet"):])
    return TorchSpec(model, densenet_tensors(variant), densenet_torch_names(variant))


def bcnn_weights(state_dict: Dict[str, np.ndarray], spec: TorchSpec) -> List[Tuple[str, np.ndarray]]:
    """The state dict's backbone tensors under bcnn's names and layouts, in spec order."""
    kept = {}
    for name, value in state_dict.items():
        dropped = DROPPED.fullmatch(name)
        if dropped and (dropped.group(1) is None or f"{dropped.group(1)}.running_mean" in state_dict):
            continue
        kept[name] = value.transpose(2, 3, 1, 0) if value.ndim == 4 else value  # (O, I, kh, kw) -> (kh, kw, I, O)
    return map_weights(kept, spec)


# ---- the command ---------------------------------------------------------------------------------------------------


def convert(source: str, target: str, model: str, expect_official: bool) -> int:
    """Converts `source` for --model `model` into `target`; returns the number of tensors."""
    if not os.path.isfile(source):
        raise ConversionError(f"'{source}' does not exist or is not a file")
    sha256 = digest_of(source, "sha256")
    check_official(source, model, sha256, expect_official)
    spec = model_spec(model)
    tensors = bcnn_weights(read_state_dict(source), spec)
    return write_converted(target, tensors, spec, CONVERTER, source,
                           {"bcnn.source_sha256": sha256, "bcnn.preprocessing": "torch"})


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="convert_torchvision.py",
                                     description="Converts a torchvision state dict to safetensors with bcnn's names.")
    parser.add_argument("source", metavar="IN.pth")
    parser.add_argument("target", metavar="OUT.safetensors")
    parser.add_argument("--model", required=True, choices=sorted(OFFICIAL_FILES))
    parser.add_argument("--expect-official", action="store_true",
                        help="the input is the model's official torchvision file: its SHA-256 must match its name")
    args = parser.parse_args(argv)
    try:
        count = convert(args.source, args.target, args.model, args.expect_official)
    except (ConversionError, OSError) as e:  # OSError: e.g. the output's folder does not exist
        print(f"convert_torchvision.py: error: {e}", file=sys.stderr)
        return 1
    print(f"convert_torchvision.py: wrote {count} tensors of bcnn's {args.model} to {args.target}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

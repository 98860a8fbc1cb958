#!/usr/bin/env python3
"""Checks of weights/convert_torchvision.py on .pth files written here without
torch: a small writer of both torch.save formats (zip, and the legacy format
of the official 2017 files), with stand-ins for the globals their pickles name
(torch._utils._rebuild_tensor_v2, torch.FloatStorage, ...). That the writer
matches torch.save itself is compare_torch.py's part (torch writes both
formats there). Covered: the mapping of VGG16 and DenseNet121 (current and
old layer names), OIHW -> HWIO, strided tensors and shared storages, the
top and num_batches_tracked dropped, the safetensors written (order,
metadata), and every error: left-over, missing, wrong shape or dtype (each
named), SHA-256 of official files, pickles that name other globals (refused,
not run), damaged files, and no partial output on failure.

    python3 tests/keras/test_convert_torchvision.py
"""

import collections
import contextlib
import hashlib
import io
import os
import pickle
import struct
import sys
import tempfile
import types
import unittest
import zipfile

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "weights"))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import convert_keras  # noqa: E402
import convert_torchvision  # noqa: E402
from test_convert_keras import ConverterTest, read_safetensors  # noqa: E402

# ---- a torch.save writer without torch ---------------------------------------------------------------


class Storage:
    def __init__(self, type_name, array):
        self.type_name, self.array = type_name, np.ascontiguousarray(array).reshape(-1)


class StorageView:
    """A legacy file's view into a Storage: elements offset .. offset + numel (view_metadata)."""

    def __init__(self, root, offset, numel):
        self.root, self.offset, self.numel = root, offset, numel


class Tensor:
    """A view (offset, size, stride in elements) of a Storage."""

    def __init__(self, storage, offset, size, stride):
        self.storage, self.offset, self.size, self.stride = storage, offset, tuple(size), tuple(stride)


def tensor(array, type_name="FloatStorage"):
    """A contiguous tensor holding `array` in its own storage."""
    array = np.ascontiguousarray(array)
    strides = [s // array.itemsize for s in array.strides] if array.ndim else []
    return Tensor(Storage(type_name, array), 0, array.shape, strides)


@contextlib.contextmanager
def torch_stand_ins():
    """Modules torch and torch._utils with the names torch.save's pickles refer to, while pickling."""
    saved = {name: sys.modules.get(name) for name in ("torch", "torch._utils")}
    torch, utils = types.ModuleType("torch"), types.ModuleType("torch._utils")

    for name in ("_rebuild_tensor", "_rebuild_tensor_v2"):
        def rebuild(*args):
            raise AssertionError("only pickled here")

        rebuild.__module__, rebuild.__qualname__ = "torch._utils", name
        setattr(utils, name, rebuild)
    for name in convert_torchvision.STORAGE_TYPES:
        setattr(torch, name, type(name, (), {"__module__": "torch"}))
    torch._utils = utils
    sys.modules.update({"torch": torch, "torch._utils": utils})
    try:
        yield torch
    finally:
        for name, module in saved.items():
            if module is None:
                sys.modules.pop(name)
            else:
                sys.modules[name] = module


def pickled_state_dict(state_dict, legacy):
    """(pickle bytes, [(key, Storage)]) with storages as torch's persistent ids. Tensors
    as torch pickles them: in the legacy format as the official 2017 files,
    _rebuild_tensor(storage, offset, size, stride); in zip files as torch >= 1.6,
    _rebuild_tensor_v2(..., requires_grad, backward_hooks)."""
    keys = {}

    class Pickler(pickle.Pickler):
        def reducer_override(self, obj):
            if not isinstance(obj, Tensor):
                return NotImplemented
            utils, args = sys.modules["torch._utils"], (obj.storage, obj.offset, obj.size, obj.stride)
            if legacy:
                return utils._rebuild_tensor, args
            return utils._rebuild_tensor_v2, args + (False, collections.OrderedDict())

        def persistent_id(self, obj):
            if isinstance(obj, StorageView):
                assert legacy, "the zip format has no storage views"
                return self.persistent_id(obj.root)[:5] + ((f"view{id(obj)}", obj.offset, obj.numel),)
            if not isinstance(obj, Storage):
                return None
            key = keys.setdefault(id(obj), (str(len(keys)), obj))[0]
            storage_type = getattr(sys.modules["torch"], obj.type_name)
            pid = ("storage", storage_type, key, "cpu", obj.array.size)
            return pid + (None,) if legacy else pid

    out = io.BytesIO()
    with torch_stand_ins():
        Pickler(out, protocol=2).dump(state_dict)
    return out.getvalue(), list(keys.values())


def save(state_dict, path, legacy=False):
    """torch.save(state_dict, path[, _use_new_zipfile_serialization=False]), as torch writes it."""
    data, storages = pickled_state_dict(state_dict, legacy)
    if legacy:
        with open(path, "wb") as f:
            for header in (convert_torchvision.LEGACY_MAGIC, convert_torchvision.LEGACY_PROTOCOL,
                           {"protocol_version": 1001, "little_endian": True,
                            "type_sizes": {"short": 2, "int": 4, "long": 8}}):
                pickle.dump(header, f, protocol=2)
            f.write(data)
            pickle.dump([key for key, _ in storages], f, protocol=2)
            for _, storage in storages:
                f.write(struct.pack("<q", storage.array.size) + storage.array.tobytes())
    else:
        with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as archive:
            archive.writestr("archive/data.pkl", data)
            archive.writestr("archive/byteorder", "little")
            for key, storage in storages:
                archive.writestr(f"archive/data/{key}", storage.array.tobytes())
            archive.writestr("archive/version", "3\n")


# ---- torchvision's state dicts, named here independently of the converter --------------------------------

VGG16_FEATURES = [0, 2, 5, 7, 10, 12, 14, 17, 19, 21, 24, 26, 28]  # torchvision's Conv2d indices
TORCH_BN = {"gamma": "weight", "beta": "bias", "moving_mean": "running_mean", "moving_variance": "running_var"}


def torch_layout(array):
    """bcnn's (kh, kw, in, out) kernel -> torch's (out, in, kh, kw)."""
    return array.transpose(3, 2, 0, 1) if array.ndim == 4 else array


def vgg16_state_dict(seed=0):
    """(torchvision state dict with its top, bcnn name -> array)."""
    rng = np.random.default_rng(seed)
    expected = {name: rng.standard_normal(shape, dtype=np.float32) for name, shape in convert_keras.vgg16_tensors()}
    state = collections.OrderedDict()
    for index, (name, value) in zip([i for i in VGG16_FEATURES for _ in (0, 1)], expected.items()):
        state[f"features.{index}.{'weight' if name.endswith('kernel') else 'bias'}"] = tensor(torch_layout(value))
    for index, shape in [(0, (8, 4)), (3, (8, 8)), (6, (3, 8))]:  # the top (smaller than torchvision's)
        state[f"classifier.{index}.weight"] = tensor(rng.standard_normal(shape, dtype=np.float32))
        state[f"classifier.{index}.bias"] = tensor(np.zeros(shape[0], np.float32))
    return state, expected


def densenet_torch_name(bcnn_name, old_names):
    """bcnn's DenseNet name -> torchvision's (old_names: norm.1, conv.1, ... as the 2017 files)."""
    module, variable = bcnn_name.rsplit("/", 1)
    suffix = "." + TORCH_BN.get(variable, "weight")
    parts = module.split("/")
    if len(parts) == 3:  # conv{B}/block{L}/{part}
        block, layer = int(parts[0][4:]) - 1, parts[1][5:]
        sub = {"0_bn": "norm1", "1_conv": "conv1", "1_bn": "norm2", "2_conv": "conv2"}[parts[2]]
        if old_names:
            sub = sub[:-1] + "." + sub[-1]
        return f"features.denseblock{block}.denselayer{layer}.{sub}{suffix}"
    if module.startswith("pool"):
        return f"features.transition{int(module[4]) - 1}.{'norm' if module.endswith('bn') else 'conv'}{suffix}"
    return {"conv1/conv": "features.conv0", "conv1/bn": "features.norm0", "bn": "features.norm5"}[module] + suffix


def densenet_state_dict(variant, old_names=False, seed=0):
    rng = np.random.default_rng(seed)
    state, expected = collections.OrderedDict(), {}
    for name, shape in convert_keras.densenet_tensors(variant):
        expected[name] = rng.standard_normal(shape, dtype=np.float32)
        torch_name = densenet_torch_name(name, old_names)
        state[torch_name] = tensor(torch_layout(expected[name]))
        if name.endswith("moving_variance") and not old_names:  # the 2017 files predate the counters
            counter = torch_name.replace("running_var", "num_batches_tracked")
            state[counter] = tensor(np.array(100, np.int64), "LongStorage")
    channels = expected["bn/gamma"].shape[0]
    state["classifier.weight"] = tensor(rng.standard_normal((10, channels), dtype=np.float32))
    state["classifier.bias"] = tensor(np.zeros(10, np.float32))
    return state, expected


class ConvertTorchvisionTest(ConverterTest):
    def convert(self, source, *extra, model="vgg16", target="out.safetensors"):
        return convert_torchvision.main([source, self.path(target), "--model", model, *extra])

    def check_output(self, tensors, expected, source):
        header, metadata, arrays = read_safetensors(self.path("out.safetensors"))
        self.assertEqual(list(header), [name for name, _ in tensors])
        for name, value in expected.items():
            np.testing.assert_array_equal(arrays[name], value, err_msg=name)
        with open(source, "rb") as f:
            sha256 = hashlib.sha256(f.read()).hexdigest()
        self.assertEqual(metadata, {"bcnn.format": "weights-1", "bcnn.model": metadata["bcnn.model"],
                                    "bcnn.converter": "weights/convert_torchvision.py",
                                    "bcnn.source": os.path.basename(source), "bcnn.source_sha256": sha256,
                                    "bcnn.preprocessing": "torch"})
        return metadata

    def test_vgg16_in_both_formats(self):
        state, expected = vgg16_state_dict()
        for legacy in (False, True):
            with self.subTest(legacy=legacy):
                source = self.path(f"vgg16_{legacy}.pth")
                save(state, source, legacy)
                self.assertEqual(zipfile.is_zipfile(source), not legacy)
                self.assertEqual(self.convert(source), 0)
                metadata = self.check_output(convert_keras.vgg16_tensors(), expected, source)
                self.assertEqual(metadata["bcnn.model"], "vgg16")

    def test_densenet121_current_and_old_names(self):
        for old_names, legacy in ((False, False), (True, True)):
            with self.subTest(old_names=old_names):
                state, expected = densenet_state_dict(121, old_names)
                self.assertEqual("features.denseblock3.denselayer24.norm.2.running_var" in state, old_names)
                source = self.path(f"densenet121_{old_names}.pth")
                save(state, source, legacy)
                self.assertEqual(self.convert(source, model="densenet121"), 0)
                metadata = self.check_output(convert_keras.densenet_tensors(121), expected, source)
                self.assertEqual(metadata["bcnn.model"], "densenet121")
                self.assertEqual(len(expected), 604)

    def test_strided_tensors_and_shared_storages(self):
        state, expected = vgg16_state_dict()
        # features.0.weight as a transposed view of a (kh, kw, in, out) buffer,
        # features.0.bias and features.2.bias as slices of one storage.
        kernel = expected["block1_conv1/kernel"]
        buffer = np.ascontiguousarray(kernel)
        state["features.0.weight"] = Tensor(Storage("FloatStorage", buffer), 0, (64, 3, 3, 3),
                                            [1, 64, 3 * 3 * 64, 3 * 64])
        shared = Storage("FloatStorage", np.concatenate([[7.0], expected["block1_conv1/bias"],
                                                         expected["block1_conv2/bias"]]).astype(np.float32))
        state["features.0.bias"] = Tensor(shared, 1, (64,), (1,))
        state["features.2.bias"] = Tensor(shared, 65, (64,), (1,))
        for legacy in (False, True):
            with self.subTest(legacy=legacy):
                save(state, self.path("strided.pth"), legacy)
                self.assertEqual(self.convert(self.path("strided.pth")), 0)
                self.check_output(convert_keras.vgg16_tensors(), expected, self.path("strided.pth"))
        # The legacy format's storage views: the biases as views into the shared storage.
        state["features.0.bias"] = Tensor(StorageView(shared, 1, 64), 0, (64,), (1,))
        state["features.2.bias"] = Tensor(StorageView(shared, 60, 69), 5, (64,), (1,))
        save(state, self.path("views.pth"), legacy=True)
        self.assertEqual(self.convert(self.path("views.pth")), 0)
        self.check_output(convert_keras.vgg16_tensors(), expected, self.path("views.pth"))
        os.remove(self.path("out.safetensors"))
        state["features.2.bias"] = Tensor(StorageView(shared, 60, 68), 5, (64,), (1,))  # one element short
        save(state, self.path("views.pth"), legacy=True)
        self.expect_error(self.path("views.pth"), ["tensor 'features.2.bias' (size (64,), stride (1,), offset 5) "
                                                   "does not fit its storage of 68 elements"])

    def test_left_over_and_missing_tensors_are_named(self):
        state, _ = vgg16_state_dict()
        state["features.31.weight"] = tensor(np.zeros((4, 4, 3, 3), np.float32))
        del state["features.28.weight"], state["features.28.bias"]
        save(state, self.path("bad.pth"))
        self.expect_error(self.path("bad.pth"), [
            "2 of bcnn's tensors missing from the file: block5_conv3/kernel, block5_conv3/bias",
            "1 left-over tensors with no place in bcnn's model: features.31.weight"])

    def test_a_stray_counter_is_left_over(self):
        state, _ = vgg16_state_dict()
        state["features.1.num_batches_tracked"] = tensor(np.array(3, np.int64), "LongStorage")
        save(state, self.path("counter.pth"))
        self.expect_error(self.path("counter.pth"), ["left-over tensors with no place in bcnn's model: "
                                                     "features.1.num_batches_tracked"])

    def test_wrong_shape_and_dtype_are_named(self):
        state, expected = vgg16_state_dict()
        state["features.5.weight"] = tensor(np.zeros((127, 64, 3, 3), np.float32))
        state["features.7.bias"] = tensor(expected["block2_conv2/bias"].astype(np.float64), "DoubleStorage")
        state["features.10.bias"] = tensor(np.zeros(256, np.uint16), "BFloat16Storage")
        save(state, self.path("bad.pth"), legacy=True)
        self.expect_error(self.path("bad.pth"), ["tensor 'features.10.bias' is a BFloat16Storage, expected float32"])
        state["features.10.bias"] = tensor(expected["block3_conv1/bias"])
        save(state, self.path("bad.pth"), legacy=True)
        self.expect_error(self.path("bad.pth"), [
            "'features.5.weight' has shape (3, 3, 64, 127), but bcnn's 'block2_conv1/kernel' is (3, 3, 64, 128)",
            "'features.7.bias' has dtype float64, expected float32"])

    def test_another_model_is_named(self):
        state, _ = vgg16_state_dict()
        save(state, self.path("vgg16.pth"))
        self.expect_error(self.path("vgg16.pth"), [
            "1004 of bcnn's tensors missing from the file: conv1/conv/kernel, conv1/bn/gamma",
            "26 left-over tensors with no place in bcnn's model: features.0.weight, features.0.bias"],
            model="densenet201")

    def test_official_files_must_have_their_hash(self):
        state, expected = vgg16_state_dict()
        official = self.path("vgg16-397923af.pth")
        save(state, official)
        self.expect_error(official, ["has SHA-256", "but the official vgg16-397923af.pth (https://download.pytorch.org/"
                                     "models/vgg16-397923af.pth) has one starting 397923af"])
        self.expect_error(official, ["is named as the official file of --model vgg16, not --model densenet201"],
                          model="densenet201")
        renamed = self.path("renamed.pth")
        os.rename(official, renamed)
        self.expect_error(renamed, ["has SHA-256"], "--expect-official")
        self.assertEqual(self.convert(renamed), 0)  # not claimed to be official: converted
        os.remove(self.path("out.safetensors"))

        # A file named with its own hash's prefix passes, by name and with --expect-official.
        with open(renamed, "rb") as f:
            name = f"vgg16-{hashlib.sha256(f.read()).hexdigest()[:8]}.pth"
        os.rename(renamed, self.path(name))
        saved = convert_torchvision.OFFICIAL_FILES["vgg16"]
        convert_torchvision.OFFICIAL_FILES["vgg16"] = name
        try:
            self.assertEqual(self.convert(self.path(name)), 0)
            self.check_output(convert_keras.vgg16_tensors(), expected, self.path(name))
        finally:
            convert_torchvision.OFFICIAL_FILES["vgg16"] = saved

    def test_other_globals_are_refused_not_run(self):
        marker = self.path("ran")

        class Payload:
            def __reduce__(self):
                return os.makedirs, (marker,)

        state, _ = vgg16_state_dict()
        state["features.0.bias"] = Payload()
        save(state, self.path("evil.pth"))
        self.expect_error(self.path("evil.pth"), ["the pickle needs os.makedirs, which a state dict of tensors "
                                                  "does not; refusing to load it"])
        self.assertFalse(os.path.exists(marker))

    def test_damaged_files(self):
        state, _ = vgg16_state_dict()
        save(state, self.path("legacy.pth"), legacy=True)
        with open(self.path("legacy.pth"), "rb") as f:
            data = f.read()
        with open(self.path("truncated.pth"), "wb") as f:
            f.write(data[:-100])
        self.expect_error(self.path("truncated.pth"), ["is truncated in storage"])
        with open(self.path("text.pth"), "w") as f:
            f.write("not a pickle")
        self.expect_error(self.path("text.pth"), ["cannot read it as a torch.save file"])
        with zipfile.ZipFile(self.path("other.zip"), "w") as archive:
            archive.writestr("readme.txt", "hello")
        self.expect_error(self.path("other.zip"), ["is a zip archive with 0 ARCHIVE/data.pkl"])
        with open(self.path("list.pth"), "wb") as f:
            for header in (convert_torchvision.LEGACY_MAGIC, convert_torchvision.LEGACY_PROTOCOL,
                           {"little_endian": True}, [1, 2], []):
                pickle.dump(header, f, protocol=2)
        self.expect_error(self.path("list.pth"), ["holds a list, not a state dict"])
        self.expect_error(self.path("absent.pth"), ["does not exist"])


if __name__ == "__main__":
    unittest.main()

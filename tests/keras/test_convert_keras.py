#!/usr/bin/env python3
"""Checks of weights/convert_keras.py on HDF5 files written here with h5py
(no TensorFlow): both layouts it reads (Keras 1 names as in the official
VGG16 file, Keras 2 names as save_weights writes them today, model.save's
"model_weights" group, attributes split into chunks), the safetensors it
writes (read back here byte by byte), and every error the issue asks for:
left-over, missing, wrong shape or dtype (each named), MD5 of official
files, and no partial output on failure.

    python3 tests/keras/test_convert_keras.py
"""

import hashlib
import json
import os
import struct
import sys
import tempfile
import unittest

import h5py
import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "weights"))
import convert_keras  # noqa: E402

OFFICIAL = "vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5"
VGG16_LAYERS = ["input_1", "block1_conv1", "block1_conv2", "block1_pool", "block2_conv1", "block2_conv2",
                "block2_pool", "block3_conv1", "block3_conv2", "block3_conv3", "block3_pool", "block4_conv1",
                "block4_conv2", "block4_conv3", "block4_pool", "block5_conv1", "block5_conv2", "block5_conv3",
                "block5_pool"]


KERAS1_VARIABLES = {"kernel": "W", "bias": "b"}


def vgg16_weights(seed=0):
    """bcnn name -> random float32 array of VGG16's shapes."""
    rng = np.random.default_rng(seed)
    return {name: rng.standard_normal(shape, dtype=np.float32) for name, shape in convert_keras.vgg16_tensors()}


def write_keras_h5(path, layers, legacy=False, root_group=None, chunk_layer_names=False):
    """A Keras weights file. layers: [(layer name, [(variable, array), ...])].
    legacy: Keras 1 names ("block1_conv1_W_1:0") in fixed-length byte strings."""
    with h5py.File(path, "w") as f:
        root = f.create_group(root_group) if root_group else f
        names = [name.encode() if legacy else name for name, _ in layers]
        if chunk_layer_names:
            half = len(names) // 2
            root.attrs["layer_names0"] = np.array(names[:half], dtype=object)
            root.attrs["layer_names1"] = np.array(names[half:], dtype=object)
        else:
            root.attrs["layer_names"] = np.array(names) if legacy else np.array(names, dtype=object)
        for layer, weights in layers:
            group = root.create_group(layer)
            weight_names = []
            for variable, value in weights:
                if legacy:
                    weight = f"{layer}_{KERAS1_VARIABLES[variable]}_1:0"
                else:
                    weight = f"{layer}/{variable}:0"
                group.create_dataset(weight, data=value)
                weight_names.append(weight.encode() if legacy else weight)
            if not weight_names:
                group.attrs["weight_names"] = np.array([], dtype=np.float64)  # as Keras writes an empty list
            else:
                group.attrs["weight_names"] = np.array(weight_names, dtype=None if legacy else object)


def vgg16_layers(weights, drop=(), extra=()):
    layers = []
    for layer in VGG16_LAYERS:
        if layer in drop:
            continue
        variables = [(v, weights[f"{layer}/{v}"]) for v in ("kernel", "bias") if f"{layer}/{v}" in weights]
        layers.append((layer, variables))
    return layers + list(extra)


def read_safetensors(path):
    """(header, metadata, name -> array), checking the layout bcnn's reader requires."""
    with open(path, "rb") as f:
        data = f.read()
    length = struct.unpack("<Q", data[:8])[0]
    assert length % 8 == 0, "header length is padded to 8 bytes"
    header = json.loads(data[8:8 + length])
    metadata = header.pop("__metadata__")
    assert all(isinstance(v, str) for v in metadata.values())
    body = data[8 + length:]
    arrays, end = {}, 0
    for name, entry in header.items():  # in file order; offsets must tile the buffer
        begin, stop = entry["data_offsets"]
        assert begin == end, f"{name} starts at {begin}, expected {end}"
        assert entry["dtype"] == "F32"
        arrays[name] = np.frombuffer(body[begin:stop], dtype="<f4").reshape(entry["shape"])
        end = stop
    assert end == len(body), "no trailing bytes"
    return header, metadata, arrays


class ConvertKerasTest(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.TemporaryDirectory()
        self.weights = vgg16_weights()

    def tearDown(self):
        self.dir.cleanup()

    def path(self, name):
        return os.path.join(self.dir.name, name)

    def convert(self, source, *extra, model="vgg16", target="out.safetensors"):
        return convert_keras.main([source, self.path(target), "--model", model, *extra])

    def expect_error(self, source, fragments, *extra, model="vgg16"):
        """Conversion fails, its message holds every fragment, and no output appears."""
        from contextlib import redirect_stderr
        from io import StringIO
        err = StringIO()
        with redirect_stderr(err):
            status = self.convert(source, *extra, model=model)
        self.assertEqual(status, 1)
        for fragment in fragments:
            self.assertIn(fragment, err.getvalue())
        self.assertFalse(os.path.exists(self.path("out.safetensors")))
        self.assertEqual([n for n in os.listdir(self.dir.name) if n.endswith(".tmp")], [])
        return err.getvalue()

    def check_output(self, expected):
        header, metadata, arrays = read_safetensors(self.path("out.safetensors"))
        self.assertEqual(list(header), [name for name, _ in convert_keras.vgg16_tensors()])
        for name, value in expected.items():
            np.testing.assert_array_equal(arrays[name], value, err_msg=name)
        self.assertEqual(metadata["bcnn.format"], "weights-1")
        self.assertEqual(metadata["bcnn.model"], "vgg16")
        return metadata

    def test_keras1_layout_of_the_official_file(self):
        source = self.path("legacy.h5")
        write_keras_h5(source, vgg16_layers(self.weights), legacy=True)
        self.assertEqual(self.convert(source), 0)
        metadata = self.check_output(self.weights)
        with open(source, "rb") as f:
            self.assertEqual(metadata["bcnn.source_md5"], hashlib.md5(f.read()).hexdigest())
        self.assertEqual(metadata["bcnn.source"], "legacy.h5")
        self.assertEqual(oct(os.stat(self.path("out.safetensors")).st_mode & 0o777),
                         oct(0o666 & ~self.umask()))

    def test_keras2_layouts(self):
        for name, options in [("save_weights.h5", {}), ("model_save.h5", {"root_group": "model_weights"}),
                              ("chunked.h5", {"chunk_layer_names": True})]:
            with self.subTest(name):
                write_keras_h5(self.path(name), vgg16_layers(self.weights), **options)
                self.assertEqual(self.convert(self.path(name)), 0)
                self.check_output(self.weights)

    def test_output_is_replaced_atomically(self):
        source = self.path("a.h5")
        write_keras_h5(source, vgg16_layers(self.weights))
        with open(self.path("out.safetensors"), "wb") as f:
            f.write(b"old")
        self.assertEqual(self.convert(source), 0)
        self.check_output(self.weights)
        self.assertEqual(sorted(os.listdir(self.dir.name)), ["a.h5", "out.safetensors"])

    def test_left_over_tensors_are_named(self):
        source = self.path("with_top.h5")
        fc1 = ("fc1", [("kernel", np.zeros((8, 4), np.float32)), ("bias", np.zeros(4, np.float32))])
        write_keras_h5(source, vgg16_layers(self.weights, extra=[fc1]))
        self.expect_error(source, ["2 left-over tensors", "fc1/kernel, fc1/bias"])

    def test_missing_tensors_are_named(self):
        source = self.path("short.h5")
        write_keras_h5(source, vgg16_layers(self.weights, drop=("block5_conv3",)))
        self.expect_error(source, ["2 of bcnn's tensors missing from the file: block5_conv3/kernel, block5_conv3/bias"])

    def test_wrong_shape_and_dtype_are_named(self):
        weights = dict(self.weights)
        weights["block2_conv1/kernel"] = np.zeros((3, 3, 64, 127), np.float32)
        weights["block4_conv2/bias"] = weights["block4_conv2/bias"].astype(np.float64)
        source = self.path("bad.h5")
        write_keras_h5(source, vgg16_layers(weights))
        self.expect_error(source, ["'block2_conv1/kernel' has shape (3, 3, 64, 127), but bcnn's 'block2_conv1/kernel' "
                                   "is (3, 3, 64, 128)",
                                   "'block4_conv2/bias' has dtype float64, expected float32"])

    def test_a_backbone_file_is_not_a_classifier(self):
        source = self.path("vgg16.h5")
        write_keras_h5(source, vgg16_layers(self.weights))
        self.expect_error(source, ["16 of bcnn's tensors missing from the file: batch_normalization/gamma, "
                                   "batch_normalization/beta"], model="vgg16_classifier")

    def test_official_files_must_have_the_official_md5(self):
        official = self.path(OFFICIAL)
        write_keras_h5(official, vgg16_layers(self.weights), legacy=True)
        self.expect_error(official, ["has MD5", "but the official " + OFFICIAL + " has 6d6bbae143d832006294945121d1f1fc"])
        renamed = self.path("renamed.h5")
        os.rename(official, renamed)
        self.expect_error(renamed, ["has MD5"], "--expect-official")
        self.assertEqual(self.convert(renamed), 0)  # not claimed to be official: converted

        # With the expected MD5 set to this file's, the same checks pass.
        with open(renamed, "rb") as f:
            md5 = hashlib.md5(f.read()).hexdigest()
        saved = convert_keras.OFFICIAL_FILES["vgg16"]
        convert_keras.OFFICIAL_FILES["vgg16"] = convert_keras.OfficialFile(saved.name, md5, saved.url)
        try:
            self.assertEqual(self.convert(renamed, "--expect-official", target="b.safetensors"), 0)
        finally:
            convert_keras.OFFICIAL_FILES["vgg16"] = saved

    def test_official_name_with_another_model_is_refused(self):
        official = self.path(OFFICIAL)
        write_keras_h5(official, vgg16_layers(self.weights))
        self.expect_error(official, ["is named as the official file of --model vgg16, not --model vgg16_classifier"],
                          model="vgg16_classifier")

    def test_not_a_keras_file(self):
        source = self.path("plain.h5")
        with h5py.File(source, "w") as f:
            f.create_dataset("x", data=np.zeros(3))
        self.expect_error(source, ["has no attribute layer_names: not a Keras weights file"])
        with open(self.path("text.h5"), "w") as f:
            f.write("not hdf5")
        self.expect_error(self.path("text.h5"), ["cannot read", "as HDF5"])
        self.expect_error(self.path("absent.h5"), ["does not exist"])

    @staticmethod
    def umask():
        mask = os.umask(0)
        os.umask(mask)
        return mask


if __name__ == "__main__":
    unittest.main()

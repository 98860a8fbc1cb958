#!/usr/bin/env python3
"""Checks of weights/convert_keras.py on HDF5 files written here with h5py
(no TensorFlow): both layouts it reads (Keras 1 names as in the official
VGG16 file, Keras 2 names as save_weights writes them today, model.save's
"model_weights" group, attributes split into chunks), the safetensors it
writes (read back here byte by byte), and every error the issue asks for:
left-over, missing, wrong shape or dtype (each named), MD5 of official
files, and no partial output on failure; for VGG16 and DenseNet (Keras'
nested "conv1/conv" groups, the backbone nested in the study's classifier,
another model's file named tensor by tensor).

    python3 tests/keras/test_convert_keras.py
"""

import contextlib
import hashlib
import io
import json
import os
import re
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


def write_keras_h5(path, layers, legacy=False, root_group=None, chunk_layer_names=False, nested=()):
    """A Keras weights file. layers: [(layer name, [(variable, array), ...])].
    legacy: Keras 1 names ("block1_conv1_W_1:0") in fixed-length byte strings.
    nested: layers that are whole models (a backbone in a Sequential): their
    variables are their own layers' weight names ("conv1/conv/kernel").
    A layer name with '/' ("conv1/conv") is a nested HDF5 group, as Keras writes it."""
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
                elif layer in nested:
                    weight = f"{variable}:0"
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


def keras_densenet_name(bcnn_name):
    """bcnn's DenseNet tensor name -> Keras' weight name:
    conv2/block1/0_bn/gamma -> conv2_block1_0_bn/gamma; others are the same."""
    match = re.fullmatch(r"(conv[2-5])/(block[0-9]+)/(.+)", bcnn_name)
    return "_".join(match.groups()) if match else bcnn_name


def densenet_layers(variant, seed=0):
    """(Keras layers as write_keras_h5 takes them, bcnn name -> array) for a
    random DenseNet, in Keras' layer order, parameterless layers included."""
    rng = np.random.default_rng(seed)
    layers, weights = [("input_1", []), ("zero_padding2d", [])], {}
    for name, shape in convert_keras.densenet_tensors(variant):
        keras_layer, variable = keras_densenet_name(name).rsplit("/", 1)
        weights[name] = rng.standard_normal(shape, dtype=np.float32)
        if layers[-1][0] != keras_layer:
            layers.append((keras_layer, []))
        layers[-1][1].append((variable, weights[name]))
        if variable == "moving_variance":  # each BatchNorm is followed by its ReLU
            layers.append((keras_layer.replace("bn", "relu"), []))
    return layers, weights


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


class ConverterTest(unittest.TestCase):
    """A converter's test case: a scratch folder, and conversions that must fail cleanly.
    Subclasses define convert(source, *extra, model=..., target=...) -> exit status."""

    def setUp(self):
        self.dir = tempfile.TemporaryDirectory()

    def tearDown(self):
        self.dir.cleanup()

    def path(self, name):
        return os.path.join(self.dir.name, name)

    def expect_error(self, source, fragments, *extra, model="vgg16"):
        """Conversion fails, its message holds every fragment, and no output appears."""
        err = io.StringIO()
        with contextlib.redirect_stderr(err):
            status = self.convert(source, *extra, model=model)
        self.assertEqual(status, 1)
        for fragment in fragments:
            self.assertIn(fragment, err.getvalue())
        self.assertFalse(os.path.exists(self.path("out.safetensors")))
        self.assertEqual([n for n in os.listdir(self.dir.name) if n.endswith(".tmp")], [])
        return err.getvalue()


class ConvertKerasTest(ConverterTest):
    def setUp(self):
        super().setUp()
        self.weights = vgg16_weights()

    def convert(self, source, *extra, model="vgg16", target="out.safetensors"):
        return convert_keras.main([source, self.path(target), "--model", model, *extra])

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

    def test_densenet121_in_keras_layout(self):
        layers, weights = densenet_layers(121)
        source = self.path("densenet121.h5")
        write_keras_h5(source, layers)
        with h5py.File(source, "r") as f:  # Keras' "conv1/conv" is a nested group
            self.assertIn("conv", f["conv1"])
        self.assertEqual(self.convert(source, model="densenet121"), 0)
        header, metadata, arrays = read_safetensors(self.path("out.safetensors"))
        self.assertEqual(list(header), [name for name, _ in convert_keras.densenet_tensors(121)])
        self.assertEqual(len(arrays), 604)
        for name, value in weights.items():
            np.testing.assert_array_equal(arrays[name], value, err_msg=name)
        self.assertEqual(metadata["bcnn.model"], "densenet121")
        self.assertIn("conv4/block24/2_conv/kernel", arrays)
        self.assertEqual(arrays["pool4_conv/kernel"].shape, (1, 1, 1024, 512))

    def test_a_vgg16_file_is_not_a_densenet(self):
        source = self.path("vgg16.h5")
        write_keras_h5(source, vgg16_layers(self.weights))
        self.expect_error(source, ["1004 of bcnn's tensors missing from the file: conv1/conv/kernel, conv1/bn/gamma, ",
                                   "26 left-over tensors with no place in bcnn's model: block1_conv1/kernel, "],
                          model="densenet201")

    def test_another_densenet_is_named_tensor_by_tensor(self):
        source = self.path("densenet121.h5")
        write_keras_h5(source, densenet_layers(121)[0])
        message = self.expect_error(source, [
            "400 of bcnn's tensors missing from the file: conv4/block25/0_bn/gamma, conv4/block25/0_bn/beta, ",
            "'pool4_bn/gamma' has shape (1024,), but bcnn's 'pool4_bn/gamma' is (1792,)",
            "'conv5_block1_1_conv/kernel' has shape (1, 1, 512, 128), but bcnn's 'conv5/block1/1_conv/kernel' is "
            "(1, 1, 896, 128)",
            # pool4_bn (4) and pool4_conv, in 16 conv5 layers 0_bn (4) and 1_conv, the final bn (4)
            "... (89 shape, dtype or duplicate problems in all)"], model="densenet201")
        self.assertNotIn("left-over", message)

    def test_densenet201_classifier_with_the_backbone_nested(self):
        _, weights = densenet_layers(201)
        rng = np.random.default_rng(1)
        head = [(name, rng.standard_normal(shape, dtype=np.float32))
                for name, shape in convert_keras.study_head_tensors(1920, 3)]  # 32x32 images: (1, 1, 1920)
        head_layers = []
        for name, value in head:
            layer, variable = name.split("/")
            if not head_layers or head_layers[-1][0] != layer:
                head_layers.append((layer, []))
            head_layers[-1][1].append((variable, value))
        backbone = ("densenet201", [(keras_densenet_name(name), weights[name])
                                    for name, _ in convert_keras.densenet_tensors(201)])
        source = self.path("classifier.h5")
        write_keras_h5(source, [backbone, ("flatten", [])] + head_layers, nested=("densenet201",))
        self.assertEqual(self.convert(source, "--image-size", "32", "--classes", "3",
                                      model="densenet201_classifier"), 0)
        header, metadata, arrays = read_safetensors(self.path("out.safetensors"))
        expected = convert_keras.densenet_tensors(201, "densenet201/") + convert_keras.study_head_tensors(1920, 3)
        self.assertEqual(list(header), [name for name, _ in expected])
        np.testing.assert_array_equal(arrays["densenet201/conv5/block32/2_conv/kernel"],
                                      weights["conv5/block32/2_conv/kernel"])
        np.testing.assert_array_equal(arrays["dense/kernel"], dict(head)["dense/kernel"])
        self.assertEqual(metadata["bcnn.model"], "sequential")
        # At 150x150 the head's first layers are wider: every mismatch is named.
        os.remove(self.path("out.safetensors"))
        self.expect_error(source, ["'batch_normalization/gamma' has shape (1920,), but bcnn's "
                                   "'batch_normalization/gamma' is (30720,)"], "--classes", "3",
                          model="densenet201_classifier")

    def test_densenet_official_files(self):
        official = self.path("densenet201_weights_tf_dim_ordering_tf_kernels_notop.h5")
        write_keras_h5(official, vgg16_layers(self.weights))
        self.expect_error(official, ["but the official densenet201_weights_tf_dim_ordering_tf_kernels_notop.h5 has "
                                     "c13680b51ded0fb44dff2d8f86ac8bb1"], model="densenet201")
        self.expect_error(official, ["is named as the official file of --model densenet201, "
                                     "not --model densenet201_classifier"], model="densenet201_classifier")
        for variant, md5 in [(121, "30ee3e1110167f948a6b9946edeeb738"), (169, "b8c4d4c20dd625c148057b9ff1c1176b")]:
            self.assertEqual(convert_keras.OFFICIAL_FILES[f"densenet{variant}"].md5, md5)

    @staticmethod
    def umask():
        mask = os.umask(0)
        os.umask(mask)
        return mask


if __name__ == "__main__":
    unittest.main()

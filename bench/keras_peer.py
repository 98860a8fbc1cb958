#!/usr/bin/env python3
"""The Keras/TensorFlow peer of bcnn_bench's whole-network rows (bench_networks.cpp).

    keras_peer.py [--threads 2] [--rows custom_cnn_train_step,vgg16_backbone_forward,...]
                  [--warmup 2] [--repetitions 5] [--onednn on|off|default] [--json OUT.json]

Runs the work of bench_networks.cpp with tf_keras (Keras 2) on TensorFlow's CPU
backend, float32, batches of 32 images of 150x150x3 (random values in [0, 1),
as bcnn's rows use; random weights, no network access), labels 0, 1, 2, 3, 0, ...:
  custom_cnn_train_step          the study's custom CNN (model 1, ending in Dense(4, softmax)
                                 as the study writes it; parameter count checked against
                                 custom_cnn.hpp's), one Adam training
                                 step: model.train_on_batch (Keras' compiled train
                                 function: forward, sparse categorical cross-entropy,
                                 backward, Adam update)
  vgg16_backbone_forward         VGG16(include_top=False, weights=None), inference-mode
                                 forward: model.predict_on_batch (compiled predict function)
  densenet201_backbone_forward   DenseNet201(include_top=False, weights=None), likewise
  densenet201_last_block_step    model 4 (DenseNet201 under the study's head) with conv5_*
                                 and the final bn trainable, one train_on_batch step
The backbones come from tests/keras/compare_keras.py's builders (random He-normal
kernels; DenseNet201's BatchNorm statistics calibrated so activations keep their
scale). Each row runs in its own Python process (so that its peak RSS is its own):
--warmup untimed steps (tracing and compiling the tf.function included), then
--repetitions timed steps of one batch each; images/s is the median over them.
peak_rss_MB is the process's peak RSS (VmHWM, 10^6 bytes; reset just before the model
is built), TensorFlow's runtime included (baseline_rss_MB: the RSS at the reset), as
bcnn's counter counts its whole process.

Threads: OMP_NUM_THREADS, TF_NUM_INTRAOP_THREADS and TF_NUM_INTEROP_THREADS are set
before TensorFlow is imported, and tf.config.threading's intra- and inter-op
parallelism to --threads. oneDNN: --onednn on (the default) sets
TF_ENABLE_ONEDNN_OPTS=1, off sets 0, default leaves it as it is: TensorFlow then
turns its oneDNN ops on only on CPUs with AVX512_VNNI, AVX512_BF16 or AMX, so they
are off on AVX2-only CPUs, where the custom CNN's step runs about 2x slower without
them (AMD EPYC, 2 threads, 2026-11-26). The output says which was in effect.

Prints one line per row on stderr and, with --json, writes
  {"tool": "keras_peer", "tensorflow": ..., "tf_keras": ..., "threads": N,
   "onednn": {"TF_ENABLE_ONEDNN_OPTS": ..., "enabled": bool}, "batch": 32, "image_size": 150,
   "rows": [{"name": ..., "images_per_s": median, "images_per_s_min": ..., "images_per_s_max": ...,
             "step_ms": [...], "peak_rss_MB": ..., "baseline_rss_MB": ...}
            or {"name": ..., "error": "..."}]}
(to stdout with --json -).
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

BATCH = 32
IMAGE_SIZE = 150
CLASSES = 4
SEED = 42
ROWS = ["custom_cnn_train_step", "vgg16_backbone_forward", "densenet201_backbone_forward",
        "densenet201_last_block_step"]
HERE = os.path.dirname(os.path.abspath(__file__))


# --- measurement, in the child process (TensorFlow imported there) -----------------

def read_status_kib(key):
    """A field of /proc/self/status in KiB (VmRSS, VmHWM); None where unavailable."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def reset_peak_rss():
    """Resets VmHWM to the current RSS (Linux >= 4.0); False where not allowed."""
    try:
        with open("/proc/self/clear_refs", "w") as clear_refs:
            clear_refs.write("5")
        return True
    except OSError:
        return False


def import_keras(threads):
    import tensorflow as tf
    tf.config.threading.set_intra_op_parallelism_threads(threads)
    tf.config.threading.set_inter_op_parallelism_threads(threads)
    import tf_keras as keras
    return tf, keras


def onednn_enabled():
    try:
        from tensorflow.python.util import _pywrap_util_port
        return bool(_pywrap_util_port.IsMklEnabled())
    except (ImportError, AttributeError):
        return None


def make_custom_cnn(keras):
    """The study's custom CNN (model 1), as include/bcnn/models/custom_cnn.hpp describes it."""
    layers = keras.layers
    model = keras.Sequential([keras.Input((IMAGE_SIZE, IMAGE_SIZE, 3))])
    model.add(layers.Conv2D(16, 3, padding="same", activation="relu"))
    model.add(layers.Conv2D(16, 3, padding="same", activation="relu"))
    model.add(layers.MaxPooling2D(2))
    for filters in (32, 64, 128, 256):
        model.add(layers.SeparableConv2D(filters, 3, padding="same", activation="relu"))
        model.add(layers.SeparableConv2D(filters, 3, padding="same", activation="relu"))
        model.add(layers.BatchNormalization())
        model.add(layers.MaxPooling2D(2))
        if filters >= 128:
            model.add(layers.Dropout(0.2))
    model.add(layers.Flatten())
    for units, rate in ((512, 0.7), (128, 0.5), (64, 0.3)):
        model.add(layers.Dense(units, activation="relu"))
        model.add(layers.Dropout(rate))
    model.add(layers.Dense(CLASSES, activation="softmax"))
    expected = 2_314_532  # custom_cnn.hpp's count for 150x150 and 4 classes
    if model.count_params() != expected:
        sys.exit(f"keras_peer.py: the Keras custom CNN has {model.count_params()} parameters, expected {expected}")
    return model


def compare_keras_module():
    sys.path.insert(0, os.path.join(HERE, "..", "tests", "keras"))
    import compare_keras
    return compare_keras


def make_densenet201_last_block(rng):
    """Model 4: DenseNet201 under the study's head (study_head.hpp), conv5_* and bn trainable."""
    compare_keras = compare_keras_module()
    backbone, _ = compare_keras.make_densenet201(rng, IMAGE_SIZE, 4)
    backbone.trainable = True
    for layer in backbone.layers:
        layer.trainable = layer.name.startswith("conv5_") or layer.name == "bn"
    return compare_keras.study_classifier(backbone, CLASSES)


def build_step(row, keras, rng):
    """The model of `row` and a function running one step on a batch (returns when done)."""
    if row in ("custom_cnn_train_step", "densenet201_last_block_step"):
        model = make_custom_cnn(keras) if row == "custom_cnn_train_step" else make_densenet201_last_block(rng)
        model.compile(optimizer=keras.optimizers.Adam(), loss=keras.losses.SparseCategoricalCrossentropy(),
                      jit_compile=False)
        return lambda images, labels: model.train_on_batch(images, labels)
    builders = compare_keras_module().BACKBONES
    backbone, _ = builders[row.split("_")[0]](rng, IMAGE_SIZE, 4)
    backbone.compile(jit_compile=False)
    return lambda images, labels: backbone.predict_on_batch(images)


def measure_row(row, args):
    """Runs `row` in this process and returns its result dict."""
    tf, keras = import_keras(args.threads)
    import numpy as np
    keras.utils.set_random_seed(SEED)
    rng = np.random.default_rng(SEED)
    images = rng.uniform(0.0, 1.0, size=(BATCH, IMAGE_SIZE, IMAGE_SIZE, 3)).astype(np.float32)
    labels = (np.arange(BATCH) % CLASSES).astype(np.int32)
    baseline_kib = read_status_kib("VmRSS")
    peak_reset = reset_peak_rss()
    step = build_step(row, keras, rng)
    for _ in range(args.warmup):
        step(images, labels)
    seconds = []
    for _ in range(args.repetitions):
        start = time.perf_counter()
        step(images, labels)
        seconds.append(time.perf_counter() - start)
    peak_kib = read_status_kib("VmHWM")
    rates = [BATCH / s for s in seconds]
    result = {
        "name": row,
        "images_per_s": statistics.median(rates),
        "images_per_s_min": min(rates),
        "images_per_s_max": max(rates),
        "step_ms": [round(s * 1e3, 3) for s in seconds],
        "peak_rss_MB": None if peak_kib is None else peak_kib * 1024 / 1e6,
        "baseline_rss_MB": None if baseline_kib is None else baseline_kib * 1024 / 1e6,
        "onednn_enabled": onednn_enabled(),
        "tensorflow": tf.__version__,
        "tf_keras": keras.__version__,
    }
    if not peak_reset:
        result["note"] = "peak RSS since the process started (could not reset VmHWM)"
    return result


# --- driver, in the parent process (no TensorFlow) -------------------------------

def child_environment(args):
    env = dict(os.environ)
    threads = str(args.threads)
    env.update(OMP_NUM_THREADS=threads, TF_NUM_INTRAOP_THREADS=threads, TF_NUM_INTEROP_THREADS=threads)
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    if args.onednn != "default":
        env["TF_ENABLE_ONEDNN_OPTS"] = "1" if args.onednn == "on" else "0"
    return env


def run_child(row, args, env):
    command = [sys.executable, os.path.abspath(__file__), "--child-row", row, "--threads", str(args.threads),
               "--warmup", str(args.warmup), "--repetitions", str(args.repetitions)]
    completed = subprocess.run(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    last_line = completed.stdout.strip().splitlines()[-1:] or [""]
    try:
        if completed.returncode != 0:
            raise ValueError
        return json.loads(last_line[0])
    except ValueError:
        tail = " | ".join(completed.stderr.strip().splitlines()[-3:])
        return {"name": row, "error": f"exit status {completed.returncode}: {tail}"}


def human_line(result):
    if "error" in result:
        return f"keras {result['name']:30s} not run: {result['error']}"
    return (f"keras {result['name']:30s} {result['images_per_s']:8.2f} images/s (median of "
            f"{len(result['step_ms'])}; {result['images_per_s_min']:.2f}..{result['images_per_s_max']:.2f})  "
            f"peak RSS {result['peak_rss_MB']:.0f} MB (baseline {result['baseline_rss_MB']:.0f} MB)")


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rows", default=",".join(ROWS), help="comma-separated, of: " + ", ".join(ROWS))
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--repetitions", type=int, default=5)
    parser.add_argument("--onednn", choices=["on", "off", "default"], default="on",
                        help="TF_ENABLE_ONEDNN_OPTS=1 (on, the default), 0 (off), or as it is (default)")
    parser.add_argument("--json", help="write the results there ('-': stdout)")
    parser.add_argument("--child-row", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.threads < 1 or args.warmup < 1 or args.repetitions < 1:
        parser.error("--threads, --warmup and --repetitions must be at least 1")
    rows = [row for row in args.rows.split(",") if row]
    unknown = [row for row in rows if row not in ROWS]
    if unknown or not rows:
        parser.error(f"--rows: unknown {unknown}; choose from {ROWS}")
    args.rows = rows
    return args


def main(argv):
    args = parse_args(argv)
    if args.child_row:
        print(json.dumps(measure_row(args.child_row, args)))
        return 0
    env = child_environment(args)
    results = []
    for row in args.rows:
        result = run_child(row, args, env)
        print(human_line(result), file=sys.stderr, flush=True)
        results.append(result)
    measured = [r for r in results if "error" not in r]
    enabled = measured[0].get("onednn_enabled") if measured else None
    setting = env.get("TF_ENABLE_ONEDNN_OPTS", "unset")
    print(f"keras: TensorFlow {measured[0]['tensorflow'] if measured else '?'}, {args.threads} threads, "
          f"TF_ENABLE_ONEDNN_OPTS={setting}: oneDNN ops {'on' if enabled else 'off' if enabled is False else '?'}",
          file=sys.stderr)
    report = {
        "tool": "keras_peer",
        "tensorflow": measured[0]["tensorflow"] if measured else None,
        "tf_keras": measured[0]["tf_keras"] if measured else None,
        "threads": args.threads,
        "onednn": {"TF_ENABLE_ONEDNN_OPTS": setting, "enabled": enabled},
        "batch": BATCH,
        "image_size": IMAGE_SIZE,
        "warmup": args.warmup,
        "repetitions": args.repetitions,
        "rows": [{k: v for k, v in r.items() if k not in ("tensorflow", "tf_keras", "onednn_enabled")}
                 for r in results],
    }
    if args.json == "-":
        json.dump(report, sys.stdout, indent=2)
        print()
    elif args.json:
        with open(args.json, "w") as out:
            json.dump(report, out, indent=2)
            out.write("\n")
    return 0 if measured else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

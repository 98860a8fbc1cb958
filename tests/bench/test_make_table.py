#!/usr/bin/env python3
"""Unit tests of bench/make_table.py on hand-made bcnn_bench and keras_peer.py JSON.

    python3 tests/bench/test_make_table.py      (standard library only)
"""

import json
import os
import re
import subprocess
import sys
import tempfile
import unittest

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
sys.path.insert(0, os.path.join(ROOT, "bench"))
import make_table  # noqa: E402


def aggregate(run_name, aggregate_name, **counters):
    entry = {"name": f"{run_name}_{aggregate_name}", "run_name": run_name, "run_type": "aggregate",
             "repetitions": 3, "threads": 1, "aggregate_name": aggregate_name, "aggregate_unit": "time",
             "iterations": 3, "real_time": 10.0, "cpu_time": 10.0, "time_unit": "ms"}
    entry.update(counters)
    return entry


def repeated(run_name, medians, means):
    """A benchmark's mean, median and stddev aggregates (counters: median, mean values)."""
    return [aggregate(run_name, "mean", **means), aggregate(run_name, "median", **medians),
            aggregate(run_name, "stddev", **{key: 0.5 for key in medians})]


def iteration(run_name, repetition, **counters):
    entry = {"name": run_name, "run_name": run_name, "run_type": "iteration", "repetitions": 3,
             "repetition_index": repetition, "threads": 1, "iterations": 5, "real_time": 1.0, "cpu_time": 1.0,
             "time_unit": "ms"}
    entry.update(counters)
    return entry


def skipped(run_name, message):
    entry = iteration(run_name, 0)
    entry.update(error_occurred=True, error_message=message)
    return entry


BENCHMARKS = (
    # A layer with its oneDNN pair and a CUDA row skipped for want of a GPU.
    repeated("bcnn/conv2d/fwd/c3x3_16_16_150/iterations:4/real_time", {"GFLOPs": 50.0, "images_per_s": 200.0},
             {"GFLOPs": 1.0, "images_per_s": 1.0})
    + [dict(entry, label="fwd=jit:avx2") for entry in repeated(
        "onednn/conv2d/fwd/c3x3_16_16_150/min_time:0.200/real_time", {"GFLOPs": 100.0, "images_per_s": 400.0},
        {"GFLOPs": 2.0, "images_per_s": 2.0})]
    + [skipped("cuda/conv2d/fwd/c3x3_16_16_150/real_time", "not run: no CUDA device")]
    + [skipped("cuda_bf16/conv2d/fwd/c3x3_16_16_150/real_time", "not run: no CUDA device (bf16)")]
    # A layer without its oneDNN pair; repetitions without aggregates (median of 3 runs: 30).
    + [iteration("bcnn/maxpool/bwd/p2_16_150/real_time", i, images_per_s=rate, GFLOPs=rate / 10)
       for i, rate in enumerate((10.0, 30.0, 99.0))]
    # Google Benchmark >= 1.8 writes SkipWithMessage as "skipped" and "skip_message".
    + [dict(iteration("cuda/maxpool/bwd/p2_16_150/real_time", 0), skipped=True, skip_message="no GPU | driver")]
    # GEMM with its Eigen peer and the FMA peak.
    + repeated("BM_gemm_float/m:256/n:256/k:256/real_time", {"GFLOP": 40.0}, {"GFLOP": 1.0})
    + repeated("BM_gemm_eigen_float/m:256/n:256/k:256/real_time", {"GFLOP": 20.0}, {"GFLOP": 1.0})
    + repeated("BM_fma_peak/real_time", {"GFLOP": 80.0}, {"GFLOP": 1.0})
    # Whole networks: one with a Keras peer, one whose Keras row failed, one Keras lacks.
    + repeated("BM_custom_cnn_train_step/iterations:10/repeats:3/real_time",
               {"images/s": 60.0, "peak_rss_MB": 350.0}, {"images/s": 1.0, "peak_rss_MB": 1.0})
    + repeated("BM_vgg16_backbone_forward/iterations:3/repeats:3/real_time",
               {"images/s": 6.0, "peak_rss_MB": 900.0}, {"images/s": 1.0, "peak_rss_MB": 1.0})
    + repeated("BM_densenet201_backbone_forward/iterations:3/repeats:3/real_time",
               {"images/s": 18.0, "peak_rss_MB": 800.0}, {"images/s": 1.0, "peak_rss_MB": 1.0})
    # The same networks on the GPU: measured, skipped for want of a GPU, or absent.
    + repeated("BM_custom_cnn_train_step/cuda/iterations:100/repeats:3/real_time",
               {"images/s": 600.0, "peak_rss_MB": 900.0}, {"images/s": 1.0, "peak_rss_MB": 1.0})
    + repeated("BM_custom_cnn_train_step/cuda_bf16/iterations:100/repeats:3/real_time",
               {"images/s": 900.0, "peak_rss_MB": 900.0}, {"images/s": 1.0, "peak_rss_MB": 1.0})
    + [skipped("BM_vgg16_backbone_forward/cuda/iterations:30/repeats:3/real_time",
               "not run: no CUDA device (no driver)")]
    # Something the table has no section for.
    + repeated("BM_something_else", {"widgets": 7.0}, {"widgets": 1.0})
)

KERAS = {
    "tool": "keras_peer", "tensorflow": "2.21.0", "tf_keras": "2.21.0", "threads": 2,
    "onednn": {"TF_ENABLE_ONEDNN_OPTS": "unset", "enabled": False}, "batch": 32, "image_size": 150,
    "warmup": 2, "repetitions": 5,
    "rows": [
        {"name": "custom_cnn_train_step", "images_per_s": 25.0, "images_per_s_min": 20.5, "images_per_s_max": 31.0,
         "peak_rss_MB": 1200.0, "baseline_rss_MB": 590.0},
        {"name": "vgg16_backbone_forward", "error": "exit status 1: MemoryError"},
        {"name": "densenet201_last_block_step", "images_per_s": 8.0, "peak_rss_MB": 2500.0,
         "baseline_rss_MB": 590.0},
    ],
}


def bcnn_json_text():
    """bcnn_bench's JSON, with the counter "threads" after Google Benchmark's own field as it writes it."""
    text = json.dumps({"context": {"date": "2026-11-26T08:00:00+00:00", "num_cpus": 2, "mhz_per_cpu": 2445,
                                   "load_avg": [1.5, 1.0, 0.5]},
                       "benchmarks": list(BENCHMARKS)}, indent=1)
    return text.replace('"images/s": 60.0,', '"images/s": 60.0, "threads": 2.0,', 1)


def table_rows(text, first_cell):
    """The cells of the table rows whose first cell is `first_cell`."""
    rows = [[c.strip() for c in re.split(r"(?<!\\)\|", line.strip()[1:-1])] for line in text.splitlines()
            if line.startswith("|")]
    return [row for row in rows if row[0] == first_cell]


class MakeTableTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.text = make_table.render(make_table.parse_bcnn_json(bcnn_json_text()), KERAS,
                                     machine_line="Test CPU, 2 logical cores, avx2 yes, avx512f no", commit="abc1234")

    def row(self, first_cell, index=0):
        rows = table_rows(self.text, first_cell)
        self.assertGreater(len(rows), index, f"no row '{first_cell}' in:\n{self.text}")
        return rows[index]

    def test_layer_row_uses_medians_and_pairs_onednn(self):
        self.assertEqual(self.row("conv2d"), ["conv2d", "fwd", "c3x3_16_16_150", "200", "50.0", "400", "0.50×",
                                              "fwd=jit:avx2", "not run (1)", "not run (2)"])

    def test_layer_row_without_onednn_pair_takes_median_of_runs(self):
        self.assertEqual(self.row("maxpool"), ["maxpool", "bwd", "p2_16_150", "30.0", "3.00", "not run", "—", "—",
                                               "not run (3)", "not run"])

    def test_reasons_rows_were_not_run_are_notes_under_their_table_once_each(self):
        layers = self.text[self.text.index("## Layers"):self.text.index("## GEMM")]
        notes = [line for line in layers.splitlines() if line.startswith("- (")]
        self.assertEqual(notes, ["- (1) not run: no CUDA device", "- (2) not run: no CUDA device (bf16)",
                                 "- (3) not run: no GPU | driver"])
        self.assertEqual(self.text.count("no CUDA device (bf16)"), 1)

    def test_gemm_row_against_fma_peak_and_eigen(self):
        self.assertEqual(self.row("256×256×256"), ["256×256×256", "40.0", "50%", "20.0", "2.00×"])
        self.assertIn("FMA peak: 80.0 GFLOP/s (BM_fma_peak)", self.text)

    def test_rows_sorted_whatever_the_run_order(self):
        # bcnn_bench interleaves its rows at random: layer rows come out by op,
        # shape (numbers as numbers) and pass; GEMM rows by m, n, k.
        entries = []
        for name in ["bcnn/conv2d/fwd_bwd/c3x3_16_16_150", "bcnn/conv2d/fwd/c3x3_3_16_150",
                     "BM_gemm_float/m:1024/n:1024/k:1024", "bcnn/conv2d/fwd/c3x3_16_16_150",
                     "bcnn/conv2d/bwd_data/c3x3_16_16_150", "BM_gemm_float/m:256/n:256/k:256",
                     "bcnn/batchnorm/fwd/bn_32_75"]:
            entries += repeated(name, {"images_per_s": 10.0}, {"images_per_s": 10.0})
        text = make_table.render({"context": {}, "benchmarks": entries})
        order = [line.split("|")[1:4] for line in text.splitlines() if line.startswith("| ")]
        layers = [[cell.strip() for cell in row] for row in order if row[0].strip() in ("conv2d", "batchnorm")]
        self.assertEqual(layers, [["batchnorm", "fwd", "bn_32_75"], ["conv2d", "fwd", "c3x3_3_16_150"],
                                  ["conv2d", "fwd", "c3x3_16_16_150"], ["conv2d", "bwd_data", "c3x3_16_16_150"],
                                  ["conv2d", "fwd_bwd", "c3x3_16_16_150"]])
        gemms = [row[0].strip() for row in order if "×" in row[0] and row[0].strip() != "m×n×k"]
        self.assertEqual(gemms, ["256×256×256", "1024×1024×1024"])

    def test_network_rows_with_keras(self):
        self.assertEqual(self.row("custom_cnn_train_step"),
                         ["custom_cnn_train_step", "60.0", "350", "25.0", "20.5–31.0", "1,200", "2.40×"])
        self.assertEqual(self.row("vgg16_backbone_forward"),
                         ["vgg16_backbone_forward", "6.00", "900", "not run: exit status 1: MemoryError", "—", "—",
                          "—"])
        self.assertEqual(self.row("densenet201_backbone_forward"),
                         ["densenet201_backbone_forward", "18.0", "800", "not run", "—", "—", "—"])
        self.assertEqual(self.row("densenet201_last_block_step"),
                         ["densenet201_last_block_step", "not run", "—", "8.00", "—", "2,500", "—"])

    def test_gpu_network_rows_against_the_cpu(self):
        self.assertEqual(self.row("custom_cnn_train_step", 1),
                         ["custom_cnn_train_step", "60.0", "600", "900", "10.00×", "15.00×"])
        self.assertEqual(self.row("vgg16_backbone_forward", 1),
                         ["vgg16_backbone_forward", "6.00", "not run (1)", "not run", "—", "—"])
        self.assertIn("- (1) not run: no CUDA device (no driver)", self.text)
        self.assertEqual(len(table_rows(self.text, "densenet201_backbone_forward")), 1)  # no GPU rows, no GPU line
        self.assertEqual(table_rows(self.text, "BM_custom_cnn_train_step/cuda"), [])

    def test_unclassified_rows_are_listed(self):
        self.assertEqual(self.row("BM_something_else"), ["BM_something_else", "widgets 7.00"])
        self.assertEqual(table_rows(self.text, "BM_gemm_float/m:256/n:256/k:256"), [])

    def test_header(self):
        self.assertIn("- Machine: Test CPU, 2 logical cores, avx2 yes, avx512f no", self.text)
        self.assertIn("- Commit: abc1234", self.text)
        self.assertIn("- Threads: bcnn 2 (its threads counter); Keras 2 (intra- and inter-op)", self.text)
        self.assertIn("oneDNN ops off (TF_ENABLE_ONEDNN_OPTS=unset)", self.text)
        self.assertIn("load average 1.50 1.00 0.50", self.text)

    def test_machine_reads_cpuinfo(self):
        with tempfile.NamedTemporaryFile("w", suffix=".cpuinfo", delete=False) as cpuinfo:
            for processor in range(3):
                cpuinfo.write(f"processor\t: {processor}\nmodel name\t: Fake Xeon\nflags\t\t: fpu sse avx2 avx512f\n\n")
        try:
            self.assertEqual(make_table.machine(cpuinfo.name), "Fake Xeon, 3 logical cores, avx2 yes, avx512f yes")
        finally:
            os.unlink(cpuinfo.name)

    def test_paired_rounds_ratio_per_round_and_median(self):
        with tempfile.TemporaryDirectory() as tmp:
            # Rounds 1-3 complete, round 4's Keras run failed, round 5 lacks its Keras file.
            for index, (bcnn_rate, keras_rate) in enumerate([(150.0, 100.0), (160.0, 50.0), (140.0, 70.0),
                                                             (155.0, None), (130.0, None)], start=1):
                step = repeated("BM_custom_cnn_train_step/iterations:10/repeats:3/real_time",
                                {"images/s": bcnn_rate}, {"images/s": 1.0})
                with open(os.path.join(tmp, f"round-{index}-bcnn.json"), "w") as f:
                    json.dump({"context": {}, "benchmarks": step}, f)
                if index == 5:
                    continue
                peer = ({"name": "custom_cnn_train_step", "images_per_s": keras_rate} if keras_rate else
                        {"name": "custom_cnn_train_step", "error": "exit status 1"})
                with open(os.path.join(tmp, f"round-{index}-keras.json"), "w") as f:
                    json.dump(dict(KERAS, rows=[peer]), f)
            with open(os.path.join(tmp, "notes.txt"), "w") as f:
                f.write("not a round")
            rounds = make_table.read_paired(tmp)
        self.assertEqual([index for index, _, _ in rounds], [1, 2, 3, 4, 5])
        text = make_table.render({"context": {}, "benchmarks": []}, paired=rounds)
        rows = table_rows(text, "custom_cnn_train_step")
        self.assertEqual(rows, [
            ["custom_cnn_train_step", "1", "150", "100", "1.50×"],
            ["custom_cnn_train_step", "2", "160", "50.0", "3.20×"],
            ["custom_cnn_train_step", "3", "140", "70.0", "2.00×"],
            ["custom_cnn_train_step", "4", "155", "not run: exit status 1", "—"],
            ["custom_cnn_train_step", "5", "130", "not run", "—"],
            # Medians over rounds 1-3 only: bcnn 150, Keras 70, ratios 1.50, 2.00, 3.20.
            ["custom_cnn_train_step", "median of 3", "150", "70.0", "2.00× (1.50–3.20×)"]])
        self.assertIn("## Whole networks in paired rounds", text)

    def test_no_paired_section_without_rounds(self):
        self.assertNotIn("paired rounds", self.text)

    def test_command_line_writes_out_file(self):
        with tempfile.TemporaryDirectory() as tmp:
            bcnn, keras, out = (os.path.join(tmp, name) for name in ("bcnn.json", "keras.json", "table.md"))
            with open(bcnn, "w") as f:
                f.write(bcnn_json_text())
            with open(keras, "w") as f:
                json.dump(KERAS, f)
            printed = subprocess.run([sys.executable, os.path.join(ROOT, "bench", "make_table.py"), "--bcnn", bcnn,
                                      "--keras", keras, "--out", out], capture_output=True, text=True, check=True)
            with open(out) as f:
                written = f.read()
        self.assertEqual(written, printed.stdout)
        self.assertEqual(table_rows(written, "custom_cnn_train_step"), table_rows(self.text, "custom_cnn_train_step"))


if __name__ == "__main__":
    unittest.main()

#!/usr/bin/env python3
"""Markdown table of bcnn_bench's results and keras_peer.py's (scripts/bench.sh runs it).

    make_table.py --bcnn results.json [--keras keras.json] [--paired DIR] [--threads N] [--out FILE]

--bcnn: bcnn_bench's JSON (--benchmark_out=FILE or --benchmark_format=json). Each
benchmark's *_median aggregate is used where there is one (--benchmark_repetitions
with aggregates); otherwise the median of its repetitions; a benchmark whose every
run was skipped (error_occurred / skipped, e.g. CUDA without a GPU) shows
"not run: <its message>", or in the per-layer and GPU tables "not run (n)" with
note n, its message, once under the table. --keras: keras_peer.py --json's output (optional).
--paired: a folder of paired rounds (scripts/bench.sh --paired-rounds): round-K-bcnn.json
(bcnn_bench) and round-K-keras.json (keras_peer.py) for K = 1, 2, ..., each pair run one
right after the other (optional).
Sections:
  header          date, machine (CPU model, logical cores, AVX2 / AVX-512F from
                  /proc/cpuinfo), threads, git commit, TensorFlow's oneDNN setting
  per-layer rows  benchmarks named ENGINE/OP/PASS/SHAPE (engines bcnn, onednn, cuda,
                  cuda_bf16): bcnn images/s and GFLOP/s, oneDNN images/s, bcnn/oneDNN,
                  oneDNN's kernel (its row's label), CUDA, CUDA in bf16
  GEMM rows       BM_gemm_float/ARGS: GFLOP/s, % of BM_fma_peak's GFLOP/s,
                  BM_gemm_eigen_float/ARGS's GFLOP/s and bcnn/Eigen
  whole networks  BM_<network> and keras_peer's <network>: images/s, peak RSS, bcnn/Keras
  GPU networks    BM_<network>/cuda and /cuda_bf16 against BM_<network>: images/s, GPU/CPU
  paired rounds   the same, per round of --paired, and the median (min-max) of the rounds' ratios
  other rows      anything else, with its counters
Ratios are of throughputs: above 1 means bcnn is faster. A missing peer shows "not run".
Prints the table on stdout; --out also writes it to FILE.
"""

import argparse
import datetime
import json
import os
import re
import statistics
import subprocess
import sys

ENGINES = ("bcnn", "onednn", "cuda", "cuda_bf16")
IMAGES_COUNTERS = ("images_per_s", "images/s")
GFLOP_COUNTERS = ("GFLOPs", "GFLOP/s", "GFLOP")
RSS_COUNTER = "peak_rss_MB"
# Name segments Google Benchmark appends for run options; they are not part of what is measured.
OPTION_SEGMENT = re.compile(r"^(iterations|repeats|min_time|min_warmup_time):[^/]*$|^(real_time|process_time|manual_time)$")
# Keys of a Google Benchmark JSON entry that are not user counters.
STANDARD_KEYS = {"name", "family_index", "per_family_instance_index", "run_name", "run_type", "repetitions",
                 "repetition_index", "threads", "iterations", "real_time", "cpu_time", "time_unit",
                 "aggregate_name", "aggregate_unit", "error_occurred", "error_message", "skipped", "skip_message",
                 "label", "bytes_per_second", "items_per_second"}
NOT_RUN = "not run"


# --- bcnn_bench's JSON ------------------------------------------------------------

def base_name(entry):
    """The benchmark's name without aggregate suffix and run-option segments."""
    name = entry.get("run_name") or entry["name"]
    return "/".join(segment for segment in name.split("/") if not OPTION_SEGMENT.match(segment))


def skip_reason(entry):
    """Why this run did not measure anything (without a leading "not run: "), or None where it did."""
    if entry.get("error_occurred"):
        reason = entry.get("error_message") or "error"
    elif entry.get("skipped"):
        reason = entry.get("skip_message") or entry.get("error_message") or "skipped"
    else:
        return None
    prefix = NOT_RUN + ":"
    return reason[len(prefix):].strip() or reason if reason.startswith(prefix) else reason


def counters(entry):
    return {key: value for key, value in entry.items()
            if key not in STANDARD_KEYS and isinstance(value, (int, float)) and not isinstance(value, bool)}


class Result:
    """One benchmark's figures (counters; real_time in its time_unit), or why it was not run."""

    def __init__(self, name, values=None, reason=None, label=None):
        self.name = name
        self.values = values or {}
        self.reason = reason
        self.label = label

    def get(self, names):
        """The first of the counters `names` that this result has, or None."""
        for name in names:
            if name in self.values:
                return self.values[name]
        return None


def summarize(name, entries):
    """One Result from a benchmark's entries: its median aggregate, else the median of its runs."""
    measured = [e for e in entries if skip_reason(e) is None]
    medians = [e for e in measured if e.get("run_type") == "aggregate" and e.get("aggregate_name") == "median"]
    label = next((e["label"] for e in entries if e.get("label")), None)
    if medians:
        return Result(name, counters(medians[0]), label=label)
    runs = [e for e in measured if e.get("run_type", "iteration") == "iteration"]
    if runs:
        keys = set.intersection(*(set(counters(run)) for run in runs))
        return Result(name, {key: statistics.median(counters(run)[key] for run in runs) for key in keys},
                      label=label)
    reasons = [skip_reason(e) for e in entries if skip_reason(e) is not None]
    return Result(name, reason=reasons[0] if reasons else "no measurement in the results", label=label)


def json_object(pairs):
    """A JSON object; a key given twice keeps both, the second as KEY_counter.

    bench_networks.cpp's counter "threads" shares its name with Google Benchmark's
    own field (the benchmark's thread count, 1 unless ->Threads(n)).
    """
    obj = {}
    for key, item in pairs:
        obj[key + "_counter" if key in obj else key] = item
    return obj


def parse_bcnn_json(text):
    return json.loads(text, object_pairs_hook=json_object)


def read_bcnn(data):
    """{base name: Result} in the order of the benchmarks, from bcnn_bench's parsed JSON."""
    grouped = {}
    for entry in data.get("benchmarks", []):
        grouped.setdefault(base_name(entry), []).append(entry)
    return {name: summarize(name, entries) for name, entries in grouped.items()}


# --- formatting -------------------------------------------------------------------

def number(value):
    if value is None:
        return "—"
    if value >= 100:
        return f"{value:,.0f}"
    if value >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}"


def ratio(numerator, denominator):
    if numerator is None or not denominator:
        return "—"
    return f"{numerator / denominator:.2f}×"


class Notes:
    """Why a table's rows were not run, each reason written once under the table
    (the CUDA columns of a machine without a GPU repeat one long message in every row)."""

    def __init__(self):
        self.reasons = []

    def mark(self, reason):
        """The cell for a row not run for `reason`: "not run (n)", n its note."""
        if reason not in self.reasons:
            self.reasons.append(reason)
        return f"{NOT_RUN} ({self.reasons.index(reason) + 1})"

    def lines(self):
        """The notes, to follow the table (none where every row ran)."""
        if not self.reasons:
            return []
        return [""] + [f"- ({n}) {NOT_RUN}: {reason}" for n, reason in enumerate(self.reasons, 1)]


def cell(result, counter_names, notes=None):
    """A counter of `result`; where it was skipped, "not run (n)" with the reason in `notes`, or without
    notes "not run: why"; "not run" where absent."""
    if result is None:
        return NOT_RUN
    if result.reason is not None:
        return notes.mark(result.reason) if notes is not None else f"{NOT_RUN}: {result.reason}".replace("|", "\\|")
    return number(result.get(counter_names))


def value(result, counter_names):
    return None if result is None or result.reason is not None else result.get(counter_names)


def markdown(headers, rows):
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return lines


# --- sections ---------------------------------------------------------------------

def layer_section(results, used):
    """Per-layer rows: ENGINE/OP/PASS/SHAPE, one table row per (OP, PASS, SHAPE)."""
    layers = {}
    for name, result in results.items():
        parts = name.split("/")
        if len(parts) >= 4 and parts[0] in ENGINES:
            key = (parts[1], parts[2], "/".join(parts[3:]))
            layers.setdefault(key, {})[parts[0]] = result
            used.add(name)
    if not layers:
        return []
    rows, notes = [], Notes()
    # Rows by op, shape, then pass (bcnn_bench interleaves its rows at random).
    for (op, pass_, shape), engines in sorted(layers.items(), key=lambda item: layer_order(*item[0])):
        bcnn, onednn, cuda, cuda_bf16 = (engines.get(engine) for engine in ENGINES)
        rows.append([op, pass_, shape, cell(bcnn, IMAGES_COUNTERS, notes), cell(bcnn, GFLOP_COUNTERS, notes),
                     cell(onednn, IMAGES_COUNTERS, notes),
                     ratio(value(bcnn, IMAGES_COUNTERS), value(onednn, IMAGES_COUNTERS)),
                     (onednn.label if onednn is not None and onednn.label else "—").replace("|", "\\|"),
                     cell(cuda, IMAGES_COUNTERS, notes), cell(cuda_bf16, IMAGES_COUNTERS, notes)])
    return ["## Layers", "",
            "Images/s (and GFLOP/s) of one layer pass on a batch of 32; bcnn/oneDNN above 1: bcnn is faster; "
            "oneDNN kernel: the implementation oneDNN chose (its row's label).", ""] + markdown(
        ["op", "pass", "shape", "bcnn images/s", "bcnn GFLOP/s", "oneDNN images/s", "bcnn/oneDNN", "oneDNN kernel",
         "CUDA images/s", "CUDA bf16 images/s"],
        rows) + notes.lines() + [""]


PASS_ORDER = ["fwd", "fwd_inference", "bwd", "bwd_data", "bwd_weights", "fwd_bwd"]


def layer_order(op, pass_, shape):
    """Sort key of a layer row: op, shape (numbers compared as numbers), pass in PASS_ORDER."""
    shape_key = [(0, int(part), "") if part.isdigit() else (1, 0, part) for part in re.split(r"[_x/]", shape)]
    pass_key = PASS_ORDER.index(pass_) if pass_ in PASS_ORDER else len(PASS_ORDER)
    return (op, shape_key, pass_key, pass_)


def gemm_sizes(text):
    """The "key:value" segments of a benchmark name or its arguments, e.g. m:1024/n:1024/k:1024."""
    return dict(segment.split(":", 1) for segment in text.split("/") if ":" in segment)


def gemm_shape(args):
    sizes = gemm_sizes(args)
    if set(sizes) >= {"m", "n", "k"}:
        return f"{sizes['m']}×{sizes['n']}×{sizes['k']}"
    return args or "—"


def gemm_order(name):
    """Sort key of a GEMM benchmark name: its m, n, k as numbers."""
    sizes = gemm_sizes(name)
    return tuple(int(sizes[key]) if sizes.get(key, "").isdigit() else -1 for key in ("m", "n", "k")), name


def gemm_section(results, used):
    """GEMM rows, against the measured FMA peak and Eigen."""
    prefix, eigen_prefix = "BM_gemm_float", "BM_gemm_eigen_float"
    peaks = {name: result for name, result in results.items() if name.split("/")[0] == "BM_fma_peak"}
    used.update(peaks)
    measured_peaks = [(value(r, GFLOP_COUNTERS), name) for name, r in peaks.items() if value(r, GFLOP_COUNTERS)]
    peak, peak_name = max(measured_peaks) if measured_peaks else (None, None)
    rows = []
    # Rows by m, n, k (bcnn_bench interleaves its rows at random).
    for name, result in sorted(results.items(), key=lambda item: gemm_order(item[0])):
        if name.split("/")[0] != prefix:
            continue
        args = name[len(prefix) + 1:]
        eigen_name = eigen_prefix + ("/" + args if args else "")
        eigen = results.get(eigen_name)
        used.update({name, eigen_name})
        gflops = value(result, GFLOP_COUNTERS)
        rows.append([gemm_shape(args), cell(result, GFLOP_COUNTERS),
                     f"{100 * gflops / peak:.0f}%" if gflops is not None and peak else "—",
                     cell(eigen, GFLOP_COUNTERS), ratio(gflops, value(eigen, GFLOP_COUNTERS))])
    if not rows:
        return []
    if peak:
        peak_note = f"FMA peak: {number(peak)} GFLOP/s ({peak_name})."
    elif peaks:
        peak_note = "FMA peak: " + "; ".join(cell(r, GFLOP_COUNTERS) for r in peaks.values()) + "."
    else:
        peak_note = f"FMA peak: {NOT_RUN} (no BM_fma_peak in the results)."
    return ["## GEMM (float, C = A·B, row-major)", "", peak_note + " bcnn/Eigen above 1: bcnn is faster.", ""] + markdown(
        ["m×n×k", "bcnn GFLOP/s", "% of FMA peak", "Eigen GFLOP/s", "bcnn/Eigen"], rows) + [""]


def network_section(results, keras, used):
    """Whole networks: BM_<row> against keras_peer's <row>."""
    keras_rows = keras_rows_by_name(keras)
    names = [name for name in results if name.startswith("BM_") and name[3:] in keras_peer_rows(keras_rows)]
    rows = []
    for name in names:
        result = results[name]
        used.add(name)
        row = name[3:]
        peer = keras_rows.get(row)
        rows.append([row, cell(result, IMAGES_COUNTERS), cell(result, (RSS_COUNTER,)), keras_cell(peer),
                     keras_range(peer), number(None if peer is None else peer.get("peak_rss_MB")),
                     ratio(value(result, IMAGES_COUNTERS), keras_rate(peer))])
    for row, peer in keras_rows.items():  # Keras rows without a bcnn row
        if "BM_" + row not in names:
            rows.append([row, NOT_RUN, "—", keras_cell(peer), keras_range(peer), number(peer.get("peak_rss_MB")),
                         "—"])
    if not rows:
        return []
    return ["## Whole networks (batch 32, 150×150×3, float32)", "",
            "Peak RSS: the process's high-water mark during the row, runtime included; "
            "Keras steps: the slowest and fastest of its timed steps (images/s); "
            "bcnn/Keras above 1: bcnn is faster.", ""] + markdown(
        ["network", "bcnn images/s", "bcnn peak RSS (MB)", "Keras images/s", "Keras steps", "Keras peak RSS (MB)",
         "bcnn/Keras"], rows) + [""]


GPU_NETWORK_ENGINES = ("cuda", "cuda_bf16")


def gpu_network_section(results, used):
    """Whole networks on the GPU: BM_<row>/cuda and BM_<row>/cuda_bf16 against the CPU's BM_<row>."""
    networks = []
    for name in results:
        network, _, engine = name.partition("/")
        if name.startswith("BM_") and engine in GPU_NETWORK_ENGINES and network not in networks:
            networks.append(network)
    rows, notes = [], Notes()
    for network in networks:
        gpu_names = [f"{network}/{engine}" for engine in GPU_NETWORK_ENGINES]
        used.update(gpu_names)
        cpu = results.get(network)
        cuda, bf16 = (results.get(name) for name in gpu_names)
        cpu_rate = value(cpu, IMAGES_COUNTERS)
        rows.append([network[3:], cell(cpu, IMAGES_COUNTERS, notes), cell(cuda, IMAGES_COUNTERS, notes),
                     cell(bf16, IMAGES_COUNTERS, notes),
                     ratio(value(cuda, IMAGES_COUNTERS), cpu_rate), ratio(value(bf16, IMAGES_COUNTERS), cpu_rate)])
    if not rows:
        return []
    return ["## Whole networks on the GPU (batch 32, 150×150×3)", "",
            "CUDA: float32 (TF32 off); CUDA bf16: bf16 tensor-core convolutions and matrix products with float "
            "master weights. The model runs behind nn::OnDevice: host batch up, output back, each step. "
            "GPU/CPU above 1: the GPU is faster.", ""] + markdown(
        ["network", "CPU images/s", "CUDA images/s", "CUDA bf16 images/s", "CUDA/CPU", "CUDA bf16/CPU"],
        rows) + notes.lines() + [""]


def keras_rows_by_name(data):
    """keras_peer.py's rows by name, from its parsed JSON (None: no rows)."""
    return {row["name"]: row for row in (data or {}).get("rows", [])}


def keras_rate(peer):
    """A keras_peer.py row's images/s; None without the row or the figure."""
    return None if peer is None else peer.get("images_per_s")


def keras_cell(peer):
    """A keras_peer.py row's images/s, or why there is none."""
    if peer is None:
        return NOT_RUN
    if "error" in peer:
        return f"{NOT_RUN}: {peer['error']}".replace("|", "\\|")
    return number(keras_rate(peer))


def keras_range(peer):
    """The slowest..fastest step of a keras_peer.py row, in images/s, or a dash."""
    if peer is None or "images_per_s_min" not in peer or "images_per_s_max" not in peer:
        return "—"
    return f"{number(peer['images_per_s_min'])}–{number(peer['images_per_s_max'])}"


def keras_peer_rows(keras_rows):
    """The whole-network rows keras_peer.py knows (whether or not it ran them)."""
    return set(keras_rows) | {"custom_cnn_train_step", "vgg16_backbone_forward", "densenet201_backbone_forward",
                              "densenet201_last_block_step"}


# --- paired rounds (scripts/bench.sh --paired-rounds) ---------------------------

PAIRED_FILE = re.compile(r"^round-([0-9]+)-(bcnn|keras)\.json$")


def read_paired(directory):
    """[(round, {base name: Result} or None, {row name: keras_peer row} or None)], by round,
    from DIR's round-K-bcnn.json and round-K-keras.json (a missing file: None)."""
    rounds = {}
    for file_name in os.listdir(directory):
        match = PAIRED_FILE.match(file_name)
        if not match:
            continue
        with open(os.path.join(directory, file_name)) as f:
            text = f.read()
        if match.group(2) == "bcnn":
            measured = read_bcnn(parse_bcnn_json(text))
        else:
            measured = keras_rows_by_name(json.loads(text))
        rounds.setdefault(int(match.group(1)), {})[match.group(2)] = measured
    return [(index, tools.get("bcnn"), tools.get("keras")) for index, tools in sorted(rounds.items())]


def paired_section(rounds):
    """Whole networks, bcnn and Keras one right after the other in each round."""
    known = keras_peer_rows({})
    networks = []
    for _, bcnn, keras in rounds:
        for network in [name[3:] for name in (bcnn or {})] + list(keras or {}):
            if network in known and network not in networks:
                networks.append(network)
    rows = []
    for network in networks:
        complete = []  # (bcnn images/s, Keras images/s) of the rounds with both
        for round_number, bcnn, keras in rounds:
            result, peer = (bcnn or {}).get("BM_" + network), (keras or {}).get(network)
            bcnn_rate, peer_rate = value(result, IMAGES_COUNTERS), keras_rate(peer)
            rows.append([network, str(round_number), cell(result, IMAGES_COUNTERS), keras_cell(peer),
                         ratio(bcnn_rate, peer_rate)])
            if bcnn_rate is not None and peer_rate:
                complete.append((bcnn_rate, peer_rate))
        if complete:
            ratios = [b / k for b, k in complete]
            rows.append([network, f"median of {len(complete)}", number(statistics.median(b for b, _ in complete)),
                         number(statistics.median(k for _, k in complete)),
                         f"{statistics.median(ratios):.2f}× ({min(ratios):.2f}–{max(ratios):.2f}×)"])
    if not rows:
        return []
    return ["## Whole networks in paired rounds", "",
            "Each round runs bcnn_bench's row (median of its repetitions) and keras_peer.py's (median of its "
            "steps) one right after the other, alternating which goes first, so that each ratio compares the two "
            "under the same load of the machine; the last row: medians over the complete rounds, and the median "
            "(lowest–highest) of their ratios.", ""] + markdown(
        ["network", "round", "bcnn images/s", "Keras images/s", "bcnn/Keras"], rows) + [""]


def other_section(results, used):
    rows = []
    for name, result in results.items():
        if name in used:
            continue
        if result.reason is not None:
            rows.append([name, f"{NOT_RUN}: {result.reason}".replace("|", "\\|")])
        else:
            rows.append([name, ", ".join(f"{key} {number(v)}" for key, v in sorted(result.values.items())) or "—"])
    return ["## Other rows", ""] + markdown(["benchmark", "counters"], rows) + [""] if rows else []


# --- header -----------------------------------------------------------------------

def machine(cpuinfo_path="/proc/cpuinfo"):
    """CPU model, logical core count and AVX2 / AVX-512F support from /proc/cpuinfo."""
    model, cores, flags = "unknown CPU", 0, set()
    try:
        with open(cpuinfo_path) as cpuinfo:
            for line in cpuinfo:
                key, _, rest = line.partition(":")
                key = key.strip()
                if key == "processor":
                    cores += 1
                elif key == "model name" and model == "unknown CPU":
                    model = rest.strip()
                elif key == "flags" and not flags:
                    flags = set(rest.split())
    except OSError:
        pass
    cores = cores or os.cpu_count() or 0
    simd = ", ".join(f"{flag} {'yes' if flag in flags else 'no'}" for flag in ("avx2", "avx512f"))
    return f"{model}, {cores} logical cores, {simd}"


def git_commit(repository):
    try:
        commit = subprocess.run(["git", "-C", repository, "rev-parse", "--short", "HEAD"], capture_output=True,
                                text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", repository, "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown (not a git checkout)"
    return commit + (" with uncommitted changes" if dirty else "")


def thread_note(results, threads):
    counted = sorted({int(r.values["threads_counter"]) for r in results.values() if "threads_counter" in r.values})
    if counted:
        return "bcnn " + ", ".join(map(str, counted)) + " (its threads counter)"
    return f"bcnn {threads} (OMP_NUM_THREADS)" if threads else "bcnn: not recorded"


def header(bcnn_data, results, keras, machine_line, commit, threads):
    context = bcnn_data.get("context", {})
    made = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    lines = ["# bcnn benchmarks", "",
             f"- Date: {context.get('date', 'unknown')} (bcnn_bench run); table made {made}",
             f"- Machine: {machine_line}",
             f"- Threads: {thread_note(results, threads)}"
             + (f"; Keras {keras['threads']} (intra- and inter-op)" if keras else ""),
             f"- Commit: {commit}",
             f"- bcnn_bench: {context.get('num_cpus', '?')} CPUs at {context.get('mhz_per_cpu', '?')} MHz, load average "
             f"{' '.join(f'{x:.2f}' for x in context.get('load_avg', [])) or 'unknown'} at its start; "
             "figures are medians over repetitions where repeated"]
    if keras:
        onednn = keras.get("onednn", {})
        enabled = onednn.get("enabled")
        state = "on" if enabled else "off" if enabled is False else "unknown"
        lines.append(f"- Keras: TensorFlow {keras.get('tensorflow')}, tf_keras {keras.get('tf_keras')}, "
                     f"oneDNN ops {state} (TF_ENABLE_ONEDNN_OPTS={onednn.get('TF_ENABLE_ONEDNN_OPTS')}); "
                     f"median of {keras.get('repetitions')} steps after {keras.get('warmup')} warm-up")
    else:
        lines.append(f"- Keras: {NOT_RUN}")
    return lines + [""]


def render(bcnn_data, keras=None, machine_line=None, commit=None, threads=None, paired=()):
    """The whole Markdown text; paired: read_paired's rounds."""
    results = read_bcnn(bcnn_data)
    used = set()
    body = layer_section(results, used) + gemm_section(results, used) + network_section(results, keras, used)
    body += gpu_network_section(results, used)
    body += paired_section(paired)
    body += other_section(results, used)
    lines = header(bcnn_data, results, keras, machine_line or machine(), commit or git_commit(os.getcwd()), threads)
    return "\n".join(lines + body)


def main(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bcnn", required=True, help="bcnn_bench's JSON output")
    parser.add_argument("--keras", help="keras_peer.py's JSON output")
    parser.add_argument("--paired", help="a folder of paired rounds (round-K-bcnn.json, round-K-keras.json)")
    parser.add_argument("--threads", type=int, help="bcnn's thread count, where its rows do not record it")
    parser.add_argument("--out", help="also write the table there")
    args = parser.parse_args(argv)
    with open(args.bcnn) as f:
        bcnn_data = parse_bcnn_json(f.read())
    keras = None
    if args.keras:
        with open(args.keras) as f:
            keras = json.load(f)
    paired = read_paired(args.paired) if args.paired else ()
    text = render(bcnn_data, keras, commit=git_commit(os.path.dirname(os.path.abspath(__file__))),
                  threads=args.threads, paired=paired)
    print(text)
    if args.out:
        with open(args.out, "w") as out:
            out.write(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

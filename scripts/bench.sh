#!/usr/bin/env bash
# THE benchmark command: installs the dependencies (scripts/setup-deps.sh) and
# the tf_keras virtualenv (scripts/keras-venv.sh), configures and builds the
# release preset's bcnn_bench (build/release), runs it (3 repetitions randomly
# interleaved across the rows, medians),
# runs the Keras/TensorFlow peer (bench/keras_peer.py) with the same threads,
# then the custom-CNN training step of both in paired rounds, and prints the
# Markdown table of it all (bench/make_table.py).
#
#   scripts/bench.sh [--threads N] [--filter REGEX] [--no-keras]
#                    [--keras-onednn on|off|default] [--paired-rounds N] [--write-results]
#
#   --threads N        threads of bcnn (OMP_NUM_THREADS) and of TensorFlow (intra- and
#                      inter-op parallelism); default 2
#   --filter REGEX     bcnn_bench's --benchmark_filter (default: every benchmark; the
#                      whole networks take minutes); keras_peer.py runs the network rows
#                      BM_<row> that REGEX selects (a leading '-' negates, as in
#                      Google Benchmark)
#   --no-keras         skip keras_peer.py
#   --keras-onednn M   TensorFlow's oneDNN ops for the peer: on (the default:
#                      TF_ENABLE_ONEDNN_OPTS=1, about 2x faster on an AVX2-only CPU), off,
#                      or default (TensorFlow's choice: on only on CPUs with
#                      AVX512_VNNI/BF16/AMX)
#   --paired-rounds N  rounds of the custom-CNN training step (when the filter selects it and
#                      Keras runs): bcnn_bench's row and keras_peer.py's (10 steps) one right
#                      after the other, alternating which goes first; the table gives each
#                      round's bcnn/Keras and their median. TensorFlow's steps switch between
#                      a fast and a slow mode, and the machine's load drifts, so one ratio of
#                      two runs minutes apart can be off by 2x. Default 5 (about 2 minutes);
#                      0: none
#   --write-results    also write the table to bench/RESULTS.md (the committed figures;
#                      without it nothing outside build/release is written)
#
# Outputs in build/release/bench/: results.json (bcnn_bench), keras.json
# (keras_peer.py), paired/ (the paired rounds), table.md. Run it on an otherwise
# idle machine.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

threads=2
filter=.
keras=1
keras_onednn=on
paired_rounds=5
write_results=0
usage="usage: scripts/bench.sh [--threads N] [--filter REGEX] [--no-keras] [--keras-onednn on|off|default] [--paired-rounds N] [--write-results]"
while (($#)); do
  case $1 in
    --threads) threads=${2:?$usage}; shift 2 ;;
    --filter) filter=${2:?$usage}; shift 2 ;;
    --no-keras) keras=0; shift ;;
    --keras-onednn) keras_onednn=${2:?$usage}; shift 2 ;;
    --paired-rounds) paired_rounds=${2:?$usage}; shift 2 ;;
    --write-results) write_results=1; shift ;;
    -h|--help) echo "$usage"; exit 0 ;;
    *) echo "$usage" >&2; exit 2 ;;
  esac
done
[[ $threads =~ ^[1-9][0-9]*$ ]] || { echo "bench.sh: --threads must be a positive integer, got '$threads'" >&2; exit 2; }
[[ $paired_rounds =~ ^[0-9]+$ ]] || { echo "bench.sh: --paired-rounds must be a whole number, got '$paired_rounds'" >&2; exit 2; }
case $keras_onednn in on|off|default) ;; *) echo "$usage" >&2; exit 2 ;; esac

build=build/release
out=$build/bench

bash scripts/setup-deps.sh >&2
if ((keras)); then
  bash scripts/keras-venv.sh >/dev/null
  keras_python=$(bash scripts/keras-venv.sh --print-python)
fi

cmake --preset release >&2
cmake --build --preset release --target bcnn_bench -j "$(nproc)" >&2
[[ -x $out/bcnn_bench ]] || { echo "bench.sh: $out/bcnn_bench was not built (is Google Benchmark installed?)" >&2; exit 1; }

# OPENBLAS_CORETYPE (set to Haswell in some environments) makes OpenBLAS use
# narrower kernels. bcnn, Eigen and oneDNN do not use OpenBLAS, but NumPy in the
# Keras virtualenv may load it, so it is unset to leave every peer at its default.
unset OPENBLAS_CORETYPE
export OMP_NUM_THREADS=$threads

echo "bench.sh: bcnn_bench --benchmark_filter='$filter' with $threads threads" >&2
# Random interleaving: the repetitions of all rows run in a random order, so
# that a bcnn row and its oneDNN row sample the same stretch of the run (the
# machine's speed drifts by 10-20% over 20 minutes; run in registration order,
# every bcnn row ran minutes before every oneDNN row).
"$out/bcnn_bench" --benchmark_filter="$filter" --benchmark_repetitions=3 --benchmark_report_aggregates_only=true \
  --benchmark_enable_random_interleaving=true \
  --benchmark_out="$out/results.json" --benchmark_out_format=json >&2

table_args=(--bcnn "$out/results.json" --threads "$threads")
# The network rows the filter selects, as Google Benchmark would (a leading '-' negates).
rows=()
for row in custom_cnn_train_step vgg16_backbone_forward densenet201_backbone_forward densenet201_last_block_step; do
  if [[ $filter == -* ]]; then
    grep -qE -- "${filter#-}" <<<"BM_$row" || rows+=("$row")
  else
    grep -qE -- "$filter" <<<"BM_$row" && rows+=("$row")
  fi
done
rm -rf "$out/keras.json" "$out/paired"
if ((keras && ${#rows[@]})); then
  rows_csv=$(IFS=,; echo "${rows[*]}")
  echo "bench.sh: keras_peer.py --rows $rows_csv with $threads threads" >&2
  # 15 steps a row: TensorFlow's steps fall into two modes (the custom CNN's
  # 365-460 ms and ~640 ms, 2026-11-26), so a median of 5 lands in either.
  "$keras_python" bench/keras_peer.py --threads "$threads" --rows "$rows_csv" --onednn "$keras_onednn" \
    --repetitions 15 --json "$out/keras.json" || echo "bench.sh: keras_peer.py measured nothing; the table says why" >&2
  if [[ -f $out/keras.json ]]; then table_args+=(--keras "$out/keras.json"); fi
fi

if ((keras && paired_rounds)) && [[ " ${rows[*]} " == *" custom_cnn_train_step "* ]]; then
  mkdir -p "$out/paired"
  for ((round = 1; round <= paired_rounds; round++)); do
    echo "bench.sh: paired round $round of $paired_rounds (custom-CNN step)" >&2
    order=(bcnn keras)
    ((round % 2)) || order=(keras bcnn)
    for tool in "${order[@]}"; do
      if [[ $tool == bcnn ]]; then
        "$out/bcnn_bench" --benchmark_filter='^BM_custom_cnn_train_step/iterations:' \
          --benchmark_out="$out/paired/round-$round-bcnn.json" --benchmark_out_format=json >&2
      else
        "$keras_python" bench/keras_peer.py --threads "$threads" --rows custom_cnn_train_step \
          --onednn "$keras_onednn" --repetitions 10 --json "$out/paired/round-$round-keras.json" ||
          echo "bench.sh: keras_peer.py failed in paired round $round; the table says so" >&2
      fi
    done
  done
  table_args+=(--paired "$out/paired")
fi

python3 bench/make_table.py "${table_args[@]}" --out "$out/table.md"
if ((write_results)); then
  cp "$out/table.md" bench/RESULTS.md
  echo "bench.sh: wrote bench/RESULTS.md" >&2
else
  echo "bench.sh: table in $out/table.md (--write-results also writes bench/RESULTS.md)" >&2
fi

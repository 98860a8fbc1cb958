#!/usr/bin/env bash
# The GPU check, for a machine with an NVIDIA GPU (a lent machine's minutes go
# to running, not setting up): configures and builds the CUDA backend, its
# tests and bcnn_bench (build/gpu, Release, -march from BCNN_MARCH, default
# x86-64-v3 so a build made elsewhere runs there too), runs every CUDA op
# against its CPU op with BCNN_REQUIRE_CUDA=1 (no GPU is then a failure, not
# a skip; bf16/fp16 mixed precision included), runs the convolution
# benchmarks on the GPU (float and bf16 rows) next to the CPU rows of the
# same shapes, and prints the table (bench/make_table.py).
#
#   scripts/gpu-check.sh [--no-build] [--filter REGEX] [--threads N]
#
#   --no-build      use the binaries already in build/gpu (built on another
#                   machine of the same architecture and carried over)
#   --filter REGEX  bcnn_bench rows (default: every conv2d row, CUDA, CUDA bf16 and CPU)
#   --threads N     CPU threads of the CPU rows (default: all cores)
#
# cuDNN is found in /usr/local/cuda, under CUDNN_ROOT, or in pip's
# nvidia-cudnn-cu13 (cuda/CMakeLists.txt). Outputs stay in build/gpu.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

build_dir=build/gpu
build=1
filter='^(cuda|cuda_bf16|bcnn)/conv2d/'
threads=$(nproc)
usage="usage: scripts/gpu-check.sh [--no-build] [--filter REGEX] [--threads N]"
while (($#)); do
  case $1 in
    --no-build) build=0; shift ;;
    --filter) filter=${2:?$usage}; shift 2 ;;
    --threads) threads=${2:?$usage}; shift 2 ;;
    -h|--help) echo "$usage"; exit 0 ;;
    *) echo "$usage" >&2; exit 2 ;;
  esac
done

echo "== GPU"
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader ||
  { echo "gpu-check: nvidia-smi found no GPU" >&2; exit 1; }

if ((build)); then
  echo "== build ($build_dir)"
  cmake -S . -B "$build_dir" -G Ninja -DCMAKE_BUILD_TYPE=Release -DBCNN_WITH_CUDA=ON -DBCNN_BUILD_TESTS=ON \
    -DBCNN_BUILD_BENCH=ON -DBCNN_BUILD_EXAMPLES=OFF -DBCNN_MARCH="${BCNN_MARCH:-x86-64-v3}"
  cmake --build "$build_dir" --target bcnn_cuda_tests bcnn_bench -j "$(nproc)"
fi
for binary in tests/cuda/bcnn_cuda_tests bench/bcnn_bench; do
  [[ -x $build_dir/$binary ]] || { echo "gpu-check: $build_dir/$binary is missing (was the CUDA backend built?)" >&2; exit 1; }
done

echo "== CUDA ops against the CPU ops"
tests_status=0
BCNN_REQUIRE_CUDA=1 "$build_dir/tests/cuda/bcnn_cuda_tests" || tests_status=$?

echo "== benchmarks: $filter, CPU rows with $threads threads"
OMP_NUM_THREADS=$threads "$build_dir/bench/bcnn_bench" --benchmark_filter="$filter" --benchmark_repetitions=3 \
  --benchmark_report_aggregates_only=true --benchmark_out="$build_dir/gpu.json" --benchmark_out_format=json >/dev/null
python3 bench/make_table.py --bcnn "$build_dir/gpu.json" --threads "$threads" --out "$build_dir/gpu-table.md"

if ((tests_status != 0)); then
  echo "gpu-check: the CUDA tests FAILED (exit $tests_status)" >&2
  exit "$tests_status"
fi
echo "gpu-check: CUDA tests passed; table in $build_dir/gpu-table.md"

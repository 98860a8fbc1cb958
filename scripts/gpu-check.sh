#!/usr/bin/env bash
# The GPU check, for a machine with an NVIDIA GPU (a lent machine's minutes go
# to running, not setting up): configures and builds the CUDA backend, its
# tests, bcnn_bench and train_bloodcells (build/gpu, Release, -march from
# BCNN_MARCH, default x86-64-v3 so a build made elsewhere runs there too;
# without oneDNN, whose rows this check does not run and whose 40 MB library
# would not fit a device call), runs
# every CUDA op against its CPU op with BCNN_REQUIRE_CUDA=1 (no GPU is then a
# failure, not a skip; bf16/fp16 mixed precision and the real-image training
# runs included), trains each model for a few steps with train_bloodcells
# --device cuda, runs the benchmarks on the GPU (convolution float and bf16
# rows next to the CPU rows of the same shapes; the whole networks on CPU, GPU
# and GPU bf16) and prints the table (bench/make_table.py). The same machine's
# CPU, where it has AVX-512 (the project's own machine has none), runs the CPU
# tests of the kernels, core and optimisers built with -march=skylake-avx512
# (DIR/avx512, no CUDA): the AVX-512 GEMM micro-kernel and 16-float simd::Vec
# paths checked against the reference kernels.
#
#   scripts/gpu-check.sh [--no-build | --build-only] [--build-dir DIR] [--data DIR]
#                        [--filter REGEX] [--repetitions N] [--threads N]
#
#   --no-build       use the binaries already in the build folder (built on another
#                    machine of the same architecture and carried over)
#   --build-only     build, then stop (no GPU needed: scripts/gpu-stage.sh)
#   --build-dir DIR  the build folder (default build/gpu); with --no-build it needs
#                    only tests/cuda/bcnn_cuda_tests, bench/bcnn_bench,
#                    examples/train_bloodcells and avx512/tests/bcnn_tests, plus lib/
#                    for libraries the machine lacks
#   --data DIR       the blood-cell folder (default: the tests' and the program's own
#                    default, ../shared/data/blood-cells)
#   --filter REGEX   bcnn_bench rows (default: every conv2d row, CUDA, CUDA bf16 and
#                    CPU, and the whole networks)
#   --repetitions N  of each benchmark row (default 3)
#   --threads N      CPU threads of the CPU rows (default: all cores)
#
# cuDNN and cuBLAS are found in /usr/local/cuda, under CUDNN_ROOT, or in pip's
# nvidia-* packages (cuda/CMakeLists.txt at build time; here, their lib folders
# join LD_LIBRARY_PATH). Outputs stay in the build folder.
#
# A lent machine (the device tool) gets the checkout without ../shared and
# cannot reach Debian's archive: scripts/gpu-stage.sh builds here and stages
# the binaries, libraries and images to send with it, and says how to run.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

build_dir=build/gpu
build=1
build_only=0
data=
filter='^((cuda|cuda_bf16|bcnn)/conv2d/|BM_(custom|vgg16|densenet))'
repetitions=3
threads=$(nproc)
usage="usage: scripts/gpu-check.sh [--no-build | --build-only] [--build-dir DIR] [--data DIR] [--filter REGEX] [--repetitions N] [--threads N]"
while (($#)); do
  case $1 in
    --no-build) build=0; shift ;;
    --build-only) build_only=1; shift ;;
    --build-dir) build_dir=${2:?$usage}; shift 2 ;;
    --data) data=$(realpath "${2:?$usage}"); shift 2 ;;
    --filter) filter=${2:?$usage}; shift 2 ;;
    --repetitions) repetitions=${2:?$usage}; shift 2 ;;
    --threads) threads=${2:?$usage}; shift 2 ;;
    -h|--help) echo "$usage"; exit 0 ;;
    *) echo "$usage" >&2; exit 2 ;;
  esac
done

((build || !build_only)) || { echo "gpu-check: --no-build and --build-only exclude each other" >&2; exit 2; }

if ((!build_only)); then
  echo "== GPU"
  nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader ||
    { echo "gpu-check: nvidia-smi found no GPU" >&2; exit 1; }
fi

if ((build)); then
  echo "== build ($build_dir)"
  cmake -S . -B "$build_dir" -G Ninja -DCMAKE_BUILD_TYPE=Release -DBCNN_WITH_CUDA=ON -DBCNN_BUILD_TESTS=ON \
    -DBCNN_BUILD_BENCH=ON -DBCNN_BUILD_EXAMPLES=ON -DBCNN_MARCH="${BCNN_MARCH:-x86-64-v3}" \
    -DBCNN_ONEDNN_LIBRARY=OFF -DCMAKE_DISABLE_FIND_PACKAGE_OpenCL=ON
  cmake --build "$build_dir" --target bcnn_cuda_tests bcnn_bench train_bloodcells -j "$(nproc)"
  echo "== build ($build_dir/avx512: the CPU tests for -march=skylake-avx512)"
  cmake -S . -B "$build_dir/avx512" -G Ninja -DCMAKE_BUILD_TYPE=Release -DBCNN_WITH_CUDA=OFF -DBCNN_BUILD_TESTS=ON \
    -DBCNN_BUILD_BENCH=OFF -DBCNN_BUILD_EXAMPLES=OFF -DBCNN_MARCH=skylake-avx512 -DBCNN_ONEDNN_LIBRARY=OFF \
    -DCMAKE_DISABLE_FIND_PACKAGE_OpenCL=ON
  cmake --build "$build_dir/avx512" --target bcnn_tests -j "$(nproc)"
fi
((!build_only)) || exit 0

tests=$build_dir/tests/cuda/bcnn_cuda_tests bench=$build_dir/bench/bcnn_bench
train=$build_dir/examples/train_bloodcells avx512_tests=$build_dir/avx512/tests/bcnn_tests
for binary in "$tests" "$bench" "$train" "$avx512_tests"; do
  [[ -x $binary ]] || { echo "gpu-check: $binary is missing (gpu-check.sh --build-only builds it)" >&2; exit 1; }
done

# Libraries carried with the binaries, and pip's cuDNN/cuBLAS where the toolkit has none.
library_path=$(realpath -m "$build_dir/lib")
pip_libraries=$(python3 -c 'import glob, nvidia; print(":".join(sorted({d for p in nvidia.__path__
                            for d in glob.glob(p + "/*/lib")})))' 2>/dev/null || true)
export LD_LIBRARY_PATH=$library_path${pip_libraries:+:$pip_libraries}${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
if [[ -n $data ]]; then export BCNN_BLOOD_CELLS_DIR=$data; fi
export XDG_CACHE_HOME=$(realpath -m "$build_dir/cache")  # train_bloodcells' caches

failed=()
echo "== CUDA ops against the CPU ops"
BCNN_REQUIRE_CUDA=1 "$tests" || failed+=("bcnn_cuda_tests (exit $?)")

echo "== CPU kernels, core and optimisers built for AVX-512"
if grep -qw avx512f /proc/cpuinfo; then
  "$avx512_tests" '[kernels],[core],[optim]' || failed+=("AVX-512 CPU tests (exit $?)")
else
  echo "not run: this CPU has no avx512f"
fi

echo "== train_bloodcells --device cuda"
run_dir=$build_dir/gpu-runs
# model, precision, epochs, images a class; the backbones keep random weights.
for run in "custom fp32 2 40" "custom bf16 2 40" "custom fp16 2 40" "vgg16 bf16 1 20" "densenet201 bf16 1 20"; do
  read -r model precision epochs limit <<<"$run"
  args=(--model "$model" --device cuda --precision "$precision" --epochs "$epochs" --limit "$limit"
        --out "$run_dir/$model-$precision")
  [[ $model == custom ]] || args+=(--random-backbone-weights)
  [[ -z $data ]] || args+=(--data "$data")
  echo "-- train_bloodcells ${args[*]}"
  "$train" "${args[@]}" || failed+=("train_bloodcells $model $precision (exit $?)")
done

echo "== benchmarks: $filter, CPU rows with $threads threads"
OMP_NUM_THREADS=$threads "$bench" --benchmark_filter="$filter" --benchmark_repetitions="$repetitions" \
  --benchmark_report_aggregates_only=true --benchmark_out="$build_dir/gpu.json" --benchmark_out_format=json >/dev/null ||
  failed+=("bcnn_bench (exit $?)")
python3 bench/make_table.py --bcnn "$build_dir/gpu.json" --threads "$threads" --out "$build_dir/gpu-table.md"

if ((${#failed[@]})); then
  printf 'gpu-check: FAILED: %s\n' "${failed[@]}" >&2
  exit 1
fi
echo "gpu-check: CUDA tests, AVX-512 CPU tests (where the CPU has it) and GPU training runs passed;" \
  "table in $build_dir/gpu-table.md"

#!/usr/bin/env bash
# Prepares, on this machine, what a lent GPU machine (the device tool) needs
# to run scripts/gpu-check.sh without building or reaching ../shared:
#   build/gpu   the CUDA build (gpu-check.sh --build-only: Release,
#               -march=x86-64-v3, sm_90, no oneDNN)
#               and build/gpu/avx512 (the CPU tests for -march=skylake-avx512)
#   .devbuild/  bcnn_cuda_tests, bcnn_bench, train_bloodcells and the AVX-512
#               bcnn_tests in the layout gpu-check.sh --build-dir expects, and in
#               lib/ the libraries the lent machine lacks (Google Benchmark,
#               libgomp, the CUDA runtime)
#   .devdata/   the images (scripts/gpu-data.py)
# Both folders are added to .git/info/exclude. Then, with the device tool:
#   run(command="BCNN_LAYER_MIN_TIME=0.1 bash scripts/gpu-check.sh --no-build --build-dir .devbuild
#                --data .devdata/blood-cells --repetitions 1 2>&1 | tee $OUT/gpu-check.log;
#                cp .devbuild/gpu.json .devbuild/gpu-table.md $OUT/", carry=[".devbuild", ".devdata"])
# (about 4.5 minutes on an H200).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

bash scripts/gpu-check.sh --build-only --build-dir build/gpu >/dev/null

mkdir -p .git/info
for folder in /.devbuild/ /.devdata/; do
  grep -qxF "$folder" .git/info/exclude 2>/dev/null || echo "$folder" >>.git/info/exclude
done
rm -rf .devbuild
mkdir -p .devbuild/tests/cuda .devbuild/bench .devbuild/examples .devbuild/lib .devbuild/avx512/tests
cp build/gpu/tests/cuda/bcnn_cuda_tests .devbuild/tests/cuda/
cp build/gpu/avx512/tests/bcnn_tests .devbuild/avx512/tests/
cp build/gpu/bench/bcnn_bench .devbuild/bench/
cp build/gpu/examples/train_bloodcells .devbuild/examples/
for library in libbenchmark.so libgomp.so libcudart.so; do
  path=$(ldd build/gpu/bench/bcnn_bench | awk -v l="$library" 'index($1, l) == 1 {print $3}')
  [[ -n $path ]] || { echo "gpu-stage.sh: bcnn_bench links no $library" >&2; exit 1; }
  cp -L "$path" ".devbuild/lib/$(basename "$path")"
done
rm -rf .devdata
python3 scripts/gpu-data.py .devdata/blood-cells
du -sh .devbuild .devdata

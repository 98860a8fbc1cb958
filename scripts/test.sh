#!/usr/bin/env bash
# THE test command: installs the build dependencies (scripts/setup-deps.sh) and
# the tf_keras virtualenv of the checks against Keras (scripts/keras-venv.sh),
# then configures, builds and tests two CMake presets:
#   release  optimised; tests, examples, packaging checks; CUDA backend when found
#   asan     the tests again under AddressSanitizer + UBSan
# and, on a CPU with AVX-512, the kernel tests once more for AVX2 (build/avx2).
# The checks against torchvision run only with BCNN_TORCH_PYTHON set to a
# Python with torch and torchvision (not installed here: gigabytes); otherwise
# they are reported as skipped. Runs both presets even when the first fails,
# prints each ctest summary and the time of each phase, and exits non-zero if
# anything failed.
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.." || exit 1

jobs=$(nproc)
failed=0
timings=()
passed_total=0
failed_total=0
skipped_total=0

# phase NAME COMMAND...: runs a command, records its wall time, returns its status.
phase() {
  local name=$1 start=$SECONDS status=0
  shift
  echo
  echo "==== $name: $*"
  "$@" || status=$?
  timings+=("$(printf '%-16s %5ds  %s' "$name" $((SECONDS - start)) "$([[ $status == 0 ]] && echo ok || echo "FAILED ($status)")")")
  return "$status"
}

# run_ctest PRESET: runs the preset's tests and adds its counts to the totals.
# shellcheck disable=SC2317  # called through phase
run_ctest() {
  local log
  log=$(mktemp)
  ctest --preset "$1" -j "$jobs" 2>&1 | tee "$log"
  local status=${PIPESTATUS[0]}
  local summary skipped
  summary=$(grep -E '^[0-9]+% tests passed, [0-9]+ tests? failed out of [0-9]+' "$log" | tail -n 1)
  skipped=$(grep -cE '^[[:space:]]*[0-9]+ - .*\(Skipped\)$' "$log")
  rm -f "$log"
  if [[ $summary =~ ([0-9]+)\ tests?\ failed\ out\ of\ ([0-9]+) ]]; then
    failed_total=$((failed_total + BASH_REMATCH[1]))
    passed_total=$((passed_total + BASH_REMATCH[2] - BASH_REMATCH[1] - skipped))
    skipped_total=$((skipped_total + skipped))
  fi
  return "$status"
}

phase setup-deps bash scripts/setup-deps.sh || { echo "test.sh: could not install the dependencies" >&2; exit 1; }
phase keras-venv bash scripts/keras-venv.sh || { echo "test.sh: could not make the Keras virtualenv" >&2; exit 1; }
keras_python=$(bash scripts/keras-venv.sh --print-python)
export BCNN_REQUIRE_KERAS=1  # the checks against Keras run here, never skipped for want of it

for preset in release asan; do
  phase "$preset configure" cmake --preset "$preset" -DBCNN_KERAS_PYTHON="$keras_python" \
      -DBCNN_TORCH_PYTHON="${BCNN_TORCH_PYTHON:-}" &&
    phase "$preset build" cmake --build --preset "$preset" -j "$jobs" &&
    phase "$preset test" run_ctest "$preset" || failed=1
done

# run_catch BINARY TAGS: runs a Catch2 test binary on its own, counted as one test.
# shellcheck disable=SC2317  # called through phase
run_catch() {
  local status=0
  "$1" "$2" || status=$?
  if ((status == 0)); then passed_total=$((passed_total + 1)); else failed_total=$((failed_total + 1)); fi
  return "$status"
}
# On an AVX-512 machine the release preset runs the AVX-512 kernels and asan
# the portable ones; the AVX2 kernels (the 6x16 GEMM micro-kernel, 8-float
# simd::Vec, 16 vector registers) get a build of their own:
# the kernel, core and optimiser tests for -march=x86-64-v3.
if grep -qw avx512f /proc/cpuinfo; then
  phase "avx2 configure" cmake -S . -B build/avx2 -G Ninja -DCMAKE_BUILD_TYPE=Release -DBCNN_WITH_CUDA=OFF \
      -DBCNN_BUILD_TESTS=ON -DBCNN_BUILD_BENCH=OFF -DBCNN_BUILD_EXAMPLES=OFF -DBCNN_MARCH=x86-64-v3 \
      -DBCNN_ONEDNN_LIBRARY=OFF -DCMAKE_DISABLE_FIND_PACKAGE_OpenCL=ON &&
    phase "avx2 build" cmake --build build/avx2 --target bcnn_tests -j "$jobs" &&
    phase "avx2 test" run_catch build/avx2/tests/bcnn_tests '[kernels],[core],[optim]' || failed=1
fi
echo
echo "==== phase times (${jobs} cores)"
printf '%s\n' "${timings[@]}"
printf '%-16s %5ds\n' total "$SECONDS"
echo
echo "tests: $passed_total passed, $failed_total failed, $skipped_total skipped"
exit "$failed"

#!/usr/bin/env bash
# Installs the Debian 12 packages that bcnn's build and tests need.
# Idempotent: when every package is already installed it changes nothing and
# needs no network. Uses sudo only when not run as root.
# The CUDA toolkit (optional, for bcnn::cuda) is not from Debian's archive:
# install it yourself under /usr/local/cuda; the build works without it.
set -euo pipefail

packages=(
  cmake ninja-build g++ pkg-config git   # toolchain
  libeigen3-dev                          # GEMM and linear algebra
  libstb-dev                             # image decode/encode (stb_image)
  catch2                                 # tests (Catch2 v2)
  libbenchmark-dev                       # bench/ (Google Benchmark)
  libdnnl-dev                            # bench/: oneDNN, the peer the convolution benchmarks compare with
)

missing=()
for package in "${packages[@]}"; do
  status=$(dpkg-query -W -f='${db:Status-Status}' "$package" 2>/dev/null || true)
  [[ $status == installed ]] || missing+=("$package")
done

if ((${#missing[@]} == 0)); then
  echo "setup-deps: all ${#packages[@]} packages are installed"
  exit 0
fi

as_root=()
if ((EUID != 0)); then
  command -v sudo >/dev/null || { echo "setup-deps: need root or sudo to install: ${missing[*]}" >&2; exit 1; }
  as_root=(sudo)
fi

echo "setup-deps: installing ${missing[*]}"
"${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -q
"${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"

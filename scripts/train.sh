#!/usr/bin/env bash
# THE main-job command: installs the build dependencies, builds
# train_bloodcells (release preset) and runs it on the blood-cell images.
# Arguments go to train_bloodcells (see --help); with none it trains the
# custom CNN for 10 epochs with the held-out protocol into runs/custom.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash scripts/setup-deps.sh
cmake --preset release >/dev/null
cmake --build --preset release -j "$(nproc)" --target train_bloodcells
exec build/release/examples/train_bloodcells "$@"

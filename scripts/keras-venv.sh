#!/usr/bin/env bash
# Makes the Python virtualenv of the checks against Keras (tests/keras) and of
# weights/convert_keras.py: tensorflow-cpu, tf_keras, h5py and numpy at the
# versions pinned in scripts/keras-requirements.txt, in
#   ${XDG_CACHE_HOME:-$HOME/.cache}/bcnn/keras-venv
# Made once and reused: when it already holds those versions this changes
# nothing and needs no network. Installs Debian's python3-venv first when
# `python3 -m venv` cannot work (sudo only when not run as root).
# Prints the virtualenv's python on stdout (messages go to stderr):
#   scripts/keras-venv.sh                 make or update it, then print the path
#   scripts/keras-venv.sh --print-python  only print the path
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

venv="${XDG_CACHE_HOME:-$HOME/.cache}/bcnn/keras-venv"
python="$venv/bin/python"
requirements=scripts/keras-requirements.txt
stamp="$venv/bcnn-requirements.txt"  # the requirements it was last made with
check_imports='import tensorflow, tf_keras, h5py, numpy'

case ${1:-} in
  --print-python) echo "$python"; exit 0 ;;
  "") ;;
  *) echo "usage: scripts/keras-venv.sh [--print-python]" >&2; exit 2 ;;
esac

if [[ -x $python ]] && cmp -s "$requirements" "$stamp" && "$python" -c "$check_imports" >/dev/null 2>&1; then
  echo "keras-venv: $venv is ready" >&2
  echo "$python"
  exit 0
fi

if ! python3 -c 'import ensurepip, venv' >/dev/null 2>&1; then
  as_root=()
  if ((EUID != 0)); then
    command -v sudo >/dev/null || { echo "keras-venv: need root or sudo to install python3-venv" >&2; exit 1; }
    as_root=(sudo)
  fi
  echo "keras-venv: installing python3-venv" >&2
  "${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -q >&2
  "${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends python3-venv >&2
fi

echo "keras-venv: installing $requirements into $venv" >&2
rm -f "$stamp"
[[ -x $python ]] || python3 -m venv "$venv"
"$python" -m pip install --disable-pip-version-check --no-input -q -r "$requirements" >&2
"$python" -c "$check_imports" >/dev/null 2>&1 || {
  echo "keras-venv: $venv was made, but '$check_imports' fails in it" >&2
  exit 1
}
cp "$requirements" "$stamp"
echo "$python"

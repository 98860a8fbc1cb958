#!/usr/bin/env bash
# CTest driver of the checks against Keras and torchvision (tests/keras/CMakeLists.txt):
#   run_keras_check.sh PYTHON WORK_DIR converter
#       weights/convert_keras.py on HDF5 files made with h5py (test_convert_keras.py)
#   run_keras_check.sh PYTHON WORK_DIR torchvision_converter
#       weights/convert_torchvision.py on .pth files written without torch
#       (test_convert_torchvision.py)
#   run_keras_check.sh PYTHON WORK_DIR vgg16|densenet201 BCNN_VS_KERAS
#       tf_keras builds the backbone and the study's model on it with random weights
#       and saves them (compare_keras.py), weights/convert_keras.py converts both
#       files (--model MODEL, MODEL_classifier), and bcnn's outputs on the same input
#       must match Keras' (BCNN_VS_KERAS, bcnn_vs_keras.cpp).
#   run_keras_check.sh PYTHON WORK_DIR vgg16_torchvision|densenet201_torchvision BCNN_VS_KERAS
#       torchvision builds the model with random weights and saves its state dict
#       in both torch.save formats (compare_torch.py), weights/convert_torchvision.py
#       converts each, and bcnn's backbone output must match torchvision's.
# PYTHON is the interpreter of the virtualenv that scripts/keras-venv.sh makes
# (tensorflow-cpu, tf_keras, h5py, numpy), for the torchvision checks one with
# torch and torchvision (BCNN_TORCH_PYTHON). Nothing is downloaded here.
# Exit status 77 (CTest: skipped) when BCNN_KERAS_SKIP is set (its value says why)
# or when PYTHON lacks those packages, unless BCNN_REQUIRE_KERAS=1 (then 1; for
# the torchvision checks BCNN_REQUIRE_TORCH=1).
set -euo pipefail

if (($# < 3)); then
  echo "usage: run_keras_check.sh PYTHON WORK_DIR CHECK [BCNN_VS_KERAS]; CHECK: converter, torchvision_converter," \
    "vgg16, densenet201, vgg16_torchvision or densenet201_torchvision" >&2
  exit 2
fi
python=$1 work=$2 check=$3
source_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)

if [[ -n ${BCNN_KERAS_SKIP:-} ]]; then
  echo "SKIPPED: $BCNN_KERAS_SKIP"
  exit 77
fi
if [[ $check == *_torchvision ]]; then
  modules='import torch, torchvision, numpy' require=BCNN_REQUIRE_TORCH
  reason="torch not available: the torchvision check was not run (set BCNN_TORCH_PYTHON to a Python with torch and"
  reason+=" torchvision)"
  [[ $python == none ]] || reason+=": '$python' cannot import torch, torchvision and numpy"
else
  modules='import tf_keras, h5py, numpy' require=BCNN_REQUIRE_KERAS
  reason="no Python with tensorflow-cpu, tf_keras, h5py and numpy (BCNN_KERAS_PYTHON is '$python'):"
  reason+=" run scripts/keras-venv.sh and configure with -DBCNN_KERAS_PYTHON=<the python it prints>, as scripts/test.sh does"
fi
if [[ -z $python || ! -x $python ]] || ! "$python" -c "$modules" >/dev/null 2>&1; then
  if [[ ${!require:-0} == 1 ]]; then
    echo "FAILED ($require=1): $reason" >&2
    exit 1
  fi
  echo "SKIPPED: $reason"
  exit 77
fi

case $check in
  converter)
    "$python" "$source_dir/tests/keras/test_convert_keras.py"
    ;;
  torchvision_converter)
    "$python" "$source_dir/tests/keras/test_convert_torchvision.py"
    ;;
  vgg16 | densenet201)
    (($# == 4)) || { echo "run_keras_check.sh: $check needs the bcnn_vs_keras program" >&2; exit 2; }
    program=$4
    rm -rf "$work"
    mkdir -p "$work"
    "$python" "$source_dir/tests/keras/compare_keras.py" --model "$check" --out "$work"
    for part in backbone classifier; do
      model=$check
      [[ $part == classifier ]] && model+=_classifier
      "$python" "$source_dir/weights/convert_keras.py" "$work/${check}_$part.h5" "$work/${check}_$part.safetensors" \
        --model "$model"
    done
    "$program" "$check" "$work"
    rm -rf "$work"  # up to 250 MB of weights; kept only when a step fails
    ;;
  vgg16_torchvision | densenet201_torchvision)
    (($# == 4)) || { echo "run_keras_check.sh: $check needs the bcnn_vs_keras program" >&2; exit 2; }
    program=$4 model=${check%_torchvision}
    rm -rf "$work"
    mkdir -p "$work"
    "$python" "$source_dir/tests/keras/compare_torch.py" --model "$model" --out "$work"
    for format in zip legacy; do
      echo "-- torch.save's $format format"
      "$python" "$source_dir/weights/convert_torchvision.py" "$work/${model}_$format.pth" \
        "$work/${model}_backbone.safetensors" --model "$model"
      "$program" "$model" "$work" torch
    done
    rm -rf "$work"  # up to 1.2 GB of weights; kept only when a step fails
    ;;
  *)
    echo "run_keras_check.sh: unknown check '$check' (converter, torchvision_converter, vgg16, densenet201," \
      "vgg16_torchvision or densenet201_torchvision)" >&2
    exit 2
    ;;
esac

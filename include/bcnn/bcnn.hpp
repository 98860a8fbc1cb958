#pragma once
// The umbrella header: #include <bcnn/bcnn.hpp> brings in the whole library.

#include "bcnn/core/device.hpp"
#include "bcnn/core/error.hpp"
#include "bcnn/core/parallel.hpp"
#include "bcnn/core/rng.hpp"
#include "bcnn/core/shape.hpp"
#include "bcnn/core/tensor.hpp"

#include "bcnn/kernels/cpu/dense.hpp"
#include "bcnn/kernels/cpu/gemm.hpp"
#include "bcnn/kernels/cpu/window.hpp"

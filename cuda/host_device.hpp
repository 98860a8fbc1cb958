#pragma once
// Internal to bcnn_cuda: BCNN_HOST_DEVICE marks functions that run on the
// host and the device (__host__ __device__ under nvcc) and compile as plain
// C++ elsewhere, so host code and tests can call the device's arithmetic.

#ifdef __CUDACC__
#define BCNN_HOST_DEVICE __host__ __device__
#else
#define BCNN_HOST_DEVICE
#endif

#pragma once
// Internal to bcnn_cuda: the element-wise optimiser update kernels over n
// contiguous device elements, with step constants already in T (computed by
// optimizer_updates.cpp as optim::Adam / optim::SGD compute them). They
// return the launch's status (cudaGetLastError()).

#include <cuda_runtime_api.h>

#include "bcnn/core/shape.hpp"

namespace bcnn {
namespace cuda {
namespace kernels {

template <typename T>
struct AdamConstants {
    T alpha, one_minus_beta_1, one_minus_beta_2, epsilon;
};

// m += (g - m) * (1 - beta_1); v += (g*g - v) * (1 - beta_2); p -= m * alpha / (sqrt(v) + epsilon)
template <typename T>
cudaError_t adam_update(T* p, const T* g, T* m, T* v, Index n, const AdamConstants<T>& k);

// velocity == nullptr: p -= g * lr. Else velocity = velocity * momentum - g * lr;
// p += nesterov ? velocity * momentum - g * lr : velocity.
template <typename T>
cudaError_t sgd_update(T* p, const T* g, T* velocity, Index n, T learning_rate, T momentum, bool nesterov);

}  // namespace kernels
}  // namespace cuda
}  // namespace bcnn

#pragma once
// Internal to bcnn_cuda: cuDNN convolution algorithm choice. The first call
// with a given problem (ConvKey) times every algorithm on the call's own
// buffers with cudnnFindConvolution*AlgorithmEx, within a workspace of at
// most kMaxConvWorkspaceBytes, and keeps the fastest in the context; later
// calls reuse it. Each function also sets the convolution descriptor's math
// type to the chosen algorithm's, as cuDNN requires before running it.
// Find*Ex overwrites the output buffer it is given (y, dx or dw); callers
// compute the real result afterwards.

#include <cstddef>
#include <string>

#include "cudnn_context.hpp"
#include "cudnn_descriptors.hpp"

namespace bcnn {
namespace cuda {
namespace detail {

// cuDNN has no algorithm for a problem within the workspace limit. The cache
// remembers it (ConvAlgorithm::algo = kNoAlgorithm): later calls throw at once.
struct NoConvAlgorithm : Error {
    using Error::Error;
};
constexpr int kNoAlgorithm = -1;

// The most workspace any convolution algorithm may use.
constexpr std::size_t kMaxConvWorkspaceBytes = std::size_t(256) << 20;

// ConvKey[0]: which pass the algorithm is for.
enum class ConvPass : long long { forward, backward_data, backward_filter };

// One convolution as cuDNN sees it. key[0] is filled in by each function
// below. no_tf32: a float problem that must not use TF32 tensor cores;
// tensor_ops: a bf16/fp16 problem, searched with tensor core math.
struct ConvProblem {
    CudnnContext& context;
    const TensorDescriptor& x;
    const FilterDescriptor& w;
    const ConvolutionDescriptor& conv;
    const TensorDescriptor& y;
    ConvKey key;
    bool no_tf32;
    bool tensor_ops;
    std::string where;
};

ConvAlgorithm forward_algorithm(const ConvProblem& p, const void* x, const void* w, void* y);
ConvAlgorithm backward_data_algorithm(const ConvProblem& p, const void* w, const void* dy, void* dx);
ConvAlgorithm backward_filter_algorithm(const ConvProblem& p, const void* x, const void* dy, void* dw);

}  // namespace detail
}  // namespace cuda
}  // namespace bcnn

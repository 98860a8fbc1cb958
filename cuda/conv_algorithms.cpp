// cuDNN convolution algorithm choice (conv_algorithms.hpp).

#include "conv_algorithms.hpp"

#include <sstream>
#include <string>

namespace bcnn {
namespace cuda {
namespace detail {

namespace {

bool uses_tensor_cores(cudnnMathType_t math) {
    return math == CUDNN_TENSOR_OP_MATH || math == CUDNN_TENSOR_OP_MATH_ALLOW_CONVERSION;
}

// The math type Find runs the algorithms with: FMA only where TF32 is banned
// (cuDNN's default math lets float use TF32 on Ampere and later); tensor core
// math for bf16/fp16 data, which cuDNN puts on tensor cores only when asked.
void set_search_math(const ConvProblem& p) {
    const cudnnMathType_t math = p.no_tf32 ? CUDNN_FMA_MATH : p.tensor_ops ? CUDNN_TENSOR_OP_MATH : CUDNN_DEFAULT_MATH;
    BCNN_CUDA_CHECK(cudnnSetConvolutionMathType(p.conv.get(), math), p.where);
}

// The fastest successful result (Find sorts them by time), skipping tensor
// core results where TF32 is banned. Find may report cuDNN's default math for
// an algorithm it ran under FMA math; where TF32 is banned the algorithm runs
// with FMA math again, so the default cannot turn TF32 back on.
template <typename Perf>
ConvAlgorithm fastest(const Perf* results, int count, const ConvProblem& p, const char* pass) {
    std::ostringstream tried;
    for (int i = 0; i < count; ++i) {
        const Perf& r = results[i];
        const bool banned = p.no_tf32 && uses_tensor_cores(r.mathType);
        if (r.status == CUDNN_STATUS_SUCCESS && !banned)
            return ConvAlgorithm{static_cast<int>(r.algo), p.no_tf32 ? CUDNN_FMA_MATH : r.mathType, r.memory};
        tried << (i ? ", " : "") << "algorithm " << static_cast<int>(r.algo) << ": "
              << (banned ? "uses TF32 tensor cores" : cudnnGetErrorString(r.status));
    }
    std::ostringstream message;
    message << p.where << ": cuDNN has no " << pass << " algorithm for this problem within a workspace of "
            << (kMaxConvWorkspaceBytes >> 20) << " MiB" << (p.no_tf32 ? " without TF32" : "") << " (tried "
            << (count ? tried.str() : std::string("none")) << ")";
    throw NoConvAlgorithm(message.str());
}

const char* pass_name(ConvPass pass) {
    switch (pass) {
        case ConvPass::forward: return "forward";
        case ConvPass::backward_data: return "backward-data";
        case ConvPass::backward_filter: return "backward-filter";
    }
    return "unknown";
}

// The cached algorithm of `pass`, or the one `search` finds, stored; then the
// descriptor's math type set to it. A search that finds none is stored too
// (kNoAlgorithm), and later calls throw NoConvAlgorithm without searching.
template <typename Search>
ConvAlgorithm cached_or_found(const ConvProblem& p, ConvPass pass, Search search) {
    ConvKey key = p.key;
    key[0] = static_cast<long long>(pass);
    auto& cache = p.context.conv_algorithms();
    auto found = cache.find(key);
    if (found == cache.end()) {
        set_search_math(p);
        ConvAlgorithm chosen;
        try {
            chosen = search(p.context.scratch(Scratch::workspace, kMaxConvWorkspaceBytes, p.where));
        } catch (const NoConvAlgorithm&) {
            chosen.algo = kNoAlgorithm;
            cache.emplace(key, chosen);
            throw;
        }
        found = cache.emplace(key, chosen).first;
    }
    if (found->second.algo == kNoAlgorithm)
        throw NoConvAlgorithm(p.where + ": cuDNN has no " + pass_name(pass) +
                              " algorithm for this problem (an earlier search found none)");
    BCNN_CUDA_CHECK(cudnnSetConvolutionMathType(p.conv.get(), found->second.math), p.where);
    return found->second;
}

}  // namespace

ConvAlgorithm forward_algorithm(const ConvProblem& p, const void* x, const void* w, void* y) {
    return cached_or_found(p, ConvPass::forward, [&](void* workspace) {
        cudnnConvolutionFwdAlgoPerf_t results[CUDNN_CONVOLUTION_FWD_ALGO_COUNT];
        int count = 0;
        BCNN_CUDA_CHECK(cudnnFindConvolutionForwardAlgorithmEx(
                            p.context.handle(), p.x.get(), x, p.w.get(), w, p.conv.get(), p.y.get(), y,
                            CUDNN_CONVOLUTION_FWD_ALGO_COUNT, &count, results, workspace, kMaxConvWorkspaceBytes),
                        p.where);
        return fastest(results, count, p, pass_name(ConvPass::forward));
    });
}

ConvAlgorithm backward_data_algorithm(const ConvProblem& p, const void* w, const void* dy, void* dx) {
    return cached_or_found(p, ConvPass::backward_data, [&](void* workspace) {
        cudnnConvolutionBwdDataAlgoPerf_t results[CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT];
        int count = 0;
        BCNN_CUDA_CHECK(cudnnFindConvolutionBackwardDataAlgorithmEx(
                            p.context.handle(), p.w.get(), w, p.y.get(), dy, p.conv.get(), p.x.get(), dx,
                            CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT, &count, results, workspace, kMaxConvWorkspaceBytes),
                        p.where);
        return fastest(results, count, p, pass_name(ConvPass::backward_data));
    });
}

ConvAlgorithm backward_filter_algorithm(const ConvProblem& p, const void* x, const void* dy, void* dw) {
    return cached_or_found(p, ConvPass::backward_filter, [&](void* workspace) {
        cudnnConvolutionBwdFilterAlgoPerf_t results[CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT];
        int count = 0;
        BCNN_CUDA_CHECK(cudnnFindConvolutionBackwardFilterAlgorithmEx(
                            p.context.handle(), p.x.get(), x, p.y.get(), dy, p.conv.get(), p.w.get(), dw,
                            CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT, &count, results, workspace,
                            kMaxConvWorkspaceBytes),
                        p.where);
        return fastest(results, count, p, pass_name(ConvPass::backward_filter));
    });
}

}  // namespace detail
}  // namespace cuda
}  // namespace bcnn

// cuda::softmax_cross_entropy_forward / backward: argument checks, a check
// pass over the labels (and logits) on the device whose first bad row is
// reported with the CPU kernel's message, then the kernels of
// softmax_cross_entropy_kernels.cu. The mean loss: per-row losses in double
// (context scratch), summed over the rows by kernels::column_sums (fixed
// order), divided by N and copied to the host.

#include "bcnn/backend/cuda/softmax_cross_entropy.hpp"

#include <cmath>
#include <vector>

#include "argument_checks.hpp"
#include "check_libraries.hpp"
#include "cudnn_context.hpp"
#include "reduce_kernels.hpp"
#include "softmax_cross_entropy_kernels.hpp"

namespace bcnn {
namespace cuda {

namespace {

// The device labels (N), checked against N rows; their data.
const std::int32_t* checked_labels(const Tensor<std::int32_t>& labels, Index rows, const char* op) {
    detail::require_shape(labels, Shape{rows}, op, "labels");
    return labels.as_rows(op).data;
}

// Throws, as the CPU kernel, when a label is outside [0, K) or (logits given)
// a logit is not finite; labels are checked first, as on the CPU.
template <typename T>
void check_rows(const std::int32_t* label, const RowMatrix<T>* logits, Index rows, Index classes, const char* op) {
    detail::CudnnContext& context = detail::cudnn_context();
    int* first_bad = static_cast<int*>(context.scratch(detail::Scratch::statistics, 2 * sizeof(int), op));
    BCNN_CUDA_CHECK(kernels::find_bad_rows(label, logits, rows, classes, first_bad), op << ": checking the labels");
    int bad[2] = {0, 0};
    BCNN_CUDA_CHECK(cudaMemcpy(bad, first_bad, sizeof(bad), cudaMemcpyDeviceToHost), op << ": checking the labels");
    constexpr int kNone = 0x7fffffff;
    if (bad[0] != kNone) {
        std::int32_t value = 0;
        BCNN_CUDA_CHECK(cudaMemcpy(&value, label + bad[0], sizeof(value), cudaMemcpyDeviceToHost), op);
        BCNN_CHECK(false, op << ": label " << value << " in row " << bad[0] << " is outside [0, " << classes << ")");
    }
    if (bad[1] != kNone) {
        std::vector<T> row(static_cast<std::size_t>(classes));
        BCNN_CUDA_CHECK(cudaMemcpy(row.data(), logits->row(bad[1]), sizeof(T) * row.size(), cudaMemcpyDeviceToHost),
                        op);
        Index j = 0;
        while (j + 1 < classes && std::isfinite(row[static_cast<std::size_t>(j)])) ++j;
        BCNN_CHECK(false, op << ": logits row " << bad[1] << " has the non-finite value "
                             << row[static_cast<std::size_t>(j)] << " (class " << j << ")");
    }
}

// logits (N, K), labels (N) -> probabilities (N, K); returns the mean loss.
template <typename T>
T softmax_cross_entropy_forward_on_device(const Tensor<T>& logits, const Tensor<std::int32_t>& labels,
                                          Tensor<T>& probabilities) {
    const char* op = "cuda::softmax_cross_entropy_forward";
    detail::require_rank(logits, 2, op, "logits");
    const Index n = logits.dim(0), k = logits.dim(1);
    BCNN_CHECK(n >= 1 && k >= 1, op << ": logits of shape " << logits.shape() << " are empty");
    detail::require_shape(probabilities, logits.shape(), op, "probabilities");
    const std::int32_t* label = checked_labels(labels, n, op);
    const RowMatrix<T> z = logits.as_rows(op), p = probabilities.as_rows(op);
    check_rows(label, &z, n, k, op);

    // Scratch: N row losses, the reduction's partials, the mean.
    const Index partial_count = kernels::column_sums_partials(n, 1, 1);
    double* row_loss = static_cast<double*>(detail::cudnn_context().scratch(
        detail::Scratch::workspace, sizeof(double) * static_cast<std::size_t>(n + partial_count + 1), op));
    double* partials = row_loss + n;
    double* mean = partials + partial_count;
    BCNN_CUDA_CHECK(kernels::softmax_cross_entropy_rows(z, label, p, row_loss), op << " on logits " << logits.shape());
    BCNN_CUDA_CHECK(kernels::column_sums(RowMatrix<double>{row_loss, n, 1, 1}, 1, 1.0 / static_cast<double>(n), mean,
                                         1, partials),
                    op << " on logits " << logits.shape() << ": summing the loss");
    double loss = 0;
    BCNN_CUDA_CHECK(cudaMemcpy(&loss, mean, sizeof(loss), cudaMemcpyDeviceToHost), op << ": reading the loss");
    return static_cast<T>(loss);
}

// probabilities (N, K), labels (N) -> d_logits (N, K)
template <typename T>
void softmax_cross_entropy_backward_on_device(const Tensor<T>& probabilities, const Tensor<std::int32_t>& labels,
                                              Tensor<T>& d_logits) {
    const char* op = "cuda::softmax_cross_entropy_backward";
    detail::require_rank(probabilities, 2, op, "probabilities");
    const Index n = probabilities.dim(0), k = probabilities.dim(1);
    detail::require_shape(d_logits, probabilities.shape(), op, "logits gradient");
    const std::int32_t* label = checked_labels(labels, n, op);
    check_rows<T>(label, nullptr, n, k, op);
    const T inverse_n = static_cast<T>(1.0 / static_cast<double>(n));
    BCNN_CUDA_CHECK(kernels::softmax_cross_entropy_gradient(probabilities.as_rows(op), label, inverse_n,
                                                            d_logits.as_rows(op)),
                    op << " on probabilities " << probabilities.shape());
}

}  // namespace

float softmax_cross_entropy_forward(const Tensor<float>& logits, const Tensor<std::int32_t>& labels,
                                    Tensor<float>& probabilities) {
    return softmax_cross_entropy_forward_on_device(logits, labels, probabilities);
}
double softmax_cross_entropy_forward(const Tensor<double>& logits, const Tensor<std::int32_t>& labels,
                                     Tensor<double>& probabilities) {
    return softmax_cross_entropy_forward_on_device(logits, labels, probabilities);
}
void softmax_cross_entropy_backward(const Tensor<float>& probabilities, const Tensor<std::int32_t>& labels,
                                    Tensor<float>& d_logits) {
    softmax_cross_entropy_backward_on_device(probabilities, labels, d_logits);
}
void softmax_cross_entropy_backward(const Tensor<double>& probabilities, const Tensor<std::int32_t>& labels,
                                    Tensor<double>& d_logits) {
    softmax_cross_entropy_backward_on_device(probabilities, labels, d_logits);
}

}  // namespace cuda
}  // namespace bcnn

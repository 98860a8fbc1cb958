#pragma once
// Sparse categorical cross-entropy fused with softmax (Keras
// SparseCategoricalCrossentropy on a softmax output, reduced by the batch mean):
//   logits (N, K), labels (N) in [0, K)  ->  probabilities (N, K),
//   loss = mean_n( log-sum-exp(logits[n]) - logits[n][labels[n]] )
//   d_logits = (probabilities - onehot(labels)) / N
// Log-sum-exp keeps the loss finite for large logits. A non-finite logit or
// a label outside [0, K) throws, naming the row, instead of producing NaN.

#include <cmath>
#include <cstdint>
#include <vector>

#include "bcnn/kernels/cpu/activation.hpp"

namespace bcnn {
namespace cpu {
namespace detail {

// labels (N) with N = logits rows: every value in [0, classes).
inline const std::int32_t* checked_labels(const Tensor<std::int32_t>& labels, Index rows, Index classes,
                                          const char* op) {
    require_shape(labels, Shape{rows}, op, "labels");
    const std::int32_t* label = labels.as_rows(op).data;
    for (Index n = 0; n < rows; ++n)
        BCNN_CHECK(label[n] >= 0 && label[n] < classes,
                   op << ": label " << label[n] << " in row " << n << " is outside [0, " << classes << ")");
    return label;
}

}  // namespace detail

// logits (N, K), labels (N) -> probabilities (N, K); returns the mean loss.
// probabilities may alias logits.
template <typename T>
T softmax_cross_entropy_forward(const Tensor<T>& logits, const Tensor<std::int32_t>& labels,
                                Tensor<T>& probabilities) {
    const char* op = "softmax_cross_entropy_forward";
    detail::require_rank(logits, 2, op, "logits");
    const Index n = logits.dim(0), k = logits.dim(1);
    BCNN_CHECK(n >= 1 && k >= 1, op << ": logits of shape " << logits.shape() << " are empty");
    detail::require_shape(probabilities, logits.shape(), op, "probabilities");
    const std::int32_t* label = detail::checked_labels(labels, n, k, op);
    const RowMatrix<T> z = logits.as_rows(op), p = probabilities.as_rows(op);
    for (Index r = 0; r < n; ++r)
        for (Index j = 0; j < k; ++j)
            BCNN_CHECK(std::isfinite(z.row(r)[j]), op << ": logits row " << r << " has the non-finite value "
                                                      << z.row(r)[j] << " (class " << j << ")");
    // Per-row losses, summed in row order afterwards: the same result on any thread count.
    std::vector<double> row_loss(static_cast<std::size_t>(n));
    detail::parallel_rows(n, k, [&](Index r) {
        const double target = z.row(r)[label[r]];  // read before p (which may be z) is written
        row_loss[r] = detail::softmax_row(z.row(r), p.row(r), k) - target;
    });
    double total = 0;
    for (double loss : row_loss) total += loss;
    return static_cast<T>(total / static_cast<double>(n));
}

// probabilities (N, K) from the forward pass, labels (N) -> d_logits (N, K),
// the gradient of the mean loss. d_logits may alias probabilities.
template <typename T>
void softmax_cross_entropy_backward(const Tensor<T>& probabilities, const Tensor<std::int32_t>& labels,
                                    Tensor<T>& d_logits) {
    const char* op = "softmax_cross_entropy_backward";
    detail::require_rank(probabilities, 2, op, "probabilities");
    const Index n = probabilities.dim(0), k = probabilities.dim(1);
    detail::require_shape(d_logits, probabilities.shape(), op, "logits gradient");
    const std::int32_t* label = detail::checked_labels(labels, n, k, op);
    const T inverse_n = static_cast<T>(1.0 / static_cast<double>(n));
    detail::for_each_row(
        op, d_logits,
        [&](Index first, T* grad, const T* p, Index cols) {
            for (Index j = 0; j < cols; ++j) grad[j] = p[j] * inverse_n;
            grad[label[first / cols]] -= inverse_n;
        },
        probabilities);
}

}  // namespace cpu
}  // namespace bcnn

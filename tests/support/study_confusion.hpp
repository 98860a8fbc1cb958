#pragma once
// The original study's custom-CNN test confusion matrix (rows: true class,
// columns: predicted), a known-answer fixture for metrics and reports.

#include <bcnn/train/metrics.hpp>

namespace bcnn {
namespace testing {

inline ConfusionMatrix study_confusion_matrix() {
    const int rows[4][4] = {{286, 0, 0, 52}, {1, 307, 0, 0}, {0, 0, 290, 3}, {18, 0, 0, 287}};
    ConfusionMatrix m(4);
    for (int t = 0; t < 4; ++t)
        for (int p = 0; p < 4; ++p)
            for (int i = 0; i < rows[t][p]; ++i) m.add(t, p);
    return m;
}

}  // namespace testing
}  // namespace bcnn

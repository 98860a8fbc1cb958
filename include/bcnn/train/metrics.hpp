#pragma once
// Classification metrics: a confusion matrix with accuracy, per-class
// precision / recall / F1 / support, macro and weighted averages, and a text
// report laid out like scikit-learn's classification_report.

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

#include "bcnn/core/error.hpp"

namespace bcnn {

struct ClassScores {
    double precision = 0, recall = 0, f1 = 0;
    std::int64_t support = 0;
};

class ConfusionMatrix {
public:
    explicit ConfusionMatrix(int classes) : classes_(classes), counts_(static_cast<std::size_t>(classes) * classes, 0) {
        BCNN_CHECK(classes >= 1, "ConfusionMatrix: need at least one class, got " << classes);
    }

    int classes() const { return classes_; }

    void add(int true_class, int predicted_class) {
        BCNN_CHECK(true_class >= 0 && true_class < classes_ && predicted_class >= 0 && predicted_class < classes_,
                   "ConfusionMatrix: class pair (" << true_class << ", " << predicted_class << ") outside [0, "
                                                   << classes_ << ")");
        ++counts_[index(true_class, predicted_class)];
    }

    // Rows are true classes, columns predicted classes.
    std::int64_t count(int true_class, int predicted_class) const { return counts_[index(true_class, predicted_class)]; }

    std::int64_t total() const {
        std::int64_t sum = 0;
        for (std::int64_t c : counts_) sum += c;
        return sum;
    }

    double accuracy() const {
        std::int64_t correct = 0;
        for (int k = 0; k < classes_; ++k) correct += count(k, k);
        return total() == 0 ? 0.0 : static_cast<double>(correct) / static_cast<double>(total());
    }

    // Scores of one class; a ratio with a zero denominator is 0 (scikit-learn's zero_division=0).
    ClassScores scores(int k) const {
        std::int64_t predicted = 0, actual = 0;
        for (int j = 0; j < classes_; ++j) {
            predicted += count(j, k);
            actual += count(k, j);
        }
        ClassScores s;
        s.support = actual;
        const double hits = static_cast<double>(count(k, k));
        s.precision = predicted == 0 ? 0.0 : hits / static_cast<double>(predicted);
        s.recall = actual == 0 ? 0.0 : hits / static_cast<double>(actual);
        s.f1 = s.precision + s.recall == 0 ? 0.0 : 2 * s.precision * s.recall / (s.precision + s.recall);
        return s;
    }

    // Unweighted mean over classes.
    ClassScores macro_average() const { return average(false); }
    // Mean over classes weighted by support.
    ClassScores weighted_average() const { return average(true); }

    // scikit-learn's classification_report text, `digits` decimals.
    std::string report(const std::vector<std::string>& class_names, int digits = 2) const {
        BCNN_CHECK(static_cast<int>(class_names.size()) == classes_,
                   "ConfusionMatrix::report: " << class_names.size() << " names for " << classes_ << " classes");
        std::size_t width = std::string("weighted avg").size();
        for (const auto& name : class_names) width = std::max(width, name.size());
        const int w = static_cast<int>(width);
        std::string out = format("%*s  %9s %9s %9s %9s\n\n", w, "", "precision", "recall", "f1-score", "support");
        auto row = [&](const std::string& name, const ClassScores& s) {
            out += format("%*s  %9.*f %9.*f %9.*f %9lld\n", w, name.c_str(), digits, s.precision, digits, s.recall,
                          digits, s.f1, static_cast<long long>(s.support));
        };
        for (int k = 0; k < classes_; ++k) row(class_names[static_cast<std::size_t>(k)], scores(k));
        out += '\n';
        out += format("%*s  %9s %9s %9.*f %9lld\n", w, "accuracy", "", "", digits, accuracy(),
                      static_cast<long long>(total()));
        row("macro avg", macro_average());
        row("weighted avg", weighted_average());
        return out;
    }

private:
    std::size_t index(int t, int p) const { return static_cast<std::size_t>(t) * classes_ + p; }

    ClassScores average(bool by_support) const {
        ClassScores mean;
        double weight_sum = 0;
        for (int k = 0; k < classes_; ++k) {
            const ClassScores s = scores(k);
            const double weight = by_support ? static_cast<double>(s.support) : 1.0;
            mean.precision += weight * s.precision;
            mean.recall += weight * s.recall;
            mean.f1 += weight * s.f1;
            mean.support += s.support;
            weight_sum += weight;
        }
        if (weight_sum > 0) {
            mean.precision /= weight_sum;
            mean.recall /= weight_sum;
            mean.f1 /= weight_sum;
        }
        return mean;
    }

    template <typename... Args>
    static std::string format(const char* pattern, Args... args) {
        const int size = std::snprintf(nullptr, 0, pattern, args...);
        std::string text(static_cast<std::size_t>(size) + 1, '\0');
        std::snprintf(&text[0], text.size(), pattern, args...);
        text.resize(static_cast<std::size_t>(size));
        return text;
    }

    int classes_;
    std::vector<std::int64_t> counts_;
};

}  // namespace bcnn

// Metrics: the original study's confusion matrix gives its published
// accuracy and F1 scores, and the report has scikit-learn's layout.

#include <catch2/catch.hpp>

#include <bcnn/train/metrics.hpp>

#include "support/study_confusion.hpp"

using namespace bcnn;

TEST_CASE("confusion matrix scores match hand computation", "[train][metrics]") {
    const ConfusionMatrix m = testing::study_confusion_matrix();
    CHECK(m.total() == 1244);
    CHECK(m.count(0, 3) == 52);
    CHECK(m.accuracy() == Approx(1170.0 / 1244.0));
    const ClassScores eos = m.scores(0);
    CHECK(eos.precision == Approx(286.0 / 305.0));
    CHECK(eos.recall == Approx(286.0 / 338.0));
    CHECK(eos.f1 == Approx(2.0 * 286 / (305 + 338)));
    CHECK(eos.support == 338);
    const ClassScores neu = m.scores(3);
    CHECK(neu.precision == Approx(287.0 / 342.0));
    CHECK(neu.recall == Approx(287.0 / 305.0));
    const ClassScores macro = m.macro_average();
    double f1_sum = 0, weighted_f1 = 0;
    for (int k = 0; k < 4; ++k) {
        f1_sum += m.scores(k).f1;
        weighted_f1 += m.scores(k).f1 * static_cast<double>(m.scores(k).support);
    }
    CHECK(macro.f1 == Approx(f1_sum / 4));
    CHECK(m.weighted_average().f1 == Approx(weighted_f1 / 1244));
    CHECK(macro.support == 1244);
}

TEST_CASE("classification report has scikit-learn's layout and the study's figures", "[train][metrics]") {
    const std::string expected =
        "              precision    recall  f1-score   support\n"
        "\n"
        "  EOSINOPHIL       0.94      0.85      0.89       338\n"
        "  LYMPHOCYTE       1.00      1.00      1.00       308\n"
        "    MONOCYTE       1.00      0.99      0.99       293\n"
        "  NEUTROPHIL       0.84      0.94      0.89       305\n"
        "\n"
        "    accuracy                           0.94      1244\n"
        "   macro avg       0.94      0.94      0.94      1244\n"
        "weighted avg       0.94      0.94      0.94      1244\n";
    CHECK(testing::study_confusion_matrix().report({"EOSINOPHIL", "LYMPHOCYTE", "MONOCYTE", "NEUTROPHIL"}) == expected);
}

TEST_CASE("a class never predicted scores zero precision, not NaN", "[train][metrics]") {
    ConfusionMatrix m(3);
    m.add(0, 0);
    m.add(1, 0);
    m.add(2, 2);
    CHECK(m.scores(1).precision == 0.0);
    CHECK(m.scores(1).recall == 0.0);
    CHECK(m.scores(1).f1 == 0.0);
    CHECK(m.scores(0).precision == Approx(0.5));
    CHECK(m.macro_average().recall == Approx(2.0 / 3.0));
}

TEST_CASE("metrics reject bad classes and names", "[train][metrics][errors]") {
    ConfusionMatrix m(4);
    CHECK_THROWS_WITH(m.add(4, 0), Catch::Contains("class pair (4, 0) outside [0, 4)"));
    CHECK_THROWS_WITH(m.add(0, -1), Catch::Contains("class pair (0, -1) outside [0, 4)"));
    CHECK_THROWS_WITH(m.report({"A", "B"}), Catch::Contains("2 names for 4 classes"));
    CHECK_THROWS_WITH(ConfusionMatrix(0), Catch::Contains("need at least one class, got 0"));
}

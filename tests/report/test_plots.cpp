// Plots: round axis ticks; the curves PNG has both panels with titles, both
// series where their data say, and refuses non-finite histories; the
// confusion-matrix PNG colours each cell by its row share, darkest where
// the share is largest, with readable counts and labels.

#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <limits>
#include <utility>

#include <bcnn/report/plots.hpp>

#include "report/png.hpp"
#include "support/study_confusion.hpp"
#include "support/temp_dir.hpp"

using namespace bcnn;
using report::Color;
using report::EpochRecord;
using report::Rect;

namespace {

const std::vector<std::string> kNames{"EOSINOPHIL", "LYMPHOCYTE", "MONOCYTE", "NEUTROPHIL"};

std::vector<EpochRecord> ten_epochs() {
    std::vector<EpochRecord> history;
    for (int e = 1; e <= 10; ++e)
        history.push_back({e, 1.2 * std::exp(-0.3 * e), 1 - 0.5 * std::exp(-0.4 * e), 1.3 * std::exp(-0.25 * e),
                           1 - 0.55 * std::exp(-0.35 * e)});
    return history;
}

double luminance(Color c) { return 0.2126 * c.r + 0.7152 * c.g + 0.0722 * c.b; }

// Pixels in the rectangle that are dark enough to be text on a white background.
int dark_pixels(const testing::DecodedImage& image, const Rect& r) {
    int n = 0;
    for (int y = r.y; y < r.bottom(); ++y)
        for (int x = r.x; x < r.right(); ++x) n += luminance(image.at(x, y)) < 100;
    return n;
}

// Centre pixel of a data point of a panel.
std::pair<int, int> point_pixel(const report::detail::CurvePanel& p, double epoch, double value) {
    const double x = p.x.to_pixel(epoch, p.plot.x, p.plot.right()), y = p.y.to_pixel(value, p.plot.bottom(), p.plot.y);
    return {static_cast<int>(std::floor(x)), static_cast<int>(std::floor(y))};
}

double distance_to_polyline(int x, int y, const std::vector<std::pair<int, int>>& points) {
    double best = 1e9;
    for (std::size_t i = 0; i + 1 < points.size(); ++i) {
        const double ax = points[i].first, ay = points[i].second;
        const double dx = points[i + 1].first - ax, dy = points[i + 1].second - ay;
        const double t = std::clamp(((x - ax) * dx + (y - ay) * dy) / (dx * dx + dy * dy), 0.0, 1.0);
        best = std::min(best, std::hypot(x - ax - t * dx, y - ay - t * dy));
    }
    return best;
}

}  // namespace

TEST_CASE("nice_ticks picks round steps inside the range", "[report][plots]") {
    using report::detail::nice_ticks;
    auto t = nice_ticks(0.0, 1.0, 6);
    REQUIRE(t.values.size() == 6);
    for (int k = 0; k < 6; ++k) CHECK(t.values[static_cast<std::size_t>(k)] == Approx(0.2 * k));
    CHECK(t.decimals == 1);
    CHECK(report::detail::format_fixed(t.values[3], t.decimals) == "0.6");
    t = nice_ticks(0.371, 0.958, 7);
    REQUIRE(t.values.size() == 6);
    CHECK(t.values.front() == Approx(0.4));
    CHECK(t.values.back() == Approx(0.9));
    CHECK(t.decimals == 1);
    t = nice_ticks(0.5, 10.5, 10, 1.0);  // epochs: whole numbers
    CHECK(t.values == std::vector<double>{1, 2, 3, 4, 5, 6, 7, 8, 9, 10});
    CHECK(t.decimals == 0);
    t = nice_ticks(0.5, 1.5, 8, 1.0);  // one epoch: step not below 1
    CHECK(t.values == std::vector<double>{1});
    t = nice_ticks(-4.8, 120.5, 7, 1.0);
    CHECK(t.values == std::vector<double>{0, 20, 40, 60, 80, 100, 120});
    t = nice_ticks(0.0412, 0.0467, 4);
    CHECK(t.values.size() <= 4);
    CHECK(t.decimals == 3);
    for (double v : t.values) CHECK((v >= 0.0412 && v <= 0.0467));
    CHECK_THROWS_WITH(nice_ticks(1, 1, 5), Catch::Contains("range [1, 1]"));
}

TEST_CASE("training curves: two panels, titles, both series at their data points", "[report][plots]") {
    testing::TempDir dir;
    const auto history = ten_epochs();
    const std::string path = dir.file("curves.png");
    report::plot_training_curves(path, history);
    CHECK(dir.list() == std::vector<std::string>{"curves.png"});
    const auto layout = report::detail::training_curves_layout(history);
    const testing::DecodedImage image = testing::read_png(path);
    REQUIRE(image.width == layout.width);
    REQUIRE(image.height == layout.height);
    CHECK(image.at(0, 0) == report::colors::white);
    CHECK(image.at(image.width - 1, image.height - 1) == report::colors::white);

    const Color train = report::detail::kTrainColor, validation = report::detail::kValidationColor;
    for (const auto* panel : {&layout.accuracy, &layout.loss}) {
        INFO(panel->title);
        CHECK(panel->plot.right() <= image.width);
        CHECK(dark_pixels(image, panel->title_box) > 30);
        const Rect above_title{panel->title_box.x, 0, panel->title_box.width, panel->title_box.y};
        CHECK(dark_pixels(image, above_title) == 0);
        CHECK(image.count(panel->plot, train) > 100);
        CHECK(image.count(panel->plot, validation) > 100);
        CHECK(image.count(panel->legend_box, train) > 10);
        CHECK(image.count(panel->legend_box, validation) > 10);
        CHECK(dark_pixels(image, panel->legend_box) > 30);  // the legend's words
        // Each point's marker centre has its series' colour (validation is drawn
        // last: train points it passes over are not checked).
        std::vector<std::pair<int, int>> validation_points;
        for (std::size_t i = 0; i < history.size(); ++i) {
            validation_points.push_back(point_pixel(*panel, panel->epochs[i], panel->validation[i]));
            CHECK(image.at(validation_points.back().first, validation_points.back().second) == validation);
        }
        int train_checked = 0;
        for (std::size_t i = 0; i < history.size(); ++i) {
            const auto [x, y] = point_pixel(*panel, panel->epochs[i], panel->train[i]);
            if (distance_to_polyline(x, y, validation_points) < 8) continue;
            CHECK(image.at(x, y) == train);
            ++train_checked;
        }
        CHECK(train_checked >= 3);
        // Data stay inside the plot with some room at the top and bottom.
        for (double v : panel->train) CHECK((v > panel->y.lo && v < panel->y.hi));
        for (double v : panel->y_ticks.values) CHECK((v >= panel->y.lo && v <= panel->y.hi));
    }
    CHECK(layout.accuracy.plot.right() <= layout.loss.plot.x);
    CHECK(layout.accuracy.train[9] == Approx(history[9].accuracy));
    CHECK(layout.loss.validation[2] == Approx(history[2].val_loss));
    CHECK(layout.accuracy.x_ticks.values.front() == 1);
    CHECK(layout.accuracy.x_ticks.values.back() == 10);
}

TEST_CASE("training curves for a single epoch", "[report][plots]") {
    testing::TempDir dir;
    const std::vector<EpochRecord> history{{1, 0.9, 0.6, 1.1, 0.55}};
    report::plot_training_curves(dir.file("one.png"), history);
    const auto layout = report::detail::training_curves_layout(history);
    const testing::DecodedImage image = testing::read_png(dir.file("one.png"));
    const auto [tx, ty] = point_pixel(layout.accuracy, 1, 0.6);
    const auto [vx, vy] = point_pixel(layout.accuracy, 1, 0.55);
    CHECK(image.at(tx, ty) == report::detail::kTrainColor);
    CHECK(image.at(vx, vy) == report::detail::kValidationColor);
    CHECK(layout.accuracy.x_ticks.values == std::vector<double>{1});
    CHECK(layout.loss.y.lo < 0.9);
    CHECK(layout.loss.y.hi > 1.1);
}

TEST_CASE("training curves refuse non-finite values, naming epoch and field", "[report][plots]") {
    testing::TempDir dir;
    const std::string path = dir.file("curves.png");
    auto history = ten_epochs();
    history[2].val_loss = std::numeric_limits<double>::quiet_NaN();
    CHECK_THROWS_WITH(report::plot_training_curves(path, history), Catch::Contains("epoch 3 has val_loss = nan"));
    history = ten_epochs();
    history[6].accuracy = std::numeric_limits<double>::infinity();
    CHECK_THROWS_WITH(report::plot_training_curves(path, history), Catch::Contains("epoch 7 has accuracy = inf"));
    history = ten_epochs();
    history[4].epoch = 4;
    CHECK_THROWS_WITH(report::plot_training_curves(path, history), Catch::Contains("epoch 4 follows epoch 4"));
    CHECK_THROWS_WITH(report::plot_training_curves(path, {}), Catch::Contains("history is empty"));
    CHECK(dir.list().empty());  // nothing written, not even a temporary

    const std::string unwritable = dir.file("no-such-folder/curves.png");
    CHECK_THROWS_WITH(report::plot_training_curves(unwritable, ten_epochs()), Catch::Contains(unwritable));
    CHECK(dir.list().empty());
}

TEST_CASE("confusion matrix heat map: colours by row share, readable counts and labels", "[report][plots]") {
    testing::TempDir dir;
    const ConfusionMatrix m = testing::study_confusion_matrix();
    const std::string title = "Custom CNN, test set";
    const std::string path = dir.file("confusion.png");
    report::plot_confusion_matrix(path, m, kNames, title);
    CHECK(dir.list() == std::vector<std::string>{"confusion.png"});
    const auto layout = report::detail::confusion_matrix_layout(m, kNames, title);
    const testing::DecodedImage image = testing::read_png(path);
    REQUIRE(image.width == layout.width);
    REQUIRE(image.height == layout.height);
    CHECK(image.at(0, 0) == report::colors::white);
    CHECK(dark_pixels(image, layout.title_box) > 50);
    CHECK_FALSE(layout.vertical_x_labels);  // four names fit flat

    // A cell's corner (away from its text) has the colour of its row share;
    // the largest share (LYMPHOCYTE, 307 of 308) is the darkest cell.
    double darkest = 1e9;
    int darkest_t = -1, darkest_p = -1;
    for (int t = 0; t < 4; ++t)
        for (int p = 0; p < 4; ++p) {
            const Rect cell = layout.cell_box(t, p);
            const Color corner = image.at(cell.x + 3, cell.y + 3);
            CHECK(corner == report::detail::heat_color(report::detail::row_fraction(m, t, p)));
            if (luminance(corner) < darkest) darkest = luminance(corner), darkest_t = t, darkest_p = p;
        }
    CHECK(darkest_t == 1);
    CHECK(darkest_p == 1);
    CHECK(report::detail::heat_color(0) == Color{247, 251, 255});
    CHECK(report::detail::heat_color(1) == Color{8, 48, 107});

    // Counts contrast with their cell: white on the dark diagonal, dark on light cells.
    auto interior = [](Rect r) { return Rect{r.x + 2, r.y + 2, r.width - 4, r.height - 4}; };  // not the separators
    const Rect dark_cell = interior(layout.cell_box(1, 1)), light_cell = interior(layout.cell_box(0, 3));
    CHECK(image.count(dark_cell, report::colors::white) > 40);
    CHECK(image.count(light_cell, report::colors::text) > 40);
    CHECK(image.count(light_cell, report::colors::white) == 0);

    // Class names left of each row and under each column; axis titles.
    for (int k = 0; k < 4; ++k) {
        const Rect row = layout.cell_box(k, 0), column = layout.cell_box(3, k);
        CHECK(dark_pixels(image, {0, row.y, layout.grid.x - 2, row.height}) > 40);
        CHECK(dark_pixels(image, {column.x, layout.x_labels_top, column.width, layout.x_title_top - layout.x_labels_top}) > 40);
    }
    CHECK(dark_pixels(image, {layout.grid.x, layout.x_title_top, layout.grid.width, 14}) > 30);   // "predicted"
    CHECK(dark_pixels(image, {layout.y_title_left, layout.grid.y, 14, layout.grid.height}) > 20);  // "true"
    // The colour bar runs from the darkest colour at the top to the lightest at the bottom.
    const Rect& bar = layout.colorbar;
    CHECK(luminance(image.at(bar.x + 5, bar.y + 1)) < luminance(image.at(bar.x + 5, bar.bottom() - 2)));
    CHECK(bar.right() < image.width);
}

TEST_CASE("confusion matrix heat map: many classes, long names, errors", "[report][plots]") {
    testing::TempDir dir;
    ConfusionMatrix m(12);
    std::vector<std::string> names;
    for (int t = 0; t < 12; ++t) {
        names.push_back("a long class name " + std::to_string(t));
        for (int p = 0; p < 12; ++p) m.add(t, (t + p) % 12 == 0 ? t : p);
    }
    const auto layout = report::detail::confusion_matrix_layout(m, names, "x");
    CHECK(layout.vertical_x_labels);
    report::plot_confusion_matrix(dir.file("many.png"), m, names, "x");
    const testing::DecodedImage image = testing::read_png(dir.file("many.png"));
    CHECK(image.width == layout.width);
    CHECK(image.height == layout.height);
    CHECK(layout.x_title_top > layout.x_labels_top + report::Canvas::text_width(names[11], layout.label_scale));

    CHECK_THROWS_WITH(report::plot_confusion_matrix(dir.file("bad.png"), m, {"a", "b"}, "x"),
                      Catch::Contains("2 class names for 12 classes"));
    CHECK(dir.list() == std::vector<std::string>{"many.png"});
}

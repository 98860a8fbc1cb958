#pragma once
// The run's pictures, drawn by the library itself and written as PNG:
//   plot_training_curves(path, history)   accuracy and loss per epoch, train
//                                         and validation, two panels
//   plot_confusion_matrix(path, m, names, title)
//                                         a labelled heat map, colour by the
//                                         row-normalised count (recall)
// The layouts are computed by detail::training_curves_layout and
// detail::confusion_matrix_layout, which the tests use to find the parts.

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <string>
#include <utility>
#include <vector>

#include "bcnn/core/error.hpp"
#include "bcnn/report/canvas.hpp"
#include "bcnn/train/metrics.hpp"

namespace bcnn {
namespace report {

// One epoch's results, as fit reports them. Accuracies are fractions.
struct EpochRecord {
    int epoch = 0;
    double loss = 0, accuracy = 0, val_loss = 0, val_accuracy = 0;
};

namespace detail {

// Round tick values covering [lo, hi]: multiples of 1, 2 or 5 x 10^k, at
// most max_ticks of them, step at least min_step; `decimals` shows the step.
struct Ticks {
    std::vector<double> values;
    int decimals = 0;
};

inline Ticks nice_ticks(double lo, double hi, int max_ticks, double min_step = 0) {
    BCNN_CHECK(std::isfinite(lo) && std::isfinite(hi) && hi > lo && max_ticks >= 2,
               "nice_ticks: range [" << lo << ", " << hi << "] with " << max_ticks << " ticks");
    const double smallest = std::max((hi - lo) / max_ticks, min_step);
    const double magnitude = std::pow(10.0, std::floor(std::log10(smallest)));
    constexpr double slack = 1e-9;
    double step = 0;
    long long first = 0, last = 0;
    for (double multiple : {1.0, 2.0, 5.0, 10.0, 20.0, 50.0}) {
        step = multiple * magnitude;
        if (step < min_step) continue;
        first = std::llround(std::ceil(lo / step - slack));
        last = std::llround(std::floor(hi / step + slack));
        if (last - first + 1 <= max_ticks) break;
    }
    Ticks ticks;
    for (long long k = first; k <= last; ++k) ticks.values.push_back(k == 0 ? 0.0 : static_cast<double>(k) * step);
    ticks.decimals = std::max(0, -static_cast<int>(std::floor(std::log10(step) + slack)));
    return ticks;
}

inline std::string format_fixed(double value, int decimals) {
    char text[64];
    std::snprintf(text, sizeof text, "%.*f", decimals, value);
    return text;
}

// A value range and its mapping onto a pixel span [from, to].
struct Axis {
    double lo = 0, hi = 1;
    double to_pixel(double v, double from, double to) const { return from + (v - lo) / (hi - lo) * (to - from); }
};

// [min, max] of the values widened by `fraction` of the span on each side;
// a single value gets `flat_pad` around it.
inline Axis padded_range(const std::vector<double>& a, const std::vector<double>& b, double fraction, double flat_pad) {
    double lo = a.front(), hi = a.front();
    for (const auto* series : {&a, &b})
        for (double v : *series) lo = std::min(lo, v), hi = std::max(hi, v);
    const double span = hi - lo;
    const double pad = span > 1e-12 * std::max(1.0, std::abs(hi)) ? span * fraction
                                                                 : std::max(flat_pad, 0.05 * std::abs(hi));
    return {lo - pad, hi + pad};
}

// ---- training curves ------------------------------------------------------

constexpr int kCurvesWidth = 1200, kCurvesHeight = 500;
constexpr int kTitleScale = 3, kLabelScale = 2;
constexpr double kLineWidth = 2.5, kMarkerRadius = 4.5;
inline constexpr Color kTrainColor = colors::blue, kValidationColor = colors::orange;

struct CurvePanel {
    std::string title;
    std::vector<double> epochs, train, validation;
    Axis x, y;
    Ticks x_ticks, y_ticks;
    Rect title_box, legend_box, plot;
};

struct CurvesLayout {
    int width = kCurvesWidth, height = kCurvesHeight;
    CurvePanel accuracy, loss;
};

struct LegendItem {
    std::string label;
    Color color;
    Marker marker;
};

inline std::vector<LegendItem> curve_legend() {
    return {{"train", kTrainColor, Marker::circle}, {"validation", kValidationColor, Marker::square}};
}
constexpr int kLegendSample = 34, kLegendGap = 8, kLegendSpacing = 30;

inline int legend_width(const std::vector<LegendItem>& items) {
    int width = 0;
    for (const LegendItem& item : items)
        width += kLegendSample + kLegendGap + Canvas::text_width(item.label, kLabelScale) + kLegendSpacing;
    return width - kLegendSpacing;
}

inline CurvePanel layout_curve_panel(const Rect& panel, std::string title, std::vector<double> epochs,
                                     std::vector<double> train, std::vector<double> validation) {
    CurvePanel p;
    p.title = std::move(title);
    p.epochs = std::move(epochs), p.train = std::move(train), p.validation = std::move(validation);
    const int label_height = Canvas::text_height(kLabelScale);

    const int plot_top = panel.y + 96, plot_bottom = panel.bottom() - 72;
    p.y = padded_range(p.train, p.validation, 0.08, 0.05);
    p.y_ticks = nice_ticks(p.y.lo, p.y.hi, std::max(2, (plot_bottom - plot_top) / 48));
    int y_label_width = 0;
    for (double v : p.y_ticks.values)
        y_label_width = std::max(y_label_width, Canvas::text_width(format_fixed(v, p.y_ticks.decimals), kLabelScale));
    const int plot_left = panel.x + 24 + y_label_width + 12, plot_right = panel.right() - 28;
    p.plot = {plot_left, plot_top, plot_right - plot_left, plot_bottom - plot_top};

    const double first = p.epochs.front(), last = p.epochs.back();
    const double x_pad = std::max(0.5, 0.04 * (last - first));
    p.x = {first - x_pad, last + x_pad};
    const int x_label_room = Canvas::text_width(format_fixed(last, 0), kLabelScale) + 28;
    p.x_ticks = nice_ticks(p.x.lo, p.x.hi, std::max(2, p.plot.width / x_label_room), 1.0);

    const int center = p.plot.x + p.plot.width / 2;
    const int title_width = Canvas::text_width(p.title, kTitleScale), legend = legend_width(curve_legend());
    p.title_box = {center - title_width / 2, panel.y + 20, title_width, Canvas::text_height(kTitleScale)};
    p.legend_box = {center - legend / 2, panel.y + 60, legend, label_height};
    return p;
}

inline void check_finite(const EpochRecord& r, const char* field, double value) {
    BCNN_CHECK(std::isfinite(value),
               "plot_training_curves: epoch " << r.epoch << " has " << field << " = " << value << " (not finite)");
}

inline CurvesLayout training_curves_layout(const std::vector<EpochRecord>& history) {
    BCNN_CHECK(!history.empty(), "plot_training_curves: the history is empty");
    std::vector<double> epochs, loss, accuracy, val_loss, val_accuracy;
    for (std::size_t i = 0; i < history.size(); ++i) {
        const EpochRecord& r = history[i];
        check_finite(r, "loss", r.loss);
        check_finite(r, "accuracy", r.accuracy);
        check_finite(r, "val_loss", r.val_loss);
        check_finite(r, "val_accuracy", r.val_accuracy);
        BCNN_CHECK(i == 0 || r.epoch > history[i - 1].epoch,
                   "plot_training_curves: epoch " << r.epoch << " follows epoch " << history[i - 1].epoch
                                                  << "; epochs must increase");
        epochs.push_back(r.epoch);
        loss.push_back(r.loss), accuracy.push_back(r.accuracy);
        val_loss.push_back(r.val_loss), val_accuracy.push_back(r.val_accuracy);
    }
    CurvesLayout layout;
    const int half = layout.width / 2;
    layout.accuracy = layout_curve_panel({0, 0, half, layout.height}, "Accuracy", epochs, accuracy, val_accuracy);
    layout.loss = layout_curve_panel({half, 0, layout.width - half, layout.height}, "Loss", epochs, loss, val_loss);
    return layout;
}

inline void draw_legend(Canvas& canvas, const Rect& box, const std::vector<LegendItem>& items) {
    int x = box.x;
    const double middle = box.y + box.height / 2.0;
    for (const LegendItem& item : items) {
        canvas.draw_line({double(x), middle}, {double(x + kLegendSample), middle}, item.color, kLineWidth);
        canvas.draw_marker({x + kLegendSample / 2.0, middle}, item.marker, kMarkerRadius, item.color);
        x += kLegendSample + kLegendGap;
        canvas.draw_text(x, box.y, item.label, colors::text, kLabelScale);
        x += Canvas::text_width(item.label, kLabelScale) + kLegendSpacing;
    }
}

inline void draw_curve_panel(Canvas& canvas, const CurvePanel& p) {
    const Rect& plot = p.plot;
    const int label_height = Canvas::text_height(kLabelScale);
    auto px = [&](double epoch) { return p.x.to_pixel(epoch, plot.x, plot.right()); };
    auto py = [&](double value) { return p.y.to_pixel(value, plot.bottom(), plot.y); };

    for (double v : p.y_ticks.values) {
        const int y = static_cast<int>(std::lround(py(v)));
        canvas.fill_rect(plot.x, y, plot.width, 1, colors::grid);
        canvas.fill_rect(plot.x - 6, y, 6, 1, colors::axis);
        canvas.draw_text(plot.x - 12, y - label_height / 2, format_fixed(v, p.y_ticks.decimals), colors::text,
                         kLabelScale, Align::end);
    }
    for (double v : p.x_ticks.values) {
        const int x = static_cast<int>(std::lround(px(v)));
        canvas.fill_rect(x, plot.y, 1, plot.height, colors::grid);
        canvas.fill_rect(x, plot.bottom(), 1, 6, colors::axis);
        canvas.draw_text(x, plot.bottom() + 14, format_fixed(v, p.x_ticks.decimals), colors::text, kLabelScale,
                         Align::center);
    }
    canvas.stroke_rect(plot, colors::axis);
    canvas.draw_text(plot.x + plot.width / 2, plot.bottom() + 44, "epoch", colors::text, kLabelScale, Align::center);
    canvas.draw_text(p.title_box.x, p.title_box.y, p.title, colors::text, kTitleScale);
    draw_legend(canvas, p.legend_box, curve_legend());

    // Markers only where neighbouring epochs are far enough apart to tell them apart.
    const bool markers = p.epochs.size() == 1 || (px(p.epochs[1]) - px(p.epochs[0])) >= 12;
    const auto legend = curve_legend();
    for (std::size_t s = 0; s < legend.size(); ++s) {
        const std::vector<double>& values = s == 0 ? p.train : p.validation;
        std::vector<Point> points;
        for (std::size_t i = 0; i < values.size(); ++i) points.push_back({px(p.epochs[i]), py(values[i])});
        canvas.draw_polyline(points, legend[s].color, kLineWidth);
        if (markers)
            for (const Point& point : points) canvas.draw_marker(point, legend[s].marker, kMarkerRadius, legend[s].color);
    }
}

// ---- confusion matrix -------------------------------------------------------

// Colour for a fraction in [0, 1]: near-white to dark blue (matplotlib's "Blues").
inline Color heat_color(double fraction) {
    static const Color stops[] = {{247, 251, 255}, {198, 219, 239}, {107, 174, 214}, {33, 113, 181}, {8, 48, 107}};
    const double position = std::clamp(fraction, 0.0, 1.0) * 4;
    const int i = std::min(3, static_cast<int>(position));
    return mix(stops[i], stops[i + 1], position - i);
}

// Text colour readable on heat_color(fraction).
inline Color heat_text_color(double fraction) { return fraction > 0.5 ? colors::white : colors::text; }

struct ConfusionLayout {
    int width = 0, height = 0;
    int classes = 0, cell = 0;
    Rect grid, title_box, colorbar;
    int count_scale = 1, percent_scale = 1, label_scale = 1;
    bool vertical_x_labels = false;
    int y_labels_right = 0, x_labels_top = 0, x_title_top = 0, y_title_left = 0;

    Rect cell_box(int true_class, int predicted_class) const {
        return {grid.x + predicted_class * cell, grid.y + true_class * cell, cell, cell};
    }
};

inline double row_fraction(const ConfusionMatrix& m, int true_class, int predicted_class) {
    std::int64_t row = 0;
    for (int p = 0; p < m.classes(); ++p) row += m.count(true_class, p);
    return row == 0 ? 0.0 : static_cast<double>(m.count(true_class, predicted_class)) / static_cast<double>(row);
}

inline std::string percent_text(double fraction) { return format_fixed(100 * fraction, 1) + "%"; }

inline ConfusionLayout confusion_matrix_layout(const ConfusionMatrix& m, const std::vector<std::string>& class_names,
                                               const std::string& title) {
    const int n = m.classes();
    BCNN_CHECK(static_cast<int>(class_names.size()) == n,
               "plot_confusion_matrix: " << class_names.size() << " class names for " << n << " classes");
    constexpr int margin = 24;
    ConfusionLayout l;
    l.classes = n;
    l.cell = std::clamp(520 / n, 28, 130);
    l.label_scale = l.cell >= 40 ? 2 : 1;
    int widest_name = 0;
    for (const std::string& name : class_names)
        widest_name = std::max(widest_name, Canvas::text_width(name, l.label_scale));
    // Widen the cells a little where that lets the column names lie flat.
    constexpr int label_gap = 24;
    const int flat_cell = widest_name + label_gap;
    if (flat_cell > l.cell && flat_cell <= 170 && n * flat_cell <= 900) l.cell = flat_cell;
    l.vertical_x_labels = flat_cell > l.cell;

    std::string widest_count = "0";
    for (int t = 0; t < n; ++t)
        for (int p = 0; p < n; ++p)
            if (std::to_string(m.count(t, p)).size() > widest_count.size()) widest_count = std::to_string(m.count(t, p));
    for (l.count_scale = 3; l.count_scale > 1; --l.count_scale)
        if (Canvas::text_width(widest_count, l.count_scale) <= l.cell - 12 &&
            Canvas::text_height(l.count_scale) * 2 + 8 <= l.cell - 8)
            break;
    l.percent_scale = std::max(1, l.count_scale - 1);

    const int axis_title_height = Canvas::text_height(kLabelScale);
    const int label_height = Canvas::text_height(l.label_scale);
    const int title_width = Canvas::text_width(title, kTitleScale), title_height = Canvas::text_height(kTitleScale);

    // Left to right: "true", the row names, the grid, the colour bar and its
    // labels; all of it centred under the title where the title is wider.
    const int content_width = axis_title_height + 16 + widest_name + 12 + n * l.cell + 28 + 18 + 10 +
                              Canvas::text_width("100%", kLabelScale);
    l.width = std::max(content_width, title_width) + 2 * margin;
    l.y_title_left = margin + std::max(0, title_width - content_width) / 2;
    l.y_labels_right = l.y_title_left + axis_title_height + 16 + widest_name;
    l.grid = {l.y_labels_right + 12, margin + title_height + 28, n * l.cell, n * l.cell};
    l.colorbar = {l.grid.right() + 28, l.grid.y, 18, l.grid.height};
    l.x_labels_top = l.grid.bottom() + 12;
    l.x_title_top = l.x_labels_top + (l.vertical_x_labels ? widest_name : label_height) + 18;
    l.height = l.x_title_top + axis_title_height + margin;

    // The title is centred over the grid unless that would push it off the picture.
    const int title_center = std::clamp(l.grid.x + l.grid.width / 2, margin + title_width / 2,
                                        l.width - margin - (title_width - title_width / 2));
    l.title_box = {title_center - title_width / 2, margin, title_width, title_height};
    return l;
}

inline void draw_confusion_matrix(Canvas& canvas, const ConfusionLayout& l, const ConfusionMatrix& m,
                                  const std::vector<std::string>& class_names, const std::string& title) {
    const int n = l.classes;
    canvas.draw_text(l.title_box.x, l.title_box.y, title, colors::text, kTitleScale);
    const int count_height = Canvas::text_height(l.count_scale), percent_height = Canvas::text_height(l.percent_scale);
    const int text_block = count_height + 8 + percent_height;
    for (int t = 0; t < n; ++t)
        for (int p = 0; p < n; ++p) {
            const Rect cell = l.cell_box(t, p);
            const double fraction = row_fraction(m, t, p);
            canvas.fill_rect(cell, heat_color(fraction));
            const Color ink = heat_text_color(fraction);
            const int center_x = cell.x + cell.width / 2, top = cell.y + (cell.height - text_block) / 2;
            if (m.count(t, p) == 0) {  // an empty cell shows its 0 alone
                canvas.draw_text(center_x, cell.y + (cell.height - count_height) / 2, "0", ink, l.count_scale,
                                 Align::center);
                continue;
            }
            canvas.draw_text(center_x, top, std::to_string(m.count(t, p)), ink, l.count_scale, Align::center);
            canvas.draw_text(center_x, top + count_height + 8, percent_text(fraction), ink, l.percent_scale,
                             Align::center);
        }
    for (int k = 1; k < n; ++k) {  // thin white separators between cells
        canvas.fill_rect(l.grid.x + k * l.cell, l.grid.y, 1, l.grid.height, colors::white);
        canvas.fill_rect(l.grid.x, l.grid.y + k * l.cell, l.grid.width, 1, colors::white);
    }
    canvas.stroke_rect({l.grid.x - 1, l.grid.y - 1, l.grid.width + 2, l.grid.height + 2}, colors::axis);

    const int label_height = Canvas::text_height(l.label_scale);
    for (int k = 0; k < n; ++k) {
        const std::string& name = class_names[static_cast<std::size_t>(k)];
        const Rect row = l.cell_box(k, 0), column = l.cell_box(0, k);
        canvas.draw_text(l.y_labels_right, row.y + (l.cell - label_height) / 2, name, colors::text, l.label_scale,
                         Align::end);
        if (l.vertical_x_labels)
            canvas.draw_text_up(column.x + (l.cell - label_height) / 2, l.x_labels_top, name, colors::text,
                                l.label_scale, Align::end);
        else
            canvas.draw_text(column.x + l.cell / 2, l.x_labels_top, name, colors::text, l.label_scale, Align::center);
    }
    canvas.draw_text(l.grid.x + l.grid.width / 2, l.x_title_top, "predicted", colors::text, kLabelScale,
                     Align::center);
    canvas.draw_text_up(l.y_title_left, l.grid.y + l.grid.height / 2, "true", colors::text, kLabelScale,
                        Align::center);

    // Colour bar: fraction 1 at the top, 0 at the bottom, ticks every 25%.
    const Rect& bar = l.colorbar;
    for (int y = 0; y < bar.height; ++y)
        canvas.fill_rect(bar.x, bar.y + y, bar.width, 1, heat_color(1.0 - (y + 0.5) / bar.height));
    canvas.stroke_rect({bar.x - 1, bar.y - 1, bar.width + 2, bar.height + 2}, colors::axis);
    const int tick_height = Canvas::text_height(kLabelScale);
    for (int percent = 0; percent <= 100; percent += 25) {
        const int y = bar.bottom() - static_cast<int>(std::lround(percent / 100.0 * bar.height));
        canvas.fill_rect(bar.right(), std::min(y, bar.bottom() - 1), 5, 1, colors::axis);
        canvas.draw_text(bar.right() + 10, y - tick_height / 2, std::to_string(percent) + "%", colors::text,
                         kLabelScale);
    }
}

}  // namespace detail

// Accuracy (left) and loss (right) per epoch, train and validation. Every
// value must be finite (else bcnn::Error names the epoch and the field) and
// epochs must increase.
inline void plot_training_curves(const std::string& path, const std::vector<EpochRecord>& history) {
    const detail::CurvesLayout layout = detail::training_curves_layout(history);
    Canvas canvas(layout.width, layout.height);
    detail::draw_curve_panel(canvas, layout.accuracy);
    detail::draw_curve_panel(canvas, layout.loss);
    canvas.save_png(path);
}

// Rows are true classes, columns predicted ones; each cell shows its count
// and its share of the row (its percentage; omitted where the count is 0),
// coloured by that share.
inline void plot_confusion_matrix(const std::string& path, const ConfusionMatrix& m,
                                  const std::vector<std::string>& class_names, const std::string& title) {
    const detail::ConfusionLayout layout = detail::confusion_matrix_layout(m, class_names, title);
    Canvas canvas(layout.width, layout.height);
    detail::draw_confusion_matrix(canvas, layout, m, class_names, title);
    canvas.save_png(path);
}

}  // namespace report
}  // namespace bcnn

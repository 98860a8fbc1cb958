#pragma once
// Small Markdown and number-formatting helpers for run reports (report.md):
// tables with aligned columns, a confusion matrix as a table with totals, a
// fenced code block, durations and percentages. What goes in a report is the
// program's choice; these only format.

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

#include "bcnn/core/error.hpp"
#include "bcnn/train/metrics.hpp"

namespace bcnn {
namespace report {

enum class Justify { left, center, right };

// A GitHub-flavoured Markdown table; columns padded to a common width so the
// source reads as a table too. '|' in a cell is escaped, line breaks become
// spaces. `justify` gives each column's alignment (empty: all left).
inline std::string markdown_table(const std::vector<std::string>& header,
                                  const std::vector<std::vector<std::string>>& rows,
                                  const std::vector<Justify>& justify = {}) {
    const std::size_t columns = header.size();
    BCNN_CHECK(columns >= 1, "markdown_table: no columns");
    BCNN_CHECK(justify.empty() || justify.size() == columns,
               "markdown_table: " << justify.size() << " alignments for " << columns << " columns");
    for (std::size_t r = 0; r < rows.size(); ++r)
        BCNN_CHECK(rows[r].size() == columns,
                   "markdown_table: row " << r << " has " << rows[r].size() << " cells, expected " << columns);

    auto escape = [](const std::string& cell) {
        std::string out;
        for (char c : cell) {
            if (c == '|') out += "\\|";
            else if (c == '\n' || c == '\r') out += ' ';
            else out += c;
        }
        return out;
    };
    std::vector<std::vector<std::string>> cells{header};
    cells.insert(cells.end(), rows.begin(), rows.end());
    std::vector<std::size_t> width(columns, 3);
    for (auto& row : cells)
        for (std::size_t c = 0; c < columns; ++c) {
            row[c] = escape(row[c]);
            width[c] = std::max(width[c], row[c].size());
        }
    auto align_of = [&](std::size_t c) { return justify.empty() ? Justify::left : justify[c]; };

    auto format_row = [&](const std::vector<std::string>& row) {
        std::string line = "|";
        for (std::size_t c = 0; c < columns; ++c) {
            const std::size_t room = width[c] - row[c].size();
            const std::size_t before = align_of(c) == Justify::right ? room : align_of(c) == Justify::center ? room / 2 : 0;
            line += " " + std::string(before, ' ') + row[c] + std::string(room - before, ' ') + " |";
        }
        return line + "\n";
    };
    std::string table = format_row(cells[0]) + "|";
    for (std::size_t c = 0; c < columns; ++c) {
        const Justify j = align_of(c);
        std::string rule(width[c] + 2, '-');
        if (j != Justify::right) rule.front() = ':';
        if (j != Justify::left) rule.back() = ':';
        table += rule + "|";
    }
    table += "\n";
    for (std::size_t r = 1; r < cells.size(); ++r) table += format_row(cells[r]);
    return table;
}

// Rows are true classes, columns predicted classes, with row and column totals.
inline std::string markdown_confusion_table(const ConfusionMatrix& m, const std::vector<std::string>& class_names) {
    const int n = m.classes();
    BCNN_CHECK(static_cast<int>(class_names.size()) == n,
               "markdown_confusion_table: " << class_names.size() << " class names for " << n << " classes");
    std::vector<std::string> header{"true \\ predicted"};
    header.insert(header.end(), class_names.begin(), class_names.end());
    header.push_back("total");
    std::vector<std::vector<std::string>> rows;
    std::vector<std::int64_t> column_totals(static_cast<std::size_t>(n), 0);
    for (int t = 0; t < n; ++t) {
        std::vector<std::string> row{class_names[static_cast<std::size_t>(t)]};
        std::int64_t row_total = 0;
        for (int p = 0; p < n; ++p) {
            row.push_back(std::to_string(m.count(t, p)));
            row_total += m.count(t, p);
            column_totals[static_cast<std::size_t>(p)] += m.count(t, p);
        }
        row.push_back(std::to_string(row_total));
        rows.push_back(row);
    }
    std::vector<std::string> totals{"total"};
    for (std::int64_t c : column_totals) totals.push_back(std::to_string(c));
    totals.push_back(std::to_string(m.total()));
    rows.push_back(totals);
    std::vector<Justify> justify(header.size(), Justify::right);
    justify.front() = Justify::left;
    return markdown_table(header, rows, justify);
}

// A fenced code block, the fence longer than any run of backticks inside.
inline std::string markdown_code_block(const std::string& text, const std::string& info = "") {
    std::size_t longest = 0, run = 0;
    for (char c : text) {
        run = c == '`' ? run + 1 : 0;
        longest = std::max(longest, run);
    }
    const std::string fence(std::max<std::size_t>(3, longest + 1), '`');
    std::string block = fence + info + "\n" + text;
    if (!text.empty() && text.back() != '\n') block += "\n";
    return block + fence + "\n";
}

// "12.3 s" under a minute, else "2 min 03 s" or "1 h 02 min 03 s" (whole seconds).
inline std::string format_duration(double seconds) {
    BCNN_CHECK(std::isfinite(seconds) && seconds >= 0, "format_duration: " << seconds << " s is not a duration");
    char text[64];
    if (seconds < 59.95) {
        std::snprintf(text, sizeof text, "%.1f s", seconds);
        return text;
    }
    const long long s = std::llround(seconds);
    if (s >= 3600)
        std::snprintf(text, sizeof text, "%lld h %02lld min %02lld s", s / 3600, s / 60 % 60, s % 60);
    else
        std::snprintf(text, sizeof text, "%lld min %02lld s", s / 60, s % 60);
    return text;
}

// 0.9405 -> "94.05%"
inline std::string format_percent(double fraction, int decimals = 2) {
    BCNN_CHECK(decimals >= 0 && decimals <= 12, "format_percent: " << decimals << " decimals outside 0..12");
    char text[64];
    std::snprintf(text, sizeof text, "%.*f%%", decimals, 100 * fraction);
    return text;
}

}  // namespace report
}  // namespace bcnn

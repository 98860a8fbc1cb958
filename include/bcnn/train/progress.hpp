#pragma once
// A per-epoch progress bar:
//   epoch 3/10  123/312 [=======>............]  39%  loss 0.4567  acc 0.8123  105.3 img/s  ETA 1:02
// and, from finish(), the final state with the elapsed time instead of the ETA.
//
// Terminal mode redraws one line with '\r', at most once per
// `min_redraw_seconds`. Otherwise (a log file, a pipe) it prints plain lines:
// one each time another `line_percent_step` percent of the batches is done,
// and the final one; no '\r', no escape codes. The clock is injectable so
// tests are deterministic.

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <functional>
#include <ostream>
#include <string>
#include <utility>

#include <unistd.h>

#include "bcnn/core/error.hpp"

namespace bcnn {

// Seconds on a monotonic clock.
inline double steady_seconds() {
    return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

// Whether standard output is a terminal (then a redrawn bar makes sense).
inline bool stdout_is_terminal() { return ::isatty(STDOUT_FILENO) == 1; }

struct ProgressOptions {
    bool terminal = false;
    std::string label;                 // printed first, e.g. "epoch 3/10"
    int bar_width = 20;                // characters between the brackets
    double min_redraw_seconds = 0.1;   // terminal mode
    int line_percent_step = 10;        // plain mode
    std::function<double()> clock = steady_seconds;
};

namespace detail {

// 62.4 -> "1:02", 3723 -> "1:02:03"
inline std::string clock_time(double seconds) {
    const long long s = std::llround(std::max(0.0, seconds));
    char text[48];
    if (s >= 3600)
        std::snprintf(text, sizeof text, "%lld:%02lld:%02lld", s / 3600, s / 60 % 60, s % 60);
    else
        std::snprintf(text, sizeof text, "%lld:%02lld", s / 60, s % 60);
    return text;
}

}  // namespace detail

class ProgressBar {
public:
    ProgressBar(std::ostream& out, std::int64_t total_batches, ProgressOptions options = {})
        : out_(out), total_(total_batches), options_(std::move(options)) {
        BCNN_CHECK(total_batches >= 1, "ProgressBar: total batches " << total_batches << " must be at least 1");
        BCNN_CHECK(options_.bar_width >= 1, "ProgressBar: bar width " << options_.bar_width << " must be at least 1");
        BCNN_CHECK(options_.line_percent_step >= 1 && options_.line_percent_step <= 100,
                   "ProgressBar: line step " << options_.line_percent_step << "% outside 1..100");
        BCNN_CHECK(options_.min_redraw_seconds >= 0,
                   "ProgressBar: redraw interval " << options_.min_redraw_seconds << " s is negative");
        BCNN_CHECK(static_cast<bool>(options_.clock), "ProgressBar: no clock");
        start_ = options_.clock();
        next_line_percent_ = options_.line_percent_step;
    }

    // Ends an unfinished terminal line, so what follows starts on its own line.
    ~ProgressBar() {
        if (options_.terminal && drawn_width_ > 0 && !finished_) try {
                out_ << '\n' << std::flush;
            } catch (...) {
            }
    }

    ProgressBar(const ProgressBar&) = delete;
    ProgressBar& operator=(const ProgressBar&) = delete;

    // After `batches_done` batches (cumulative) holding `images_done` images;
    // loss and accuracy are whatever the caller wants shown (running means).
    void update(std::int64_t batches_done, std::int64_t images_done, double loss, double accuracy) {
        BCNN_CHECK(!finished_, "ProgressBar::update: called after finish()");
        BCNN_CHECK(batches_done >= batches_ && batches_done <= total_,
                   "ProgressBar::update: " << batches_done << " batches done after " << batches_ << ", total "
                                           << total_);
        BCNN_CHECK(images_done >= images_, "ProgressBar::update: " << images_done << " images done after " << images_);
        batches_ = batches_done, images_ = images_done, loss_ = loss, accuracy_ = accuracy;
        const double now = options_.clock();
        if (options_.terminal) {
            if (drawn_width_ == 0 || now - last_draw_ >= options_.min_redraw_seconds) {
                redraw(line(now, false));
                last_draw_ = now;
            }
        } else if (batches_ < total_ && percent() >= next_line_percent_) {
            out_ << line(now, false) << '\n' << std::flush;
            next_line_percent_ = (percent() / options_.line_percent_step + 1) * options_.line_percent_step;
        }
    }

    // Shows the last state with the elapsed time, then `suffix` (e.g. the
    // validation results), and ends the line.
    void finish(const std::string& suffix = "") {
        BCNN_CHECK(!finished_, "ProgressBar::finish: called twice");
        finished_ = true;
        std::string text = line(options_.clock(), true);
        if (!suffix.empty()) text += "  " + suffix;
        if (options_.terminal)
            redraw(text);
        else
            out_ << text;
        out_ << '\n' << std::flush;
    }

    double elapsed_seconds() const { return options_.clock() - start_; }

private:
    int percent() const { return static_cast<int>(batches_ * 100 / total_); }

    std::string line(double now, bool final) const {
        const double elapsed = now - start_;
        const int filled = static_cast<int>(batches_ * options_.bar_width / total_);
        std::string bar(static_cast<std::size_t>(filled), '=');
        if (filled < options_.bar_width) bar += batches_ > 0 ? ">" : ".";
        bar.resize(static_cast<std::size_t>(options_.bar_width), '.');

        const std::string total = std::to_string(total_);
        std::string done = std::to_string(batches_);
        done.insert(0, total.size() - done.size(), ' ');
        char numbers[160];
        std::snprintf(numbers, sizeof numbers, " %3d%%  loss %.4f  acc %.4f", percent(), loss_, accuracy_);
        std::string text = options_.label.empty() ? "" : options_.label + "  ";
        text += done + "/" + total + " [" + bar + "]" + numbers;
        if (elapsed > 0) {
            std::snprintf(numbers, sizeof numbers, "  %.1f img/s", static_cast<double>(images_) / elapsed);
            text += numbers;
        } else {
            text += "  - img/s";
        }
        if (final)
            text += "  elapsed " + detail::clock_time(elapsed);
        else if (batches_ > 0)
            text += "  ETA " + detail::clock_time(elapsed / static_cast<double>(batches_) *
                                                  static_cast<double>(total_ - batches_));
        else
            text += "  ETA -:--";
        return text;
    }

    // '\r', the text, and blanks over whatever a longer earlier line left.
    void redraw(const std::string& text) {
        out_ << '\r' << text;
        if (text.size() < drawn_width_) out_ << std::string(drawn_width_ - text.size(), ' ');
        out_ << std::flush;
        drawn_width_ = std::max(drawn_width_, text.size());
    }

    std::ostream& out_;
    std::int64_t total_;
    ProgressOptions options_;
    double start_ = 0, last_draw_ = 0;
    std::int64_t batches_ = 0, images_ = 0;
    double loss_ = 0, accuracy_ = 0;
    int next_line_percent_ = 0;
    std::size_t drawn_width_ = 0;
    bool finished_ = false;
};

}  // namespace bcnn

// Progress bar: with a scripted clock, the exact plain-line output (one line
// per step of progress, then the final one with elapsed time), the exact
// terminal redraws ('\r', throttled, blanks over longer lines, final
// newline), and the ETA.

#include <catch2/catch.hpp>

#include <sstream>

#include <bcnn/train/progress.hpp>

using namespace bcnn;

namespace {

struct FakeClock {
    double now = 0;
    std::function<double()> function() {
        return [this] { return now; };
    }
};

}  // namespace

TEST_CASE("progress bar, plain lines: one per 25%, then the final line", "[train][progress]") {
    FakeClock clock;
    clock.now = 100;
    std::ostringstream out;
    ProgressOptions options;
    options.label = "epoch 1/2";
    options.line_percent_step = 25;
    options.clock = clock.function();
    ProgressBar bar(out, 10, options);
    // batch, images so far, loss, accuracy; two seconds per batch, the last batch short.
    const struct {
        int batch, images;
        double loss, accuracy;
    } script[] = {{1, 32, 0.9, 0.5},   {2, 64, 0.8, 0.55},  {3, 96, 0.7, 0.6},     {4, 128, 0.6, 0.65},
                  {5, 160, 0.5, 0.7},  {6, 192, 0.4, 0.75}, {7, 224, 0.3, 0.8},    {8, 256, 0.25, 0.8125},
                  {9, 288, 0.22, 0.84}, {10, 300, 0.2, 0.85}};
    for (const auto& step : script) {
        clock.now += 2;
        bar.update(step.batch, step.images, step.loss, step.accuracy);
    }
    bar.finish("val_loss 0.3000  val_acc 0.9000");
    const std::string expected =
        "epoch 1/2   3/10 [======>.............]  30%  loss 0.7000  acc 0.6000  16.0 img/s  ETA 0:14\n"
        "epoch 1/2   5/10 [==========>.........]  50%  loss 0.5000  acc 0.7000  16.0 img/s  ETA 0:10\n"
        "epoch 1/2   8/10 [================>...]  80%  loss 0.2500  acc 0.8125  16.0 img/s  ETA 0:04\n"
        "epoch 1/2  10/10 [====================] 100%  loss 0.2000  acc 0.8500  15.0 img/s  elapsed 0:20"
        "  val_loss 0.3000  val_acc 0.9000\n";
    CHECK(out.str() == expected);
    CHECK(bar.elapsed_seconds() == 20);
}

TEST_CASE("progress bar, terminal: throttled '\\r' redraws, blanks, final newline", "[train][progress]") {
    FakeClock clock;
    std::ostringstream out;
    ProgressOptions options;
    options.terminal = true;
    options.bar_width = 8;
    options.clock = clock.function();
    ProgressBar bar(out, 4, options);
    clock.now = 0.5;
    bar.update(1, 10, 1234.5, 0.25);  // first state: drawn
    clock.now = 0.55;
    bar.update(2, 20, 1.25, 0.5);  // 0.05 s later: skipped
    clock.now = 1.0;
    bar.update(3, 30, 1.0, 0.75);  // drawn, 3 characters shorter than the first
    clock.now = 1.05;
    bar.update(4, 40, 0.5, 1.0);  // skipped; finish shows it
    clock.now = 1.25;
    bar.finish();
    const std::string expected =
        "\r1/4 [==>.....]  25%  loss 1234.5000  acc 0.2500  20.0 img/s  ETA 0:02"
        "\r3/4 [======>.]  75%  loss 1.0000  acc 0.7500  30.0 img/s  ETA 0:00   "
        "\r4/4 [========] 100%  loss 0.5000  acc 1.0000  32.0 img/s  elapsed 0:01\n";
    CHECK(out.str() == expected);
    CHECK(out.str().find('\x1b') == std::string::npos);
}

TEST_CASE("progress bar ETA: time per batch so far times the batches left", "[train][progress]") {
    FakeClock clock;
    std::ostringstream out;
    ProgressOptions options;
    options.terminal = true;
    options.min_redraw_seconds = 0;  // draw every update
    options.clock = clock.function();
    ProgressBar bar(out, 1000, options);
    auto last_line = [&] { return out.str().substr(out.str().rfind('\r') + 1); };
    bar.update(0, 0, 0, 0);
    CHECK(last_line().find("- img/s  ETA -:--") != std::string::npos);
    clock.now = 4;
    bar.update(1, 32, 2.0, 0.25);
    CHECK(last_line().find("8.0 img/s  ETA 1:06:36") != std::string::npos);  // 4 s x 999
    clock.now = 75;
    bar.update(250, 8000, 1.0, 0.5);
    CHECK(last_line().find("106.7 img/s  ETA 3:45") != std::string::npos);  // 0.3 s x 750
    clock.now = 100;
    bar.update(999, 31968, 0.5, 0.75);
    CHECK(last_line().find("ETA 0:00") != std::string::npos);
}

TEST_CASE("progress bar: an unfinished terminal line is ended; bad calls are refused", "[train][progress]") {
    FakeClock clock;
    std::ostringstream terminal_out, plain_out;
    ProgressOptions terminal;
    terminal.terminal = true;
    terminal.clock = clock.function();
    ProgressOptions plain;
    plain.clock = clock.function();
    {
        ProgressBar bar(terminal_out, 5, terminal);
        bar.update(1, 8, 1, 0);
    }
    CHECK(terminal_out.str().back() == '\n');
    CHECK(terminal_out.str().front() == '\r');
    {
        ProgressBar bar(plain_out, 5, plain);
        bar.update(4, 8, 1, 0);
        CHECK_THROWS_WITH(bar.update(3, 8, 1, 0), Catch::Contains("3 batches done after 4, total 5"));
        CHECK_THROWS_WITH(bar.update(6, 8, 1, 0), Catch::Contains("6 batches done after 4, total 5"));
        CHECK_THROWS_WITH(bar.update(5, 7, 1, 0), Catch::Contains("7 images done after 8"));
        bar.finish();
        CHECK_THROWS_WITH(bar.finish(), Catch::Contains("called twice"));
        CHECK_THROWS_WITH(bar.update(5, 8, 1, 0), Catch::Contains("after finish()"));
    }
    CHECK(plain_out.str().find('\r') == std::string::npos);
    CHECK_THROWS_WITH(ProgressBar(plain_out, 0, plain), Catch::Contains("total batches 0"));
    plain.line_percent_step = 0;
    CHECK_THROWS_WITH(ProgressBar(plain_out, 3, plain), Catch::Contains("line step 0%"));
}

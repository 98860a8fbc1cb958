// Canvas: rectangles clip, lines and markers cover the pixels they should and
// blend their edges, text lands where its alignment says, and PNGs decode
// to exactly the pixels drawn, written atomically.

#include <catch2/catch.hpp>

#include <fstream>

#include <bcnn/report/canvas.hpp>

#include "report/png.hpp"
#include "support/temp_dir.hpp"

using namespace bcnn;
using report::Align;
using report::Canvas;
using report::Color;
using report::Rect;

namespace {

const Color red{200, 30, 40};
const Color background{250, 250, 250};

// The smallest rectangle holding every pixel that is not the background.
Rect ink_box(const Canvas& canvas) {
    int x0 = canvas.width(), y0 = canvas.height(), x1 = -1, y1 = -1;
    for (int y = 0; y < canvas.height(); ++y)
        for (int x = 0; x < canvas.width(); ++x)
            if (canvas.pixel(x, y) != background) {
                x0 = std::min(x0, x), y0 = std::min(y0, y), x1 = std::max(x1, x), y1 = std::max(y1, y);
            }
    return x1 < 0 ? Rect{} : Rect{x0, y0, x1 - x0 + 1, y1 - y0 + 1};
}

bool is_partial(Color c) { return c != red && c != background; }

}  // namespace

TEST_CASE("canvas starts filled, fill_rect clips to the canvas", "[report][canvas]") {
    Canvas canvas(7, 5, background);
    CHECK(canvas.width() == 7);
    CHECK(canvas.height() == 5);
    CHECK(canvas.rgb().size() == 7u * 5u * 3u);
    canvas.fill_rect(-2, 3, 4, 10, red);  // covers x 0..1, y 3..4 on the canvas
    for (int y = 0; y < 5; ++y)
        for (int x = 0; x < 7; ++x) CHECK(canvas.pixel(x, y) == (x <= 1 && y >= 3 ? red : background));
    canvas.stroke_rect({2, 0, 4, 3}, red);
    CHECK(canvas.pixel(2, 1) == red);
    CHECK(canvas.pixel(3, 1) == background);  // inside the outline
    CHECK(canvas.pixel(5, 2) == red);
    CHECK_THROWS_WITH(canvas.pixel(7, 0), Catch::Contains("(7, 0) outside 7x5"));
    CHECK_THROWS_WITH(Canvas(0, 3), Catch::Contains("size 0x3"));
}

TEST_CASE("lines cover their width and blend their edges", "[report][canvas]") {
    Canvas canvas(40, 30, background);
    canvas.draw_line({5.5, 10.5}, {30.5, 10.5}, red, 3.0);  // rows 9..11, columns 4..31 with round caps
    for (int x = 5; x <= 30; ++x) {
        CHECK(canvas.pixel(x, 9) == red);
        CHECK(canvas.pixel(x, 10) == red);
        CHECK(canvas.pixel(x, 11) == red);
        CHECK(canvas.pixel(x, 8) == background);
        CHECK(canvas.pixel(x, 12) == background);
    }
    CHECK(canvas.pixel(3, 10) == background);
    CHECK(canvas.pixel(32, 10) == background);

    Canvas diagonal(40, 40, background);
    diagonal.draw_line({5, 5}, {35, 25}, red, 2.0);
    int partial = 0, full = 0;
    for (int y = 0; y < 40; ++y)
        for (int x = 0; x < 40; ++x) {
            partial += is_partial(diagonal.pixel(x, y));
            full += diagonal.pixel(x, y) == red;
        }
    CHECK(full > 20);
    CHECK(partial > 20);  // anti-aliased edges
    CHECK_THROWS_WITH(diagonal.draw_line({0, 0}, {std::nan(""), 1}, red), Catch::Contains("not finite"));
    CHECK_THROWS_WITH(diagonal.draw_line({0, 0}, {1, 1}, red, 0.0), Catch::Contains("thickness 0"));
}

TEST_CASE("a polyline blends each pixel once, also where segments overlap", "[report][canvas]") {
    Canvas once(40, 40, background), retraced(40, 40, background);
    once.draw_line({4.2, 6.1}, {33.7, 29.4}, red, 1.6);
    retraced.draw_polyline({{4.2, 6.1}, {33.7, 29.4}, {4.2, 6.1}, {33.7, 29.4}}, red, 1.6);
    CHECK(once.rgb() == retraced.rgb());
    Canvas twice(40, 40, background);  // separate lines do blend twice: the test can tell
    twice.draw_line({4.2, 6.1}, {33.7, 29.4}, red, 1.6);
    twice.draw_line({4.2, 6.1}, {33.7, 29.4}, red, 1.6);
    CHECK(once.rgb() != twice.rgb());
}

TEST_CASE("markers are filled shapes of the given radius", "[report][canvas]") {
    using report::Marker;
    Canvas circle(21, 21, background), square(21, 21, background);
    circle.draw_marker({10.5, 10.5}, Marker::circle, 6, red);
    square.draw_marker({10.5, 10.5}, Marker::square, 6, red);
    CHECK(circle.pixel(10, 10) == red);
    CHECK(circle.pixel(15, 10) == red);   // 5 from the centre
    CHECK(circle.pixel(10, 17) == background);
    CHECK(circle.pixel(15, 15) == background);  // the corner of the square, outside the circle
    CHECK(square.pixel(15, 15) == red);
    CHECK(square.pixel(5, 5) == red);
    CHECK(square.pixel(3, 10) == background);
    CHECK(ink_box(square).width == 13);  // the outermost columns half covered
    CHECK_THROWS_WITH(circle.draw_marker({1, 1}, Marker::circle, -1, red), Catch::Contains("radius -1"));
}

TEST_CASE("text is measured and placed as aligned", "[report][canvas]") {
    CHECK(Canvas::text_width("") == 0);
    CHECK(Canvas::text_width("Hello, 42", 3) == 3 * Canvas::text_width("Hello, 42"));
    CHECK(Canvas::text_width("WW") > Canvas::text_width("W"));
    CHECK(Canvas::text_width("\xC3\xA9\t") == Canvas::text_width("???"));  // non-ASCII as '?'
    CHECK(Canvas::text_height(2) == 14);

    // stb_easy_font's '-' is one bar 4 wide, 3 below the top of the capitals.
    Canvas dash(30, 30, background);
    dash.draw_text(10, 20, "-", red, 2);
    CHECK(ink_box(dash).x == 10);
    CHECK(ink_box(dash).y == 26);
    CHECK(ink_box(dash).width == 8);
    CHECK(ink_box(dash).height == 2);

    const std::string text = "EPOCH 10";
    const int width = Canvas::text_width(text, 2);
    for (Align align : {Align::start, Align::center, Align::end}) {
        Canvas canvas(200, 60, background);
        canvas.draw_text(100, 20, text, red, 2, align);
        const Rect box = ink_box(canvas);
        const int expected_left = align == Align::start ? 100 : align == Align::center ? 100 - width / 2 : 100 - width;
        CHECK(box.x == expected_left);
        CHECK(box.width == width);
        CHECK(box.y == 20);
        CHECK(box.height == Canvas::text_height(2));
        for (int y = box.y; y < box.bottom(); ++y)
            for (int x = box.x; x < box.right(); ++x) {
                const Color c = canvas.pixel(x, y);
                CHECK((c == red || c == background));  // text is not blended
            }
    }

    Canvas up(60, 200, background);
    up.draw_text_up(20, 150, text, red, 2);  // reads upwards from y = 150
    const Rect box = ink_box(up);
    CHECK(box.x == 20);
    CHECK(box.width == Canvas::text_height(2));
    CHECK(box.bottom() == 150);
    CHECK(box.height == width);
    CHECK_THROWS_WITH(up.draw_text(0, 0, "x", red, 0), Catch::Contains("text scale 0"));
}

TEST_CASE("save_png writes the pixels exactly, atomically, and names the file on error", "[report][canvas]") {
    testing::TempDir dir;
    Canvas canvas(37, 23, background);  // odd sizes: no row padding assumed
    canvas.fill_rect(3, 4, 10, 5, red);
    canvas.draw_line({0, 22}, {36, 0}, {10, 200, 90}, 2.5);
    canvas.draw_text(2, 12, "Ok", {0, 0, 255}, 1);
    const std::string path = dir.file("picture.png");
    canvas.save_png(path);
    CHECK(dir.list() == std::vector<std::string>{"picture.png"});  // no temporary left behind
    const testing::DecodedImage image = testing::read_png(path);
    CHECK(image.width == 37);
    CHECK(image.height == 23);
    CHECK(image.channels == 3);
    CHECK(image.rgb == canvas.rgb());

    Canvas other(5, 5, red);
    other.save_png(path);  // replaces the file
    CHECK(testing::read_png(path).at(2, 2) == red);
    CHECK(dir.list() == std::vector<std::string>{"picture.png"});

    const std::string unwritable = dir.file("missing-folder/picture.png");
    CHECK_THROWS_WITH(canvas.save_png(unwritable), Catch::Contains(unwritable));
    CHECK(dir.list() == std::vector<std::string>{"picture.png"});
}

#pragma once
// An RGB raster canvas for the pictures the library draws itself (training
// curves, confusion matrices): filled and outlined rectangles, anti-aliased
// lines, polylines and markers, ASCII text from stb_easy_font scaled by whole
// numbers (horizontal, or rotated to read upwards), saved as PNG through an
// atomic file write.
//
// Coordinates: pixel (x, y) covers [x, x+1) x [y, y+1), y downwards. Lines
// and markers take continuous points, so the centre of pixel (3, 4) is
// Point{3.5, 4.5}. Everything drawn is clipped to the canvas.

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <ostream>
#include <string>
#include <vector>

#include "bcnn/core/error.hpp"
#include "bcnn/io/atomic_file.hpp"
#include "bcnn/report/stb.hpp"

namespace bcnn {
namespace report {

struct Color {
    std::uint8_t r = 0, g = 0, b = 0;
};

inline bool operator==(Color a, Color b) { return a.r == b.r && a.g == b.g && a.b == b.b; }
inline bool operator!=(Color a, Color b) { return !(a == b); }

inline std::ostream& operator<<(std::ostream& out, Color c) {
    return out << "rgb(" << int(c.r) << ", " << int(c.g) << ", " << int(c.b) << ")";
}

// a at t = 0, b at t = 1 (t clamped to [0, 1]).
inline Color mix(Color a, Color b, double t) {
    t = std::clamp(t, 0.0, 1.0);
    auto channel = [t](std::uint8_t x, std::uint8_t y) {
        return static_cast<std::uint8_t>(std::lround(x + (y - x) * t));
    };
    return {channel(a.r, b.r), channel(a.g, b.g), channel(a.b, b.b)};
}

namespace colors {
inline constexpr Color white{255, 255, 255};
inline constexpr Color black{0, 0, 0};
inline constexpr Color text{34, 34, 34};
inline constexpr Color axis{110, 110, 110};
inline constexpr Color grid{228, 228, 228};
inline constexpr Color blue{31, 119, 180};    // matplotlib's tab:blue
inline constexpr Color orange{230, 115, 0};   // a darker tab:orange, readable on white
}  // namespace colors

struct Point {
    double x = 0, y = 0;
};

struct Rect {
    int x = 0, y = 0, width = 0, height = 0;
    int right() const { return x + width; }
    int bottom() const { return y + height; }
    bool contains(int px, int py) const { return px >= x && px < right() && py >= y && py < bottom(); }
};

enum class Marker { circle, square, diamond };

// Where a text's anchor point lies along the text: its start, middle or end.
enum class Align { start, center, end };

class Canvas {
public:
    // Capital letters and digits are this many pixels high at scale 1;
    // descenders (g, p, y) reach kDescent further down.
    static constexpr int kCapHeight = 7;
    static constexpr int kDescent = 2;

    Canvas(int width, int height, Color background = colors::white) : width_(width), height_(height) {
        BCNN_CHECK(width >= 1 && height >= 1 && width <= kMaxSide && height <= kMaxSide,
                   "Canvas: size " << width << "x" << height << " outside 1.." << kMaxSide);
        rgb_.resize(static_cast<std::size_t>(width) * height * 3);
        for (std::size_t i = 0; i < rgb_.size(); i += 3) {
            rgb_[i] = background.r;
            rgb_[i + 1] = background.g;
            rgb_[i + 2] = background.b;
        }
    }

    int width() const { return width_; }
    int height() const { return height_; }
    // Row-major RGB bytes, 3 per pixel, no padding.
    const std::vector<std::uint8_t>& rgb() const { return rgb_; }

    Color pixel(int x, int y) const {
        BCNN_CHECK(x >= 0 && x < width_ && y >= 0 && y < height_,
                   "Canvas::pixel: (" << x << ", " << y << ") outside " << width_ << "x" << height_);
        const std::uint8_t* p = &rgb_[offset(x, y)];
        return {p[0], p[1], p[2]};
    }

    void fill_rect(int x, int y, int w, int h, Color c) {
        const int x0 = std::max(x, 0), y0 = std::max(y, 0);
        const int x1 = static_cast<int>(std::min<long long>(static_cast<long long>(x) + w, width_));
        const int y1 = static_cast<int>(std::min<long long>(static_cast<long long>(y) + h, height_));
        for (int py = y0; py < y1; ++py)
            for (int px = x0; px < x1; ++px) put(px, py, c);
    }
    void fill_rect(const Rect& r, Color c) { fill_rect(r.x, r.y, r.width, r.height, c); }

    // An outline `thickness` pixels wide, inside the rectangle.
    void stroke_rect(const Rect& r, Color c, int thickness = 1) {
        const int t = std::min({thickness, r.width, r.height});
        if (t <= 0) return;
        fill_rect(r.x, r.y, r.width, t, c);
        fill_rect(r.x, r.bottom() - t, r.width, t, c);
        fill_rect(r.x, r.y, t, r.height, c);
        fill_rect(r.right() - t, r.y, t, r.height, c);
    }

    void draw_line(Point a, Point b, Color c, double thickness = 1.0) { draw_polyline({a, b}, c, thickness); }

    // Anti-aliased, round joints and ends; each pixel is blended once, with the
    // largest coverage any segment gives it, so joints are not darker.
    void draw_polyline(const std::vector<Point>& points, Color c, double thickness = 1.0) {
        BCNN_CHECK(std::isfinite(thickness) && thickness > 0,
                   "Canvas::draw_polyline: thickness " << thickness << " must be positive");
        if (points.empty()) return;
        for (const Point& p : points)
            BCNN_CHECK(std::isfinite(p.x) && std::isfinite(p.y),
                       "Canvas::draw_polyline: point (" << p.x << ", " << p.y << ") is not finite");
        const double half = thickness / 2;
        double min_x = points[0].x, max_x = min_x, min_y = points[0].y, max_y = min_y;
        for (const Point& p : points) {
            min_x = std::min(min_x, p.x), max_x = std::max(max_x, p.x);
            min_y = std::min(min_y, p.y), max_y = std::max(max_y, p.y);
        }
        const Rect box = clip_box(min_x - half, min_y - half, max_x + half, max_y + half);
        if (box.width <= 0 || box.height <= 0) return;
        std::vector<double> coverage(static_cast<std::size_t>(box.width) * box.height, 0.0);
        const std::size_t segments = points.size() == 1 ? 1 : points.size() - 1;
        for (std::size_t s = 0; s < segments; ++s) {
            const Point a = points[s], b = points[std::min(s + 1, points.size() - 1)];
            const Rect seg = clip_box(std::min(a.x, b.x) - half, std::min(a.y, b.y) - half,
                                      std::max(a.x, b.x) + half, std::max(a.y, b.y) + half);
            for (int py = seg.y; py < seg.bottom(); ++py)
                for (int px = seg.x; px < seg.right(); ++px) {
                    const double d = distance_to_segment({px + 0.5, py + 0.5}, a, b);
                    double& cov = coverage[static_cast<std::size_t>(py - box.y) * box.width + (px - box.x)];
                    cov = std::max(cov, std::clamp(half + 0.5 - d, 0.0, 1.0));
                }
        }
        for (int py = box.y; py < box.bottom(); ++py)
            for (int px = box.x; px < box.right(); ++px)
                blend(px, py, c, coverage[static_cast<std::size_t>(py - box.y) * box.width + (px - box.x)]);
    }

    // A filled, anti-aliased marker; `radius` is half its width.
    void draw_marker(Point center, Marker shape, double radius, Color c) {
        BCNN_CHECK(std::isfinite(center.x) && std::isfinite(center.y) && std::isfinite(radius) && radius > 0,
                   "Canvas::draw_marker: centre (" << center.x << ", " << center.y << "), radius " << radius
                                                   << " must be finite with a positive radius");
        const Rect box = clip_box(center.x - radius - 1, center.y - radius - 1, center.x + radius + 1,
                                  center.y + radius + 1);
        for (int py = box.y; py < box.bottom(); ++py)
            for (int px = box.x; px < box.right(); ++px) {
                const double dx = std::abs(px + 0.5 - center.x), dy = std::abs(py + 0.5 - center.y);
                double inside = 0;  // distance from the pixel centre to the outline, positive inside
                switch (shape) {
                    case Marker::circle: inside = radius - std::hypot(dx, dy); break;
                    case Marker::square: inside = radius - std::max(dx, dy); break;
                    case Marker::diamond: inside = (radius * 1.3 - dx - dy) / std::sqrt(2.0); break;
                }
                blend(px, py, c, std::clamp(inside + 0.5, 0.0, 1.0));
            }
    }

    // Width in pixels of the ink of `text` (one line of ASCII) at `scale`.
    static int text_width(const std::string& text, int scale = 1) {
        check_scale(scale, "text_width");
        int width = 0;
        for (const Quad& q : glyph_quads(text)) width = std::max(width, q.x1);
        return width * scale;
    }
    static int text_height(int scale = 1) { return kCapHeight * scale; }

    // One line of text; y is the top of its capital letters, x the start,
    // centre or end of its ink (align). Characters outside printable ASCII
    // are drawn as '?'.
    void draw_text(int x, int y, const std::string& text, Color c, int scale = 1, Align align = Align::start) {
        check_scale(scale, "draw_text");
        const int left = x - aligned_offset(text_width(text, scale), align);
        for (const Quad& q : glyph_quads(text))
            fill_rect(left + q.x0 * scale, y + q.y0 * scale, (q.x1 - q.x0) * scale, (q.y1 - q.y0) * scale, c);
    }

    // Text turned a quarter turn anticlockwise, reading upwards: x is the
    // left edge of its capitals (their top, before turning), y the start
    // (bottom), centre or end (top) of its ink.
    void draw_text_up(int x, int y, const std::string& text, Color c, int scale = 1, Align align = Align::start) {
        check_scale(scale, "draw_text_up");
        const int bottom = y + aligned_offset(text_width(text, scale), align);
        for (const Quad& q : glyph_quads(text))
            fill_rect(x + q.y0 * scale, bottom - q.x1 * scale, (q.y1 - q.y0) * scale, (q.x1 - q.x0) * scale, c);
    }

    // PNG, RGB 8 bit, written whole or not at all; bcnn::Error names the file.
    void save_png(const std::string& path) const {
        io::write_file_atomically(path, [&](std::ostream& out) {
            auto sink = [](void* stream, void* data, int size) {
                static_cast<std::ostream*>(stream)->write(static_cast<const char*>(data), size);
            };
            const int ok = stbi_write_png_to_func(sink, &out, width_, height_, 3, rgb_.data(), width_ * 3);
            BCNN_CHECK(ok != 0, "Canvas::save_png: PNG encoding failed for '" << path << "'");
        });
    }

private:
    static constexpr int kMaxSide = 16384;

    // One stb_easy_font quad, in unscaled pixels relative to the text origin.
    struct Quad {
        int x0, y0, x1, y1;
    };

    static std::vector<Quad> glyph_quads(const std::string& text) {
        std::string printable = text;
        for (char& ch : printable)
            if (ch < 32 || ch > 126) ch = '?';
        // Each glyph takes at most 11 quads of 4 vertices of 16 bytes.
        std::vector<float> vertices(printable.size() * 12 * 4 * 4 + 4);
        const int quads = stb_easy_font_print(0, 0, &printable[0], nullptr, vertices.data(),
                                              static_cast<int>(vertices.size() * sizeof(float)));
        std::vector<Quad> result(static_cast<std::size_t>(quads));
        for (std::size_t q = 0; q < result.size(); ++q) {
            const float* v = &vertices[q * 16];  // vertex 0 is the top-left corner, vertex 2 the bottom-right
            result[q] = {static_cast<int>(v[0]), static_cast<int>(v[1]), static_cast<int>(v[8]),
                         static_cast<int>(v[9])};
        }
        return result;
    }

    static int aligned_offset(int extent, Align align) {
        return align == Align::start ? 0 : align == Align::center ? extent / 2 : extent;
    }

    static void check_scale(int scale, const char* what) {
        BCNN_CHECK(scale >= 1 && scale <= 64, "Canvas::" << what << ": text scale " << scale << " outside 1..64");
    }

    static double distance_to_segment(Point p, Point a, Point b) {
        const double dx = b.x - a.x, dy = b.y - a.y, length2 = dx * dx + dy * dy;
        const double t = length2 == 0 ? 0.0 : std::clamp(((p.x - a.x) * dx + (p.y - a.y) * dy) / length2, 0.0, 1.0);
        return std::hypot(p.x - (a.x + t * dx), p.y - (a.y + t * dy));
    }

    // The pixels touched by the continuous box, clipped to the canvas.
    Rect clip_box(double x0, double y0, double x1, double y1) const {
        const int left = static_cast<int>(std::floor(std::clamp(x0, 0.0, double(width_))));
        const int top = static_cast<int>(std::floor(std::clamp(y0, 0.0, double(height_))));
        const int right = static_cast<int>(std::ceil(std::clamp(x1, 0.0, double(width_))));
        const int bottom = static_cast<int>(std::ceil(std::clamp(y1, 0.0, double(height_))));
        return {left, top, right - left, bottom - top};
    }

    std::size_t offset(int x, int y) const { return (static_cast<std::size_t>(y) * width_ + x) * 3; }

    void put(int x, int y, Color c) {
        std::uint8_t* p = &rgb_[offset(x, y)];
        p[0] = c.r, p[1] = c.g, p[2] = c.b;
    }

    void blend(int x, int y, Color c, double alpha) {
        if (alpha <= 0) return;
        put(x, y, alpha >= 1 ? c : mix(pixel(x, y), c, alpha));
    }

    int width_, height_;
    std::vector<std::uint8_t> rgb_;
};

}  // namespace report
}  // namespace bcnn

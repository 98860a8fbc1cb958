#pragma once
// Bilinear resize of 8-bit images, matching OpenCV's
// cv2.resize(src, (w, h), interpolation=cv2.INTER_LINEAR) bit for bit on the
// builds measured (opencv-python 4.14 and 5.0, x86-64); see
// tests/data/fixtures/make_resize_fixtures.py.
//
// Pixel convention: half-pixel centres, src = (dst + 0.5) * (src_size / dst_size) - 0.5,
// computed in float as OpenCV does. The two taps floor(src) and floor(src) + 1
// are clamped to the image (border replicate) while their weights are not.
// Arithmetic: OpenCV's fixed point for 8-bit images. Weights are rounded to
// 11 bits (INTER_RESIZE_COEF_BITS: w0 + w1 = 2048); the horizontal pass keeps
// exact int32 sums p = a*w0 + b*w1; the vertical pass is OpenCV's SIMD
// VResizeLinearVec_32s8u, which every output of these builds goes through:
//   out = saturate_u8(((p0 >> 4) * v0 >> 16) + ((p1 >> 4) * v1 >> 16) + 2) >> 2)
// (the scalar FixedPtCast rounding, (p0*v0 + p1*v1 + 2^21) >> 22, differs
// from it by one on a few pixels per image, so it is not used).

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

#include "bcnn/core/error.hpp"
#include "bcnn/data/image.hpp"

namespace bcnn {
namespace data {

// Bumped whenever the resize's output could change (it keys the decode cache).
constexpr int kResizeVersion = 1;

namespace detail {

constexpr int kResizeCoefBits = 11;
constexpr int kResizeCoefScale = 1 << kResizeCoefBits;

// For each output position along one axis: the two source taps and weights.
struct LinearTaps {
    std::vector<int> first, second;
    std::vector<std::int32_t> w0, w1;  // w0 + w1 == kResizeCoefScale
};

inline LinearTaps linear_taps(int src_size, int dst_size) {
    LinearTaps taps;
    taps.first.resize(dst_size);
    taps.second.resize(dst_size);
    taps.w0.resize(dst_size);
    taps.w1.resize(dst_size);
    const double scale = 1.0 / (static_cast<double>(dst_size) / src_size);
    for (int d = 0; d < dst_size; ++d) {
        float f = static_cast<float>((d + 0.5) * scale - 0.5);
        const int s = static_cast<int>(std::floor(f));
        f -= static_cast<float>(s);
        taps.first[d] = std::clamp(s, 0, src_size - 1);
        taps.second[d] = std::clamp(s + 1, 0, src_size - 1);
        taps.w0[d] = static_cast<std::int32_t>(std::lrint((1.0f - f) * kResizeCoefScale));
        taps.w1[d] = static_cast<std::int32_t>(std::lrint(f * kResizeCoefScale));
    }
    return taps;
}

// OpenCV's v_mul_hi on int16 lanes: the high half of the 32-bit product.
inline std::int32_t mul_hi16(std::int32_t a, std::int32_t b) { return (a * b) >> 16; }

}  // namespace detail

// src (src_height, src_width, channels) -> dst (dst_height, dst_width, channels),
// both uint8, contiguous, interleaved.
inline void resize_linear(const std::uint8_t* src, int src_width, int src_height, int channels, std::uint8_t* dst,
                          int dst_width, int dst_height) {
    BCNN_CHECK(src_width >= 1 && src_height >= 1 && dst_width >= 1 && dst_height >= 1 && channels >= 1,
               "resize_linear: cannot resize " << src_width << "x" << src_height << "x" << channels << " to "
                                               << dst_width << "x" << dst_height);
    const detail::LinearTaps xs = detail::linear_taps(src_width, dst_width);
    const detail::LinearTaps ys = detail::linear_taps(src_height, dst_height);
    const int row_size = dst_width * channels;

    // Horizontal pass, computed once for each source row an output row uses.
    std::vector<std::int32_t> rows(static_cast<std::size_t>(src_height) * row_size);
    std::vector<char> done(src_height, 0);
    auto horizontal = [&](int y) -> const std::int32_t* {
        std::int32_t* out = rows.data() + static_cast<std::size_t>(y) * row_size;
        if (done[y]) return out;
        const std::uint8_t* in = src + static_cast<std::size_t>(y) * src_width * channels;
        for (int x = 0; x < dst_width; ++x) {
            const std::uint8_t* a = in + xs.first[x] * channels;
            const std::uint8_t* b = in + xs.second[x] * channels;
            for (int c = 0; c < channels; ++c) out[x * channels + c] = a[c] * xs.w0[x] + b[c] * xs.w1[x];
        }
        done[y] = 1;
        return out;
    };

    for (int y = 0; y < dst_height; ++y) {
        const std::int32_t* p0 = horizontal(ys.first[y]);
        const std::int32_t* p1 = horizontal(ys.second[y]);
        const std::int32_t v0 = ys.w0[y], v1 = ys.w1[y];
        std::uint8_t* out = dst + static_cast<std::size_t>(y) * row_size;
        for (int i = 0; i < row_size; ++i) {
            const std::int32_t sum = detail::mul_hi16(p0[i] >> 4, v0) + detail::mul_hi16(p1[i] >> 4, v1);
            out[i] = static_cast<std::uint8_t>(std::clamp((sum + 2) >> 2, 0, 255));
        }
    }
}

// The image resized to width x height (a copy when the size already matches).
inline Image resize_linear(const Image& image, int width, int height) {
    Image out;
    out.width = width;
    out.height = height;
    out.source_channels = image.source_channels;
    if (image.width == width && image.height == height) {
        out.rgb = image.rgb;
        return out;
    }
    out.rgb.resize(static_cast<std::size_t>(width) * height * 3);
    resize_linear(image.rgb.data(), image.width, image.height, 3, out.rgb.data(), width, height);
    return out;
}

}  // namespace data
}  // namespace bcnn

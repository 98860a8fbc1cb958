#pragma once
// Random augmentation of one image (H, W, C), uint8 or float, seeded per
// (epoch, sample) so a run is reproducible and a sample's augmentation does
// not depend on batch order or timing.
//
// Applied in this order to the input image I:
//   1. flips: horizontal (x -> W-1-x), then vertical (y -> H-1-y);
//   2. k quarter turns counter-clockwise, as numpy.rot90(I, k) (square images only);
//   3. shift by (dy, dx) pixels: out(y, x) = in(y - dy, x - dx); pixels shifted in
//      from outside replicate the nearest edge pixel (ShiftFill::edge, the
//      default) or are 0 (ShiftFill::zero);
//   4. brightness: every value times a factor; uint8 results are rounded (half
//      away from zero) and saturated at 255, float results are not clipped.
// Every draw is made whether or not its operation is enabled, so enabling one
// operation never changes the choices of the others.

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <type_traits>
#include <vector>

#include "bcnn/core/tensor.hpp"
#include "bcnn/data/seed.hpp"

namespace bcnn {
namespace data {

enum class ShiftFill { edge, zero };

// What to draw from. The default does nothing.
struct Augmentation {
    bool horizontal_flip = false;  // with probability 1/2
    bool vertical_flip = false;    // with probability 1/2
    bool rotate90 = false;         // k uniform in {0, 1, 2, 3}
    int max_shift = 0;             // dy, dx uniform in [-max_shift, max_shift]
    ShiftFill fill = ShiftFill::edge;
    double max_brightness_change = 0;  // factor uniform in [1 - b, 1 + b)

    bool enabled() const {
        return horizontal_flip || vertical_flip || rotate90 || max_shift > 0 || max_brightness_change > 0;
    }
};

// One drawn transform.
struct AugmentDecision {
    bool flip_horizontal = false, flip_vertical = false;
    int quarter_turns = 0;
    int shift_y = 0, shift_x = 0;
    ShiftFill fill = ShiftFill::edge;
    double brightness = 1.0;
};

// The transform for sample `sample` in epoch `epoch`.
inline AugmentDecision draw_augmentation(const Augmentation& policy, std::uint64_t seed, std::uint64_t epoch,
                                         std::uint64_t sample) {
    BCNN_CHECK(policy.max_shift >= 0, "augmentation: max_shift must be >= 0, got " << policy.max_shift);
    BCNN_CHECK(policy.max_brightness_change >= 0 && policy.max_brightness_change <= 1,
               "augmentation: max_brightness_change must be in [0, 1], got " << policy.max_brightness_change);
    Rng rng(derive_seed(seed, SeedStream::augmentation, epoch, sample));
    const bool flip_h = rng.next_below(2) == 1;
    const bool flip_v = rng.next_below(2) == 1;
    const int turns = static_cast<int>(rng.next_below(4));
    const auto span = static_cast<std::uint64_t>(2 * policy.max_shift + 1);
    const int dy = static_cast<int>(rng.next_below(span)) - policy.max_shift;
    const int dx = static_cast<int>(rng.next_below(span)) - policy.max_shift;
    const double u = rng.uniform_at<double>(rng.advance(1));

    AugmentDecision d;
    d.flip_horizontal = policy.horizontal_flip && flip_h;
    d.flip_vertical = policy.vertical_flip && flip_v;
    d.quarter_turns = policy.rotate90 ? turns : 0;
    d.shift_y = dy;
    d.shift_x = dx;
    d.fill = policy.fill;
    d.brightness = 1.0 + policy.max_brightness_change * (2 * u - 1);
    return d;
}

// Applies `d` in place to `image`, a contiguous (H, W, C) tensor.
template <typename T>
void apply_augmentation(const Tensor<T>& image, const AugmentDecision& d) {
    BCNN_CHECK(image.rank() == 3 && image.is_contiguous(),
               "apply_augmentation: image must be a contiguous (H, W, C) tensor, got shape " << image.shape());
    const Index height = image.dim(0), width = image.dim(1), channels = image.dim(2);
    BCNN_CHECK(d.quarter_turns % 4 == 0 || height == width,
               "apply_augmentation: 90-degree rotations need a square image, got shape " << image.shape());
    BCNN_CHECK(d.quarter_turns >= 0 && d.quarter_turns < 4,
               "apply_augmentation: quarter_turns must be in 0..3, got " << d.quarter_turns);
    T* pixels = image.data();
    const std::vector<T> source(pixels, pixels + image.numel());

    for (Index y = 0; y < height; ++y) {
        for (Index x = 0; x < width; ++x) {
            T* out = pixels + (y * width + x) * channels;
            // Undo the steps from the last to the first: shift, rotation, flips.
            Index sy = y - d.shift_y, sx = x - d.shift_x;
            if (sy < 0 || sy >= height || sx < 0 || sx >= width) {
                if (d.fill == ShiftFill::zero) {
                    std::fill(out, out + channels, T(0));
                    continue;
                }
                sy = std::clamp<Index>(sy, 0, height - 1);
                sx = std::clamp<Index>(sx, 0, width - 1);
            }
            for (int turn = 0; turn < d.quarter_turns; ++turn) {  // rot90: out(i, j) = in(j, S-1-i)
                const Index previous_y = sy;
                sy = sx;
                sx = width - 1 - previous_y;
            }
            if (d.flip_vertical) sy = height - 1 - sy;
            if (d.flip_horizontal) sx = width - 1 - sx;
            const T* in = source.data() + (sy * width + sx) * channels;
            for (Index c = 0; c < channels; ++c) {
                if (d.brightness == 1.0) {
                    out[c] = in[c];
                } else if constexpr (std::is_integral<T>::value) {
                    const double v = std::round(static_cast<double>(in[c]) * d.brightness);
                    out[c] = static_cast<T>(std::clamp<double>(v, 0, static_cast<double>(std::numeric_limits<T>::max())));
                } else {
                    out[c] = static_cast<T>(in[c] * d.brightness);
                }
            }
        }
    }
}

}  // namespace data
}  // namespace bcnn

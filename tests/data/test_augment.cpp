// Augmentation: each operation against small hand-computed images, their
// order, uint8 and float, and the seeded per-(epoch, sample) draws.

#include <catch2/catch.hpp>

#include <set>

#include <bcnn/data/augment.hpp>

using namespace bcnn;
using namespace bcnn::data;

namespace {

// The 3x3 one-channel image
//   1 2 3
//   4 5 6
//   7 8 9
// transformed by `d`, as a row-major list.
template <typename T = std::uint8_t>
std::vector<T> apply3x3(const AugmentDecision& d) {
    const auto image = Tensor<T>::from_vector(Shape{3, 3, 1}, {1, 2, 3, 4, 5, 6, 7, 8, 9});
    apply_augmentation(image, d);
    return image.to_vector();
}

AugmentDecision decision(bool flip_h, bool flip_v, int turns, int dy = 0, int dx = 0,
                         ShiftFill fill = ShiftFill::edge, double brightness = 1.0) {
    AugmentDecision d;
    d.flip_horizontal = flip_h;
    d.flip_vertical = flip_v;
    d.quarter_turns = turns;
    d.shift_y = dy;
    d.shift_x = dx;
    d.fill = fill;
    d.brightness = brightness;
    return d;
}

using U8 = std::vector<std::uint8_t>;

}  // namespace

TEST_CASE("flips, quarter turns and shifts on a 3x3 image", "[data][augment]") {
    CHECK(apply3x3(decision(false, false, 0)) == U8{1, 2, 3, 4, 5, 6, 7, 8, 9});
    CHECK(apply3x3(decision(true, false, 0)) == U8{3, 2, 1, 6, 5, 4, 9, 8, 7});
    CHECK(apply3x3(decision(false, true, 0)) == U8{7, 8, 9, 4, 5, 6, 1, 2, 3});
    // numpy.rot90(I, k): counter-clockwise.
    CHECK(apply3x3(decision(false, false, 1)) == U8{3, 6, 9, 2, 5, 8, 1, 4, 7});
    CHECK(apply3x3(decision(false, false, 2)) == U8{9, 8, 7, 6, 5, 4, 3, 2, 1});
    CHECK(apply3x3(decision(false, false, 3)) == U8{7, 4, 1, 8, 5, 2, 9, 6, 3});
    // Flip first, then turn: rot90(fliplr(I)) is the transpose.
    CHECK(apply3x3(decision(true, false, 1)) == U8{1, 4, 7, 2, 5, 8, 3, 6, 9});
    // Shift down by one, the top row replicated; left by one, zero fill.
    CHECK(apply3x3(decision(false, false, 0, 1, 0)) == U8{1, 2, 3, 1, 2, 3, 4, 5, 6});
    CHECK(apply3x3(decision(false, false, 0, 0, -1, ShiftFill::zero)) == U8{2, 3, 0, 5, 6, 0, 8, 9, 0});
    CHECK(apply3x3(decision(false, false, 0, -1, 2)) == U8{4, 4, 4, 7, 7, 7, 7, 7, 7});
    // Turn, then shift: the shift moves the turned image.
    CHECK(apply3x3(decision(false, false, 1, 0, 1, ShiftFill::zero)) == U8{0, 3, 6, 0, 2, 5, 0, 1, 4});
}

TEST_CASE("augmentation moves whole pixels and scales brightness on uint8 and float", "[data][augment]") {
    // 2x2 pixels of 2 channels: channels travel together.
    const auto two = Tensor<float>::from_vector(Shape{2, 2, 2}, {0, 1, 2, 3, 4, 5, 6, 7});
    apply_augmentation(two, decision(true, false, 0));
    CHECK(two.to_vector() == std::vector<float>{2, 3, 0, 1, 6, 7, 4, 5});

    const auto bytes = Tensor<std::uint8_t>::from_vector(Shape{1, 4, 1}, {100, 200, 3, 0});
    apply_augmentation(bytes, decision(false, false, 0, 0, 0, ShiftFill::edge, 1.3));
    CHECK(bytes.to_vector() == U8{130, 255, 4, 0});  // 260 saturates, 3.9 rounds to 4
    const auto halves = Tensor<std::uint8_t>::from_vector(Shape{1, 2, 1}, {3, 5});
    apply_augmentation(halves, decision(false, false, 0, 0, 0, ShiftFill::edge, 0.5));
    CHECK(halves.to_vector() == U8{2, 3});  // 1.5 and 2.5 round away from zero

    const auto floats = Tensor<float>::from_vector(Shape{1, 2, 1}, {0.8f, 0.25f});
    apply_augmentation(floats, decision(false, false, 0, 0, 0, ShiftFill::edge, 1.5));
    CHECK(floats.to_vector() == std::vector<float>{0.8f * 1.5f, 0.25f * 1.5f});  // not clipped

    const auto wide = Tensor<float>(Shape{2, 3, 1});
    CHECK_THROWS_WITH(apply_augmentation(wide, decision(false, false, 1)),
                      Catch::Contains("90-degree rotations need a square image, got shape (2, 3, 1)"));
    CHECK_THROWS_WITH(apply_augmentation(Tensor<float>(Shape{3, 3}), decision(false, false, 0)),
                      Catch::Contains("contiguous (H, W, C) tensor, got shape (3, 3)"));
}

TEST_CASE("draw_augmentation is seeded per (seed, epoch, sample)", "[data][augment]") {
    Augmentation all;
    all.horizontal_flip = all.vertical_flip = all.rotate90 = true;
    all.max_shift = 3;
    all.max_brightness_change = 0.2;

    std::set<int> turns, shifts;
    int flipped = 0;
    double low = 2, high = 0;
    for (std::uint64_t sample = 0; sample < 400; ++sample) {
        const AugmentDecision d = draw_augmentation(all, 5, 1, sample);
        const AugmentDecision again = draw_augmentation(all, 5, 1, sample);
        CHECK((again.flip_horizontal == d.flip_horizontal && again.quarter_turns == d.quarter_turns &&
               again.shift_x == d.shift_x && again.brightness == d.brightness));
        flipped += d.flip_horizontal;
        turns.insert(d.quarter_turns);
        shifts.insert(d.shift_x);
        shifts.insert(d.shift_y);
        low = std::min(low, d.brightness);
        high = std::max(high, d.brightness);
    }
    CHECK(flipped > 150);
    CHECK(flipped < 250);
    CHECK(turns == std::set<int>{0, 1, 2, 3});
    CHECK(shifts == std::set<int>{-3, -2, -1, 0, 1, 2, 3});
    CHECK(low >= 0.8);
    CHECK(low < 0.82);
    CHECK(high < 1.2);
    CHECK(high > 1.18);

    // Other epochs and seeds draw differently.
    int differ_epoch = 0, differ_seed = 0;
    for (std::uint64_t sample = 0; sample < 50; ++sample) {
        const double b = draw_augmentation(all, 5, 1, sample).brightness;
        differ_epoch += b != draw_augmentation(all, 5, 2, sample).brightness;
        differ_seed += b != draw_augmentation(all, 6, 1, sample).brightness;
    }
    CHECK(differ_epoch == 50);
    CHECK(differ_seed == 50);

    // Disabled operations are identities, and enabling one leaves the others' draws alone.
    const AugmentDecision none = draw_augmentation(Augmentation{}, 5, 1, 7);
    CHECK_FALSE(Augmentation{}.enabled());
    CHECK((!none.flip_horizontal && !none.flip_vertical && none.quarter_turns == 0 && none.brightness == 1.0));
    Augmentation flips_only;
    flips_only.horizontal_flip = true;
    for (std::uint64_t sample = 0; sample < 50; ++sample)
        CHECK(draw_augmentation(flips_only, 5, 1, sample).flip_horizontal ==
              draw_augmentation(all, 5, 1, sample).flip_horizontal);

    Augmentation bad;
    bad.max_shift = -1;
    CHECK_THROWS_WITH(draw_augmentation(bad, 0, 0, 0), Catch::Contains("max_shift must be >= 0, got -1"));
}

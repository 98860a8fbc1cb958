// load_images: a whole folder into one uint8 tensor, bad files reported (or
// fatal in strict mode), and the decoded-image cache: a second load decodes
// nothing, a changed file invalidates it, a damaged cache file is replaced.

#include <catch2/catch.hpp>

#include <chrono>
#include <filesystem>

#include <bcnn/data/load_images.hpp>

#include "data/data_support.hpp"
#include "support/temp_dir.hpp"

using namespace bcnn;
using namespace bcnn::data;
namespace fs = std::filesystem;

namespace {

// root/A: two 6x4 RGB PNGs; root/B: one 8x8 RGB and one grayscale PNG.
void make_folder(const fs::path& root) {
    fs::create_directories(root / "A");
    fs::create_directories(root / "B");
    testing::write_png((root / "A" / "a0.png").string(), 6, 4, 3, testing::pattern(6, 4, 0));
    testing::write_png((root / "A" / "a1.png").string(), 6, 4, 3, testing::pattern(6, 4, 1));
    testing::write_png((root / "B" / "b0.png").string(), 8, 8, 3, testing::pattern(8, 8, 2));
    testing::write_png((root / "B" / "b1.png").string(), 8, 8, 1, std::vector<std::uint8_t>(64, 77));
}

std::vector<std::uint8_t> image_bytes(const LoadedImages& set, Index i) {
    const Tensor<std::uint8_t> one = set.images.slice(0, i, i + 1);
    return one.to_vector();
}

}  // namespace

TEST_CASE("load_images decodes, resizes and labels every image of a folder", "[data][load_images]") {
    testing::TempDir dir;
    make_folder(dir.path() / "data");
    const ImageFolder folder = scan_image_folder((dir.path() / "data").string());
    const LoadedImages set = load_images(folder, {6, "", false});

    REQUIRE(set.images.shape() == Shape{4, 6, 6, 3});
    CHECK(set.labels.to_vector() == std::vector<std::int32_t>{0, 0, 1, 1});
    CHECK(set.paths == folder.paths);
    CHECK(set.class_names == std::vector<std::string>{"A", "B"});
    CHECK(set.decoded == 4);
    CHECK(set.cache == CacheStatus::disabled);
    CHECK(set.failures.empty());
    REQUIRE(set.converted.size() == 1);
    CHECK(set.converted[0].path == folder.paths[3]);
    CHECK(set.converted[0].reason == "converted to RGB from grayscale");
    CHECK(notes_summary(set.converted, "converted") ==
          "converted 1 image: '" + folder.paths[3] + "': converted to RGB from grayscale");
    for (Index i = 0; i < 4; ++i) {
        const Image expected = resize_linear(load_image(folder.paths[static_cast<std::size_t>(i)]), 6, 6);
        CHECK(image_bytes(set, i) == expected.rgb);
    }
}

TEST_CASE("load_images skips unreadable files with their reasons, or fails in strict mode", "[data][load_images]") {
    testing::TempDir dir;
    const fs::path root = dir.path() / "data";
    make_folder(root);
    const std::string jpeg = testing::read_bytes(testing::blood_cells_split("TRAIN") + "/EOSINOPHIL/_0_1169.jpeg");
    const std::string truncated = (root / "A" / "cut.jpeg").string(), text = (root / "B" / "notes.jpg").string();
    testing::write_bytes(truncated, jpeg.substr(0, 3000));
    testing::write_bytes(text, "hello");
    const ImageFolder folder = scan_image_folder(root.string());
    REQUIRE(folder.size() == 6);

    const LoadedImages set = load_images(folder, {5, "", false});
    CHECK(set.images.shape() == Shape{4, 5, 5, 3});
    CHECK(set.labels.to_vector() == std::vector<std::int32_t>{0, 0, 1, 1});
    REQUIRE(set.failures.size() == 2);
    CHECK(set.failures[0].path == truncated);
    CHECK_THAT(set.failures[0].reason, Catch::StartsWith("cannot decode, corrupt or truncated (stb_image: "));
    CHECK(set.failures[1].path == text);
    CHECK(set.failures[1].reason == "not an image (stb_image: unknown image type)");
    CHECK_THAT(notes_summary(set.failures, "skipped"),
               Catch::Contains("skipped 2 images: '" + truncated + "': cannot decode") &&
                   Catch::Contains("'" + text + "': not an image (stb_image: unknown image type)"));
    CHECK(std::find(set.paths.begin(), set.paths.end(), truncated) == set.paths.end());
    // The images kept are the right ones, in order, despite the gaps.
    CHECK(image_bytes(set, 1) == resize_linear(load_image((root / "A" / "a1.png").string()), 5, 5).rgb);
    CHECK(image_bytes(set, 3) == resize_linear(load_image((root / "B" / "b1.png").string()), 5, 5).rgb);

    CHECK_THROWS_WITH(load_images(folder, {5, "", true}),
                      Catch::Contains("in strict mode: 2 unreadable images: '" + truncated + "'"));

    // Nothing readable at all is an error even when not strict.
    const fs::path hopeless = dir.path() / "hopeless";
    fs::create_directories(hopeless / "A");
    testing::write_bytes((hopeless / "A" / "x.png").string(), "nope");
    CHECK_THROWS_WITH(load_images(scan_image_folder(hopeless.string()), {5, "", false}),
                      "no image of '" + hopeless.string() + "' could be loaded: '" + (hopeless / "A" / "x.png").string() +
                          "': not an image (stb_image: unknown image type)");
}

TEST_CASE("the decoded-image cache: a second load decodes nothing; a changed file invalidates it", "[data][load_images]") {
    testing::TempDir dir;
    const fs::path root = dir.path() / "data";
    make_folder(root);
    testing::write_bytes((root / "B" / "bad.png").string(), "not a png");
    const std::string cache_dir = (dir.path() / "cache").string();
    const LoadOptions options{7, cache_dir, false};
    ImageFolder folder = scan_image_folder(root.string());

    const LoadedImages first = load_images(folder, options);
    CHECK(first.cache == CacheStatus::written);
    CHECK(first.decoded == 5);
    CHECK(first.cache_note.empty());
    CHECK(fs::exists(first.cache_file));
    CHECK(fs::path(first.cache_file).parent_path() == fs::path(cache_dir));

    const LoadedImages second = load_images(folder, options);
    CHECK(second.cache == CacheStatus::hit);
    CHECK(second.decoded == 0);
    CHECK(second.cache_file == first.cache_file);
    CHECK(second.images.to_vector() == first.images.to_vector());
    CHECK(second.labels.to_vector() == first.labels.to_vector());
    CHECK(second.paths == first.paths);
    REQUIRE(second.failures.size() == 1);  // reported again from the cache
    CHECK(second.failures[0].path == first.failures[0].path);
    CHECK(second.failures[0].reason == first.failures[0].reason);
    REQUIRE(second.converted.size() == 1);
    CHECK(second.converted[0].path == first.converted[0].path);
    CHECK_THROWS_WITH(load_images(folder, {7, cache_dir, true}), Catch::Contains("bad.png': not an image"));

    // Another size is another cache file.
    const LoadedImages other_size = load_images(folder, {5, cache_dir, false});
    CHECK(other_size.cache == CacheStatus::written);
    CHECK(other_size.cache_file != first.cache_file);

    // Rewriting one image (new content, later mtime) invalidates the cache.
    const std::string changed = (root / "A" / "a0.png").string();
    testing::write_png(changed, 6, 4, 3, testing::pattern(6, 4, 9));
    fs::last_write_time(changed, fs::last_write_time(changed) + std::chrono::seconds(5));
    const LoadedImages third = load_images(folder, options);
    CHECK(third.cache == CacheStatus::written);
    CHECK(third.decoded == 5);
    CHECK(third.cache_file != first.cache_file);
    CHECK(image_bytes(third, 0) == resize_linear(load_image(changed), 7, 7).rgb);
    CHECK(image_bytes(third, 0) != image_bytes(first, 0));

    // A damaged cache file is noted, ignored and rewritten.
    testing::write_bytes(third.cache_file, "garbage");
    const LoadedImages fourth = load_images(folder, options);
    CHECK(fourth.cache == CacheStatus::written);
    CHECK(fourth.decoded == 5);
    CHECK_THAT(fourth.cache_note, Catch::Contains("ignored an unusable cache file: '" + third.cache_file + "'"));
    CHECK(fourth.images.to_vector() == third.images.to_vector());
    CHECK(load_images(folder, options).cache == CacheStatus::hit);

    // A cache folder that cannot be created costs time, not the load.
    const std::string blocker = (dir.path() / "file").string();
    testing::write_bytes(blocker, "");
    const LoadedImages uncached = load_images(folder, {7, blocker + "/cache", false});
    CHECK(uncached.cache == CacheStatus::unusable);
    CHECK_THAT(uncached.cache_note, Catch::Contains("cannot create cache folder"));
    CHECK(uncached.images.to_vector() == third.images.to_vector());
}

TEST_CASE("load_images on 40 real images, cached, and concatenate", "[data][load_images]") {
    testing::TempDir dir;
    const ImageFolder train = spread_per_class(scan_image_folder(testing::blood_cells_split("TRAIN")), 8);
    const ImageFolder simple = spread_per_class(scan_image_folder(testing::blood_cells_split("TEST_SIMPLE")), 2);
    const LoadOptions options{150, dir.file("cache"), true};
    const LoadedImages a = load_images(train, options);
    const LoadedImages b = load_images(simple, options);
    REQUIRE(a.images.shape() == Shape{32, 150, 150, 3});
    REQUIRE(b.images.shape() == Shape{8, 150, 150, 3});
    CHECK(a.converted.empty());
    CHECK(a.labels.to_vector() == train.labels);
    CHECK(image_bytes(a, 9) == resize_linear(load_image(train.paths[9]), 150, 150).rgb);

    const LoadedImages again = load_images(train, options);
    CHECK(again.cache == CacheStatus::hit);
    CHECK(again.decoded == 0);
    CHECK(again.images.to_vector() == a.images.to_vector());

    const LoadedImages pooled = concatenate({a, b});
    REQUIRE(pooled.images.shape() == Shape{40, 150, 150, 3});
    CHECK(image_bytes(pooled, 33) == image_bytes(b, 1));
    CHECK(pooled.labels.data()[32] == b.labels.data()[0]);
    CHECK(pooled.paths.size() == 40);
    CHECK(pooled.paths[35] == b.paths[3]);
}

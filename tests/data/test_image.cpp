// Image decoding: a real JPEG, PNGs of every channel layout, and bad files
// whose errors name the file and stb_image's reason.

#include <catch2/catch.hpp>

#include <bcnn/data/image.hpp>

#include "data/data_support.hpp"
#include "support/temp_dir.hpp"

using namespace bcnn;
using namespace bcnn::data;

namespace {
const char* kRealImage = "/TRAIN/EOSINOPHIL/_0_1169.jpeg";
}

TEST_CASE("load_image decodes a real blood-cell JPEG to 320x240 RGB", "[data][image]") {
    const Image image = load_image(testing::blood_cells_split("") + kRealImage);
    CHECK(image.width == 320);
    CHECK(image.height == 240);
    CHECK(image.source_channels == 3);
    CHECK_FALSE(image.converted());
    REQUIRE(image.rgb.size() == 320u * 240u * 3u);
    // A stained cell on a light background: neither blank nor saturated.
    long sum = 0;
    for (std::uint8_t v : image.rgb) sum += v;
    const double mean = static_cast<double>(sum) / static_cast<double>(image.rgb.size());
    CHECK(mean > 60);
    CHECK(mean < 230);
}

TEST_CASE("load_image reads PNGs of 1, 2, 3 and 4 channels as RGB and reports the conversion", "[data][image]") {
    testing::TempDir dir;
    const int width = 5, height = 3;
    for (int channels = 1; channels <= 4; ++channels) {
        std::vector<std::uint8_t> pixels(static_cast<std::size_t>(width) * height * channels);
        for (std::size_t i = 0; i < pixels.size(); ++i) pixels[i] = static_cast<std::uint8_t>(i * 11 + channels);
        const std::string path = dir.file("c" + std::to_string(channels) + ".png");
        testing::write_png(path, width, height, channels, pixels);

        const Image image = load_image(path);
        INFO(channels << " channels");
        CHECK(image.width == width);
        CHECK(image.height == height);
        CHECK(image.source_channels == channels);
        CHECK(image.converted() == (channels != 3));
        REQUIRE(image.rgb.size() == static_cast<std::size_t>(width) * height * 3);
        for (int p = 0; p < width * height; ++p) {
            const std::uint8_t* in = &pixels[static_cast<std::size_t>(p) * channels];
            const std::uint8_t* out = &image.rgb[static_cast<std::size_t>(p) * 3];
            if (channels <= 2) {  // grey replicated, alpha dropped
                CHECK((out[0] == in[0] && out[1] == in[0] && out[2] == in[0]));
            } else {  // RGB kept, alpha dropped
                CHECK((out[0] == in[0] && out[1] == in[1] && out[2] == in[2]));
            }
        }
    }
    CHECK(std::string(channels_name(1)) == "grayscale");
    CHECK(std::string(channels_name(2)) == "grey+alpha");
    CHECK(std::string(channels_name(4)) == "RGBA");
}

TEST_CASE("load_image names the file and stb_image's reason for bad files", "[data][image]") {
    testing::TempDir dir;
    const std::string jpeg = testing::read_bytes(testing::blood_cells_split("") + kRealImage);

    const std::string truncated = dir.file("truncated.jpeg");
    testing::write_bytes(truncated, jpeg.substr(0, jpeg.size() / 2));
    CHECK_THROWS_WITH(load_image(truncated),
                      Catch::Contains("'" + truncated + "': cannot decode, corrupt or truncated (stb_image: "));

    const std::string text = dir.file("notes.jpeg");
    testing::write_bytes(text, "not a picture\n");
    CHECK_THROWS_WITH(load_image(text), "'" + text + "': not an image (stb_image: unknown image type)");

    const std::string empty = dir.file("empty.png");
    testing::write_bytes(empty, "");
    CHECK_THROWS_WITH(load_image(empty), "'" + empty + "': empty file");

    const std::string missing = dir.file("missing.png");
    CHECK_THROWS_WITH(load_image(missing), Catch::StartsWith("'" + missing + "': cannot open ("));

    CHECK_THROWS_WITH(decode_image(reinterpret_cast<const std::uint8_t*>(jpeg.data()), 100, "memory.jpeg"),
                      Catch::StartsWith("'memory.jpeg': cannot decode, corrupt or truncated (stb_image: "));
}

// resize_linear against OpenCV's cv2.resize(INTER_LINEAR): bit-exact on a
// synthetic PNG (decoding a PNG is exact, so this is the resize alone), and
// within a stated tolerance on real JPEGs, where stb_image's JPEG decoder and
// OpenCV's libjpeg-turbo differ slightly. Fixtures: fixtures/resize_cv2.txt,
// made by fixtures/make_resize_fixtures.py.

#include <catch2/catch.hpp>

#include <cmath>
#include <cstdlib>
#include <fstream>
#include <sstream>

#include <bcnn/data/resize.hpp>
#include <bcnn/data/sha256.hpp>

#include "data/data_support.hpp"
#include "support/temp_dir.hpp"

using namespace bcnn;
using namespace bcnn::data;

namespace {

std::vector<std::vector<std::string>> fixture_lines(const std::string& kind) {
    const std::string path = testing::fixture_path("resize_cv2.txt");
    std::ifstream in(path);
    if (!in.is_open()) FAIL("cannot open the fixture file '" << path << "'");
    std::vector<std::vector<std::string>> lines;
    std::string line;
    while (std::getline(in, line)) {
        std::istringstream words(line);
        std::vector<std::string> fields;
        for (std::string w; words >> w;) fields.push_back(w);
        if (!fields.empty() && fields[0] == kind) lines.push_back(fields);
    }
    REQUIRE(!lines.empty());
    return lines;
}

// The synthetic image of make_resize_fixtures.py, (height, width, 3).
std::vector<std::uint8_t> synthetic(int width, int height) {
    std::vector<std::uint8_t> image(static_cast<std::size_t>(width) * height * 3);
    for (int y = 0; y < height; ++y)
        for (int x = 0; x < width; ++x) {
            std::uint8_t* p = &image[(static_cast<std::size_t>(y) * width + x) * 3];
            p[0] = static_cast<std::uint8_t>(x * 255 / (width - 1));
            p[1] = static_cast<std::uint8_t>(y * 255 / (height - 1));
            p[2] = static_cast<std::uint8_t>((x * x + 3 * y * y + x * y) % 256);
        }
    return image;
}

std::string sha256_of(const Image& image) { return sha256_hex(image.rgb.data(), image.rgb.size()); }

}  // namespace

TEST_CASE("sha256_hex matches the FIPS 180-4 examples", "[data][resize]") {
    CHECK(sha256_hex("", 0) == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    CHECK(sha256_hex("abc", 3) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    const std::string two_blocks = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
    CHECK(sha256_hex(two_blocks.data(), two_blocks.size()) ==
          "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
}

TEST_CASE("resize_linear on hand-computed images", "[data][resize]") {
    // 4x1 -> 2x1: output x=0 samples source x=0.5, halfway between 10 and 21.
    const std::vector<std::uint8_t> row = {10, 21, 200, 255};
    std::vector<std::uint8_t> out(2);
    resize_linear(row.data(), 4, 1, 1, out.data(), 2, 1);
    CHECK(out == std::vector<std::uint8_t>{16, 228});  // 15.5 -> 16, 227.5 -> 228

    // 1x1 -> 3x2: every output is the one pixel (borders replicate).
    const std::vector<std::uint8_t> pixel = {7, 130, 255};
    std::vector<std::uint8_t> big(3 * 2 * 3);
    resize_linear(pixel.data(), 1, 1, 3, big.data(), 3, 2);
    for (std::size_t i = 0; i < big.size(); ++i) CHECK(big[i] == pixel[i % 3]);

    // Same size: a copy.
    Image image;
    image.width = 4;
    image.height = 3;
    image.rgb = testing::pattern(4, 3);
    CHECK(resize_linear(image, 4, 3).rgb == image.rgb);

    CHECK_THROWS_WITH(resize_linear(row.data(), 4, 1, 1, out.data(), 0, 1),
                      Catch::Contains("resize_linear: cannot resize 4x1x1 to 0x1"));
}

TEST_CASE("resize_linear equals cv2.resize INTER_LINEAR exactly on a synthetic PNG", "[data][resize]") {
    testing::TempDir dir;
    const std::string png = dir.file("synthetic.png");
    testing::write_png(png, 320, 240, 3, synthetic(320, 240));
    const Image decoded = load_image(png);
    REQUIRE(decoded.rgb == synthetic(320, 240));

    for (const auto& fields : fixture_lines("synthetic")) {
        REQUIRE(fields.size() == 6);
        const int width = std::stoi(fields[3]), height = std::stoi(fields[4]);
        INFO("320x240 -> " << width << "x" << height);
        CHECK(sha256_of(resize_linear(decoded, width, height)) == fields[5]);
    }
}

TEST_CASE("load_image + resize_linear is within 3 of cv2.imread + cv2.resize on real JPEGs", "[data][resize]") {
    // Measured on 500 real images: 93.8% of values equal, max |difference| 3,
    // mean |difference| 0.068 (worst image 0.085), all from the JPEG decoders.
    const std::string root = testing::blood_cells_dir();
    const auto reals = fixture_lines("real");
    const auto samples = fixture_lines("samples");
    REQUIRE(reals.size() == samples.size());
    int worst = 0;
    double total = 0;
    std::size_t count = 0, equal = 0;
    for (std::size_t i = 0; i < reals.size(); ++i) {
        const std::string path = root + "/" + reals[i][1];
        INFO(path);
        const std::string bytes = testing::read_bytes(path);
        REQUIRE(sha256_hex(bytes.data(), bytes.size()) == reals[i][2]);  // the very file cv2 read
        const Image resized = resize_linear(load_image(path), 150, 150);

        REQUIRE(samples[i][1] == reals[i][1]);
        const int step = std::stoi(samples[i][2]), offset = std::stoi(samples[i][3]);
        std::size_t field = 4;
        for (int y = offset; y < 150; y += step)
            for (int x = offset; x < 150; x += step)
                for (int c = 0; c < 3; ++c) {
                    REQUIRE(field < samples[i].size());
                    const int expected = std::stoi(samples[i][field++]);
                    const int got = resized.rgb[(static_cast<std::size_t>(y) * 150 + x) * 3 + c];
                    worst = std::max(worst, std::abs(got - expected));
                    total += std::abs(got - expected);
                    equal += got == expected;
                    ++count;
                }
        CHECK(field == samples[i].size());
    }
    const double mean = total / static_cast<double>(count);
    INFO(count << " values: max |difference| " << worst << ", mean " << mean << ", equal "
               << static_cast<double>(equal) / static_cast<double>(count));
    CHECK(worst <= 3);
    CHECK(mean <= 0.12);
    CHECK(static_cast<double>(equal) / static_cast<double>(count) >= 0.9);
}

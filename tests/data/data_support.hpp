#pragma once
// Helpers for the data tests: where the real blood-cell images are, and small
// images of our own written as PNG files (stb_image_write, compiled static
// into each test file that includes this header).

#include <catch2/catch.hpp>

#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#define STB_IMAGE_WRITE_STATIC
#define STB_IMAGE_WRITE_IMPLEMENTATION
#if defined(__GNUC__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-function"
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"
#pragma GCC diagnostic ignored "-Wsign-compare"
#endif
#include <stb_image_write.h>
#if defined(__GNUC__)
#pragma GCC diagnostic pop
#endif

namespace bcnn {
namespace testing {

// The read-only blood-cell data: $BCNN_BLOOD_CELLS_DIR, else the compile
// definition BCNN_BLOOD_CELLS_DIR, else ../shared/data/blood-cells beside the
// source tree, found from __FILE__ (absolute when the include path is, as in
// the CMake build). Fails the test (never skips it) when the images are not there.
inline std::string blood_cells_dir() {
    namespace fs = std::filesystem;
    std::string dir;
    const char* env = std::getenv("BCNN_BLOOD_CELLS_DIR");
    if (env && *env) {
        dir = env;
    } else {
#ifdef BCNN_BLOOD_CELLS_DIR
        dir = BCNN_BLOOD_CELLS_DIR;
#else
        dir = (fs::path(__FILE__).parent_path() / ".." / ".." / ".." / "shared" / "data" / "blood-cells").lexically_normal().string();
#endif
    }
    if (!fs::is_directory(fs::path(dir) / "dataset2-master" / "images"))
        FAIL("the blood-cell images are not at '" << dir
                                                  << "' (expected dataset2-master/images inside); set BCNN_BLOOD_CELLS_DIR");
    return dir;
}

inline std::string blood_cells_split(const std::string& split) {
    return blood_cells_dir() + "/dataset2-master/images/" + split;
}

// A file of tests/data/fixtures.
inline std::string fixture_path(const std::string& name) {
    return (std::filesystem::path(__FILE__).parent_path() / "fixtures" / name).string();
}

// Writes `pixels` (height, width, channels) as a PNG file.
inline void write_png(const std::string& path, int width, int height, int channels, const std::vector<std::uint8_t>& pixels) {
    REQUIRE(pixels.size() == static_cast<std::size_t>(width) * height * channels);
    REQUIRE(stbi_write_png(path.c_str(), width, height, channels, pixels.data(), width * channels) != 0);
}

inline void write_bytes(const std::string& path, const std::string& bytes) {
    std::ofstream out(path, std::ios::binary);
    out << bytes;
    REQUIRE(out.good());
}

inline std::string read_bytes(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    REQUIRE(in.is_open());
    return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

// A small RGB test pattern whose pixels all differ, `seed` varying it.
inline std::vector<std::uint8_t> pattern(int width, int height, int seed = 0) {
    std::vector<std::uint8_t> pixels(static_cast<std::size_t>(width) * height * 3);
    for (std::size_t i = 0; i < pixels.size(); ++i) pixels[i] = static_cast<std::uint8_t>((i * 37 + seed * 101) % 256);
    return pixels;
}

}  // namespace testing
}  // namespace bcnn

#pragma once
// Test support: decode a PNG written by the library (stb_image, compiled
// here with internal linkage) into 8-bit RGB pixels.

#include <cstdint>
#include <string>
#include <vector>

#if defined(__GNUC__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-function"
#endif
#define STB_IMAGE_STATIC
#define STB_IMAGE_IMPLEMENTATION
#include <stb_image.h>
#undef STB_IMAGE_IMPLEMENTATION
#if defined(__GNUC__)
#pragma GCC diagnostic pop
#endif

#include <bcnn/core/error.hpp>
#include <bcnn/report/canvas.hpp>

namespace bcnn {
namespace testing {

struct DecodedImage {
    int width = 0, height = 0, channels = 0;  // channels: as stored in the file
    std::vector<std::uint8_t> rgb;

    report::Color at(int x, int y) const {
        BCNN_CHECK(x >= 0 && x < width && y >= 0 && y < height, "DecodedImage::at: (" << x << ", " << y << ") outside");
        const std::uint8_t* p = &rgb[(static_cast<std::size_t>(y) * width + x) * 3];
        return {p[0], p[1], p[2]};
    }

    // How many pixels inside the rectangle have exactly this colour.
    int count(const report::Rect& r, report::Color c) const {
        int n = 0;
        for (int y = r.y; y < r.bottom(); ++y)
            for (int x = r.x; x < r.right(); ++x) n += at(x, y) == c;
        return n;
    }
};

inline DecodedImage read_png(const std::string& path) {
    DecodedImage image;
    stbi_uc* data = stbi_load(path.c_str(), &image.width, &image.height, &image.channels, 3);
    BCNN_CHECK(data != nullptr, "read_png: cannot decode '" << path << "': " << stbi_failure_reason());
    image.rgb.assign(data, data + static_cast<std::size_t>(image.width) * image.height * 3);
    stbi_image_free(data);
    return image;
}

}  // namespace testing
}  // namespace bcnn

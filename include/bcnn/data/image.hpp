#pragma once
// Image decoding: JPEG and PNG files (stb_image) to 8-bit RGB, rows top to
// bottom, pixels interleaved (HWC). Grayscale, grey+alpha and RGBA files are
// converted to RGB (grey replicated, alpha dropped, as OpenCV's imread does)
// and the conversion is reported in Image::source_channels, so a caller can
// count it and name the file.

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <limits>
#include <memory>
#include <string>
#include <vector>

#include "bcnn/core/error.hpp"
#include "bcnn/data/stb_image_impl.hpp"

namespace bcnn {
namespace data {

struct Image {
    int width = 0, height = 0;
    std::vector<std::uint8_t> rgb;  // (height, width, 3)
    int source_channels = 3;        // 1 grey, 2 grey+alpha, 3 RGB, 4 RGBA in the file

    bool converted() const { return source_channels != 3; }
};

// "grayscale", "grey+alpha", "RGB" or "RGBA": how a file stored its pixels.
inline const char* channels_name(int channels) {
    switch (channels) {
        case 1: return "grayscale";
        case 2: return "grey+alpha";
        case 3: return "RGB";
        case 4: return "RGBA";
        default: return "unknown channels";
    }
}

namespace detail {

// Decodes `size` bytes into `image`. Returns "" on success, otherwise why not
// (without the file name), e.g. "not an image (stb_image: unknown image type)".
inline std::string decode_into(const std::uint8_t* bytes, std::size_t size, Image& image) {
    if (size == 0) return "empty file";
    if (size > static_cast<std::size_t>(std::numeric_limits<int>::max())) return "file too large for stb_image (over 2 GiB)";
    int width = 0, height = 0, channels = 0;
    std::unique_ptr<stbi_uc, void (*)(void*)> pixels(
        stbi_load_from_memory(bytes, static_cast<int>(size), &width, &height, &channels, 3), &stbi_image_free);
    if (!pixels) {
        const std::string reason = stbi_failure_reason() ? stbi_failure_reason() : "unknown error";
        if (reason == "unknown image type") return "not an image (stb_image: " + reason + ")";
        return "cannot decode, corrupt or truncated (stb_image: " + reason + ")";
    }
    image.width = width;
    image.height = height;
    image.source_channels = channels;
    image.rgb.assign(pixels.get(), pixels.get() + static_cast<std::size_t>(width) * height * 3);
    return "";
}

// Reads a whole file into `bytes`. Returns "" on success, otherwise why not.
inline std::string read_file_bytes(const std::string& path, std::vector<std::uint8_t>& bytes) {
    std::ifstream in(path, std::ios::binary | std::ios::ate);
    if (!in.is_open()) return std::string("cannot open (") + std::strerror(errno) + ")";
    const std::streamoff size = in.tellg();
    if (size < 0) return "cannot read (not a regular file?)";
    bytes.resize(static_cast<std::size_t>(size));
    in.seekg(0);
    if (size > 0 && !in.read(reinterpret_cast<char*>(bytes.data()), size)) return "read error";
    return "";
}

// Reads and decodes one file; returns "" or the reason it failed.
inline std::string load_image_into(const std::string& path, Image& image) {
    std::vector<std::uint8_t> bytes;
    std::string reason = read_file_bytes(path, bytes);
    return reason.empty() ? decode_into(bytes.data(), bytes.size(), image) : reason;
}

}  // namespace detail

// Decodes an image held in memory; `name` (a file name) appears in errors.
inline Image decode_image(const std::uint8_t* bytes, std::size_t size, const std::string& name) {
    Image image;
    const std::string reason = detail::decode_into(bytes, size, image);
    BCNN_CHECK(reason.empty(), "'" << name << "': " << reason);
    return image;
}

// Reads and decodes a JPEG or PNG file. Throws bcnn::Error naming the file:
//   'x.jpeg': not an image (stb_image: unknown image type)
inline Image load_image(const std::string& path) {
    Image image;
    const std::string reason = detail::load_image_into(path, image);
    BCNN_CHECK(reason.empty(), "'" << path << "': " << reason);
    return image;
}

}  // namespace data
}  // namespace bcnn

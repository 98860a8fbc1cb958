#pragma once
// The decoded-image cache: a data set decoded and resized once is kept on disk
// as a safetensors file (uint8 images (N, S, S, 3), int32 labels (N)), so the
// next run with the same files loads it instead of decoding JPEGs again.
//
// The file is named by the SHA-256 of a manifest listing everything the
// decoded pixels depend on: the format and resize versions, the target size,
// the class names in order, and for each file its path relative to the
// folder root, its size in bytes and its modification time (ns). Any changed,
// added or removed file, another size or another resize gives another name;
// moving the whole folder elsewhere does not. Files that could not be decoded
// and images converted to RGB are kept in the metadata, so a cached load
// reports them exactly as the first one did. Writes are atomic
// (io/atomic_file.hpp): a reader never sees half a cache file.

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <set>
#include <sstream>
#include <string>
#include <system_error>
#include <vector>

#include "bcnn/core/tensor.hpp"
#include "bcnn/data/image_folder.hpp"
#include "bcnn/data/resize.hpp"
#include "bcnn/data/sha256.hpp"
#include "bcnn/io/safetensors.hpp"

namespace bcnn {
namespace data {

constexpr int kImageCacheFormat = 1;

// One entry of a load report: a file and what happened to it.
struct FileNote {
    std::string path;    // as in ImageFolder::paths
    std::string reason;  // why it was skipped, or how it was converted
};

// What a cache file holds, and what a fresh decode produces.
struct DecodedSet {
    Tensor<std::uint8_t> images;        // (N, S, S, 3)
    Tensor<std::int32_t> labels;        // (N)
    std::vector<std::size_t> kept;      // for each image, its index in the folder
    std::vector<FileNote> failures;     // files that could not be read or decoded
    std::vector<FileNote> converted;    // images converted to RGB ("grayscale", "RGBA", ...)
};

namespace detail {

inline std::string relative_to_root(const ImageFolder& folder, const std::string& path) {
    return std::filesystem::path(path).lexically_relative(folder.root).generic_string();
}

// "rel\treason\n" lines <-> notes, paths relative to the folder root.
inline std::string encode_notes(const ImageFolder& folder, const std::vector<FileNote>& notes) {
    std::string text;
    for (const FileNote& note : notes) text += relative_to_root(folder, note.path) + '\t' + note.reason + '\n';
    return text;
}

inline std::vector<FileNote> decode_notes(const ImageFolder& folder, const std::string& text) {
    std::vector<FileNote> notes;
    std::istringstream in(text);
    std::string line;
    while (std::getline(in, line)) {
        const std::size_t tab = line.find('\t');
        BCNN_CHECK(tab != std::string::npos, "malformed note line \"" << line << "\"");
        notes.push_back({(std::filesystem::path(folder.root) / line.substr(0, tab)).string(), line.substr(tab + 1)});
    }
    return notes;
}

}  // namespace detail

// The manifest text that keys the cache (see the top of this file).
inline std::string image_cache_manifest(const ImageFolder& folder, int size) {
    std::ostringstream out;
    out << "bcnn image cache " << kImageCacheFormat << "\ndecoder stb_image-2.27 jpeg png, rgb\nresize opencv-inter-linear-u8 "
        << kResizeVersion << "\nsize " << size << "\n";
    for (const std::string& name : folder.class_names) out << "class " << name << "\n";
    for (std::size_t i = 0; i < folder.size(); ++i) {
        std::error_code size_error, time_error;
        const auto bytes = std::filesystem::file_size(folder.paths[i], size_error);
        const auto mtime = std::filesystem::last_write_time(folder.paths[i], time_error);
        out << "file " << folder.labels[i] << '\t' << detail::relative_to_root(folder, folder.paths[i]) << '\t';
        if (size_error || time_error)
            out << "unreadable\n";
        else
            out << bytes << '\t' << std::chrono::duration_cast<std::chrono::nanoseconds>(mtime.time_since_epoch()).count() << "\n";
    }
    return out.str();
}

// The cache file for `folder` at `size` inside `cache_dir`.
inline std::string image_cache_path(const std::string& cache_dir, const std::string& manifest_sha256) {
    return (std::filesystem::path(cache_dir) / ("images-" + manifest_sha256.substr(0, 32) + ".safetensors")).string();
}

// Writes `set` atomically to `path`, creating the folder if needed.
inline void write_image_cache(const std::string& path, const std::string& manifest_sha256, const ImageFolder& folder,
                              const DecodedSet& set) {
    std::error_code error;
    const auto dir = std::filesystem::path(path).parent_path();
    if (!dir.empty()) std::filesystem::create_directories(dir, error);
    BCNN_CHECK(!error, "cannot create cache folder '" << dir.string() << "': " << error.message());
    io::save_safetensors(path, {io::named_tensor("images", set.images), io::named_tensor("labels", set.labels)},
                         {{"format", "bcnn-image-cache"},
                          {"manifest_sha256", manifest_sha256},
                          {"failures", detail::encode_notes(folder, set.failures)},
                          {"converted", detail::encode_notes(folder, set.converted)}});
}

// Reads a cache file written for the same manifest. Throws bcnn::Error, naming
// the file, when it is unreadable or does not fit `folder` and `size`.
inline DecodedSet read_image_cache(const std::string& path, const std::string& manifest_sha256, const ImageFolder& folder,
                                   int size) {
    const io::SafetensorsFile file = io::SafetensorsFile::open(path);
    const auto& meta = file.metadata();
    const auto field = [&](const char* key) -> const std::string& {
        const auto it = meta.find(key);
        BCNN_CHECK(it != meta.end(), "cache file '" << path << "' has no \"" << key << "\" metadata");
        return it->second;
    };
    BCNN_CHECK(field("format") == "bcnn-image-cache" && field("manifest_sha256") == manifest_sha256,
               "cache file '" << path << "' was written for other files");
    DecodedSet set;
    set.failures = detail::decode_notes(folder, field("failures"));
    set.converted = detail::decode_notes(folder, field("converted"));
    const auto count = static_cast<Index>(folder.size() - set.failures.size());
    set.images = file.tensor<std::uint8_t>("images", Shape{count, size, size, 3});
    set.labels = file.tensor<std::int32_t>("labels", Shape{count});

    // The kept images are the folder's files minus the failures, in order.
    std::set<std::string> failed;
    for (const FileNote& note : set.failures) failed.insert(detail::relative_to_root(folder, note.path));
    for (std::size_t i = 0; i < folder.size(); ++i)
        if (!failed.count(detail::relative_to_root(folder, folder.paths[i]))) set.kept.push_back(i);
    BCNN_CHECK(static_cast<Index>(set.kept.size()) == count, "cache file '" << path << "' lists unknown failed files");
    for (Index i = 0; i < count; ++i)
        BCNN_CHECK(set.labels.data()[i] == folder.labels[set.kept[static_cast<std::size_t>(i)]],
                   "cache file '" << path << "' has the wrong label for image " << i);
    return set;
}

}  // namespace data
}  // namespace bcnn

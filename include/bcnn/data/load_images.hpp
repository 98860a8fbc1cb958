#pragma once
// Loads a whole ImageFolder into memory as the original study did (decode,
// RGB, bilinear resize to size x size), but once: images are decoded in
// parallel (OpenMP, one image per iteration) and the result is kept in the
// decoded-image cache (image_cache.hpp), so the next load of the same files
// decodes nothing.
//
// Bad data never crashes a load: a file that cannot be read or decoded is
// left out and listed in `failures` with its reason (or, with strict, the
// load throws bcnn::Error naming it); grayscale, grey+alpha and RGBA images
// are converted to RGB and listed in `converted`. A cache that cannot be
// read or written only costs time, and `cache_note` says why.

#include <chrono>
#include <cstdint>
#include <cstring>
#include <exception>
#include <sstream>
#include <string>
#include <vector>

#include "bcnn/core/parallel.hpp"
#include "bcnn/core/tensor.hpp"
#include "bcnn/data/image.hpp"
#include "bcnn/data/image_cache.hpp"
#include "bcnn/data/image_folder.hpp"
#include "bcnn/data/resize.hpp"

namespace bcnn {
namespace data {

struct LoadOptions {
    int size = 150;         // images become size x size x 3
    std::string cache_dir;  // where the decoded-image cache lives; empty: no cache
    bool strict = false;    // an unreadable file is an error instead of being skipped
};

enum class CacheStatus {
    disabled,  // no cache_dir
    hit,       // loaded from the cache; nothing decoded
    written,   // decoded, then cached
    unusable,  // decoded; the cache could not be written (see cache_note)
};

struct LoadedImages {
    Tensor<std::uint8_t> images;  // (N, size, size, 3), RGB
    Tensor<std::int32_t> labels;  // (N)
    std::vector<std::string> paths;
    std::vector<std::string> class_names;
    std::vector<FileNote> failures;   // skipped: could not be read or decoded
    std::vector<FileNote> converted;  // converted to RGB from what the file held
    std::size_t decoded = 0;          // files decoded by this load (0 on a cache hit)
    CacheStatus cache = CacheStatus::disabled;
    std::string cache_file;
    std::string cache_note;  // why the cache could not be used, or ""
    double seconds = 0;

    Index size() const { return images.defined() ? images.dim(0) : 0; }
};

// "'a.jpeg': not an image (...); 'b.png': ...", the first `named` notes.
inline std::string list_notes(const std::vector<FileNote>& notes, std::size_t named = 5) {
    std::ostringstream out;
    for (std::size_t i = 0; i < notes.size() && i < named; ++i)
        out << (i ? "; " : "") << "'" << notes[i].path << "': " << notes[i].reason;
    if (notes.size() > named) out << "; ...";
    return out.str();
}

// "skipped 2 images: 'a.jpeg': not an image (...); ..." for verb "skipped", or "".
inline std::string notes_summary(const std::vector<FileNote>& notes, const std::string& verb, std::size_t named = 5) {
    if (notes.empty()) return "";
    return verb + " " + std::to_string(notes.size()) + (notes.size() == 1 ? " image: " : " images: ") +
           list_notes(notes, named);
}

namespace detail {

// Decodes every file of `folder` into a (N, size, size, 3) tensor, in parallel.
inline DecodedSet decode_folder(const ImageFolder& folder, int size) {
    const auto n = static_cast<Index>(folder.size());
    const std::size_t image_bytes = static_cast<std::size_t>(size) * size * 3;
    Tensor<std::uint8_t> all = Tensor<std::uint8_t>::uninitialized(Shape{n, size, size, 3});
    std::vector<std::string> reasons(folder.size());
    std::vector<int> source_channels(folder.size(), 3);

    parallel_for(0, n, [&](Index i) {
        const auto k = static_cast<std::size_t>(i);
        try {
            Image image;
            reasons[k] = load_image_into(folder.paths[k], image);
            if (!reasons[k].empty()) return;
            source_channels[k] = image.source_channels;
            std::uint8_t* slot = all.data() + k * image_bytes;
            if (image.width == size && image.height == size)
                std::memcpy(slot, image.rgb.data(), image_bytes);
            else
                resize_linear(image.rgb.data(), image.width, image.height, 3, slot, size, size);
        } catch (const std::exception& e) {
            reasons[k] = e.what();
        }
    });

    DecodedSet set;
    for (std::size_t k = 0; k < folder.size(); ++k) {
        if (!reasons[k].empty()) {
            set.failures.push_back({folder.paths[k], reasons[k]});
            continue;
        }
        if (source_channels[k] != 3)
            set.converted.push_back({folder.paths[k], std::string("converted to RGB from ") + channels_name(source_channels[k])});
        if (set.kept.size() != k)  // close the gaps left by failures
            std::memmove(all.data() + set.kept.size() * image_bytes, all.data() + k * image_bytes, image_bytes);
        set.kept.push_back(k);
    }
    const auto kept = static_cast<Index>(set.kept.size());
    set.images = all.slice(0, 0, kept);
    set.labels = Tensor<std::int32_t>::uninitialized(Shape{kept});
    for (Index i = 0; i < kept; ++i) set.labels.data()[i] = folder.labels[set.kept[static_cast<std::size_t>(i)]];
    return set;
}

}  // namespace detail

inline LoadedImages load_images(const ImageFolder& folder, const LoadOptions& options = {}) {
    BCNN_CHECK(options.size >= 1, "load_images: size must be >= 1, got " << options.size);
    BCNN_CHECK(folder.paths.size() == folder.labels.size(),
               "load_images: " << folder.paths.size() << " paths but " << folder.labels.size() << " labels");
    const auto start = std::chrono::steady_clock::now();
    LoadedImages loaded;
    loaded.class_names = folder.class_names;

    DecodedSet set;
    bool have_set = false;
    std::string manifest_sha256;
    if (!options.cache_dir.empty()) {
        const std::string manifest = image_cache_manifest(folder, options.size);
        manifest_sha256 = sha256_hex(manifest.data(), manifest.size());
        loaded.cache_file = image_cache_path(options.cache_dir, manifest_sha256);
        std::error_code error;
        if (std::filesystem::exists(loaded.cache_file, error)) {
            try {
                set = read_image_cache(loaded.cache_file, manifest_sha256, folder, options.size);
                have_set = true;
                loaded.cache = CacheStatus::hit;
            } catch (const Error& e) {
                loaded.cache_note = std::string("ignored an unusable cache file: ") + e.what();
            }
        }
    }
    if (!have_set) {
        set = detail::decode_folder(folder, options.size);
        loaded.decoded = folder.size();
    }

    BCNN_CHECK(!(options.strict && !set.failures.empty()),
               "cannot load '" << folder.root << "' in strict mode: " << set.failures.size() << " unreadable image"
                               << (set.failures.size() == 1 ? "" : "s") << ": " << list_notes(set.failures));
    BCNN_CHECK(!set.kept.empty(), "no image of '" << folder.root << "' could be loaded: " << list_notes(set.failures));

    if (!options.cache_dir.empty() && !have_set) {
        try {
            write_image_cache(loaded.cache_file, manifest_sha256, folder, set);
            loaded.cache = CacheStatus::written;
        } catch (const Error& e) {
            loaded.cache = CacheStatus::unusable;
            loaded.cache_note += (loaded.cache_note.empty() ? "" : "; ") + std::string("cannot write the cache: ") + e.what();
        }
    }

    loaded.images = set.images;
    loaded.labels = set.labels;
    for (std::size_t k : set.kept) loaded.paths.push_back(folder.paths[k]);
    loaded.failures = std::move(set.failures);
    loaded.converted = std::move(set.converted);
    loaded.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    return loaded;
}

// The sets one after the other (e.g. TRAIN and TEST pooled for the study's
// protocol). Class names and image sizes must agree.
inline LoadedImages concatenate(const std::vector<LoadedImages>& sets) {
    BCNN_CHECK(!sets.empty(), "concatenate: no image sets given");
    LoadedImages out;
    out.class_names = sets[0].class_names;
    const Shape& first = sets[0].images.shape();
    Index total = 0;
    for (const LoadedImages& s : sets) {
        BCNN_CHECK(s.class_names == out.class_names, "concatenate: image sets have different class names");
        BCNN_CHECK(s.images.dim(1) == first[1] && s.images.dim(2) == first[2] && s.images.dim(3) == first[3],
                   "concatenate: images of shape " << s.images.shape() << " and " << first << " differ in size");
        total += s.size();
    }
    out.images = Tensor<std::uint8_t>::uninitialized(Shape{total, first[1], first[2], first[3]});
    out.labels = Tensor<std::int32_t>::uninitialized(Shape{total});
    Index at = 0;
    for (const LoadedImages& s : sets) {
        out.images.slice(0, at, at + s.size()).copy_from(s.images);
        out.labels.slice(0, at, at + s.size()).copy_from(s.labels);
        at += s.size();
        out.paths.insert(out.paths.end(), s.paths.begin(), s.paths.end());
        out.failures.insert(out.failures.end(), s.failures.begin(), s.failures.end());
        out.converted.insert(out.converted.end(), s.converted.begin(), s.converted.end());
        out.decoded += s.decoded;
        out.seconds += s.seconds;
    }
    return out;
}

}  // namespace data
}  // namespace bcnn

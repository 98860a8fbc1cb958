#pragma once
// ImageFolder: a labelled image set laid out as root/CLASS/file, one folder
// per class (the layout of the blood-cell data and of Keras'
// image_dataset_from_directory). Files ending in .jpg, .jpeg or .png (any
// case) are images; any other entry of a class folder (a readme, a
// sub-folder) is skipped and listed. Samples are ordered by class, then by
// path, so the order never depends on the file system.

#include <algorithm>
#include <cctype>
#include <cstdint>
#include <filesystem>
#include <sstream>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

#include "bcnn/core/error.hpp"

namespace bcnn {
namespace data {

struct ImageFolder {
    std::string root;
    std::vector<std::string> class_names;  // label i is class_names[i]
    std::vector<std::string> paths;        // root/CLASS/file
    std::vector<std::int32_t> labels;      // one per path
    std::vector<std::string> skipped;      // entries that are not images (folders end in '/')

    std::size_t size() const { return paths.size(); }

    // "skipped 1 non-image file: root/EOS/readme.txt" (the first few named), or "".
    std::string skipped_summary(std::size_t named = 5) const {
        if (skipped.empty()) return "";
        std::ostringstream out;
        out << "skipped " << skipped.size() << " non-image file" << (skipped.size() == 1 ? "" : "s") << ": ";
        for (std::size_t i = 0; i < skipped.size() && i < named; ++i) out << (i ? ", " : "") << skipped[i];
        if (skipped.size() > named) out << ", ...";
        return out.str();
    }
};

// True for names ending in .jpg, .jpeg or .png, in any case.
inline bool has_image_extension(const std::string& name) {
    std::string ext = std::filesystem::path(name).extension().string();
    std::transform(ext.begin(), ext.end(), ext.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    return ext == ".jpg" || ext == ".jpeg" || ext == ".png";
}

namespace detail {

// The entries of a folder as (path, is_folder); bcnn::Error naming it on failure.
inline std::vector<std::pair<std::string, bool>> list_folder(const std::filesystem::path& dir) {
    namespace fs = std::filesystem;
    std::vector<std::pair<std::string, bool>> entries;
    std::error_code error;
    fs::directory_iterator it(dir, error);
    for (; !error && it != fs::directory_iterator(); it.increment(error)) {
        std::error_code ignored;  // an entry that vanished or cannot be stat'ed counts as a file
        entries.emplace_back(it->path().string(), it->is_directory(ignored));
    }
    BCNN_CHECK(!error, "cannot list folder '" << dir.string() << "': " << error.message());
    return entries;
}

}  // namespace detail

// Scans root/CLASS/*. `class_names` fixes the classes and their order (label
// i = class_names[i]); empty means every sub-folder of root, sorted by name.
// Throws bcnn::Error naming the folder when root or a class folder is missing
// or a class folder holds no image.
inline ImageFolder scan_image_folder(const std::string& root, std::vector<std::string> class_names = {}) {
    namespace fs = std::filesystem;
    std::error_code error;
    BCNN_CHECK(fs::is_directory(root, error), "image folder '" << root << "' does not exist or is not a folder");
    if (class_names.empty()) {
        for (const auto& [path, is_folder] : detail::list_folder(root))
            if (is_folder) class_names.push_back(fs::path(path).filename().string());
        std::sort(class_names.begin(), class_names.end());
        BCNN_CHECK(!class_names.empty(), "image folder '" << root << "' has no class sub-folders");
    }

    ImageFolder folder;
    folder.root = root;
    folder.class_names = class_names;
    for (std::size_t label = 0; label < class_names.size(); ++label) {
        const fs::path class_dir = fs::path(root) / class_names[label];
        BCNN_CHECK(fs::is_directory(class_dir, error),
                   "class folder '" << class_dir.string() << "' does not exist or is not a folder");
        std::vector<std::string> images;
        for (const auto& [path, is_folder] : detail::list_folder(class_dir)) {
            if (is_folder)
                folder.skipped.push_back(path + "/");
            else if (has_image_extension(path))
                images.push_back(path);
            else
                folder.skipped.push_back(path);
        }
        BCNN_CHECK(!images.empty(), "class folder '" << class_dir.string() << "' holds no images (.jpg, .jpeg, .png)");
        std::sort(images.begin(), images.end());
        for (const std::string& path : images) {
            folder.paths.push_back(path);
            folder.labels.push_back(static_cast<std::int32_t>(label));
        }
    }
    std::sort(folder.skipped.begin(), folder.skipped.end());
    return folder;
}

// `count` images of each class (all of a smaller class), evenly spaced over
// the class's files in order (of n files, those at floor(j * n / count)):
// a small, balanced subset for quick runs and tests that still covers the
// whole class, not just its first files (the blood-cell files of one source
// image sort together).
inline ImageFolder spread_per_class(const ImageFolder& folder, std::size_t count) {
    std::vector<std::vector<std::size_t>> members(folder.class_names.size());
    for (std::size_t i = 0; i < folder.size(); ++i) members[static_cast<std::size_t>(folder.labels[i])].push_back(i);
    ImageFolder subset = folder;
    subset.paths.clear();
    subset.labels.clear();
    for (const auto& files : members) {
        const std::size_t take = std::min(count, files.size());
        for (std::size_t j = 0; j < take; ++j) {
            const std::size_t i = files[j * files.size() / take];
            subset.paths.push_back(folder.paths[i]);
            subset.labels.push_back(folder.labels[i]);
        }
    }
    return subset;
}

}  // namespace data
}  // namespace bcnn

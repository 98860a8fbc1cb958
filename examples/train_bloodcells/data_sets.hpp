#pragma once
// The data of one run, by protocol:
//   held-out (default): TRAIN split 90/10 (stratified) into training and
//     validation; tested on TEST and on TEST_SIMPLE, whose source images
//     never appear in TRAIN.
//   pooled (the original study's): TRAIN and TEST pooled, shuffled and split
//     80/10/10; its test set shares source images with training.

#include <filesystem>
#include <string>
#include <vector>

#include <bcnn/data/image_folder.hpp>
#include <bcnn/data/load_images.hpp>
#include <bcnn/data/split.hpp>

#include "options.hpp"

namespace bloodcells {

using bcnn::Index;

inline const std::vector<std::string>& class_names() {
    static const std::vector<std::string> names{"EOSINOPHIL", "LYMPHOCYTE", "MONOCYTE", "NEUTROPHIL"};
    return names;
}

// A set of images and which of them form this part.
struct Part {
    std::string name;
    std::string caveat;  // what the figure on this part does and does not show
    bcnn::data::LoadedImages images;
    std::vector<Index> indices;
};

struct DataSets {
    Part train, validation;
    std::vector<Part> tests;
    std::vector<std::string> notes;  // what loading skipped, converted or cached
};

// The folder holding TRAIN/TEST/TEST_SIMPLE: `data` itself, or data/dataset2-master/images.
inline std::string images_root(const std::string& data) {
    namespace fs = std::filesystem;
    for (const fs::path& candidate : {fs::path(data), fs::path(data) / "dataset2-master" / "images"})
        if (fs::is_directory(candidate / "TRAIN")) return candidate.string();
    throw bcnn::Error("data folder '" + data + "' holds neither TRAIN/ nor dataset2-master/images/TRAIN/");
}

namespace detail {

inline bcnn::data::LoadedImages load_split(const std::string& root, const std::string& split, const Options& options,
                                           std::vector<std::string>& notes) {
    bcnn::data::ImageFolder folder = bcnn::data::scan_image_folder(root + "/" + split, class_names());
    if (options.limit_per_class > 0)
        folder = bcnn::data::spread_per_class(folder, static_cast<std::size_t>(options.limit_per_class));
    bcnn::data::LoadOptions load;
    load.size = options.image_size;
    load.cache_dir = cache_folder(options);
    load.strict = options.strict;
    bcnn::data::LoadedImages loaded = bcnn::data::load_images(folder, load);
    std::string line = split + ": " + std::to_string(loaded.size()) + " images";
    line += loaded.cache == bcnn::data::CacheStatus::hit ? " (from the decoded-image cache)" : " (decoded)";
    notes.push_back(line);
    for (const std::string& extra :
         {folder.skipped_summary(), bcnn::data::notes_summary(loaded.failures, "skipped"),
          bcnn::data::notes_summary(loaded.converted, "converted"), loaded.cache_note})
        if (!extra.empty()) notes.push_back(split + ": " + extra);
    return loaded;
}

inline std::vector<Index> all_indices(const bcnn::data::LoadedImages& images) {
    std::vector<Index> out(static_cast<std::size_t>(images.size()));
    for (Index i = 0; i < images.size(); ++i) out[static_cast<std::size_t>(i)] = i;
    return out;
}

inline std::vector<std::int32_t> labels_of(const bcnn::data::LoadedImages& images) {
    return std::vector<std::int32_t>(images.labels.data(), images.labels.data() + images.size());
}

// Every part must hold images: a split of too few (e.g. a small --limit) is an error naming the part.
inline void require_images(const DataSets& sets, const Options& options) {
    std::vector<const Part*> parts{&sets.train, &sets.validation};
    for (const Part& test : sets.tests) parts.push_back(&test);
    for (const Part* part : parts)
        BCNN_CHECK(!part->indices.empty(),
                   "the " << part->name << " part holds no images"
                          << (options.limit_per_class > 0
                                  ? " (--limit " + std::to_string(options.limit_per_class) + " leaves too few to split)"
                                  : std::string()));
}

}  // namespace detail

inline DataSets load_data_sets(const Options& options) {
    const std::string root = images_root(options.data);
    DataSets sets;
    if (options.protocol == Protocol::held_out) {
        const auto train = detail::load_split(root, "TRAIN", options, sets.notes);
        const auto parts = bcnn::data::stratified_split(detail::labels_of(train), {0.9, 0.1}, options.seed);
        sets.train = {"train (90% of TRAIN)", "", train, parts[0]};
        sets.validation = {"validation (10% of TRAIN)",
                           "shares source images with training (TRAIN's augmented copies), so it is optimistic", train,
                           parts[1]};
        const auto test = detail::load_split(root, "TEST", options, sets.notes);
        const auto simple = detail::load_split(root, "TEST_SIMPLE", options, sets.notes);
        sets.tests.push_back({"TEST", "augmented images of 71 source images never seen in training", test,
                              detail::all_indices(test)});
        sets.tests.push_back({"TEST_SIMPLE", "the 71 held-out source images themselves, plainly resized", simple,
                              detail::all_indices(simple)});
    } else {
        const auto pool = bcnn::data::concatenate({detail::load_split(root, "TRAIN", options, sets.notes),
                                                   detail::load_split(root, "TEST", options, sets.notes)});
        const auto parts = bcnn::data::shuffled_split(pool.size(), {0.8, 0.1, 0.1}, options.seed);
        sets.train = {"train (80% of TRAIN+TEST)", "", pool, parts[0]};
        sets.validation = {"validation (10% of TRAIN+TEST)", "shares source images with training", pool, parts[1]};
        sets.tests.push_back({"pooled test (10% of TRAIN+TEST)",
                              "shares source images with training (augmented copies of the same cells): it measures "
                              "memorisation as much as generalisation; compare the held-out protocol",
                              pool, parts[2]});
    }
    detail::require_images(sets, options);
    return sets;
}

}  // namespace bloodcells

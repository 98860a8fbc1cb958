#pragma once
// The frozen backbone's features of every image a run uses, computed once.
// With the whole backbone frozen and no augmentation, an image's features are
// the same in every epoch, so the program computes them in one pass
// (inference mode, batch by batch, preprocessing applied as the loader
// prepares each batch) and then trains and scores only the head on them
// (nn::SequentialTail): ten epochs cost about one backbone forward pass over
// the data. Features are (N, h, w, C) float, indexed like the images, so the
// parts (train, validation, tests) keep their indices, and loaders over
// features serve the same batches in the same orders as loaders over images.
// Memory: N * h * w * C * 4 bytes, e.g. 4 x 4 x 1920 floats (123 KB) per
// image for DenseNet201 at 150x150 (1.5 GB for the 12,444 images of
// TRAIN + TEST + TEST_SIMPLE).
//
// On disk: with the cache folder (the decoded-image cache's; none with
// --no-cache) each image set's features are also kept in
//   features-<model>-<first 32 hex of the manifest's SHA-256>.safetensors
// whose manifest lists everything they depend on: the model, its backbone
// weights (the --weights file's SHA-256, or the seed of a random backbone),
// the image size, the batch size (GEMM blocking changes the last bits), the
// decoded-image cache's format and resize versions, and every image's file,
// label, size and modification time. A later run with the same manifest
// reads them instead of running the backbone. A cache file that cannot be
// read or written only costs time; the report says so.

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <ostream>
#include <sstream>
#include <string>
#include <system_error>
#include <vector>

#include <bcnn/data/image_cache.hpp>
#include <bcnn/data/sha256.hpp>
#include <bcnn/io/safetensors.hpp>
#include <bcnn/nn/on_device.hpp>
#include <bcnn/report/markdown.hpp>
#include <bcnn/train/features.hpp>
#include <bcnn/train/progress.hpp>

#include "data_sets.hpp"
#include "model_choice.hpp"

namespace bloodcells {

namespace detail {

constexpr int kFeatureCacheFormat = 1;

// The manifest that keys one image set's features (see the top of this file).
inline std::string feature_manifest(const ModelChoice& choice, const Options& options,
                                    const bcnn::data::LoadedImages& images) {
    std::ostringstream out;
    out << "bcnn feature cache " << kFeatureCacheFormat << "\nmodel " << options.model << "\nbackbone "
        << choice.backbone_id << "\nimage size " << options.image_size << "\nbatch " << options.batch
        << "\nimage cache " << bcnn::data::kImageCacheFormat << " resize " << bcnn::data::kResizeVersion << "\nimages "
        << images.size() << "\n";
    for (std::size_t i = 0; i < images.paths.size(); ++i) {
        std::error_code size_error, time_error;
        const auto bytes = std::filesystem::file_size(images.paths[i], size_error);
        const auto mtime = std::filesystem::last_write_time(images.paths[i], time_error);
        out << "file " << images.labels.data()[i] << '\t' << images.paths[i] << '\t';
        if (size_error || time_error)
            out << "unreadable\n";
        else
            out << bytes << '\t'
                << std::chrono::duration_cast<std::chrono::nanoseconds>(mtime.time_since_epoch()).count() << "\n";
    }
    return out.str();
}

}  // namespace detail

class FeatureCache {
public:
    // Computes (or reads from the cache folder) the backbone's features of each
    // distinct image set the parts of `data` use (held-out: TRAIN, TEST,
    // TEST_SIMPLE; pooled: the pool), printing progress to `out`.
    FeatureCache(const ModelChoice& choice, const DataSets& data, const Options& options, std::ostream& out) {
        BCNN_CHECK(choice.has_backbone && choice.backbone_frozen,
                   "FeatureCache: the model needs a frozen backbone (model->at(0))");
        const double start = bcnn::steady_seconds();
        const std::string folder = cache_folder(options);
        std::vector<const Part*> parts{&data.train, &data.validation};
        for (const Part& test : data.tests) parts.push_back(&test);
        for (const Part* part : parts) {
            if (find(*part)) continue;
            const bcnn::data::LoadedImages& images = part->images;
            std::string users;  // the parts that index these images
            for (const Part* other : parts)
                if (other->images.images.data() == images.images.data())
                    users += (users.empty() ? "" : ", ") + other->name;
            const std::string label = "features of " + std::to_string(images.size()) + " images (" + users + ")";
            std::string file, manifest_sha256;
            if (!folder.empty()) {
                bcnn::data::Sha256 hash;
                hash.update(detail::feature_manifest(choice, options, images));
                manifest_sha256 = hash.hex();
                file = (std::filesystem::path(folder) /
                        ("features-" + options.model + "-" + manifest_sha256.substr(0, 32) + ".safetensors"))
                           .string();
            }
            const double t0 = bcnn::steady_seconds();
            const std::size_t first_note = notes_.size();
            bcnn::Tensor<float> features = read(file, manifest_sha256, images.size(), choice, label);
            if (features.defined()) {
                notes_.push_back(label + ": read from the feature cache `" + file + "` in " +
                                 bcnn::report::format_duration(bcnn::steady_seconds() - t0));
            } else {
                features = compute(choice, options, images, label, out);
                const double seconds = bcnn::steady_seconds() - t0;
                notes_.push_back(label + ": computed in " + bcnn::report::format_duration(seconds) + " (" +
                                 per_image(seconds, images.size()) + ")" + write(file, manifest_sha256, features));
            }
            for (std::size_t i = first_note; i < notes_.size(); ++i) out << "  " << notes_[i] << "\n" << std::flush;
            sets_.push_back({images.images.data(), features});
        }
        seconds_ = bcnn::steady_seconds() - start;
    }

    // The features of the images `part` indexes (same indices).
    const bcnn::Tensor<float>& of(const Part& part) const {
        const bcnn::Tensor<float>* features = find(part);
        BCNN_CHECK(features, "FeatureCache: no features for '" << part.name << "'");
        return *features;
    }

    double seconds() const { return seconds_; }                       // all sets, read or computed
    const std::vector<std::string>& notes() const { return notes_; }  // one line per image set

private:
    struct Set {
        const std::uint8_t* images;  // identifies the image set (parts share LoadedImages tensors)
        bcnn::Tensor<float> features;
    };

    const bcnn::Tensor<float>* find(const Part& part) const {
        for (const Set& set : sets_)
            if (set.images == part.images.images.data()) return &set.features;
        return nullptr;
    }

    static std::string per_image(double seconds, bcnn::Index images) {
        char text[48];
        std::snprintf(text, sizeof text, "%.1f ms per image",
                      images > 0 ? 1000 * seconds / static_cast<double>(images) : 0.0);
        return text;
    }

    // The features from `file` when it holds them for this manifest; undefined otherwise.
    bcnn::Tensor<float> read(const std::string& file, const std::string& manifest_sha256, bcnn::Index count,
                             const ModelChoice& choice, const std::string& label) {
        if (file.empty() || !std::filesystem::exists(file)) return {};
        try {
            const bcnn::io::SafetensorsFile cached = bcnn::io::SafetensorsFile::open(file);
            const auto& meta = cached.metadata();
            const auto format = meta.find("format"), manifest = meta.find("manifest_sha256");
            BCNN_CHECK(format != meta.end() && format->second == "bcnn-feature-cache" && manifest != meta.end() &&
                           manifest->second == manifest_sha256,
                       "'" << file << "' was written for other images or weights");
            bcnn::Shape shape{count};
            for (bcnn::Index extent : choice.model->at(0).output_shape()) shape.push_back(extent);
            return cached.tensor<float>("features", shape);
        } catch (const bcnn::Error& error) {
            notes_.push_back(label + ": the feature cache could not be read (" + error.what() + "); computing them");
            return {};
        }
    }

    // Writes `features` to `file` (when there is one); returns what the report says about it.
    static std::string write(const std::string& file, const std::string& manifest_sha256,
                             const bcnn::Tensor<float>& features) {
        if (file.empty()) return "; kept in memory only (no cache folder)";
        try {
            std::error_code error;
            std::filesystem::create_directories(std::filesystem::path(file).parent_path(), error);
            BCNN_CHECK(!error, "cannot create '" << std::filesystem::path(file).parent_path().string()
                                                 << "': " << error.message());
            bcnn::io::save_safetensors(file, {bcnn::io::named_tensor("features", features)},
                                       {{"format", "bcnn-feature-cache"}, {"manifest_sha256", manifest_sha256}});
            return "; written to the feature cache `" + file + "`";
        } catch (const bcnn::Error& error) {
            return std::string("; the feature cache could not be written: ") + error.what();
        }
    }

    // One pass of the backbone over every image of the set, with a progress line every 10%.
    static bcnn::Tensor<float> compute(const ModelChoice& choice, const Options& options,
                                       const bcnn::data::LoadedImages& images, const std::string& label,
                                       std::ostream& out) {
        bcnn::data::BatchLoaderOptions loader_options;
        loader_options.batch_size = options.batch;
        loader_options.shuffle = false;
        loader_options.transform = choice.preprocess;
        std::vector<bcnn::Index> all(static_cast<std::size_t>(images.size()));
        for (bcnn::Index i = 0; i < images.size(); ++i) all[static_cast<std::size_t>(i)] = i;
        bcnn::data::BatchLoader loader(images.images, images.labels, all, loader_options);
        const double t0 = bcnn::steady_seconds();
        int next_percent = 10;
        const auto progress = [&](bcnn::Index done, bcnn::Index total) {
            const int percent = static_cast<int>(done * 100 / total);
            if (done == total || percent < next_percent) return;
            next_percent = percent / 10 * 10 + 10;
            const double seconds = bcnn::steady_seconds() - t0;
            const double left = seconds / static_cast<double>(done) * static_cast<double>(total - done);
            out << "  " << label << ": " << done << "/" << total << " (" << percent << "%), "
                << per_image(seconds, done) << ", ETA " << bcnn::report::format_duration(left) << "\n"
                << std::flush;
        };
        if (!options.cuda) return bcnn::train::compute_features(choice.model->at(0), loader, images.size(), progress);
        // On the GPU: batches go up, features come back and stay on the host.
        bcnn::nn::OnDevice<float> backbone(choice.model->at(0), bcnn::Device::cuda);
        return bcnn::train::compute_features(backbone, loader, images.size(), progress);
    }

    std::vector<Set> sets_;
    std::vector<std::string> notes_;
    double seconds_ = 0;
};

}  // namespace bloodcells

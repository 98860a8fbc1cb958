#pragma once
// The real images of the training tests on the CPU (test_train_real_images.cpp,
// whose accuracy CI checks) and on the GPU (tests/cuda): 500 TRAIN images of
// ../shared's blood-cell set (125 per class, evenly spread; read-only, no
// cache written), split stratified 80/20 into 400 training and 100 unseen
// images, and their batch loaders (batches of 32, the same seed on every
// device).

#include <catch2/catch.hpp>

#include <cstdint>
#include <utility>
#include <vector>

#include <bcnn/data/batch_loader.hpp>
#include <bcnn/data/image_folder.hpp>
#include <bcnn/data/load_images.hpp>
#include <bcnn/data/split.hpp>

#include "data/data_support.hpp"

namespace bcnn {
namespace testing {

struct RealImages {
    data::LoadedImages images;
    std::vector<std::vector<Index>> parts;  // training, unseen
};

// The 500 images at image_size x image_size, and the split.
inline RealImages load_real_images(Index image_size) {
    const data::ImageFolder folder = data::spread_per_class(data::scan_image_folder(blood_cells_split("TRAIN")), 125);
    data::LoadOptions options;
    options.size = image_size;
    options.strict = true;
    RealImages d{data::load_images(folder, options), {}};
    REQUIRE(d.images.size() == 500);
    const std::vector<std::int32_t> labels(d.images.labels.data(), d.images.labels.data() + d.images.size());
    d.parts = data::stratified_split(labels, {0.8, 0.2}, 10);
    return d;
}

// Batches of 32 of the images at `indices`, shuffled when training.
inline data::BatchLoader real_image_batches(const data::LoadedImages& images, std::vector<Index> indices,
                                            bool training) {
    data::BatchLoaderOptions options;
    options.batch_size = 32;
    options.shuffle = training;
    options.seed = 3;
    return data::BatchLoader(images.images, images.labels, std::move(indices), options);
}

}  // namespace testing
}  // namespace bcnn

// A short end-to-end training on the real blood-cell images: decode a small,
// evenly spread subset of TRAIN, split it (stratified) 80/20, fit a small
// network of the library's layers with Adam through the background batch
// loader on the 80%, and score it on the 20% it never saw. It must beat
// chance (25%) by a wide margin. A test of the whole pipeline, not a
// benchmark. (The unseen files may be augmented copies of cells seen in
// training, as in the study's pooled protocol; generalising to TEST's other
// source images takes the full data set and is measured by train_bloodcells.)

#include <bcnn/optim/adam.hpp>
#include <bcnn/train/fit.hpp>
#include <catch2/catch.hpp>

#include "train/real_images.hpp"
#include "train/small_network.hpp"

using namespace bcnn;

namespace {

constexpr Index kImageSize = 48;

}  // namespace

TEST_CASE("a short training on 400 real images classifies 100 unseen ones far above chance", "[train][e2e][real-data]") {
    const testing::RealImages d = testing::load_real_images(kImageSize);
    const auto& parts = d.parts;
    REQUIRE(parts[0].size() == 400);
    REQUIRE(parts[1].size() == 100);

    auto model = testing::small_network(kImageSize);
    Rng rng(10);
    model->initialize(rng);
    optim::Adam<float> adam;
    train::TrainingState<float> state{*model, adam, rng};
    auto train_loader = testing::real_image_batches(d.images, parts[0], true);
    auto test_loader = testing::real_image_batches(d.images, parts[1], false);
    train::FitOptions options;
    options.epochs = 15;
    const train::History history = train::fit(state, train_loader, nullptr, options);
    const train::Evaluation result = train::evaluate(*model, test_loader, 4);

    INFO("training accuracy " << history.front().at("accuracy") << " -> " << history.back().at("accuracy")
                              << "; unseen-image accuracy " << result.accuracy << ", macro F1 "
                              << result.confusion.macro_average().f1 << "\n"
                              << result.confusion.report({"EOSINOPHIL", "LYMPHOCYTE", "MONOCYTE", "NEUTROPHIL"}));
    CHECK(history.back().at("loss") < history.front().at("loss"));
    CHECK(result.accuracy >= 0.5);
    CHECK(result.confusion.macro_average().f1 >= 0.45);
}

// preprocessing_of_weights: a weights file without bcnn.preprocessing (Keras'
// conversions) leaves the model's own preprocessing, "torch" (torchvision's
// conversions) asks for torch mode, anything else is an error naming the file.

#include <bcnn/io/safetensors.hpp>
#include <bcnn/models/weights_preprocessing.hpp>
#include <catch2/catch.hpp>

#include "support/temp_dir.hpp"

using namespace bcnn;

namespace {

std::string weights_with(const testing::TempDir& dir, const std::string& name,
                         const std::map<std::string, std::string>& metadata) {
    const std::string path = dir.file(name);
    io::save_safetensors(path, {io::named_tensor("block1_conv1/bias", Tensor<float>(Shape{64}))}, metadata);
    return path;
}

}  // namespace

TEST_CASE("preprocessing_of_weights reads bcnn.preprocessing from the weights' metadata", "[models][io]") {
    testing::TempDir dir;
    CHECK(models::preprocessing_of_weights(weights_with(dir, "keras.safetensors", {{"bcnn.model", "vgg16"}})) ==
          models::InputPreprocessing::model_default);
    CHECK(models::preprocessing_of_weights(weights_with(dir, "torchvision.safetensors",
                                                        {{"bcnn.preprocessing", "torch"}})) ==
          models::InputPreprocessing::torch);
    const std::string odd = weights_with(dir, "odd.safetensors", {{"bcnn.preprocessing", "tf"}});
    CHECK_THROWS_WITH(models::preprocessing_of_weights(odd),
                      Catch::Contains("'" + odd + "': bcnn.preprocessing is \"tf\", expected \"torch\" or no such key"));
}

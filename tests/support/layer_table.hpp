#pragma once
// Checks of a built Sequential against a table of Keras' summary rows (layer
// name, output shape, parameter count), and a finiteness check of outputs.

#include <catch2/catch.hpp>

#include <cmath>
#include <vector>

#include <bcnn/nn/sequential.hpp>

namespace bcnn {
namespace testing {

struct LayerRow {
    const char* name;
    Shape shape;
    Index params;
};

inline void check_layers(nn::Sequential<float>& model, const std::vector<LayerRow>& expected) {
    REQUIRE(model.size() == expected.size());
    for (std::size_t i = 0; i < expected.size(); ++i) {
        INFO("layer " << i << " " << model.at(i).name());
        CHECK(model.at(i).name() == expected[i].name);
        CHECK(model.at(i).output_shape() == expected[i].shape);
        CHECK(model.at(i).count_params() == expected[i].params);
    }
}

inline bool all_finite(const Tensor<float>& t) {
    for (float v : t.to_vector())
        if (!std::isfinite(v)) return false;
    return true;
}

}  // namespace testing
}  // namespace bcnn

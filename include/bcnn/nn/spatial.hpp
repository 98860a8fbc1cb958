#pragma once
// What the image layers (convolutions, pooling, padding) share: Keras-style
// 2-D sizes, the check that a layer's input is an image, and window geometry
// whose errors name the layer.

#include <ostream>
#include <string>

#include "bcnn/kernels/cpu/window.hpp"
#include "bcnn/nn/module.hpp"

namespace bcnn {
namespace nn {

// A kernel size, stride or pool size: one number for both axes (as Keras
// accepts `3`) or (height, width).
struct Size2D {
    Index h = 1, w = 1;
    Size2D(Index both = 1) : h(both), w(both) {}  // implicit: Conv2D(16, 3) as Keras' Conv2D(16, 3)
    Size2D(Index height, Index width) : h(height), w(width) {}
};

inline std::ostream& operator<<(std::ostream& out, const Size2D& size) { return out << size.h << 'x' << size.w; }

// "Conv2D 'conv2d'": how errors name a layer.
template <typename T>
std::string layer_label(const Module<T>& layer) {
    return std::string(layer.type()) + " '" + layer.name() + "'";
}

// Checks that a layer's input shape (no batch axis) is a non-empty image (H, W, C).
template <typename T>
void require_image_input(const Module<T>& layer, const Shape& input_shape) {
    BCNN_CHECK(input_shape.rank() == 3, layer_label(layer) << ": input must be an image (height, width, channels), got "
                                                           << input_shape << " (without the batch axis)");
    BCNN_CHECK(input_shape.numel() > 0, layer_label(layer) << ": input " << input_shape << " has an empty axis");
}

// Where `window` lands on the image input (H, W, C) of `layer`.
template <typename T>
WindowGeometry layer_window_geometry(const Module<T>& layer, const Shape& input_shape, const Window2D& window) {
    require_image_input(layer, input_shape);
    return window_geometry(input_shape[0], input_shape[1], window, layer_label(layer).c_str());
}

}  // namespace nn
}  // namespace bcnn

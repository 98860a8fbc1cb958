#pragma once
// What MaxPooling2D and AveragePooling2D share: the window (pool size,
// strides defaulting to the pool size as in Keras, padding defaulting to
// 'valid'), the output shape, and the buffers they reuse from step to step.
//   x (N, H, W, C) -> y (N, OH, OW, C)

#include <optional>

#include "bcnn/nn/spatial.hpp"

namespace bcnn {
namespace nn {

template <typename T>
class Pooling2D : public Module<T> {
public:
    const Window2D& window() const { return window_; }

protected:
    // `kind` names the layer in argument errors ("MaxPooling2D").
    Pooling2D(const char* kind, Size2D pool_size, std::optional<Size2D> strides, Padding padding, std::string name)
        : Module<T>(std::move(name)) {
        const Size2D stride = strides.value_or(pool_size);
        BCNN_CHECK(pool_size.h >= 1 && pool_size.w >= 1, kind << ": pool_size must be positive, got " << pool_size);
        BCNN_CHECK(stride.h >= 1 && stride.w >= 1, kind << ": strides must be positive, got " << stride);
        window_ = Window2D{pool_size.h, pool_size.w, stride.h, stride.w, padding};
    }

    Shape do_build(const Shape& input_shape) override {
        const WindowGeometry g = layer_window_geometry(*this, input_shape, window_);
        return Shape{g.out_h, g.out_w, input_shape[2]};
    }

    // The output buffer for input x, reused from step to step.
    Tensor<T>& output_for(const Tensor<T>& x) {
        this->check_input(x);
        input_ = x;
        return this->reuse(output_, this->batch_shape(x.dim(0), this->output_shape()));
    }

    Window2D window_;
    Tensor<T> input_, output_, input_grad_;
};

}  // namespace nn
}  // namespace bcnn

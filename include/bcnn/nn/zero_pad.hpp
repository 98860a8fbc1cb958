#pragma once
// ZeroPadding2D (Keras ZeroPadding2D, channels last): zeros around the image.
//   x (N, H, W, C) -> y (N, top + H + bottom, left + W + right, C); no parameters.
// ZeroPadding2D(p) pads p on every side, ZeroPadding2D({top, bottom}, {left, right})
// as given (Keras' ((top, bottom), (left, right))).

#include <utility>

#include "bcnn/backend/zero_pad.hpp"
#include "bcnn/nn/spatial.hpp"

namespace bcnn {
namespace nn {

template <typename T>
class ZeroPadding2D : public Module<T> {
public:
    explicit ZeroPadding2D(Index padding = 1, std::string name = "")
        : ZeroPadding2D({padding, padding}, {padding, padding}, std::move(name)) {}
    ZeroPadding2D(std::pair<Index, Index> rows, std::pair<Index, Index> cols, std::string name = "")
        : Module<T>(std::move(name)), pad_{rows.first, rows.second, cols.first, cols.second} {
        BCNN_CHECK(pad_.top >= 0 && pad_.bottom >= 0 && pad_.left >= 0 && pad_.right >= 0,
                   "ZeroPadding2D: negative " << pad_);
    }

    const char* type() const override { return "ZeroPadding2D"; }
    const char* default_name() const override { return "zero_padding2d"; }

    const cpu::Padding2D& padding() const { return pad_; }

    Tensor<T> forward(const Tensor<T>& x, const Context&) override {
        this->check_input(x);
        input_shape_ = x.shape();
        Tensor<T>& y = this->reuse(output_, this->batch_shape(x.dim(0), this->output_shape()));
        backend::zero_pad2d_forward(x, pad_, y);
        return y;
    }

    Tensor<T> backward(const Tensor<T>& dy, bool need_input_grad) override {
        if (!need_input_grad) return Tensor<T>();
        Tensor<T>& dx = this->reuse(input_grad_, input_shape_);
        backend::zero_pad2d_backward(dy, pad_, dx);
        return dx;
    }

protected:
    Shape do_build(const Shape& input_shape) override {
        require_image_input(*this, input_shape);
        return Shape{pad_.top + input_shape[0] + pad_.bottom, pad_.left + input_shape[1] + pad_.right, input_shape[2]};
    }

private:
    cpu::Padding2D pad_;
    Shape input_shape_;  // of the last forward, batch axis included
    Tensor<T> output_, input_grad_;
};

}  // namespace nn
}  // namespace bcnn

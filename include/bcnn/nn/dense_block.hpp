#pragma once
// DenseBlock: a DenseNet dense block, `layers` DenseLayers (dense_layer.hpp),
// each seeing the concatenation of the block's input and every earlier
// layer's output (Keras Applications' dense_block):
//   x (N, H, W, C) -> y (N, H, W, C + layers * growth_rate)
//   y = [x, f1(x), f2([x, f1]), f3([x, f1, f2]), ...]
// Concatenation without copies: the block owns one NHWC buffer of its final
// width. Its forward copies x into channels [0, C) once; layer i (0-based)
// reads the channel prefix [0, c_i), c_i = C + i * growth_rate, as a view, and
// writes its growth_rate channels into [c_i, c_i + growth_rate). The buffer is
// the block's output.
// Backward mirrors it with one gradient buffer of the same width, starting as
// dy: layers run last to first; layer i's output gradient is the slice
// [c_i, c_i + growth_rate), complete by then (only later layers read it), and
// its input gradient is ADDED into [0, c_i) (every layer reads the prefix).
// The block's input gradient is the slice [0, C), returned as a view. Layers
// before the first one with trainable weights get no backward call unless
// the input gradient is wanted, as in Sequential.
// Children are named "block1", "block2", ..., so parameters are
// "block1/0_bn/gamma", "block1/1_conv/kernel", ... (Keras' conv2_block1_0_bn
// is bcnn's conv2/block1/0_bn in a block named "conv2").

#include <memory>
#include <string>
#include <vector>

#include "bcnn/backend/elementwise.hpp"
#include "bcnn/nn/dense_layer.hpp"

namespace bcnn {
namespace nn {

template <typename T>
class DenseBlock : public Module<T> {
public:
    DenseBlock(int layers, Index growth_rate, Index bottleneck_channels, double epsilon = cpu::kBatchNormEpsilon,
               std::string name = "")
        : Module<T>(std::move(name)), growth_rate_(growth_rate) {
        BCNN_CHECK(layers >= 1, "DenseBlock: layers must be positive, got " << layers);
        for (int i = 0; i < layers; ++i)
            layers_.push_back(std::make_unique<DenseLayer<T>>(growth_rate, bottleneck_channels, epsilon,
                                                              "block" + std::to_string(i + 1)));
    }

    const char* type() const override { return "DenseBlock"; }
    const char* default_name() const override { return "dense_block"; }

    std::size_t size() const { return layers_.size(); }
    DenseLayer<T>& layer(std::size_t i) const {
        BCNN_CHECK(i < layers_.size(), "DenseBlock '" << this->name() << "': no layer " << i << " of " << layers_.size());
        return *layers_[i];
    }

    std::vector<Module<T>*> children() override {
        std::vector<Module<T>*> out;
        for (auto& layer : layers_) out.push_back(layer.get());
        return out;
    }

    // x (N, H, W, C) -> y (N, H, W, C + layers * growth_rate), the block's buffer.
    Tensor<T> forward(const Tensor<T>& x, const Context& context) override {
        this->check_input(x);
        Tensor<T>& y = this->reuse(output_, this->batch_shape(x.dim(0), this->output_shape()));
        backend::copy(x, y.channels(0, input_channels()));
        for (std::size_t i = 0; i < layers_.size(); ++i) {
            const Index c = channels_before(i);
            layers_[i]->forward_into(y.channels(0, c), y.channels(c, c + growth_rate_), context);
        }
        return y;
    }

    // dy (N, H, W, C + layers * growth_rate) -> dx (N, H, W, C), a channel
    // slice of the block's gradient buffer (empty when !need_input_grad).
    Tensor<T> backward(const Tensor<T>& dy, bool need_input_grad) override {
        const std::size_t first = need_input_grad ? 0 : first_trainable();
        if (first == layers_.size()) return Tensor<T>();
        Tensor<T>& grad = this->reuse(input_grad_, dy.shape());
        backend::copy(dy, grad);
        for (std::size_t i = layers_.size(); i-- > first;) {
            const Index c = channels_before(i);
            const Tensor<T> dx = layers_[i]->backward(grad.channels(c, c + growth_rate_), need_input_grad || i > first);
            if (dx.defined()) {
                Tensor<T> prefix = grad.channels(0, c);
                backend::add_inplace(prefix, dx);
            }
        }
        return need_input_grad ? grad.channels(0, input_channels()) : Tensor<T>();
    }

protected:
    Shape do_build(const Shape& input_shape) override {
        require_image_input(*this, input_shape);
        Shape shape = input_shape;
        for (auto& layer : layers_) {
            layer->build(shape);
            shape[2] += growth_rate_;
        }
        return shape;
    }

    void do_initialize(Rng& rng) override {
        for (auto& layer : layers_) layer->initialize(rng);
    }

private:
    Index input_channels() const { return this->input_shape()[2]; }
    // Channels that layer i reads: the input's and those of the layers before it.
    Index channels_before(std::size_t i) const { return input_channels() + static_cast<Index>(i) * growth_rate_; }

    // Index of the first layer with trainable weights (size() when none).
    std::size_t first_trainable() const {
        for (std::size_t i = 0; i < layers_.size(); ++i)
            if (layers_[i]->count_trainable_params() > 0) return i;
        return layers_.size();
    }

    Index growth_rate_;
    std::vector<std::unique_ptr<DenseLayer<T>>> layers_;
    Tensor<T> output_, input_grad_;
};

}  // namespace nn
}  // namespace bcnn

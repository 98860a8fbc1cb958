#pragma once
// DenseLayer: one layer of a DenseNet dense block (Keras Applications'
// conv_block without its Concatenate), the "BC" bottleneck layer:
//   x (N, H, W, C) -> BatchNorm -> ReLU -> Conv 1x1 (bottleneck_channels, no bias)
//                  -> BatchNorm -> ReLU -> Conv 3x3 'same' (growth_rate, no bias) -> y (N, H, W, growth_rate)
// Children, named as the suffixes of Keras' layer names (conv2_block1_0_bn, ...):
//   0_bn, 1_conv, 1_bn, 2_conv. The ReLUs (Keras' 0_relu, 1_relu) have no
//   parameters and no buffers here: they run in place on the BatchNorm outputs.
// forward_into() writes y into a caller's tensor, which may be a channel slice
// of a wider buffer and x a channel prefix of it: that is how DenseBlock
// (dense_block.hpp) concatenates without copies.
// backward() calls no backward at all on the children before the first one
// with trainable weights unless the input gradient is wanted.
// A forward with context.inference_only (and not training) folds 1_bn into
// 1_conv and fuses 1_relu into it: one pass instead of three over the
// bottleneck (kernels/cpu/batchnorm_folding.hpp), on the module's device
// (backend::fold_batchnorm, backend::conv2d_forward). No backward may follow it.

#include <array>
#include <memory>

#include "bcnn/backend/conv2d.hpp"
#include "bcnn/backend/relu.hpp"
#include "bcnn/nn/batch_norm.hpp"
#include "bcnn/nn/conv2d.hpp"

namespace bcnn {
namespace nn {

template <typename T>
class DenseLayer : public Module<T> {
public:
    DenseLayer(Index growth_rate, Index bottleneck_channels, double epsilon = cpu::kBatchNormEpsilon,
               std::string name = "")
        : Module<T>(std::move(name)) {
        BCNN_CHECK(growth_rate >= 1, "DenseLayer: growth_rate must be positive, got " << growth_rate);
        BCNN_CHECK(bottleneck_channels >= 1,
                   "DenseLayer: bottleneck_channels must be positive, got " << bottleneck_channels);
        bn0_ = std::make_unique<BatchNormalization<T>>(cpu::kBatchNormMomentum, epsilon, "0_bn");
        conv1_ = std::make_unique<Conv2D<T>>(bottleneck_channels, 1, 1, Padding::valid, ActivationFn::linear, false,
                                             "1_conv");
        bn1_ = std::make_unique<BatchNormalization<T>>(cpu::kBatchNormMomentum, epsilon, "1_bn");
        conv2_ = std::make_unique<Conv2D<T>>(growth_rate, 3, 1, Padding::same, ActivationFn::linear, false, "2_conv");
    }

    const char* type() const override { return "DenseLayer"; }
    const char* default_name() const override { return "dense_layer"; }

    std::vector<Module<T>*> children() override { return {bn0_.get(), conv1_.get(), bn1_.get(), conv2_.get()}; }

    Tensor<T> forward(const Tensor<T>& x, const Context& context) override {
        this->check_input(x);
        Tensor<T>& y = this->reuse(output_, this->batch_shape(x.dim(0), this->output_shape()));
        forward_into(x, y, context);
        return y;
    }

    // x (N, H, W, C) -> y (N, H, W, growth_rate), written into `y`; either
    // may be a channel slice of a wider buffer. Both must stay unchanged
    // until backward() (it reads x, and y is 2_conv's output).
    void forward_into(const Tensor<T>& x, const Tensor<T>& y, const Context& context) {
        this->check_input(x);
        activated_[0] = bn0_->forward(x, context);
        backend::relu_forward(activated_[0], activated_[0]);
        folded_ = context.inference_only && !context.training;
        if (folded_) {
            Tensor<T>& bottleneck = this->reuse(folded_output_, this->batch_shape(x.dim(0), conv1_->output_shape()));
            bn1_->fold_into(conv1_->kernel(), conv1_->bias(), this->reuse(folded_kernel_, conv1_->kernel().shape()),
                            this->reuse(folded_bias_, Shape{conv1_->output_shape()[2]}));
            backend::conv2d_forward(activated_[0], folded_kernel_, &folded_bias_, kBottleneckParams, bottleneck,
                                    cpu::ActivationFn::relu);
            activated_[1] = bottleneck;
        } else {
            activated_[1] = bn1_->forward(conv1_->forward(activated_[0], context), context);
            backend::relu_forward(activated_[1], activated_[1]);
        }
        conv2_->forward_into(activated_[1], y, context);
    }

    // dy (N, H, W, growth_rate), may be a channel slice -> dx (N, H, W, C), this
    // layer's own buffer (empty when !need_input_grad).
    Tensor<T> backward(const Tensor<T>& dy, bool need_input_grad) override {
        BCNN_CHECK(!folded_, "DenseLayer '" << this->name()
                                            << "': backward() after an inference_only forward (1_bn was folded into "
                                               "1_conv); run the forward without inference_only");
        const std::vector<Module<T>*> steps = children();  // 0_bn, 1_conv, 1_bn, 2_conv
        int first = 0;
        if (!need_input_grad)
            while (first < 4 && steps[first]->count_trainable_params() == 0) ++first;
        Tensor<T> grad = dy;
        for (int i = 3; i >= first; --i) {
            // The BatchNorms (steps 0 and 2) are followed by their ReLU: its
            // gradient is taken in place in the buffer that holds the gradient
            // (a convolution's input gradient buffer).
            if (i % 2 == 0) backend::relu_backward(activated_[i / 2], grad, grad);
            grad = steps[i]->backward(grad, need_input_grad || i > first);
        }
        return need_input_grad ? grad : Tensor<T>();
    }

protected:
    Shape do_build(const Shape& input_shape) override {
        require_image_input(*this, input_shape);
        return conv2_->build(bn1_->build(conv1_->build(bn0_->build(input_shape))));
    }

    void do_initialize(Rng& rng) override {
        for (Module<T>* child : children()) child->initialize(rng);
    }

private:
    static constexpr ConvParams kBottleneckParams{1, 1, Padding::valid};  // 1_conv: 1x1, stride 1

    std::unique_ptr<BatchNormalization<T>> bn0_, bn1_;
    std::unique_ptr<Conv2D<T>> conv1_, conv2_;
    std::array<Tensor<T>, 2> activated_;  // ReLU(0_bn) and ReLU(1_bn) of the last forward
    Tensor<T> output_;                     // forward()'s own output buffer
    bool folded_ = false;                  // the last forward folded 1_bn into 1_conv
    Tensor<T> folded_kernel_, folded_bias_, folded_output_;  // that forward's 1_conv weights and output
};

}  // namespace nn
}  // namespace bcnn

#pragma once
// Conv2D (Keras Conv2D): x (N, H, W, C) -> y (N, OH, OW, filters) = fn(conv(x, kernel) + bias).
// Parameters: kernel (KH, KW, C, filters), bias (filters) when use_bias.
// Initial values: kernel glorot_uniform (fan_in = KH*KW*C, fan_out = KH*KW*filters), bias 0.

#include "bcnn/backend/conv2d.hpp"
#include "bcnn/kernels/cpu/conv2d_max_pool.hpp"
#include "bcnn/nn/kernel_layer.hpp"
#include "bcnn/nn/spatial.hpp"

namespace bcnn {
namespace nn {

template <typename T>
class Conv2D : public KernelLayer<T> {
public:
    Conv2D(Index filters, Size2D kernel_size, Size2D strides = 1, Padding padding = Padding::valid,
           ActivationFn activation = ActivationFn::linear, bool use_bias = true, std::string name = "")
        : KernelLayer<T>(activation, use_bias, std::move(name)),
          filters_(filters),
          kernel_size_(kernel_size),
          params_{strides.h, strides.w, padding} {
        BCNN_CHECK(filters >= 1, "Conv2D: filters must be positive, got " << filters);
        BCNN_CHECK(kernel_size.h >= 1 && kernel_size.w >= 1,
                   "Conv2D: kernel_size must be positive, got " << kernel_size);
        BCNN_CHECK(strides.h >= 1 && strides.w >= 1, "Conv2D: strides must be positive, got " << strides);
    }

    const char* type() const override { return "Conv2D"; }
    const char* default_name() const override { return "conv2d"; }

protected:
    Shape do_build(const Shape& input_shape) override {
        const WindowGeometry g =
            layer_window_geometry(*this, input_shape, conv_window(kernel_size_.h, kernel_size_.w, params_));
        this->add_kernel("kernel", Shape{kernel_size_.h, kernel_size_.w, input_shape[2], filters_});
        this->add_bias(filters_);
        return Shape{g.out_h, g.out_w, filters_};
    }

    void run_forward(const Tensor<T>& x, const Tensor<T>& kernel, OptionalInput<T> bias, ActivationFn activation,
                     Tensor<T>& y) override {
        backend::conv2d_forward(x, kernel, bias, params_, y, activation);
    }

    void run_backward(const Tensor<T>& x, const Tensor<T>& kernel, const Tensor<T>& dy, OptionalOutput<T> dx,
                      OptionalOutput<T> d_kernel, OptionalOutput<T> d_bias) override {
        backend::conv2d_backward(x, kernel, dy, params_, dx, d_kernel, d_bias);
    }

    void run_relu_backward(const Tensor<T>& x, const Tensor<T>& kernel, const Tensor<T>& y, const Tensor<T>& dy,
                           Tensor<T>& pre, OptionalOutput<T> dx, OptionalOutput<T> d_kernel,
                           OptionalOutput<T> d_bias) override {
        backend::conv2d_relu_backward(x, kernel, y, dy, params_, pre, dx, d_kernel, d_bias);
    }

    bool fuses_pool_on_cpu(const Window2D& window) const override {
        return cpu::conv2d_relu_max_pool_applies<T>(this->input_shape(), this->kernel().shape(), params_, window);
    }

    void run_forward_pooled(const Tensor<T>& x, const Tensor<T>& kernel, OptionalInput<T> bias,
                            const Window2D& window, Tensor<T>& pooled, Tensor<std::uint8_t>& positions) override {
        cpu::conv2d_relu_max_pool_forward(x, kernel, bias, params_, window, pooled, positions);
    }

private:
    Index filters_;
    Size2D kernel_size_;
    ConvParams params_;
};

}  // namespace nn
}  // namespace bcnn

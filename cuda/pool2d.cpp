// cuda::max_pool2d_*, avg_pool2d_* and global_avg_pool_* (declared in
// include/bcnn/backend/cuda/pool2d.hpp), the CPU kernels' semantics.
//
// Window pooling runs cudnnPoolingForward/Backward on packed NHWC tensors,
// staged as conv2d.cpp stages them (nhwc_staging.hpp): channel slices are
// packed into scratch and results copied back into slices.
//
// Padding. cuDNN pads symmetrically and never lets padding win a maximum or
// count in an EXCLUDE_PADDING average. Keras 'same' with an odd total padding
// puts the extra pixel at the bottom/right: then x is copied into a buffer
// one row and/or column larger (only along the odd axes) whose extra pixels
// hold -inf for max pooling (never a maximum: every window covers at least
// one real pixel) and 0 for average pooling, and cuDNN pads pad_top/pad_left
// on both sides of it. cuDNN would count that explicit row in an average, so
// average pooling then runs with INCLUDE_PADDING (sum / (KH * KW); zeros add
// nothing) and an explicit count: the output is scaled by KH * KW / count,
// count being the window's real pixels (pool2d_kernels.cu), which is the
// CPU's mean over valid pixels. The backward scales dy by the same factor
// before cuDNN's INCLUDE_PADDING backward spreads dy / (KH * KW) over each
// window, and drops the padded row/column when copying into dx. Without odd
// padding average pooling runs EXCLUDE_PADDING directly.
//
// Max pooling runs CUDNN_POOLING_MAX_DETERMINISTIC (overlapping windows add
// their gradients in a fixed order). Its backward needs y, which the CPU
// signature does not take: it is recomputed from x into scratch.
//
// Global average pooling: deterministic per-image column sums in double
// (reduce_kernels.cu) scaled by 1 / (H * W); its backward broadcasts
// dy * (1 / (H * W)) over the pixels, the CPU's arithmetic exactly.

#include "bcnn/backend/cuda/pool2d.hpp"

#include <limits>
#include <sstream>
#include <type_traits>

#include "argument_checks.hpp"
#include "bcnn/kernels/cpu/global_avg_pool.hpp"
#include "bcnn/kernels/cpu/pool2d.hpp"
#include "nhwc_staging.hpp"
#include "pool2d_kernels.hpp"
#include "reduce_kernels.hpp"

namespace bcnn {
namespace cuda {

namespace {

enum class PoolKind { max, average };

// One pooling call: checked geometry, the extents cuDNN sees, descriptors.
template <typename T>
class Pooling {
public:
    Pooling(PoolKind kind, const Shape& x_shape, const Window2D& window, const char* op)
        : kind_(kind),
          window_(window),
          geometry_(cpu::detail::pool_geometry(x_shape, window, op)),
          batch_(x_shape[0]),
          channels_(x_shape[3]),
          staging_(detail::cudnn_context(), describe(op, x_shape, window)),
          padded_h_(detail::padded_extent(geometry_.in_h, window.kernel_h, window.stride_h, geometry_.out_h,
                                          geometry_.pad_top)),
          padded_w_(detail::padded_extent(geometry_.in_w, window.kernel_w, window.stride_w, geometry_.out_w,
                                          geometry_.pad_left)),
          x_desc_(detail::cudnn_data_type<T>(), padded_input_layout(), where()),
          y_desc_(detail::cudnn_data_type<T>(), output_layout(), where()),
          pool_desc_(mode(), window.kernel_h, window.kernel_w, geometry_.pad_top, geometry_.pad_left, window.stride_h,
                     window.stride_w, where()) {
        check_output_extent();
    }

    const std::string& where() const { return staging_.where(); }
    bool padded() const { return padded_h_ != geometry_.in_h || padded_w_ != geometry_.in_w; }
    // Average pooling over a padded copy: cuDNN's sums need the explicit count.
    bool counted() const { return kind_ == PoolKind::average && padded(); }

    // x as cuDNN reads it: x itself when packed and unpadded, else a packed
    // copy in scratch, padded at the bottom/right where 'same' needs it.
    const T* input(const Tensor<T>& x) const {
        if (!padded() && x.is_contiguous()) return x.data();
        T* staged = staging_.scratch(detail::Scratch::input, padded_input_layout());
        if (padded())
            staging_.fill(padded_input_layout(), staged,
                          kind_ == PoolKind::max ? -std::numeric_limits<T>::infinity() : T(0));
        staging_.copy(detail::layout_of(x, "cuda::pool2d input"), x.data(), input_region_layout(), staged);
        return staged;
    }

    // Where cuDNN writes y: y itself when packed, else scratch (see finish_output).
    T* output(Tensor<T>& y) const {
        return y.is_contiguous() ? y.data() : staging_.scratch(detail::Scratch::output, output_layout());
    }
    void finish_output(T* computed, Tensor<T>& y) const {
        if (counted()) scale_by_count(computed);
        if (computed != y.data())
            staging_.copy(output_layout(), computed, detail::layout_of(y, "cuda::pool2d output"), y.data());
    }

    // y recomputed from the staged x, in scratch (max pooling's backward needs it).
    const T* recomputed_output(const T* x_data) const {
        T* y_data = staging_.scratch(detail::Scratch::output, output_layout());
        forward(x_data, y_data);
        return y_data;
    }

    // dy as cuDNN reads it: dy itself when packed and not to be scaled, else a
    // packed copy in scratch, scaled by the explicit count where needed.
    const T* output_gradient(const Tensor<T>& dy) const {
        if (!counted() && dy.is_contiguous()) return dy.data();
        T* staged = staging_.scratch(detail::Scratch::output_gradient, output_layout());
        staging_.copy(detail::layout_of(dy, "cuda::pool2d output gradient"), dy.data(), output_layout(), staged);
        if (counted()) scale_by_count(staged);
        return staged;
    }

    // Where cuDNN writes dx over the (padded) input: dx itself when packed and
    // unpadded, else scratch (see finish_input_gradient).
    T* input_gradient(Tensor<T>& dx) const {
        if (!padded() && dx.is_contiguous()) return dx.data();
        return staging_.scratch(detail::Scratch::input_gradient, padded_input_layout());
    }
    void finish_input_gradient(const T* computed, Tensor<T>& dx) const {
        if (computed != dx.data())
            staging_.copy(input_region_layout(), computed, detail::layout_of(dx, "cuda::pool2d input gradient"),
                          dx.data());
    }

    void forward(const T* x_data, T* y_data) const {
        BCNN_CUDA_CHECK(cudnnPoolingForward(staging_.handle(), pool_desc_.get(), detail::one<T>(), x_desc_.get(),
                                            x_data, detail::zero<T>(), y_desc_.get(), y_data),
                        where());
    }

    // dx from dy; max pooling reads x and y (= forward(x)), average pooling
    // neither: it is given dy and dx for them, buffers of the right sizes.
    void backward(const T* y_data, const T* dy_data, const T* x_data, T* dx_data) const {
        BCNN_CUDA_CHECK(cudnnPoolingBackward(staging_.handle(), pool_desc_.get(), detail::one<T>(), y_desc_.get(),
                                             y_data, y_desc_.get(), dy_data, x_desc_.get(), x_data,
                                             detail::zero<T>(), x_desc_.get(), dx_data),
                        where() << ", input gradient");
    }

private:
    static std::string describe(const char* op, const Shape& x_shape, const Window2D& window) {
        std::ostringstream out;
        out << op << " on input " << x_shape << ", " << window << " ("
            << (std::is_same<T, float>::value ? "float" : "double") << ")";
        return out.str();
    }

    cudnnPoolingMode_t mode() const {
        if (kind_ == PoolKind::max) return CUDNN_POOLING_MAX_DETERMINISTIC;
        return counted() ? CUDNN_POOLING_AVERAGE_COUNT_INCLUDE_PADDING : CUDNN_POOLING_AVERAGE_COUNT_EXCLUDE_PADDING;
    }

    detail::TensorLayout padded_input_layout() const {
        return detail::packed_nhwc(batch_, padded_h_, padded_w_, channels_);
    }
    // The H x W part of the padded input (top-left of each padded image).
    detail::TensorLayout input_region_layout() const {
        return detail::strided_nhwc(batch_, geometry_.in_h, geometry_.in_w, channels_, padded_h_, padded_w_,
                                    channels_);
    }
    detail::TensorLayout output_layout() const {
        return detail::packed_nhwc(batch_, geometry_.out_h, geometry_.out_w, channels_);
    }

    void scale_by_count(T* packed_output) const {
        BCNN_CUDA_CHECK(
            kernels::scale_by_window_size_over_count(packed_output, batch_, channels_, geometry_, window_),
            where() << ", window counts");
    }

    // cuDNN's output extents for the padded input must be Keras's.
    void check_output_extent() const {
        int n = 0, c = 0, h = 0, w = 0;
        BCNN_CUDA_CHECK(cudnnGetPooling2dForwardOutputDim(pool_desc_.get(), x_desc_.get(), &n, &c, &h, &w), where());
        BCNN_CHECK(h == geometry_.out_h && w == geometry_.out_w,
                   where() << ": internal error: cuDNN computes a " << h << 'x' << w << " output from the "
                           << padded_h_ << 'x' << padded_w_ << " padded input, expected " << geometry_.out_h << 'x'
                           << geometry_.out_w);
    }

    PoolKind kind_;
    Window2D window_;
    WindowGeometry geometry_;
    Index batch_, channels_;
    detail::Staging<T> staging_;
    Index padded_h_, padded_w_;
    detail::TensorDescriptor x_desc_, y_desc_;
    detail::PoolingDescriptor pool_desc_;
};

// x (N, H, W, C) -> (N, OH, OW, C); errors name `op`.
Shape pool_output_shape(const Shape& x, const Window2D& window, const char* op) {
    const WindowGeometry g = cpu::detail::pool_geometry(x, window, op);
    return Shape{x[0], g.out_h, g.out_w, x[3]};
}

// Checks x (N, H, W, C) and y (N, OH, OW, C) on the device; false when there is nothing to compute.
template <typename T>
bool checked_pool_forward(const Tensor<T>& x, const Window2D& window, const Tensor<T>& y, const char* op) {
    detail::require_rank(x, 4, op, "input");
    detail::require_shape(y, pool_output_shape(x.shape(), window, op), op, "output");
    return y.numel() > 0;
}

// x (N, H, W, C)  ->  y (N, OH, OW, C)
template <typename T>
void pool2d_forward_on_device(PoolKind kind, const Tensor<T>& x, const Window2D& window, Tensor<T>& y,
                              const char* op) {
    if (!checked_pool_forward(x, window, y, op)) return;
    const Pooling<T> pool(kind, x.shape(), window, op);
    const T* x_data = pool.input(x);
    T* y_data = pool.output(y);
    pool.forward(x_data, y_data);
    pool.finish_output(y_data, y);
}

// x (N, H, W, C), dy (N, OH, OW, C)  ->  dx (N, H, W, C)
template <typename T>
void max_pool2d_backward_on_device(const Tensor<T>& x, const Tensor<T>& dy, const Window2D& window, Tensor<T>& dx) {
    const char* op = "cuda::max_pool2d_backward";
    detail::require_rank(x, 4, op, "input");
    detail::require_shape(dy, pool_output_shape(x.shape(), window, op), op, "output gradient");
    detail::require_shape(dx, x.shape(), op, "input gradient");
    if (dx.numel() == 0) return;
    const Pooling<T> pool(PoolKind::max, x.shape(), window, op);
    const T* x_data = pool.input(x);
    const T* y_data = pool.recomputed_output(x_data);
    const T* dy_data = pool.output_gradient(dy);
    T* dx_data = pool.input_gradient(dx);
    pool.backward(y_data, dy_data, x_data, dx_data);
    pool.finish_input_gradient(dx_data, dx);
}

// dy (N, OH, OW, C)  ->  dx (N, H, W, C)
template <typename T>
void avg_pool2d_backward_on_device(const Tensor<T>& dy, const Window2D& window, Tensor<T>& dx) {
    const char* op = "cuda::avg_pool2d_backward";
    detail::require_rank(dx, 4, op, "input gradient");
    detail::require_shape(dy, pool_output_shape(dx.shape(), window, op), op, "output gradient");
    if (dx.numel() == 0) return;
    const Pooling<T> pool(PoolKind::average, dx.shape(), window, op);
    const T* dy_data = pool.output_gradient(dy);
    T* dx_data = pool.input_gradient(dx);
    pool.backward(dy_data, dy_data, dx_data, dx_data);
    pool.finish_input_gradient(dx_data, dx);
}

// x (N, H, W, C)  ->  y (N, C)
template <typename T>
void global_avg_pool_forward_on_device(const Tensor<T>& x, Tensor<T>& y) {
    const char* op = "cuda::global_avg_pool_forward";
    detail::require_rank(x, 4, op, "input");
    cpu::detail::require_global_pool_input(x.shape(), op);
    const Index batch = x.dim(0), pixels = x.dim(1) * x.dim(2), channels = x.dim(3);
    detail::require_shape(y, Shape{batch, channels}, op, "output");
    if (y.numel() == 0) return;
    BCNN_CHECK(batch <= 65535, op << ": input " << x.shape() << " has more than 65535 images");
    std::ostringstream where;
    where << op << " on input " << x.shape();
    double* partials = static_cast<double*>(detail::cudnn_context().scratch(
        detail::Scratch::workspace, sizeof(double) * kernels::column_sums_partials(pixels, channels, batch),
        where.str()));
    const RowMatrix<T> ym = y.as_rows("cuda::global_avg_pool_forward output");
    BCNN_CUDA_CHECK(kernels::column_sums(x.as_rows("cuda::global_avg_pool_forward input"), batch,
                                         1.0 / static_cast<double>(pixels), ym.data, ym.ld, partials),
                    where.str());
}

// dy (N, C)  ->  dx (N, H, W, C)
template <typename T>
void global_avg_pool_backward_on_device(const Tensor<T>& dy, Tensor<T>& dx) {
    const char* op = "cuda::global_avg_pool_backward";
    detail::require_rank(dx, 4, op, "input gradient");
    cpu::detail::require_global_pool_input(dx.shape(), op);
    const Index pixels = dx.dim(1) * dx.dim(2);
    detail::require_shape(dy, Shape{dx.dim(0), dx.dim(3)}, op, "output gradient");
    if (dx.numel() == 0) return;
    BCNN_CUDA_CHECK(kernels::broadcast_over_pixels(dy.as_rows("cuda::global_avg_pool_backward output gradient"), pixels,
                                                   T(1) / static_cast<T>(pixels),
                                                   dx.as_rows("cuda::global_avg_pool_backward input gradient")),
                    op << " on input gradient " << dx.shape());
}

}  // namespace

void max_pool2d_forward(const Tensor<float>& x, const Window2D& window, Tensor<float>& y) {
    pool2d_forward_on_device(PoolKind::max, x, window, y, "cuda::max_pool2d_forward");
}
void max_pool2d_forward(const Tensor<double>& x, const Window2D& window, Tensor<double>& y) {
    pool2d_forward_on_device(PoolKind::max, x, window, y, "cuda::max_pool2d_forward");
}
void max_pool2d_backward(const Tensor<float>& x, const Tensor<float>& dy, const Window2D& window, Tensor<float>& dx) {
    max_pool2d_backward_on_device(x, dy, window, dx);
}
void max_pool2d_backward(const Tensor<double>& x, const Tensor<double>& dy, const Window2D& window,
                         Tensor<double>& dx) {
    max_pool2d_backward_on_device(x, dy, window, dx);
}
void avg_pool2d_forward(const Tensor<float>& x, const Window2D& window, Tensor<float>& y) {
    pool2d_forward_on_device(PoolKind::average, x, window, y, "cuda::avg_pool2d_forward");
}
void avg_pool2d_forward(const Tensor<double>& x, const Window2D& window, Tensor<double>& y) {
    pool2d_forward_on_device(PoolKind::average, x, window, y, "cuda::avg_pool2d_forward");
}
void avg_pool2d_backward(const Tensor<float>& dy, const Window2D& window, Tensor<float>& dx) {
    avg_pool2d_backward_on_device(dy, window, dx);
}
void avg_pool2d_backward(const Tensor<double>& dy, const Window2D& window, Tensor<double>& dx) {
    avg_pool2d_backward_on_device(dy, window, dx);
}
void global_avg_pool_forward(const Tensor<float>& x, Tensor<float>& y) { global_avg_pool_forward_on_device(x, y); }
void global_avg_pool_forward(const Tensor<double>& x, Tensor<double>& y) { global_avg_pool_forward_on_device(x, y); }
void global_avg_pool_backward(const Tensor<float>& dy, Tensor<float>& dx) {
    global_avg_pool_backward_on_device(dy, dx);
}
void global_avg_pool_backward(const Tensor<double>& dy, Tensor<double>& dx) {
    global_avg_pool_backward_on_device(dy, dx);
}

}  // namespace cuda
}  // namespace bcnn

// oneDNN on the shapes of layer_shapes.hpp, in the same binary as the bcnn
// rows: onednn/<op>/<pass>/<shape> pairs with bcnn/<op>/<pass>/<shape>.
// Built only when CMake finds oneDNN (Debian: libdnnl-dev).
//
// How oneDNN is used (oneDNN 2.x C++ API, CPU engine, fp32):
// - activations NHWC (format tag nhwc), so no activation reorders anywhere;
// - weights: format `any`, oneDNN picks its blocked layout; bcnn's weights
//   (HWIO, depthwise HWIO with groups, dense (In, Out)) are reordered into it
//   once, outside the timed loop, as a framework keeps them (fwd, bwd_data);
//   weight gradients come out in oneDNN's layout and the timed loop includes
//   their reorder back into bcnn's, so both engines deliver the same tensors;
// - convolutions: algorithm convolution_auto (oneDNN chooses direct or
//   Winograd), forward_training, with bias; bwd_weights also gives d_bias;
//   separable = depthwise (groups = C, no bias) then a 1x1 convolution;
// - batch norm: use_scale | use_shift, epsilon kBatchNormEpsilon; fwd_inference
//   with use_global_stats; bwd (prop_kind backward) after one untimed forward;
// - pooling: fwd is forward_inference; bwd is pooling_backward after one
//   untimed forward_training (max pooling's bwd reads the argmax workspace it
//   saved, where bcnn's rescans x); average pooling excludes padding;
// - dense: inner product.
// Each row's label names oneDNN's implementations (e.g. jit:avx2).
//
// Correctness guard: before timing, each row runs its pass once with oneDNN
// and once with bcnn on the same inputs and compares every output of the pass
// (rel_err_vs_bcnn = max |onednn - bcnn| / max |bcnn|, the worst output). Above
// kMaxRelativeError (or NaN) the row is skipped with an error naming the
// output; the counter is reported on every row.

#include <dnnl.hpp>

#include <benchmark/benchmark.h>

#include <cmath>
#include <limits>
#include <sstream>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "layer_shapes.hpp"

namespace {

using namespace bcnn_bench;
using dnnl::memory;
using Tag = memory::format_tag;
constexpr memory::data_type kF32 = memory::data_type::f32;
constexpr double kMaxRelativeError = 1e-4;

dnnl::engine& cpu_engine() {
    static dnnl::engine engine(dnnl::engine::kind::cpu, 0);
    return engine;
}

dnnl::stream& cpu_stream() {
    static dnnl::stream stream(cpu_engine());
    return stream;
}

// ---- memories and steps ----------------------------------------------------------

memory::desc nhwc_md(Index n, Index c, Index h, Index w) { return memory::desc({n, c, h, w}, kF32, Tag::nhwc); }
memory::desc vector_md(Index size) { return memory::desc({size}, kF32, Tag::x); }

// A oneDNN memory over a bcnn tensor's data (contiguous, described by md).
memory wrap(const memory::desc& md, const Tensor& t) { return memory(md, cpu_engine(), t.data()); }

// The primitives of one pass, executed in order; run() waits for them.
class Steps {
public:
    void add(const dnnl::primitive& primitive, std::unordered_map<int, memory> args) {
        steps_.emplace_back(primitive, std::move(args));
    }
    void run() {
        for (auto& [primitive, args] : steps_) primitive.execute(cpu_stream(), args);
        cpu_stream().wait();
    }

private:
    std::vector<std::pair<dnnl::primitive, std::unordered_map<int, memory>>> steps_;
};

// `user` in the layout `wanted`: user itself if the layouts match, else a
// copy reordered now (untimed).
memory reordered_now(const memory& user, const memory::desc& wanted) {
    if (user.get_desc() == wanted) return user;
    memory source = user, copy(wanted, cpu_engine());
    dnnl::reorder(source, copy).execute(cpu_stream(), source, copy);
    cpu_stream().wait();
    return copy;
}

// Where a primitive writing in layout `produced` should write so that `user`
// ends up holding the result: user itself if the layouts match, else a
// scratch memory followed by a (timed) reorder step into user. Call after
// adding the primitive's step.
class OutputIn {
public:
    OutputIn(const memory& user, const memory::desc& produced)
        : user_(user), target_(user.get_desc() == produced ? user : memory(produced, cpu_engine())) {}
    const memory& target() const { return target_; }
    void add_reorder(Steps& steps) const {
        if (target_.get_desc() == user_.get_desc()) return;
        steps.add(dnnl::reorder(target_, user_), {{DNNL_ARG_FROM, target_}, {DNNL_ARG_TO, user_}});
    }

private:
    memory user_, target_;
};

// Appends "what=implementation" to a row's label.
void note(std::string& impl, const char* what, const char* implementation) {
    impl += (impl.empty() ? "" : " ") + std::string(what) + "=" + implementation;
}

// ---- convolutions ----------------------------------------------------------------

// One convolution (groups == 1: plain; groups == channels: depthwise,
// multiplier 1) on NHWC activations, bcnn's weights layout, optional bias.
class OneDnnConv {
public:
    OneDnnConv(Index channels, Index filters, Index size, Index kernel, Index stride, bool same, Index groups,
               bool with_bias)
        : strides_{stride, stride} {
        const AxisGeometry g = axis_geometry(size, kernel, stride, same);
        pad_l_ = {g.pad_before, g.pad_before};
        pad_r_ = {g.pad_after, g.pad_after};
        src_ = nhwc_md(kBatch, channels, size, size);
        dst_ = nhwc_md(kBatch, filters, g.out, g.out);
        if (groups == 1) {
            const memory::dims dims{filters, channels, kernel, kernel};
            weights_user_ = memory::desc(dims, kF32, Tag::hwio);  // bcnn's (KH, KW, C, K)
            weights_any_ = memory::desc(dims, kF32, Tag::any);
        } else {
            const memory::dims dims{groups, filters / groups, channels / groups, kernel, kernel};
            weights_user_ = memory::desc(dims, kF32, Tag::hwigo);  // bcnn's depthwise (KH, KW, C, M)
            weights_any_ = memory::desc(dims, kF32, Tag::any);
        }
        if (with_bias) bias_ = vector_md(filters);
        forward_pd_ = dnnl::convolution_forward::primitive_desc(
            dnnl::convolution_forward::desc(dnnl::prop_kind::forward_training, dnnl::algorithm::convolution_auto, src_,
                                            weights_any_, bias_, dst_, strides_, pad_l_, pad_r_),
            cpu_engine());
    }

    // y = conv(x, weights) + bias; weights are reordered now.
    void add_forward(Steps& steps, const Tensor& x, const Tensor& weights, const Tensor* bias, const Tensor& y,
                     std::string& impl) const {
        std::unordered_map<int, memory> args{
            {DNNL_ARG_SRC, wrap(src_, x)},
            {DNNL_ARG_WEIGHTS, reordered_now(wrap(weights_user_, weights), forward_pd_.weights_desc())},
            {DNNL_ARG_DST, wrap(dst_, y)}};
        if (bias) args.emplace(DNNL_ARG_BIAS, wrap(bias_, *bias));
        steps.add(dnnl::convolution_forward(forward_pd_), std::move(args));
        note(impl, "fwd", forward_pd_.impl_info_str());
    }

    // dx from dy; weights are reordered now.
    void add_backward_data(Steps& steps, const Tensor& dy, const Tensor& weights, const Tensor& dx,
                           std::string& impl) const {
        const dnnl::convolution_backward_data::primitive_desc pd(
            dnnl::convolution_backward_data::desc(dnnl::algorithm::convolution_auto, src_, weights_any_, dst_, strides_,
                                                  pad_l_, pad_r_),
            cpu_engine(), forward_pd_);
        steps.add(dnnl::convolution_backward_data(pd),
                  {{DNNL_ARG_DIFF_DST, wrap(dst_, dy)},
                   {DNNL_ARG_WEIGHTS, reordered_now(wrap(weights_user_, weights), pd.weights_desc())},
                   {DNNL_ARG_DIFF_SRC, wrap(src_, dx)}});
        note(impl, "bwd_data", pd.impl_info_str());
    }

    // d_weights (reordered into bcnn's layout in the step list) and d_bias.
    void add_backward_weights(Steps& steps, const Tensor& x, const Tensor& dy, const Tensor& d_weights,
                              const Tensor* d_bias, std::string& impl) const {
        const dnnl::convolution_backward_weights::primitive_desc pd(
            dnnl::convolution_backward_weights::desc(dnnl::algorithm::convolution_auto, src_, weights_any_, bias_, dst_,
                                                     strides_, pad_l_, pad_r_),
            cpu_engine(), forward_pd_);
        const OutputIn d_weights_out(wrap(weights_user_, d_weights), pd.diff_weights_desc());
        std::unordered_map<int, memory> args{{DNNL_ARG_SRC, wrap(src_, x)},
                                             {DNNL_ARG_DIFF_DST, wrap(dst_, dy)},
                                             {DNNL_ARG_DIFF_WEIGHTS, d_weights_out.target()}};
        if (d_bias) args.emplace(DNNL_ARG_DIFF_BIAS, wrap(bias_, *d_bias));
        steps.add(dnnl::convolution_backward_weights(pd), std::move(args));
        d_weights_out.add_reorder(steps);
        note(impl, "bwd_weights", pd.impl_info_str());
    }

private:
    memory::dims strides_, pad_l_, pad_r_;
    memory::desc src_, dst_, weights_user_, weights_any_, bias_;
    dnnl::convolution_forward::primitive_desc forward_pd_;
};

bool wants_forward(Pass p) { return p == Pass::fwd || p == Pass::fwd_bwd; }
bool wants_data(Pass p) { return p == Pass::bwd_data || p == Pass::fwd_bwd; }
bool wants_weights(Pass p) { return p == Pass::bwd_weights || p == Pass::fwd_bwd; }

// What every oneDNN row provides: its timed steps, the bcnn workload it
// checks against, and the pairs (oneDNN's output, bcnn's) to compare.
struct Comparison {
    const char* name;
    const Tensor* onednn;
    const Tensor* bcnn;
};

// A convolution row, plain or depthwise (oneDNN groups): the passes `p`
// asks for through one OneDnnConv, each output compared with bcnn's.
template <typename Workload>
struct ConvolutionRow {
    Workload ref;
    Tensor y, dx, d_weights, d_bias;
    Steps steps;
    std::string impl;
    std::vector<Comparison> comparisons;
    Pass pass;

    template <typename LayerShape>
    ConvolutionRow(const LayerShape& s, Pass p, const OneDnnConv& conv, const bcnn::Shape& output, Index filters)
        : ref(s), y(output), dx(s.input_shape()), d_weights(s.weights_shape()), d_bias(bcnn::Shape{filters}),
          pass(p) {
        if (wants_forward(p)) {
            conv.add_forward(steps, ref.x, ref.weights, &ref.bias, y, impl);
            comparisons.push_back({"y", &y, &ref.y});
        }
        if (wants_data(p)) {
            conv.add_backward_data(steps, ref.dy, ref.weights, dx, impl);
            comparisons.push_back({"dx", &dx, &ref.dx});
        }
        if (wants_weights(p)) {
            conv.add_backward_weights(steps, ref.x, ref.dy, d_weights, &d_bias, impl);
            comparisons.push_back({"d_weights", &d_weights, &ref.d_weights});
            comparisons.push_back({"d_bias", &d_bias, &ref.d_bias});
        }
    }
    void run_reference() { ref.run(pass); }
};

struct ConvRow : ConvolutionRow<ConvWorkload> {
    ConvRow(const ConvShape& s, Pass p)
        : ConvolutionRow(s, p, OneDnnConv(s.channels, s.filters, s.size, s.kernel, s.stride, s.same, 1, true),
                         s.output_shape(), s.filters) {}
};

struct DepthwiseRow : ConvolutionRow<DepthwiseWorkload> {
    DepthwiseRow(const DepthwiseShape& s, Pass p)
        : ConvolutionRow(s, p, OneDnnConv(s.channels, s.channels, s.size, s.kernel, 1, true, s.channels, true),
                         s.input_shape(), s.channels) {}
};

// Depthwise (no bias) then pointwise (with bias). The backward passes read
// oneDNN's own depthwise output, computed once here.
struct SeparableRow {
    SeparableWorkload ref;
    Tensor depthwise_out, y, d_depthwise_out, dx, d_depthwise_weights, d_pointwise_weights, d_bias;
    Steps steps;
    std::string impl;
    std::vector<Comparison> comparisons;
    Pass pass;

    SeparableRow(const SeparableShape& s, Pass p)
        : ref(s), depthwise_out(s.input_shape()), y(s.output_shape()), d_depthwise_out(s.input_shape()),
          dx(s.input_shape()), d_depthwise_weights(s.depthwise_weights_shape()),
          d_pointwise_weights(s.pointwise_weights_shape()), d_bias(bcnn::Shape{s.filters}), pass(p) {
        const OneDnnConv depthwise(s.channels, s.channels, s.size, s.kernel, 1, true, s.channels, false);
        const OneDnnConv pointwise(s.channels, s.filters, s.size, 1, 1, true, 1, true);
        if (!wants_forward(p)) {
            Steps forward;
            std::string unused;
            depthwise.add_forward(forward, ref.x, ref.depthwise_weights, nullptr, depthwise_out, unused);
            forward.run();
        }
        if (wants_forward(p)) {
            depthwise.add_forward(steps, ref.x, ref.depthwise_weights, nullptr, depthwise_out, impl);
            pointwise.add_forward(steps, depthwise_out, ref.pointwise_weights, &ref.bias, y, impl);
            comparisons.push_back({"y", &y, &ref.y});
        }
        if (wants_weights(p)) {
            pointwise.add_backward_weights(steps, depthwise_out, ref.dy, d_pointwise_weights, &d_bias, impl);
            comparisons.push_back({"d_pointwise_weights", &d_pointwise_weights, &ref.d_pointwise_weights});
            comparisons.push_back({"d_bias", &d_bias, &ref.d_bias});
        }
        if (wants_data(p) || wants_weights(p))
            pointwise.add_backward_data(steps, ref.dy, ref.pointwise_weights, d_depthwise_out, impl);
        if (wants_data(p)) {
            depthwise.add_backward_data(steps, d_depthwise_out, ref.depthwise_weights, dx, impl);
            comparisons.push_back({"dx", &dx, &ref.dx});
        }
        if (wants_weights(p)) {
            depthwise.add_backward_weights(steps, ref.x, d_depthwise_out, d_depthwise_weights, nullptr, impl);
            comparisons.push_back({"d_depthwise_weights", &d_depthwise_weights, &ref.d_depthwise_weights});
        }
    }
    void run_reference() { ref.run(pass); }
};

// ---- batch norm ------------------------------------------------------------------

struct BatchNormRow {
    BatchNormWorkload ref;
    Tensor y, mean, variance, dx, d_gamma, d_beta;
    Steps steps;
    std::string impl;
    std::vector<Comparison> comparisons;
    BatchNormPass pass;

    BatchNormRow(const BatchNormShape& s, BatchNormPass p)
        : ref(s), y(s.input_shape()), mean(bcnn::Shape{s.channels}), variance(bcnn::Shape{s.channels}),
          dx(s.input_shape()), d_gamma(bcnn::Shape{s.channels}), d_beta(bcnn::Shape{s.channels}), pass(p) {
        using dnnl::normalization_flags;
        const memory::desc data = nhwc_md(kBatch, s.channels, s.size, s.size), channel = vector_md(s.channels);
        const normalization_flags scale_shift = normalization_flags::use_scale | normalization_flags::use_shift;
        if (p == BatchNormPass::fwd_inference) {
            const dnnl::batch_normalization_forward::primitive_desc pd(
                dnnl::batch_normalization_forward::desc(dnnl::prop_kind::forward_inference, data,
                                                        float(kBatchNormEpsilon),
                                                        scale_shift | normalization_flags::use_global_stats),
                cpu_engine());
            steps.add(dnnl::batch_normalization_forward(pd),
                      {{DNNL_ARG_SRC, wrap(data, ref.x)},
                       {DNNL_ARG_SCALE, wrap(channel, ref.gamma)},
                       {DNNL_ARG_SHIFT, wrap(channel, ref.beta)},
                       {DNNL_ARG_MEAN, wrap(channel, ref.moving_mean)},
                       {DNNL_ARG_VARIANCE, wrap(channel, ref.moving_variance)},
                       {DNNL_ARG_DST, wrap(data, y)}});
            note(impl, "fwd_inference", pd.impl_info_str());
            comparisons.push_back({"y", &y, &ref.y});
            return;
        }
        const dnnl::batch_normalization_forward::primitive_desc forward_pd(
            dnnl::batch_normalization_forward::desc(dnnl::prop_kind::forward_training, data, float(kBatchNormEpsilon),
                                                    scale_shift),
            cpu_engine());
        Steps forward;
        forward.add(dnnl::batch_normalization_forward(forward_pd), {{DNNL_ARG_SRC, wrap(data, ref.x)},
                                                                    {DNNL_ARG_SCALE, wrap(channel, ref.gamma)},
                                                                    {DNNL_ARG_SHIFT, wrap(channel, ref.beta)},
                                                                    {DNNL_ARG_MEAN, wrap(channel, mean)},
                                                                    {DNNL_ARG_VARIANCE, wrap(channel, variance)},
                                                                    {DNNL_ARG_DST, wrap(data, y)}});
        if (p == BatchNormPass::bwd) {
            forward.run();  // the statistics the backward reads
        } else {
            steps = forward;
            note(impl, "fwd", forward_pd.impl_info_str());
            comparisons.push_back({"y", &y, &ref.y});
            comparisons.push_back({"mean", &mean, &ref.saved_mean});
        }
        if (p == BatchNormPass::fwd) return;
        const dnnl::batch_normalization_backward::primitive_desc pd(
            dnnl::batch_normalization_backward::desc(dnnl::prop_kind::backward, data, data, float(kBatchNormEpsilon),
                                                     scale_shift),
            cpu_engine(), forward_pd);
        // oneDNN 2.6 refuses to execute the backward without DNNL_ARG_SHIFT, which it does not read.
        steps.add(dnnl::batch_normalization_backward(pd), {{DNNL_ARG_SRC, wrap(data, ref.x)},
                                                           {DNNL_ARG_MEAN, wrap(channel, mean)},
                                                           {DNNL_ARG_VARIANCE, wrap(channel, variance)},
                                                           {DNNL_ARG_DIFF_DST, wrap(data, ref.dy)},
                                                           {DNNL_ARG_SCALE, wrap(channel, ref.gamma)},
                                                           {DNNL_ARG_SHIFT, wrap(channel, ref.beta)},
                                                           {DNNL_ARG_DIFF_SRC, wrap(data, dx)},
                                                           {DNNL_ARG_DIFF_SCALE, wrap(channel, d_gamma)},
                                                           {DNNL_ARG_DIFF_SHIFT, wrap(channel, d_beta)}});
        note(impl, "bwd", pd.impl_info_str());
        comparisons.push_back({"dx", &dx, &ref.dx});
        comparisons.push_back({"d_gamma", &d_gamma, &ref.d_gamma});
        comparisons.push_back({"d_beta", &d_beta, &ref.d_beta});
    }
    void run_reference() { ref.run(pass); }
};

// ---- pooling ---------------------------------------------------------------------

struct PoolRow {
    PoolWorkload ref;
    Tensor y, dx;
    memory workspace;
    Steps steps;
    std::string impl;
    std::vector<Comparison> comparisons;
    PoolPass pass;

    PoolRow(const PoolShape& s, PoolPass p) : ref(s), y(s.output_shape()), dx(s.input_shape()), pass(p) {
        const memory::desc src = nhwc_md(kBatch, s.channels, s.size, s.size);
        const memory::desc dst = nhwc_md(kBatch, s.channels, s.out(), s.out());
        const memory::dims strides{s.stride, s.stride}, kernel{s.kernel, s.kernel}, padding{0, 0};
        const dnnl::algorithm algorithm =
            s.max ? dnnl::algorithm::pooling_max : dnnl::algorithm::pooling_avg_exclude_padding;
        const dnnl::prop_kind kind =
            p == PoolPass::fwd ? dnnl::prop_kind::forward_inference : dnnl::prop_kind::forward_training;
        const dnnl::pooling_forward::primitive_desc forward_pd(
            dnnl::pooling_forward::desc(kind, algorithm, src, dst, strides, kernel, padding, padding), cpu_engine());
        std::unordered_map<int, memory> forward_args{{DNNL_ARG_SRC, wrap(src, ref.x)}, {DNNL_ARG_DST, wrap(dst, y)}};
        if (p == PoolPass::fwd) {
            steps.add(dnnl::pooling_forward(forward_pd), forward_args);
            note(impl, "fwd", forward_pd.impl_info_str());
            comparisons.push_back({"y", &y, &ref.y});
            return;
        }
        const bool has_workspace = forward_pd.workspace_desc().get_size() > 0;
        if (has_workspace) {
            workspace = memory(forward_pd.workspace_desc(), cpu_engine());
            forward_args.emplace(DNNL_ARG_WORKSPACE, workspace);
        }
        Steps forward;
        forward.add(dnnl::pooling_forward(forward_pd), forward_args);
        forward.run();  // the workspace the backward reads
        const dnnl::pooling_backward::primitive_desc pd(
            dnnl::pooling_backward::desc(algorithm, src, dst, strides, kernel, padding, padding), cpu_engine(),
            forward_pd);
        std::unordered_map<int, memory> args{{DNNL_ARG_DIFF_DST, wrap(dst, ref.dy)}, {DNNL_ARG_DIFF_SRC, wrap(src, dx)}};
        if (has_workspace) args.emplace(DNNL_ARG_WORKSPACE, workspace);
        steps.add(dnnl::pooling_backward(pd), std::move(args));
        note(impl, "bwd", pd.impl_info_str());
        comparisons.push_back({"dx", &dx, &ref.dx});
    }
    void run_reference() { ref.run(pass); }
};

// ---- dense -----------------------------------------------------------------------

struct DenseRow {
    DenseWorkload ref;
    Tensor y, dx, d_weights, d_bias;
    Steps steps;
    std::string impl;
    std::vector<Comparison> comparisons;
    Pass pass;

    DenseRow(const DenseShape& s, Pass p)
        : ref(s), y(bcnn::Shape{kBatch, s.out}), dx(bcnn::Shape{kBatch, s.in}), d_weights(bcnn::Shape{s.in, s.out}),
          d_bias(bcnn::Shape{s.out}), pass(p) {
        const memory::desc src({kBatch, s.in}, kF32, Tag::nc), dst({kBatch, s.out}, kF32, Tag::nc);
        const memory::desc weights_user({s.out, s.in}, kF32, Tag::io);  // bcnn's (In, Out)
        const memory::desc weights_any({s.out, s.in}, kF32, Tag::any), bias = vector_md(s.out);
        const dnnl::inner_product_forward::primitive_desc forward_pd(
            dnnl::inner_product_forward::desc(dnnl::prop_kind::forward_training, src, weights_any, bias, dst),
            cpu_engine());
        if (wants_forward(p)) {
            steps.add(dnnl::inner_product_forward(forward_pd),
                      {{DNNL_ARG_SRC, wrap(src, ref.x)},
                       {DNNL_ARG_WEIGHTS, reordered_now(wrap(weights_user, ref.weights), forward_pd.weights_desc())},
                       {DNNL_ARG_BIAS, wrap(bias, ref.bias)},
                       {DNNL_ARG_DST, wrap(dst, y)}});
            note(impl, "fwd", forward_pd.impl_info_str());
            comparisons.push_back({"y", &y, &ref.y});
        }
        if (wants_data(p)) {
            const dnnl::inner_product_backward_data::primitive_desc pd(
                dnnl::inner_product_backward_data::desc(src, weights_any, dst), cpu_engine(), forward_pd);
            steps.add(dnnl::inner_product_backward_data(pd),
                      {{DNNL_ARG_DIFF_DST, wrap(dst, ref.dy)},
                       {DNNL_ARG_WEIGHTS, reordered_now(wrap(weights_user, ref.weights), pd.weights_desc())},
                       {DNNL_ARG_DIFF_SRC, wrap(src, dx)}});
            note(impl, "bwd_data", pd.impl_info_str());
            comparisons.push_back({"dx", &dx, &ref.dx});
        }
        if (wants_weights(p)) {
            const dnnl::inner_product_backward_weights::primitive_desc pd(
                dnnl::inner_product_backward_weights::desc(src, weights_any, bias, dst), cpu_engine(), forward_pd);
            const OutputIn d_weights_out(wrap(weights_user, d_weights), pd.diff_weights_desc());
            steps.add(dnnl::inner_product_backward_weights(pd), {{DNNL_ARG_SRC, wrap(src, ref.x)},
                                                                 {DNNL_ARG_DIFF_DST, wrap(dst, ref.dy)},
                                                                 {DNNL_ARG_DIFF_WEIGHTS, d_weights_out.target()},
                                                                 {DNNL_ARG_DIFF_BIAS, wrap(bias, d_bias)}});
            d_weights_out.add_reorder(steps);
            note(impl, "bwd_weights", pd.impl_info_str());
            comparisons.push_back({"d_weights", &d_weights, &ref.d_weights});
            comparisons.push_back({"d_bias", &d_bias, &ref.d_bias});
        }
    }
    void run_reference() { ref.run(pass); }
};

// ---- rows ------------------------------------------------------------------------

// max |got - want| / max |want|; infinity when got has a NaN or infinity.
double relative_error(const Tensor& got, const Tensor& want) {
    const float* g = got.data();
    const float* w = want.data();
    double difference = 0, scale = 0;
    for (Index i = 0; i < got.numel(); ++i) {
        if (!std::isfinite(g[i])) return std::numeric_limits<double>::infinity();
        difference = std::max(difference, std::abs(double(g[i]) - double(w[i])));
        scale = std::max(scale, std::abs(double(w[i])));
    }
    return difference / std::max(scale, std::numeric_limits<double>::min());
}

// Builds the row (untimed), runs its pass once with both engines and compares,
// then times oneDNN's steps.
template <typename Row, typename Shape, typename PassT>
void register_onednn_row(const char* op, const Shape& shape, PassT pass, double flops_per_call) {
    register_layer_row(row_name("onednn", op, pass_name(pass), shape.name()), [=](benchmark::State& state) {
        const LayerThreads threads;
        std::string error;
        try {
            Row row(shape, pass);
            row.steps.run();
            row.run_reference();
            double worst = 0;
            const char* worst_name = "";
            for (const Comparison& c : row.comparisons) {
                const double e = relative_error(*c.onednn, *c.bcnn);
                if (!(e <= worst)) {
                    worst = e;
                    worst_name = c.name;
                }
            }
            if (!(worst <= kMaxRelativeError)) {
                std::ostringstream message;
                message << "oneDNN and bcnn disagree on " << worst_name << ": relative error " << worst << " > "
                        << kMaxRelativeError;
                error = message.str();
            } else {
                for (auto _ : state) row.steps.run();
                set_layer_counters(state, flops_per_call);
                state.counters["rel_err_vs_bcnn"] = worst;
                state.SetLabel(row.impl);
                return;
            }
        } catch (const dnnl::error& e) {
            error = std::string("oneDNN: ") + e.what();
        } catch (const std::exception& e) {
            error = e.what();
        }
        state.SkipWithError(error.c_str());
    });
}

bool register_onednn_rows() {
    for (const ConvShape& s : conv_shapes())
        for (Pass p : kAllPasses) register_onednn_row<ConvRow>("conv2d", s, p, s.flops_per_pass() * pass_multiple(p));
    for (const DepthwiseShape& s : depthwise_shapes())
        for (Pass p : kAllPasses)
            register_onednn_row<DepthwiseRow>("depthwise_conv2d", s, p, s.flops_per_pass() * pass_multiple(p));
    for (const SeparableShape& s : separable_shapes())
        for (Pass p : kAllPasses)
            register_onednn_row<SeparableRow>("separable_conv2d", s, p, s.flops_per_pass() * pass_multiple(p));
    for (const BatchNormShape& s : batchnorm_shapes())
        for (BatchNormPass p : kBatchNormPasses)
            register_onednn_row<BatchNormRow>("batchnorm", s, p, s.elements() * flops_per_element(p));
    for (const PoolShape& s : pool_shapes())
        for (PoolPass p : kPoolPasses) register_onednn_row<PoolRow>(s.op(), s, p, s.flops_per_pass());
    for (const DenseShape& s : dense_shapes())
        for (Pass p : kAllPasses) register_onednn_row<DenseRow>("dense", s, p, s.flops_per_pass() * pass_multiple(p));
    return true;
}

const bool registered = register_onednn_rows();

}  // namespace

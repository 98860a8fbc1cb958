// Mixed precision on the GPU (cuda::ComputePrecisionScope, backend/cuda/precision.hpp):
// conv2d (3x3 'same', 3x3/2 'same' with odd padding, 1x1, 3 input channels
// like an RGB first layer), depthwise conv2d (multiplier 1 and 2, stride 2)
// and dense, forward and backward in bf16 and fp16 against the CPU kernels
// run in double on the same values (fresh random inputs, the seed printed
// with any failure; outputs NaN-poisoned so unwritten elements show); the
// fp32 setting is the same as no setting (bit for bit) and double ignores
// the setting; channel slices in and out; and a small network trained in
// bf16, and in fp16 with loss scaling, on real images lands in the band of
// the fp32 GPU run.

#include <catch2/catch.hpp>

#include <cmath>
#include <cstdint>
#include <memory>
#include <vector>

#include <bcnn/backend/conv2d.hpp>
#include <bcnn/backend/cuda/precision.hpp>
#include <bcnn/backend/dense.hpp>
#include <bcnn/backend/depthwise_conv2d.hpp>
#include <bcnn/nn/on_device.hpp>
#include <bcnn/optim/adam.hpp>
#include <bcnn/train/fit.hpp>

#include "cuda/compare.hpp"
#include "train/real_images.hpp"
#include "support/random.hpp"
#include "train/small_network.hpp"

using namespace bcnn;
using bcnn::testing::cast;
using bcnn::testing::first_bit_difference;
using bcnn::testing::fresh_seed;
using bcnn::testing::library_tolerance;
using bcnn::testing::poisoned_on_device;
using bcnn::testing::random_tensor;
using bcnn::testing::relative_difference;

namespace {

// The limit of max |gpu - cpu| / max |cpu| for a convolution, depthwise or
// dense result (y, dx, d_weights) computed from 16-bit operands: each input
// is rounded once to the 16-bit type (relative error <= u, the unit
// roundoff: 2^-8 for bf16's 8 significant bits, 2^-11 for fp16's 11), so
// each product is off by <= 2u; products are summed in float, and the errors
// of a sum of K products of random sign grow like sqrt(K), as the sum itself
// does, so relative to the output's scale the error stays about 2u whatever
// the reduction length (K = 9 taps of a depthwise window up to thousands of
// pixels in a weights gradient). cuDNN writes its result in the 16-bit type
// (one more rounding, u); cuBLAS writes float. 8u leaves a margin of ~2.5
// for the largest of thousands of elements: bf16 3.1e-2, fp16 3.9e-3.
// The bias gradient is summed in float from the float dy: float's limit.
double limit_of(Precision precision) {
    const double u = precision == Precision::bf16 ? std::ldexp(1.0, -8) : std::ldexp(1.0, -11);
    return 8 * u;
}

enum class Op { conv2d, depthwise, dense };

// conv2d: k filters; depthwise: multiplier k; dense: x (n, c), weights (c, k).
struct Case {
    const char* name;
    Op op;
    Index n, h, w, c, k, kh, kw, stride;
    Padding padding;
};

const Case kCases[] = {
    {"conv2d 3x3 same", Op::conv2d, 2, 12, 12, 16, 32, 3, 3, 1, Padding::same},
    {"conv2d 3x3/2 same (odd padding)", Op::conv2d, 2, 13, 10, 8, 16, 3, 3, 2, Padding::same},
    {"conv2d 1x1", Op::conv2d, 2, 9, 9, 32, 16, 1, 1, 1, Padding::same},
    {"conv2d 3x3 same on 3 channels", Op::conv2d, 2, 16, 16, 3, 16, 3, 3, 1, Padding::same},
    {"depthwise 3x3 same", Op::depthwise, 2, 12, 12, 16, 1, 3, 3, 1, Padding::same},
    {"depthwise 3x3/2 same, multiplier 2", Op::depthwise, 2, 11, 9, 8, 2, 3, 3, 2, Padding::same},
    {"dense", Op::dense, 16, 1, 1, 100, 24, 1, 1, 1, Padding::valid},
    {"dense with 3 inputs", Op::dense, 5, 1, 1, 3, 7, 1, 1, 1, Padding::valid},
};

ConvParams params_of(const Case& c) { return ConvParams{c.stride, c.stride, c.padding}; }

Shape x_shape(const Case& c) { return c.op == Op::dense ? Shape{c.n, c.c} : Shape{c.n, c.h, c.w, c.c}; }
Shape weights_shape(const Case& c) {
    return c.op == Op::dense ? Shape{c.c, c.k} : Shape{c.kh, c.kw, c.c, c.k};
}
Index bias_size(const Case& c) { return c.op == Op::depthwise ? c.c * c.k : c.k; }
Shape y_shape(const Case& c) {
    switch (c.op) {
        case Op::conv2d: return cpu::conv2d_output_shape(x_shape(c), weights_shape(c), params_of(c));
        case Op::depthwise: return cpu::depthwise_conv2d_output_shape(x_shape(c), weights_shape(c), params_of(c));
        case Op::dense: break;
    }
    return Shape{c.n, c.k};
}

template <typename T>
void forward(const Case& c, const Tensor<T>& x, const Tensor<T>& w, const Tensor<T>& b, Tensor<T>& y) {
    switch (c.op) {
        case Op::conv2d: backend::conv2d_forward(x, w, &b, params_of(c), y); return;
        case Op::depthwise: backend::depthwise_conv2d_forward(x, w, &b, params_of(c), y); return;
        case Op::dense: backend::dense_forward(x, w, &b, y); return;
    }
}

template <typename T>
void backward(const Case& c, const Tensor<T>& x, const Tensor<T>& w, const Tensor<T>& dy, Tensor<T>& dx,
              Tensor<T>& dw, Tensor<T>& db) {
    switch (c.op) {
        case Op::conv2d: backend::conv2d_backward(x, w, dy, params_of(c), &dx, &dw, &db); return;
        case Op::depthwise: backend::depthwise_conv2d_backward(x, w, dy, params_of(c), &dx, &dw, &db); return;
        case Op::dense: backend::dense_backward(x, w, dy, &dx, &dw, &db); return;
    }
}

// One case's results: y, dx, d_weights, d_bias.
template <typename T>
struct Results {
    Tensor<T> y, dx, dw, db;
};

// Random operands (float, on the host) and the CPU kernels' results on them in double.
struct Problem {
    Tensor<float> x, w, b, dy;
    Results<double> expected;
    Problem(const Case& c, std::uint64_t seed)
        : x(random_tensor<float>(x_shape(c), seed)),
          w(random_tensor<float>(weights_shape(c), seed + 1)),
          b(random_tensor<float>(Shape{bias_size(c)}, seed + 2)),
          dy(random_tensor<float>(y_shape(c), seed + 3)) {
        const Tensor<double> xd = cast<double>(x), wd = cast<double>(w), bd = cast<double>(b), dyd = cast<double>(dy);
        expected = {Tensor<double>(y_shape(c)), Tensor<double>(x.shape()), Tensor<double>(w.shape()),
                    Tensor<double>(b.shape())};
        forward(c, xd, wd, bd, expected.y);
        backward(c, xd, wd, dyd, expected.dx, expected.dw, expected.db);
    }
};

// The op on the GPU in T, in the thread's current precision, into NaN-poisoned outputs.
template <typename T>
Results<T> on_gpu(const Case& c, const Problem& p) {
    const Tensor<T> x = to_device(cast<T>(p.x), Device::cuda), w = to_device(cast<T>(p.w), Device::cuda),
                    b = to_device(cast<T>(p.b), Device::cuda), dy = to_device(cast<T>(p.dy), Device::cuda);
    Results<T> r{poisoned_on_device<T>(y_shape(c)), poisoned_on_device<T>(p.x.shape()),
                 poisoned_on_device<T>(p.w.shape()), poisoned_on_device<T>(p.b.shape())};
    forward(c, x, w, b, r.y);
    backward(c, x, w, dy, r.dx, r.dw, r.db);
    return r;
}

}  // namespace

TEST_CASE("conv2d, depthwise and dense in bf16 and fp16 on cuda match the cpu within the precision's limit",
          "[cuda][mixed_precision]") {
    const std::uint64_t seed = fresh_seed();
    for (const Case& c : kCases)
        for (Precision precision : {Precision::bf16, Precision::fp16}) {
            CAPTURE(c.name, precision_name(precision), seed);
            const Problem p(c, seed);
            const Results<float> fp32 = on_gpu<float>(c, p);
            cuda::ComputePrecisionScope scope(precision);
            CHECK(cuda::compute_precision() == precision);
            for (int call = 0; call < 2; ++call) {  // the second reuses the cached algorithms and scratch
                CAPTURE(call);
                const Results<float> r = on_gpu<float>(c, p);
                const double limit = limit_of(precision);
                CHECK(relative_difference(r.y, p.expected.y) < limit);
                CHECK(relative_difference(r.dx, p.expected.dx) < limit);
                CHECK(relative_difference(r.dw, p.expected.dw) < limit);
                CHECK(relative_difference(r.db, p.expected.db) < library_tolerance<float>());
                // The 16-bit path ran: its rounding shows in the result.
                CHECK_FALSE(first_bit_difference(r.y, to_device(fp32.y, Device::cpu)).empty());
            }
        }
    CHECK(cuda::compute_precision() == Precision::fp32);  // the scopes restored it
}

TEST_CASE("the fp32 setting is no setting, and double ignores bf16, bit for bit", "[cuda][mixed_precision]") {
    const std::uint64_t seed = fresh_seed();
    for (const Case& c : kCases) {
        CAPTURE(c.name, seed);
        const Problem p(c, seed);
        const Results<float> plain = on_gpu<float>(c, p);
        const Results<double> plain_double = on_gpu<double>(c, p);
        Results<float> fp32;
        {
            cuda::ComputePrecisionScope scope(Precision::fp32);
            fp32 = on_gpu<float>(c, p);
        }
        Results<double> under_bf16;
        {
            cuda::ComputePrecisionScope scope(Precision::bf16);
            under_bf16 = on_gpu<double>(c, p);
        }
        // Forward: the same descriptors and cached algorithm give the same bits.
        // Backward: cuBLAS is deterministic (atomics off); cuDNN's backward
        // algorithms may accumulate with atomics, so two runs of one call may
        // differ in the last bits: they are compared within 1e-6 there.
        CHECK(first_bit_difference(fp32.y, to_device(plain.y, Device::cpu)) == "");
        CHECK(first_bit_difference(under_bf16.y, to_device(plain_double.y, Device::cpu)) == "");
        if (c.op == Op::dense) {
            CHECK(first_bit_difference(fp32.dx, to_device(plain.dx, Device::cpu)) == "");
            CHECK(first_bit_difference(fp32.dw, to_device(plain.dw, Device::cpu)) == "");
            CHECK(first_bit_difference(under_bf16.dw, to_device(plain_double.dw, Device::cpu)) == "");
        } else {
            CHECK(relative_difference(fp32.dx, cast<double>(plain.dx)) < 1e-6);
            CHECK(relative_difference(fp32.dw, cast<double>(plain.dw)) < 1e-6);
            CHECK(relative_difference(under_bf16.dw, cast<double>(plain_double.dw)) < 1e-12);
        }
        // And both are the library's float / double accuracy, not bf16's.
        CHECK(relative_difference(fp32.y, p.expected.y) < library_tolerance<float>());
        CHECK(relative_difference(under_bf16.y, p.expected.y) < library_tolerance<double>());
    }
}

TEST_CASE("bf16 conv2d and dense on cuda read and write channel slices of wider buffers",
          "[cuda][mixed_precision]") {
    const std::uint64_t seed = fresh_seed();
    cuda::ComputePrecisionScope scope(Precision::bf16);
    for (const Case& c : {kCases[1], kCases[6]}) {  // 3x3/2 'same' (padded input), dense
        CAPTURE(c.name, seed);
        const Problem p(c, seed);
        const Shape xs = p.x.shape(), ys = y_shape(c);
        auto wider = [](Shape s, Index extra) {
            s[s.rank() - 1] += extra;
            return s;
        };
        auto slice = [](const Tensor<float>& t, Index first, Index count) { return t.channels(first, first + count); };
        const Index cin = xs[xs.rank() - 1], cout = ys[ys.rank() - 1];
        // x at 2.. of a buffer 3 wider, dy at 1.. of one 2 wider; y at 1.. and dx at 0.. of buffers 3 wider (-7).
        const Tensor<float> x_host = random_tensor<float>(wider(xs, 3), seed + 5);
        slice(x_host, 2, cin).copy_from(p.x);
        const Tensor<float> dy_host = random_tensor<float>(wider(ys, 2), seed + 6);
        slice(dy_host, 1, cout).copy_from(p.dy);
        const Tensor<float> x = slice(to_device(x_host, Device::cuda), 2, cin);
        const Tensor<float> dy = slice(to_device(dy_host, Device::cuda), 1, cout);
        const Tensor<float> w = to_device(p.w, Device::cuda), b = to_device(p.b, Device::cuda);
        Tensor<float> y_wide = to_device(Tensor<float>(wider(ys, 3), -7.f), Device::cuda);
        Tensor<float> dx_wide = to_device(Tensor<float>(wider(xs, 3), -7.f), Device::cuda);
        Tensor<float> y = slice(y_wide, 1, cout), dx = slice(dx_wide, 0, cin);
        Tensor<float> dw = poisoned_on_device<float>(p.w.shape()), db = poisoned_on_device<float>(p.b.shape());
        forward(c, x, w, b, y);
        backward(c, x, w, dy, dx, dw, db);
        const double limit = limit_of(Precision::bf16);
        CHECK(relative_difference(y, p.expected.y) < limit);
        CHECK(relative_difference(dx, p.expected.dx) < limit);
        CHECK(relative_difference(dw, p.expected.dw) < limit);
        CHECK(relative_difference(db, p.expected.db) < library_tolerance<float>());
        // Channels outside the slices are untouched.
        const Tensor<float> y_back = to_device(y_wide, Device::cpu), dx_back = to_device(dx_wide, Device::cpu);
        const RowMatrix<float> ym = y_back.as_rows(), dxm = dx_back.as_rows();
        Index touched = 0;
        for (Index r = 0; r < ym.rows; ++r)
            for (Index ch = 0; ch < ym.cols; ++ch) touched += (ch < 1 || ch >= 1 + cout) && ym.row(r)[ch] != -7.f;
        for (Index r = 0; r < dxm.rows; ++r)
            for (Index ch = cin; ch < dxm.cols; ++ch) touched += dxm.row(r)[ch] != -7.f;
        CHECK(touched == 0);
    }
}

namespace {

// The small network (tests/train/small_network.hpp) at 48x48 on 500 TRAIN
// images (125 per class), 400 to train and 100 unseen, 15 epochs of Adam 1e-3
// behind nn::OnDevice, as test_train_custom_cnn.cpp's fp32 run.
struct TrainingRun {
    double first_loss, last_loss, accuracy;
};

TrainingRun train_in(Precision precision, train::LossScaler* loss_scaler, const testing::RealImages& d) {
    cuda::ComputePrecisionScope scope(precision);
    auto model = testing::small_network(48);
    Rng rng(10);
    model->initialize(rng);
    nn::OnDevice<float> on_device(*model, Device::cuda);
    optim::Adam<float> adam(1e-3);
    train::TrainingState<float> state{on_device, adam, rng};
    auto train_loader = testing::real_image_batches(d.images, d.parts[0], true);
    auto test_loader = testing::real_image_batches(d.images, d.parts[1], false);
    train::FitOptions options;
    options.epochs = 15;
    options.loss_scaler = loss_scaler;
    const train::History history = train::fit(state, train_loader, nullptr, options);
    const train::Evaluation result = train::evaluate(on_device, test_loader, 4);
    return TrainingRun{history.front().at("loss"), history.back().at("loss"), result.accuracy};
}

}  // namespace

TEST_CASE("a small network trained in bf16, and in fp16 with loss scaling, reaches the fp32 cuda run's band",
          "[cuda][mixed_precision][train][real-data]") {
    constexpr double kBand = 0.15;  // as test_train_custom_cnn.cpp's cpu/cuda band
    const testing::RealImages d = testing::load_real_images(48);
    const TrainingRun fp32 = train_in(Precision::fp32, nullptr, d);
    const TrainingRun bf16 = train_in(Precision::bf16, nullptr, d);
    train::LossScaler scaler;
    const TrainingRun fp16 = train_in(Precision::fp16, &scaler, d);
    INFO("fp32: loss " << fp32.first_loss << " -> " << fp32.last_loss << ", unseen accuracy " << fp32.accuracy
                       << "; bf16: loss " << bf16.first_loss << " -> " << bf16.last_loss << ", accuracy "
                       << bf16.accuracy << "; fp16: loss " << fp16.first_loss << " -> " << fp16.last_loss
                       << ", accuracy " << fp16.accuracy << ", final scale " << scaler.scale() << ", "
                       << scaler.skipped_steps() << " steps skipped");
    CHECK(fp32.accuracy >= 0.5);
    CHECK(bf16.last_loss < bf16.first_loss);
    CHECK(std::abs(bf16.accuracy - fp32.accuracy) <= kBand);
    CHECK(fp16.last_loss < fp16.first_loss);
    CHECK(std::abs(fp16.accuracy - fp32.accuracy) <= kBand);
    CHECK(scaler.skipped_steps() < 15);  // of 150 steps: a few while the scale settles from 2^15
}

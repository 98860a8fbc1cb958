// Fused module pairs in a Sequential (Module::fuses_with): BatchNormalization
// then a MaxPooling2D with disjoint windows, and a Conv2D with a ReLU then a
// MaxPooling2D (narrow Winograd's pooling as it writes too), run as one, in Sequential and SequentialTail, with the same
// outputs, parameter gradients and input gradient as the layers called one
// by one; which pairs fuse; the backward that stops before frozen modules;
// and a BatchNormalization's own backward refused after a fused forward.

#include <bcnn/nn/batch_norm.hpp>
#include <bcnn/nn/conv2d.hpp>
#include <bcnn/nn/dense.hpp>
#include <bcnn/nn/flatten.hpp>
#include <bcnn/nn/max_pool2d.hpp>
#include <bcnn/nn/sequential_tail.hpp>
#include <catch2/catch.hpp>

#include "support/gradcheck.hpp"
#include "support/random.hpp"

using namespace bcnn;
using namespace bcnn::nn;

namespace {

// conv2d -> batch_normalization -> max_pooling2d (pool, stride) -> flatten -> dense, on (7, 9, 3) inputs.
std::unique_ptr<Sequential<float>> block_model(Index pool, Index stride) {
    auto model = std::make_unique<Sequential<float>>("sequential");
    model->emplace<Conv2D<float>>(11, 3, 1, Padding::same, ActivationFn::relu);
    model->emplace<BatchNormalization<float>>();
    model->emplace<MaxPooling2D<float>>(pool, stride);
    model->emplace<Flatten<float>>();
    model->emplace<Dense<float>>(4);
    model->build(Shape{7, 9, 3});
    Rng rng(5);
    model->initialize(rng);
    // Moving statistics away from their initial values, so that inference is not the identity.
    auto& bn = dynamic_cast<BatchNormalization<float>&>(model->at(1));
    for (auto& p : bn.named_parameters())
        p.parameter->value = testing::random_tensor<float>(p.parameter->value.shape(), 6, 0.5f, 1.5f);
    return model;
}

// conv2d (filters, relu) -> max_pooling2d (pool, stride) -> flatten -> dense,
// on (7, 9, 3) inputs unless told.
std::unique_ptr<Sequential<float>> conv_pool_model(Index pool, Index stride, const Shape& input = Shape{7, 9, 3},
                                                   Index filters = 11) {
    auto model = std::make_unique<Sequential<float>>("sequential");
    model->emplace<Conv2D<float>>(filters, 3, 1, Padding::same, ActivationFn::relu);
    model->emplace<MaxPooling2D<float>>(pool, stride);
    model->emplace<Flatten<float>>();
    model->emplace<Dense<float>>(4);
    model->build(input);
    Rng rng(15);
    model->initialize(rng);
    return model;
}

// What a training step computes, module by module or through the model.
struct StepResult {
    Tensor<float> y, dx;
    std::vector<Tensor<float>> gradients, values;  // trainable gradients; every parameter's value after the step
};

StepResult collect(Sequential<float>& model, const Tensor<float>& y, const Tensor<float>& dx) {
    StepResult r{y.clone(), dx.clone(), {}, {}};
    for (const auto& p : model.named_parameters()) {
        if (p.trainable) r.gradients.push_back(p.parameter->grad.clone());
        r.values.push_back(p.parameter->value.clone());
    }
    return r;
}

StepResult run_modules_by_hand(Sequential<float>& model, const Tensor<float>& x, const Tensor<float>& dy,
                               bool training) {
    Tensor<float> h = x;
    for (std::size_t i = 0; i < model.size(); ++i) h = model.at(i).forward(h, Context{training, nullptr});
    const Tensor<float> y = h.clone();
    Tensor<float> grad = dy;
    for (std::size_t i = model.size(); i-- > 0;) grad = model.at(i).backward(grad, true);
    return collect(model, y, grad);
}

StepResult run_model(Sequential<float>& model, const Tensor<float>& x, const Tensor<float>& dy, bool training) {
    const Tensor<float> y = model.forward(x, Context{training, nullptr}).clone();
    const Tensor<float> dx = model.backward(dy, true);
    return collect(model, y, dx);
}

void require_same(const StepResult& a, const StepResult& b) {
    REQUIRE(testing::max_abs_diff(a.y, b.y) == 0);
    REQUIRE(testing::max_abs_diff(a.dx, b.dx) == 0);
    REQUIRE(a.gradients.size() == b.gradients.size());
    for (std::size_t i = 0; i < a.gradients.size(); ++i) {
        // d_gamma and d_beta sum the same products in another order (over windows, not pixels).
        double scale = 0;
        for (const float value : a.gradients[i].to_vector()) scale = std::max(scale, std::abs(double(value)));
        CHECK(testing::max_abs_diff(a.gradients[i], b.gradients[i]) <= 1e-6 * scale);
    }
    for (std::size_t i = 0; i < a.values.size(); ++i) CHECK(testing::max_abs_diff(a.values[i], b.values[i]) == 0);
}

}  // namespace

TEST_CASE("BatchNormalization fuses with a following MaxPooling2D only when its windows do not overlap",
          "[nn][sequential][fusion]") {
    auto disjoint = block_model(2, 2);
    CHECK(disjoint->at(1).fuses_with(disjoint->at(2)));
    CHECK_FALSE(disjoint->at(0).fuses_with(disjoint->at(1)));  // Conv2D fuses with nothing
    CHECK_FALSE(disjoint->at(2).fuses_with(disjoint->at(3)));
    CHECK(block_model(2, 3)->at(1).fuses_with(block_model(2, 3)->at(2)));  // gaps between windows
    auto overlapping = block_model(3, 2);
    CHECK_FALSE(overlapping->at(1).fuses_with(overlapping->at(2)));
    CHECK_FALSE(overlapping->at(1).fuses_with(overlapping->at(3)));  // Flatten

    // A 2-D BatchNormalization does not fuse.
    Sequential<float> flat("flat");
    flat.emplace<Dense<float>>(4);
    flat.emplace<BatchNormalization<float>>();
    flat.emplace<Dense<float>>(2);
    flat.build(Shape{3});
    CHECK_FALSE(flat.at(1).fuses_with(flat.at(2)));
}

TEST_CASE("A fused BatchNormalization and MaxPooling2D compute what the layers compute one by one",
          "[nn][sequential][fusion]") {
    for (const auto& [pool, stride] : std::vector<std::pair<Index, Index>>{{2, 2}, {2, 3}, {3, 3}, {3, 2}}) {
        for (const bool training : {true, false}) {
            CAPTURE(pool, stride, training);
            auto by_hand = block_model(pool, stride);
            auto whole = block_model(pool, stride);
            const Tensor<float> x = testing::random_tensor<float>(Shape{3, 7, 9, 3}, 7);
            const Tensor<float> dy = testing::random_tensor<float>(Shape{3, 4}, 8);
            // Twice, so that the second step starts from the moving statistics the first one updated.
            for (int step = 0; step < 2; ++step)
                require_same(run_modules_by_hand(*by_hand, x, dy, training), run_model(*whole, x, dy, training));
        }
    }
}

TEST_CASE("A Conv2D with a ReLU fuses with a following MaxPooling2D and computes what the two compute",
          "[nn][sequential][fusion]") {
    CHECK(conv_pool_model(2, 2)->at(0).fuses_with(conv_pool_model(2, 2)->at(1)));
    CHECK(conv_pool_model(3, 2)->at(0).fuses_with(conv_pool_model(3, 2)->at(1)));  // overlapping windows too
    Sequential<float> linear("linear");
    linear.emplace<Conv2D<float>>(4, 3, 1, Padding::same);
    linear.emplace<MaxPooling2D<float>>(2);
    linear.build(Shape{6, 6, 2});
    CHECK_FALSE(linear.at(0).fuses_with(linear.at(1)));  // no ReLU
    Sequential<float> dense("dense");
    dense.emplace<Dense<float>>(4, ActivationFn::relu);
    dense.emplace<Dense<float>>(2);
    dense.build(Shape{3});
    CHECK_FALSE(dense.at(0).fuses_with(dense.at(1)));

    for (const auto& [pool, stride] : std::vector<std::pair<Index, Index>>{{2, 2}, {2, 3}, {3, 2}}) {
        CAPTURE(pool, stride);
        auto by_hand = conv_pool_model(pool, stride);
        auto whole = conv_pool_model(pool, stride);
        // Inputs and a bias that make many of the ReLU's outputs 0, whole windows of them too.
        const Tensor<float> x = testing::random_tensor<float>(Shape{3, 7, 9, 3}, 16, -1.0f, 0.5f);
        const Tensor<float> dy = testing::random_tensor<float>(Shape{3, 4}, 17);
        require_same(run_modules_by_hand(*by_hand, x, dy, true), run_model(*whole, x, dy, true));
    }
}

TEST_CASE("A Conv2D whose kernel pools as it writes computes what the two layers compute",
          "[nn][sequential][fusion]") {
    // 16 -> 16 channels: narrow Winograd's layer, whose kernel pools as it
    // writes on the CPU (cpu::conv2d_relu_max_pool_forward).
    const Shape input{9, 7, 16};
    REQUIRE(cpu::conv2d_relu_max_pool_applies<float>(input, Shape{3, 3, 16, 16}, ConvParams{1, 1, Padding::same},
                                                     Window2D{2, 2, 2, 2}));
    for (const bool training : {true, false}) {
        CAPTURE(training);
        auto by_hand = conv_pool_model(2, 2, input, 16);
        auto whole = conv_pool_model(2, 2, input, 16);
        const Tensor<float> x = testing::random_tensor<float>(Shape{3, 9, 7, 16}, 26, -1.0f, 0.5f);
        const Tensor<float> dy = testing::random_tensor<float>(Shape{3, 4}, 27);
        // Twice: the second forward reuses the buffers of the first.
        for (int step = 0; step < 2; ++step)
            require_same(run_modules_by_hand(*by_hand, x, dy, training), run_model(*whole, x, dy, training));
    }
}

TEST_CASE("A Conv2D whose kernel pooled keeps no output and refuses its own backward",
          "[nn][sequential][fusion][errors]") {
    const Shape input{8, 6, 16};
    auto model = conv_pool_model(2, 2, input, 16);
    const Tensor<float> x = testing::random_tensor<float>(Shape{2, 8, 6, 16}, 28);
    model->forward(x, Context{true, nullptr});
    const Tensor<float> dy = testing::random_tensor<float>(Shape{2, 8, 6, 16}, 29);
    REQUIRE_THROWS_WITH(model->at(0).backward(dy, true),
                        Catch::Contains("Conv2D 'conv2d'") && Catch::Contains("fused with 'max_pooling2d'") &&
                            Catch::Contains("kept no output"));
    // A forward of its own makes its backward available again.
    model->at(0).forward(x, Context{true, nullptr});
    CHECK(model->at(0).backward(dy, true).shape() == x.shape());
}

TEST_CASE("SequentialTail fuses the pairs inside it, and a frozen fused pair stops the backward",
          "[nn][sequential][fusion]") {
    auto whole = block_model(2, 2);
    auto by_hand = block_model(2, 2);
    const Tensor<float> x = testing::random_tensor<float>(Shape{2, 7, 9, 3}, 9);
    const Tensor<float> dy = testing::random_tensor<float>(Shape{2, 4}, 10);
    const Tensor<float> h = whole->at(0).forward(x, Context{true, nullptr}).clone();
    by_hand->at(0).forward(x, Context{true, nullptr});

    SequentialTail<float> tail(*whole, 1);
    const Tensor<float> y = tail.forward(h, Context{true, nullptr}).clone();
    const Tensor<float> dh = tail.backward(dy, true).clone();
    Tensor<float> expected = h;
    for (std::size_t i = 1; i < by_hand->size(); ++i) expected = by_hand->at(i).forward(expected, Context{true, nullptr});
    CHECK(testing::max_abs_diff(y, expected) == 0);
    Tensor<float> grad = dy;
    for (std::size_t i = by_hand->size(); i-- > 1;) grad = by_hand->at(i).backward(grad, true);
    CHECK(testing::max_abs_diff(dh, grad) == 0);

    // Everything before the dense layer frozen: the model's backward stops there, the fused pair is not run.
    whole->at(0).set_trainable(false);
    whole->at(1).set_trainable(false);
    whole->forward(x, Context{true, nullptr});
    auto& bn = dynamic_cast<BatchNormalization<float>&>(whole->at(1));
    Tensor<float> gamma_grad = bn.named_parameters()[0].parameter->grad;
    gamma_grad.fill(42.0f);
    CHECK_FALSE(whole->backward(dy, false).defined());
    CHECK(gamma_grad.to_vector() == std::vector<float>(11, 42.0f));
}

TEST_CASE("BatchNormalization refuses its own backward after a fused forward", "[nn][sequential][fusion][errors]") {
    auto model = block_model(2, 2);
    model->forward(testing::random_tensor<float>(Shape{2, 7, 9, 3}, 11), Context{true, nullptr});
    REQUIRE_THROWS_WITH(model->at(1).backward(testing::random_tensor<float>(Shape{2, 7, 9, 11}, 12), true),
                        Catch::Contains("batch_normalization") && Catch::Contains("fused with 'max_pooling2d'"));
    // A forward of its own makes its backward available again.
    const Tensor<float> h = testing::random_tensor<float>(Shape{2, 7, 9, 11}, 13);
    model->at(1).forward(h, Context{true, nullptr});
    CHECK(model->at(1).backward(h, true).shape() == h.shape());
}

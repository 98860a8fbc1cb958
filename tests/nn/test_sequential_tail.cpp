// SequentialTail: modules [first, end) of a Sequential as one module. Same
// outputs and gradients as those modules run by hand, the whole model's
// parameter names, backward that stops before frozen modules, and errors.

#include <bcnn/nn/dense.hpp>
#include <bcnn/nn/dropout.hpp>
#include <bcnn/nn/sequential_tail.hpp>
#include <catch2/catch.hpp>

#include "support/gradcheck.hpp"
#include "support/random.hpp"

using namespace bcnn;
using namespace bcnn::nn;

namespace {

// dense (frozen) -> dense_1 -> dropout -> dense_2, on 6 inputs.
std::unique_ptr<Sequential<float>> small_model() {
    auto model = std::make_unique<Sequential<float>>("sequential");
    model->emplace<Dense<float>>(5, ActivationFn::relu);
    model->emplace<Dense<float>>(4, ActivationFn::relu);
    model->emplace<Dropout<float>>(0.5);
    model->emplace<Dense<float>>(3);
    model->build(Shape{6});
    Rng rng(1);
    model->initialize(rng);
    model->at(0).set_trainable(false);
    return model;
}

}  // namespace

TEST_CASE("SequentialTail runs the last modules of a Sequential, in both modes", "[nn][sequential_tail]") {
    auto model = small_model();
    SequentialTail<float> tail(*model, 1);
    CHECK(tail.name() == "sequential");
    CHECK(tail.first() == 1);
    CHECK(tail.input_shape() == Shape{5});
    CHECK(tail.output_shape() == Shape{3});

    const Tensor<float> x = testing::random_tensor<float>(Shape{7, 6}, 2);
    const Tensor<float> h = model->at(0).forward(x, Context{}).clone();
    const Tensor<float> whole = model->forward(x, Context{}).clone();
    CHECK(testing::max_abs_diff(tail.forward(h, Context{}), whole) == 0);

    // Training mode: the same dropout draws from the same generator state.
    Rng rng_whole(3), rng_tail(3);
    const Tensor<float> y_whole = model->forward(x, Context{true, &rng_whole}).clone();
    const Tensor<float> dy = testing::random_tensor<float>(Shape{7, 3}, 4);
    model->backward(dy, false);
    std::vector<Tensor<float>> grads_whole;
    for (const auto& p : model->named_parameters())
        if (p.trainable) grads_whole.push_back(p.parameter->grad.clone());

    const Tensor<float> y_tail = tail.forward(h, Context{true, &rng_tail}).clone();
    CHECK(testing::max_abs_diff(y_tail, y_whole) == 0);
    CHECK(rng_tail.counter() == rng_whole.counter());
    const Tensor<float> dh = tail.backward(dy, true);
    CHECK(dh.shape() == Shape{7, 5});
    std::size_t k = 0;
    for (const auto& p : tail.named_parameters())
        if (p.trainable) CHECK(testing::max_abs_diff(p.parameter->grad, grads_whole[k++]) == 0);
    CHECK(k == grads_whole.size());
    CHECK(!tail.backward(dy, false).defined());
}

TEST_CASE("SequentialTail has the whole model's parameters and names", "[nn][sequential_tail]") {
    auto model = small_model();
    SequentialTail<float> tail(*model, 2);
    const auto whole = model->named_parameters(), mine = tail.named_parameters();
    REQUIRE(mine.size() == whole.size());
    for (std::size_t i = 0; i < whole.size(); ++i) {
        CHECK(mine[i].name == whole[i].name);
        CHECK(mine[i].trainable == whole[i].trainable);
        CHECK(mine[i].parameter == whole[i].parameter);
    }
    CHECK(mine.front().name == "dense/kernel");
    CHECK(!mine.front().trainable);
    CHECK(tail.count_trainable_params() == model->count_trainable_params());
}

TEST_CASE("SequentialTail's backward stops before modules without trainable weights", "[nn][sequential_tail]") {
    auto model = small_model();
    model->at(1).set_trainable(false);
    SequentialTail<float> tail(*model, 1);
    Parameter<float>& frozen = *model->named_parameters()[2].parameter;  // dense_1/kernel
    REQUIRE(model->named_parameters()[2].name == "dense_1/kernel");
    frozen.grad.fill(42.0f);
    const Tensor<float> h = testing::random_tensor<float>(Shape{2, 5}, 5);
    Rng rng(6);
    tail.forward(h, Context{true, &rng});
    tail.backward(testing::random_tensor<float>(Shape{2, 3}, 7), false);
    CHECK(frozen.grad.to_vector() == std::vector<float>(frozen.grad.numel(), 42.0f));  // dense_1 got no backward
}

TEST_CASE("SequentialTail rejects what it cannot run", "[nn][sequential_tail][errors]") {
    auto model = small_model();
    CHECK_THROWS_WITH(SequentialTail<float>(*model, 0),
                      Catch::Contains("SequentialTail: first module 0 of Sequential 'sequential' with 4 modules is not "
                                      "in [1, 4)"));
    CHECK_THROWS_WITH(SequentialTail<float>(*model, 4), Catch::Contains("first module 4"));
    Sequential<float> unbuilt("unbuilt");
    unbuilt.emplace<Dense<float>>(2);
    unbuilt.emplace<Dense<float>>(2);
    CHECK_THROWS_WITH(SequentialTail<float>(unbuilt, 1), Catch::Contains("Sequential 'unbuilt' is not built"));
    SequentialTail<float> tail(*model, 1);
    CHECK_THROWS_WITH(tail.forward(Tensor<float>(Shape{2, 6}), Context{}),
                      Catch::Contains("SequentialTail 'sequential': input has shape (2, 6), expected (N, 5)"));
}

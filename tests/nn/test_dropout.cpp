// Dropout layer: identity outside training (no copy), inverted dropout in
// training drawn from context.rng, gradients in both modes, buffer reuse and
// error messages.

#include <bcnn/nn/dropout.hpp>
#include <catch2/catch.hpp>

#include "nn/layer_checks.hpp"
#include "support/layer_gradcheck.hpp"

using namespace bcnn;
using namespace bcnn::nn;
using namespace bcnn::testing;

TEST_CASE("Dropout is the identity outside training and returns its input itself", "[nn][dropout]") {
    Dropout<float> dropout(0.7);
    CHECK(std::string(dropout.type()) == "Dropout");
    CHECK(std::string(dropout.default_name()) == "dropout");
    CHECK(dropout.build(Shape{4, 4, 3}) == Shape{4, 4, 3});
    CHECK(dropout.count_params() == 0);
    const auto x = random_tensor<float>(Shape{2, 4, 4, 3}, 1);
    const Tensor<float> y = dropout.forward(x, Context{});  // no generator needed
    CHECK(y.data() == x.data());
    CHECK(y.shape() == x.shape());
    const auto dy = random_tensor<float>(x.shape(), 2);
    CHECK(dropout.backward(dy, true).data() == dy.data());
    CHECK_FALSE(dropout.backward(dy, false).defined());

    Dropout<float> none(0.0);  // rate 0: the identity in training too, as Keras
    none.build(Shape{4, 4, 3});
    CHECK(none.forward(x, Context{true, nullptr}).data() == x.data());
}

TEST_CASE("Dropout in training zeroes a fraction `rate` and scales the rest", "[nn][dropout]") {
    const double rate = 0.3;
    Dropout<double> dropout(rate);
    dropout.build(Shape{1000});
    const auto x = random_tensor<double>(Shape{4, 1000}, 3, 0.5, 1.5);
    Rng rng(7);
    const Tensor<double> y = dropout.forward(x, Context{true, &rng}).clone();
    CHECK(rng.counter() == 4000);  // one stream position per element
    Index kept = 0;
    const std::vector<double> xv = x.to_vector(), yv = y.to_vector();
    for (std::size_t i = 0; i < xv.size(); ++i) {
        if (yv[i] == 0.0) continue;
        ++kept;
        CHECK(yv[i] == Approx(xv[i] / (1 - rate)).epsilon(1e-15));
    }
    CHECK(static_cast<double>(kept) / 4000 == Approx(1 - rate).margin(0.03));  // 4 standard deviations

    // The same generator state gives the same mask; the next draw another.
    Rng again(7);
    CHECK(max_abs_diff(dropout.forward(x, Context{true, &again}), y) == 0.0);
    CHECK(max_abs_diff(dropout.forward(x, Context{true, &again}), y) > 0.0);

    // Backward passes the gradient through the kept elements only, scaled alike.
    Rng rng2(7);
    dropout.forward(x, Context{true, &rng2});
    const Tensor<double> dx = dropout.backward(Tensor<double>(x.shape(), 1.0), true);
    const std::vector<double> dxv = dx.to_vector();
    for (std::size_t i = 0; i < dxv.size(); ++i) CHECK(dxv[i] == (yv[i] == 0.0 ? 0.0 : 1 / (1 - rate)));
}

TEST_CASE("Dropout gradients match finite differences in both modes", "[nn][dropout][gradcheck]") {
    for (const bool training : {true, false}) {
        Dropout<double> dropout(0.5);
        dropout.build(Shape{3, 3, 2});
        check_module_gradients(dropout, random_tensor<double>(Shape{2, 3, 3, 2}, 4), training);
    }
}

TEST_CASE("Dropout reuses its buffers in training", "[nn][dropout]") {
    Dropout<float> dropout(0.2);
    dropout.build(Shape{5, 3});
    check_buffers_reused(dropout, random_tensor<float>(Shape{2, 5, 3}, 5), true);
}

TEST_CASE("Dropout rejects bad rates and training without a generator", "[nn][dropout][errors]") {
    CHECK_THROWS_WITH(Dropout<float>(1.0), Catch::Contains("Dropout: rate 1 is outside [0, 1)"));
    CHECK_THROWS_WITH(Dropout<float>(-0.1), Catch::Contains("Dropout: rate -0.1 is outside [0, 1)"));
    Dropout<float> dropout(0.5, "drop");
    dropout.build(Shape{8});
    CHECK_THROWS_WITH(dropout.forward(Tensor<float>(Shape{2, 8}), Context{true, nullptr}),
                      Catch::Contains("Dropout 'drop': training needs a random generator, but Context::rng is null"));
    CHECK_THROWS_WITH(dropout.forward(Tensor<float>(Shape{2, 9}), Context{}),
                      Catch::Contains("Dropout 'drop': input has shape (2, 9), expected (N, 8)"));
}

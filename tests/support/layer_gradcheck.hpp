#pragma once
// Gradient checks for whole modules: the module's backward against central
// differences of its forward, for the input and every trainable parameter.

#include <catch2/catch.hpp>

#include <bcnn/nn/module.hpp>

#include "support/gradcheck.hpp"
#include "support/random.hpp"

namespace bcnn {
namespace testing {

// Builds nothing: `module` must be built and initialised. x is (N, input_shape...).
// In training mode every forward draws from a generator re-seeded the same way,
// so dropout masks are identical across the finite-difference evaluations.
inline void check_module_gradients(nn::Module<double>& module, Tensor<double> x, bool training,
                                   std::uint64_t seed = 99, double tolerance = 1e-6) {
    auto forward = [&] {
        Rng rng(seed);
        nn::Context context{training, &rng};
        return module.forward(x, context).clone();
    };
    const Tensor<double> upstream = random_tensor<double>(forward().shape(), seed + 1);
    forward();
    const Tensor<double> dx = module.backward(upstream, true).clone();
    INFO(module.type() << " '" << module.name() << "' input gradient");
    CHECK(relative_error(dx, numerical_gradient(x, forward, upstream)) < tolerance);
    for (const auto& p : module.named_parameters()) {
        if (!p.trainable) continue;
        forward();
        module.backward(upstream, true);
        const Tensor<double> analytic = p.parameter->grad.clone();
        INFO("parameter " << p.name);
        CHECK(relative_error(analytic, numerical_gradient(p.parameter->value, forward, upstream)) < tolerance);
    }
}

}  // namespace testing
}  // namespace bcnn

// The smallest bcnn program: one dense layer's forward pass on the CPU.
#include <bcnn/bcnn.hpp>

#include <iostream>

int main() {
    using bcnn::Shape;
    using bcnn::Tensor;
    try {
        const Tensor<float> x(Shape{4, 3}, 1.0f);        // a batch of 4 inputs, 3 features each
        const Tensor<float> weights(Shape{3, 2}, 0.5f);  // Keras layout: (In, Out)
        const auto bias = Tensor<float>::from_vector(Shape{2}, {0.0f, 1.0f});
        Tensor<float> y(Shape{4, 2});                    // outputs are allocated by the caller
        bcnn::cpu::dense_forward(x, weights, &bias, y);
        std::cout << "y " << y.shape() << " = [" << y(0, 0) << ", " << y(0, 1) << ", ...]\n";
    } catch (const bcnn::Error& e) {
        std::cerr << "error: " << e.what() << '\n';
        return 1;
    }
}

// Uses bcnn as an outside project would: a dense forward pass checked
// against the same sum written out by hand. Exits non-zero on a mismatch.
#include <bcnn/bcnn.hpp>

#include <cmath>
#include <iostream>

int main() {
    using bcnn::Shape;
    using bcnn::Tensor;
    try {
        const auto x = Tensor<double>::from_vector(Shape{2, 3}, {1, 2, 3, -4, 5, 0.5});
        const auto w = Tensor<double>::from_vector(Shape{3, 2}, {0.5, -1, 2, 0.25, -3, 1});
        const auto b = Tensor<double>::from_vector(Shape{2}, {0.1, -0.2});
        Tensor<double> y(Shape{2, 2});
        bcnn::cpu::dense_forward(x, w, &b, y);
        int mismatches = 0;
        for (int r = 0; r < 2; ++r)
            for (int j = 0; j < 2; ++j) {
                double expected = b(j);
                for (int i = 0; i < 3; ++i) expected += x(r, i) * w(i, j);
                if (std::abs(y(r, j) - expected) > 1e-12) {
                    std::cerr << "y(" << r << ", " << j << ") = " << y(r, j) << ", expected " << expected << '\n';
                    ++mismatches;
                }
            }
        if (mismatches) return 1;
        std::cout << "bcnn consumer: dense forward " << y.shape() << " matches\n";
        return 0;
    } catch (const bcnn::Error& e) {
        std::cerr << "error: " << e.what() << '\n';
        return 1;
    }
}

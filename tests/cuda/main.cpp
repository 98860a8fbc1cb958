// Main of bcnn_cuda_tests. Without a usable CUDA device it prints one line
// saying why and exits 77, which CTest (SKIP_RETURN_CODE 77) reports as
// Skipped. BCNN_REQUIRE_CUDA=1 (set it on GPU machines) makes that a failure.
#define CATCH_CONFIG_RUNNER
#include <catch2/catch.hpp>

#include <cstdlib>
#include <iostream>
#include <string>

#include <bcnn/backend/cuda/device.hpp>

int main(int argc, char** argv) {
    std::string why_not;
    if (!bcnn::cuda::device_available(&why_not)) {
        std::cout << "bcnn CUDA tests NOT RUN: " << why_not << std::endl;
        const char* require = std::getenv("BCNN_REQUIRE_CUDA");
        return require && std::string(require) == "1" ? 1 : 77;
    }
    try {
        std::cout << "bcnn CUDA tests on " << bcnn::cuda::describe_device() << std::endl;
    } catch (const std::exception& error) {
        std::cout << "bcnn CUDA tests: " << error.what() << std::endl;
        return 1;
    }
    // Catch returns the number of failed tests, which could be 77: map it to 1.
    return Catch::Session().run(argc, argv) == 0 ? 0 : 1;
}

// Device memory and transfers: bit-exact round trips of every kind of value,
// views in both directions, empty tensors, and CUDA errors as bcnn::Error.

#include <catch2/catch.hpp>

#include <cstdint>
#include <cstring>
#include <vector>

#include <bcnn/backend/relu.hpp>

#include "cuda/compare.hpp"
#include "support/random.hpp"

using namespace bcnn;
using bcnn::testing::first_bit_difference;

namespace {

// A tensor of arbitrary bit patterns (NaNs with payloads, infinities,
// denormals, -0 included), from bcnn's seeded Rng.
template <typename T>
Tensor<T> random_bits(const Shape& shape, std::uint64_t seed) {
    Tensor<T> t = Tensor<T>::uninitialized(shape);
    const Rng rng(seed);
    for (Index i = 0; i < t.numel(); ++i) {
        const std::uint64_t bits = rng.bits_at(static_cast<std::uint64_t>(i));
        std::memcpy(t.data() + i, &bits, sizeof(T));
    }
    return t;
}

}  // namespace

TEMPLATE_TEST_CASE("to_device round trip cpu -> cuda -> cpu is bit-exact", "[cuda][memory]", float, double,
                   std::uint8_t, std::int32_t) {
    for (const Shape& shape : {Shape{}, Shape{1}, Shape{13}, Shape{3, 150, 150, 3}, Shape{7, 1, 1, 1001}}) {
        CAPTURE(shape);
        const Tensor<TestType> host = random_bits<TestType>(shape, 3);
        const Tensor<TestType> device = to_device(host, Device::cuda);
        CHECK(device.device() == Device::cuda);
        CHECK(device.shape() == shape);
        const Tensor<TestType> back = to_device(device, Device::cpu);
        CHECK(back.device() == Device::cpu);
        CHECK(std::memcmp(back.data(), host.data(), sizeof(TestType) * host.numel()) == 0);
    }
}

TEST_CASE("to_device copies channel views in both directions", "[cuda][memory]") {
    const Tensor<double> wide = random_bits<double>(Shape{4, 5, 6, 9}, 4);
    // cpu view -> cuda (contiguous) -> cpu
    const Tensor<double> up = to_device(wide.channels(2, 7), Device::cuda);
    CHECK(up.is_contiguous());
    CHECK(first_bit_difference(up, wide.channels(2, 7).clone()) == "");
    // cuda view -> cpu
    const Tensor<double> wide_device = to_device(wide, Device::cuda);
    const Tensor<double> down = to_device(wide_device.channels(3, 4), Device::cpu);
    CHECK(first_bit_difference(down, wide.channels(3, 4).clone()) == "");
}

TEST_CASE("to_device on the tensor's own device returns the same handle", "[cuda][memory]") {
    const Tensor<float> host(Shape{2, 2}, 1.f);
    CHECK(to_device(host, Device::cpu).data() == host.data());
    const Tensor<float> device = to_device(host, Device::cuda);
    CHECK(to_device(device, Device::cuda).data() == device.data());
}

TEST_CASE("empty tensors move without copying", "[cuda][memory]") {
    const Tensor<float> device = to_device(Tensor<float>(Shape{0, 5}), Device::cuda);
    CHECK(device.device() == Device::cuda);
    CHECK(device.storage()->bytes() == 0);
    CHECK(to_device(device, Device::cpu).shape() == Shape{0, 5});
}

TEST_CASE("allocate and the raw copies round-trip bytes", "[cuda][memory]") {
    const std::size_t bytes = 1000003;
    const auto storage = cuda::allocate(bytes);
    CHECK(storage->device() == Device::cuda);
    CHECK(storage->bytes() == bytes);
    const Tensor<std::uint8_t> source = random_bits<std::uint8_t>(Shape{static_cast<Index>(bytes)}, 5);
    Tensor<std::uint8_t> back(source.shape());
    cuda::copy_to_device(storage->data(), source.data(), bytes);
    cuda::copy_to_host(back.data(), storage->data(), bytes);
    CHECK(std::memcmp(back.data(), source.data(), bytes) == 0);
}

TEST_CASE("the caching allocator serves a repeated step without cudaMalloc", "[cuda][memory]") {
    const std::vector<Shape> step{Shape{32, 150, 150, 16}, Shape{3, 3, 16, 16}, Shape{16}, Shape{32, 4}};
    const auto run_step = [&] {
        std::vector<Tensor<float>> tensors;
        for (const Shape& shape : step) tensors.push_back(to_device(Tensor<float>(shape, 1.f), Device::cuda));
        return cuda::memory_stats();
    };
    const cuda::MemoryStats before = cuda::memory_stats();
    const cuda::MemoryStats first = run_step();
    const cuda::MemoryStats after_first = cuda::memory_stats();
    const cuda::MemoryStats second = run_step();
    CHECK(second.device_allocations == first.device_allocations);  // served from the cache
    CHECK(second.reuses >= first.reuses + step.size());
    CHECK(first.bytes_in_use >= before.bytes_in_use + 32 * 150 * 150 * 16 * sizeof(float));
    CHECK(after_first.bytes_in_use == before.bytes_in_use);  // the step's tensors went back to the cache
    CHECK(after_first.bytes_cached >= 32 * 150 * 150 * 16 * sizeof(float));
    cuda::empty_cache();
    CHECK(cuda::memory_stats().bytes_cached == 0);
}

TEST_CASE("a failed CUDA call throws bcnn::Error naming the call, status and size", "[cuda][memory]") {
    const std::size_t too_many = std::size_t(1) << 50;  // 1 PiB
    CHECK_THROWS_WITH(cuda::allocate(too_many),
                      Catch::Contains("cuda::allocate of 1125899906842624 bytes on device ") &&
                          Catch::Contains(": out of device memory (cudaMalloc failed after the cache gave back"));
    // The failure is not left behind for the next kernel launch to report.
    const Tensor<float> x = to_device(Tensor<float>(Shape{3}, -1.f), Device::cuda);
    Tensor<float> y = testing::poisoned_on_device<float>(Shape{3});
    CHECK_NOTHROW(cuda::relu_forward(x, y));
    CHECK(first_bit_difference(y, Tensor<float>(Shape{3}, 0.f)) == "");
}

TEST_CASE("describe_device names the device and library versions", "[cuda][memory]") {
    const std::string description = cuda::describe_device();
    CHECK_THAT(description, Catch::Contains("compute capability") && Catch::Contains("cuDNN 9."));
}

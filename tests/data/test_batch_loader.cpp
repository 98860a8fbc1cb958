// BatchLoader: every index once per epoch, shapes and the partial last batch,
// exact /255 scaling, seeded order, batches prepared ahead by the background
// thread, worker exceptions re-thrown in the caller, clean shutdown; float
// samples (e.g. cached backbone features) served as given, of any rank, in
// the same batches and orders as images with the same seed and indices.

#include <catch2/catch.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <thread>

#include <bcnn/data/batch_loader.hpp>

using namespace bcnn;
using namespace bcnn::data;

namespace {

// n images of 2x3x3 whose pixels encode (sample, position); label = sample % 4.
struct Samples {
    Tensor<std::uint8_t> images;
    Tensor<std::int32_t> labels;
};

Samples make_samples(Index n) {
    Samples s{Tensor<std::uint8_t>(Shape{n, 2, 3, 3}), Tensor<std::int32_t>(Shape{n})};
    for (Index i = 0; i < n; ++i) {
        for (Index e = 0; e < 18; ++e) s.images.data()[i * 18 + e] = static_cast<std::uint8_t>((i * 18 + e) % 256);
        s.labels.data()[i] = static_cast<std::int32_t>(i % 4);
    }
    return s;
}

std::vector<Index> range(Index n) {
    std::vector<Index> v(static_cast<std::size_t>(n));
    for (Index i = 0; i < n; ++i) v[static_cast<std::size_t>(i)] = i;
    return v;
}

std::vector<Batch> whole_epoch(BatchLoader& loader, std::uint64_t epoch) {
    loader.start_epoch(epoch);
    std::vector<Batch> batches;
    Batch batch;
    while (loader.next(batch)) batches.push_back(batch);
    return batches;
}

std::vector<Index> order_of(const std::vector<Batch>& batches) {
    std::vector<Index> order;
    for (const Batch& b : batches) order.insert(order.end(), b.indices.begin(), b.indices.end());
    return order;
}

}  // namespace

TEST_CASE("BatchLoader serves every index once per epoch in float batches scaled by 1/255", "[data][batch_loader]") {
    const Samples s = make_samples(50);
    std::vector<Index> indices = range(50);
    indices.erase(indices.begin() + 3);  // serve 49 of the 50 samples
    BatchLoader loader(s.images, s.labels, indices, {16, true, 7, 2, {}});
    CHECK(loader.samples() == 49);
    CHECK(loader.batches_per_epoch() == 4);

    const std::vector<Batch> batches = whole_epoch(loader, 0);
    REQUIRE(batches.size() == 4);
    for (std::size_t k = 0; k < 4; ++k) {
        const Index size = k < 3 ? 16 : 1;  // the partial last batch is kept
        CHECK(batches[k].number == static_cast<Index>(k));
        CHECK(batches[k].images.shape() == Shape{size, 2, 3, 3});
        CHECK(batches[k].labels.shape() == Shape{size});
        REQUIRE(batches[k].indices.size() == static_cast<std::size_t>(size));
        for (Index j = 0; j < size; ++j) {
            const Index index = batches[k].indices[static_cast<std::size_t>(j)];
            CHECK(batches[k].labels.data()[j] == s.labels.data()[index]);
            for (Index e = 0; e < 18; ++e)
                REQUIRE(batches[k].images.data()[j * 18 + e] == static_cast<float>(s.images.data()[index * 18 + e]) / 255.0f);
        }
    }
    std::vector<Index> seen = order_of(batches);
    CHECK(seen != indices);  // shuffled
    std::sort(seen.begin(), seen.end());
    CHECK(seen == indices);

    Batch extra;
    CHECK_FALSE(loader.next(extra));  // the epoch is over
}

TEST_CASE("BatchLoader's order depends only on the seed and the epoch", "[data][batch_loader]") {
    const Samples s = make_samples(40);
    BatchLoader a(s.images, s.labels, range(40), {8, true, 3, 1, {}});
    BatchLoader b(s.images, s.labels, range(40), {8, true, 3, 2, {}});
    BatchLoader c(s.images, s.labels, range(40), {8, true, 4, 2, {}});
    const auto a0 = order_of(whole_epoch(a, 0)), a1 = order_of(whole_epoch(a, 1));
    CHECK(order_of(whole_epoch(b, 1)) == a1);  // other prefetch depth, other history
    CHECK(order_of(whole_epoch(b, 0)) == a0);
    CHECK(a0 == a.epoch_order(0));
    CHECK(a1 != a0);
    CHECK(order_of(whole_epoch(c, 0)) != a0);

    // Restarting an epoch half way gives the same epoch again.
    a.start_epoch(1);
    Batch batch;
    REQUIRE(a.next(batch));
    REQUIRE(a.next(batch));
    CHECK(order_of(whole_epoch(a, 1)) == a1);

    BatchLoader plain(s.images, s.labels, {5, 1, 4}, {2, false, 3, 2, {}});
    CHECK(order_of(whole_epoch(plain, 9)) == std::vector<Index>{5, 1, 4});
}

TEST_CASE("BatchLoader prepares the next batches while the caller holds the current one", "[data][batch_loader]") {
    const Samples s = make_samples(64);
    BatchLoader loader(s.images, s.labels, range(64), {8, true, 1, 2, {}});
    loader.start_epoch(0);
    Batch current;
    REQUIRE(loader.next(current));
    // Holding batch 0 (not asking for more), the worker alone must reach batch 2.
    // A loader that prepared batches only inside next() would never get there;
    // the deadline only bounds a failing run.
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    while (loader.batches_prepared() < 3 && std::chrono::steady_clock::now() < deadline)
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
    CHECK(loader.batches_prepared() == 3);  // batches 1 and 2 ready; no further (prefetch 2)
    CHECK(current.number == 0);
    Batch next;
    REQUIRE(loader.next(next));
    CHECK(next.number == 1);
}

TEST_CASE("BatchLoader re-throws a worker's exception in the caller, after the batches before it",
          "[data][batch_loader]") {
    const Samples s = make_samples(20);
    std::atomic<int> calls{0};
    SampleTransform failing = [&](const Tensor<float>&, std::uint64_t, Index) {
        if (++calls > 12) throw Error("transform failed on purpose");
    };
    BatchLoader loader(s.images, s.labels, range(20), {4, true, 1, 2, failing});
    loader.start_epoch(0);
    Batch batch;
    for (int k = 0; k < 3; ++k) REQUIRE(loader.next(batch));  // 12 samples transformed
    CHECK_THROWS_WITH(loader.next(batch), "transform failed on purpose");
    CHECK_THROWS_WITH(loader.next(batch), "transform failed on purpose");
}

TEST_CASE("BatchLoader applies a seeded augmentation per (epoch, sample)", "[data][batch_loader]") {
    const Samples s = make_samples(12);
    Augmentation policy;
    policy.horizontal_flip = true;
    policy.max_brightness_change = 0.1;
    // Square images are not needed for flips and brightness; these are 2x3.
    BatchLoader a(s.images, s.labels, range(12), {5, true, 2, 2, random_augmentation(policy, 99)});
    BatchLoader b(s.images, s.labels, range(12), {3, true, 8, 1, random_augmentation(policy, 99)});
    const auto batches = whole_epoch(a, 4);
    for (const Batch& batch : batches)
        for (std::size_t j = 0; j < batch.indices.size(); ++j) {
            const Index index = batch.indices[j];
            Tensor<float> expected(Shape{2, 3, 3});
            for (Index e = 0; e < 18; ++e) expected.data()[e] = static_cast<float>(s.images.data()[index * 18 + e]) / 255.0f;
            apply_augmentation(expected, draw_augmentation(policy, 99, 4, static_cast<std::uint64_t>(index)));
            const auto j_ = static_cast<Index>(j);
            CHECK(batch.images.slice(0, j_, j_ + 1).to_vector() == expected.to_vector());
        }
    // Same samples, same epoch: same augmented pixels, whatever the batch size or shuffle seed.
    for (const Batch& batch : whole_epoch(b, 4))
        for (std::size_t j = 0; j < batch.indices.size(); ++j)
            for (const Batch& other : batches)
                for (std::size_t i = 0; i < other.indices.size(); ++i)
                    if (other.indices[i] == batch.indices[j]) {
                        const auto j_ = static_cast<Index>(j), i_ = static_cast<Index>(i);
                        CHECK(batch.images.slice(0, j_, j_ + 1).to_vector() ==
                              other.images.slice(0, i_, i_ + 1).to_vector());
                    }
}

TEST_CASE("BatchLoader checks its arguments and shuts down mid-epoch", "[data][batch_loader]") {
    const Samples s = make_samples(10);
    CHECK_THROWS_WITH(BatchLoader(s.images, s.labels, {0, 10}, {}), Catch::Contains("index 10 out of range for 10 images"));
    CHECK_THROWS_WITH(BatchLoader(s.images, Tensor<std::int32_t>(Shape{9}), range(10), {}),
                      Catch::Contains("labels have shape (9), expected (10)"));
    CHECK_THROWS_WITH(BatchLoader(s.images, s.labels, range(10), {0, true, 0, 2, {}}),
                      Catch::Contains("batch_size must be >= 1, got 0"));
    {
        BatchLoader idle(s.images, s.labels, range(10), {});
        Batch batch;
        CHECK_THROWS_WITH(idle.next(batch), Catch::Contains("call start_epoch first"));
    }
    {
        BatchLoader busy(s.images, s.labels, range(10), {2, true, 0, 2, {}});
        busy.start_epoch(0);
        Batch batch;
        REQUIRE(busy.next(batch));
    }  // destroyed with batches pending: joins without hanging
    BatchLoader empty(s.images, s.labels, {}, {});
    CHECK(whole_epoch(empty, 0).empty());
}

TEST_CASE("BatchLoader serves float samples as they are, in the image loader's batches and orders",
          "[data][batch_loader]") {
    const Index n = 11;
    Tensor<float> samples(Shape{n, 2, 3});  // sample i holds i * 10 + e - 0.5
    Tensor<std::uint8_t> images(Shape{n, 1, 1, 1});
    Tensor<std::int32_t> labels(Shape{n});
    for (Index i = 0; i < n; ++i) {
        for (Index e = 0; e < 6; ++e) samples.data()[i * 6 + e] = static_cast<float>(i * 10 + e) - 0.5f;
        images.data()[i] = static_cast<std::uint8_t>(i);
        labels.data()[i] = static_cast<std::int32_t>(i % 3);
    }
    const std::vector<Index> indices{0, 2, 3, 5, 6, 7, 9, 10};
    const BatchLoaderOptions options{3, true, 21, 2, {}};
    BatchLoader from_samples(samples, labels, indices, options);
    BatchLoader from_images(images, labels, indices, options);
    CHECK(from_samples.batches_per_epoch() == 3);
    for (std::uint64_t epoch : {0u, 1u}) {
        const std::vector<Batch> a = whole_epoch(from_samples, epoch), b = whole_epoch(from_images, epoch);
        REQUIRE(a.size() == 3);
        REQUIRE(b.size() == 3);
        for (std::size_t k = 0; k < a.size(); ++k) {
            CHECK(a[k].indices == b[k].indices);
            CHECK(a[k].labels.to_vector() == b[k].labels.to_vector());
            CHECK(a[k].images.shape() == Shape{static_cast<Index>(a[k].indices.size()), 2, 3});
            for (std::size_t j = 0; j < a[k].indices.size(); ++j) {
                const Index i = a[k].indices[j], row = static_cast<Index>(j);
                CHECK(a[k].images.slice(0, row, row + 1).to_vector() == samples.slice(0, i, i + 1).to_vector());
            }
        }
    }
}

TEST_CASE("BatchLoader applies its transform to float samples of any rank", "[data][batch_loader]") {
    Tensor<float> samples(Shape{4, 3});
    for (Index e = 0; e < 12; ++e) samples.data()[e] = static_cast<float>(e);
    Tensor<std::int32_t> labels(Shape{4});
    BatchLoaderOptions options{4, false, 0, 1, {}};
    options.transform = [](const Tensor<float>& sample, std::uint64_t epoch, Index index) {
        REQUIRE(sample.shape() == Shape{3});
        sample.data()[0] = static_cast<float>(100 * epoch + index);
    };
    BatchLoader loader(samples, labels, {0, 1, 2, 3}, options);
    const std::vector<Batch> batches = whole_epoch(loader, 2);
    REQUIRE(batches.size() == 1);
    CHECK(batches[0].images.to_vector() ==
          std::vector<float>{200, 1, 2, 201, 4, 5, 202, 7, 8, 203, 10, 11});
    CHECK(samples.data()[0] == 0);  // the source is never changed
}

TEST_CASE("BatchLoader checks float samples like images", "[data][batch_loader][errors]") {
    Tensor<float> samples(Shape{5, 2});
    Tensor<std::int32_t> labels(Shape{5});
    CHECK_THROWS_WITH(BatchLoader(samples, labels, {0, 5}, {}), Catch::Contains("index 5 out of range for 5 samples"));
    CHECK_THROWS_WITH(BatchLoader(samples, Tensor<std::int32_t>(Shape{4}), {0}, {}),
                      Catch::Contains("labels have shape (4), expected (5)"));
    CHECK_THROWS_WITH(BatchLoader(Tensor<float>(Shape{5}), labels, {0}, {}),
                      Catch::Contains("samples must be a contiguous tensor with a batch axis, got shape (5)"));
    CHECK_THROWS_WITH(BatchLoader(Tensor<float>(Shape{2, 6}).slice(1, 0, 3), labels, {0}, {}),
                      Catch::Contains("samples must be a contiguous tensor"));
    CHECK_THROWS_WITH(BatchLoader(Tensor<std::uint8_t>(Shape{5, 2, 2}), labels, {0}, {}),
                      Catch::Contains("images must be a contiguous (N, H, W, C) tensor, got shape (5, 2, 2)"));
}

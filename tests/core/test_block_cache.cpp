// BlockCache over a counting stand-in allocator with a memory budget: reuse
// of freed blocks, the 5/4 fit rule, rounding, trimming when the allocator
// fails, statistics, and misuse.

#include <catch2/catch.hpp>

#include <cstdlib>
#include <cstring>
#include <map>
#include <set>
#include <thread>
#include <vector>

#include <bcnn/core/block_cache.hpp>

using namespace bcnn;

namespace {

// malloc with a byte budget: nullptr when a request would exceed it.
struct BudgetAllocator {
    explicit BudgetAllocator(std::size_t budget_bytes) : budget(budget_bytes) {}

    std::size_t budget, used = 0, allocations = 0, frees = 0;
    std::set<void*> live;
    std::map<void*, std::size_t> sizes;

    BlockCache cache() {
        return BlockCache(
            [this](std::size_t bytes) -> void* {
                if (used + bytes > budget) return nullptr;
                void* block = std::malloc(bytes);
                used += bytes;
                ++allocations;
                live.insert(block);
                sizes[block] = bytes;
                return block;
            },
            [this](void* block) {
                REQUIRE(live.erase(block) == 1);
                used -= sizes[block];
                sizes.erase(block);
                ++frees;
                std::free(block);
            });
    }
};

}  // namespace

TEST_CASE("BlockCache serves a training step's repeated sizes from the cache", "[core][block_cache]") {
    BudgetAllocator device{std::size_t{1} << 27};
    {
        BlockCache cache = device.cache();
        const std::vector<std::size_t> step_sizes{4 * 32 * 150 * 150 * 16, 4 * 16, 4 * 3 * 3 * 16 * 16, 1000, 12};
        for (int step = 0; step < 5; ++step) {
            std::vector<void*> blocks;
            for (std::size_t bytes : step_sizes) {
                void* block = cache.acquire(bytes);
                REQUIRE(block != nullptr);
                blocks.push_back(block);
            }
            CHECK(std::set<void*>(blocks.begin(), blocks.end()).size() == blocks.size());
            for (void* block : blocks) cache.release(block);
        }
        const BlockCache::Stats stats = cache.stats();
        CHECK(stats.allocations == step_sizes.size());  // the first step only
        CHECK(device.allocations == step_sizes.size());
        CHECK(stats.reuses == 4 * step_sizes.size());
        CHECK(stats.bytes_in_use == 0);
        std::size_t total = 0;
        for (std::size_t bytes : step_sizes) total += BlockCache::rounded(bytes);
        CHECK(stats.bytes_cached == total);
        CHECK(device.used == total);
    }
    CHECK(device.live.empty());  // the destructor gave the cached blocks back
    CHECK(device.frees == 5);
}

TEST_CASE("BlockCache rounds sizes and reuses a block only within 5/4 of the request", "[core][block_cache]") {
    CHECK(BlockCache::rounded(1) == kBlockCacheGranularity);
    CHECK(BlockCache::rounded(kBlockCacheGranularity) == kBlockCacheGranularity);
    CHECK(BlockCache::rounded(kBlockCacheGranularity + 1) == 2 * kBlockCacheGranularity);
    BudgetAllocator device{std::size_t{1} << 24};
    BlockCache cache = device.cache();
    CHECK(cache.acquire(0) == nullptr);
    CHECK(device.allocations == 0);

    void* big = cache.acquire(100 * 1024);
    cache.release(big);
    // 80 KiB fits (100 <= 80 * 5/4): the cached 100 KiB block is reused.
    void* fits = cache.acquire(80 * 1024);
    CHECK(fits == big);
    cache.release(fits);
    // 60 KiB would waste too much of it: a fresh block.
    void* small = cache.acquire(60 * 1024);
    CHECK(small != big);
    CHECK(device.allocations == 2);
    // Larger than every cached block: fresh.
    void* larger = cache.acquire(200 * 1024);
    CHECK(larger != big);
    CHECK(larger != small);
    CHECK(device.allocations == 3);
    CHECK(cache.owns(small));
    CHECK_FALSE(cache.owns(big));  // cached, not handed out
    cache.release(small);
    cache.release(larger);
}

TEST_CASE("BlockCache empties itself and retries when the allocator runs out", "[core][block_cache]") {
    BudgetAllocator device{4096};
    BlockCache cache = device.cache();
    void* a = cache.acquire(2048);
    void* b = cache.acquire(1024);
    cache.release(a);
    cache.release(b);
    REQUIRE(device.used == 3072);
    // 3 KiB: no cached block fits and the budget has 1 KiB left, so the cache
    // gives its 3 KiB back and the retry succeeds.
    void* c = cache.acquire(3072);
    REQUIRE(c != nullptr);
    CHECK(device.frees == 2);
    CHECK(cache.stats().bytes_cached == 0);
    CHECK(cache.stats().bytes_in_use == 3072);
    // Past the budget even with an empty cache: nullptr, nothing lost.
    CHECK(cache.acquire(4096) == nullptr);
    CHECK(cache.stats().bytes_in_use == 3072);
    cache.release(c);
    cache.trim();
    CHECK(device.live.empty());
}

TEST_CASE("BlockCache refuses blocks it did not hand out", "[core][block_cache]") {
    BudgetAllocator device{4096};
    BlockCache cache = device.cache();
    int outsider = 0;
    CHECK_THROWS_WITH(cache.release(&outsider), Catch::Contains("was not handed out by this cache"));
    void* block = cache.acquire(10);
    cache.release(block);
    CHECK_THROWS_WITH(cache.release(block), Catch::Contains("was not handed out by this cache"));
    cache.release(nullptr);  // ignored
}

TEST_CASE("BlockCache hands each block to one holder when threads race", "[core][block_cache]") {
    BudgetAllocator device{std::size_t{1} << 26};
    BlockCache cache = device.cache();
    constexpr int kThreads = 4, kRounds = 200;
    std::vector<std::vector<void*>> seen(kThreads);
    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads; ++t)
        threads.emplace_back([&, t] {
            for (int round = 0; round < kRounds; ++round) {
                void* block = cache.acquire(static_cast<std::size_t>(1024 * (1 + round % 3)));
                // Write the whole block: ASan catches a block handed to two holders only if they overlap in time,
                // the counts below catch lost or duplicated bookkeeping.
                std::memset(block, t, 1024);
                seen[t].push_back(block);
                cache.release(block);
            }
        });
    for (std::thread& thread : threads) thread.join();
    const BlockCache::Stats stats = cache.stats();
    CHECK(stats.allocations + stats.reuses == kThreads * kRounds);
    CHECK(stats.bytes_in_use == 0);
    CHECK(stats.allocations == device.allocations);
    CHECK(stats.allocations <= 3 * kThreads);  // at most one block per size per thread alive at once
}

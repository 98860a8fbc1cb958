#pragma once
// BlockCache: keeps the blocks an expensive allocator handed out, once freed,
// and hands them out again. The CUDA backend puts one in front of cudaMalloc
// and cudaFree (cuda/device.cpp): cudaMalloc and cudaFree synchronise the
// device, and a training step asks for the same tensor sizes step after step,
// so after the first step every request is served from the cache.
//
// Sizes are rounded up to kBlockCacheGranularity bytes. A request takes the
// smallest cached block at least its rounded size and at most 5/4 of it
// (more would waste memory that a bigger request wants); otherwise a fresh
// block comes from `allocate`. When `allocate` fails (returns nullptr), every
// cached block goes back through `free` and the request is tried once more.
// Thread-safe. Blocks are not split or merged. Whoever reuses a block must
// not race with work still using it on the device: bcnn's CUDA ops run in
// order on one stream per device, so a block freed after an op was queued is
// only reused by ops queued later.

#include <cstddef>
#include <functional>
#include <map>
#include <mutex>
#include <unordered_map>
#include <utility>

#include "bcnn/core/error.hpp"

namespace bcnn {

constexpr std::size_t kBlockCacheGranularity = 512;

class BlockCache {
public:
    using Allocate = std::function<void*(std::size_t bytes)>;  // nullptr when out of memory
    using Free = std::function<void(void* block)>;

    struct Stats {
        std::size_t allocations = 0;  // blocks obtained from `allocate`
        std::size_t reuses = 0;       // requests served from the cache
        std::size_t bytes_in_use = 0;  // rounded sizes of the blocks handed out and not yet released
        std::size_t bytes_cached = 0;  // rounded sizes of the blocks kept for reuse
    };

    BlockCache(Allocate allocate, Free free) : allocate_(std::move(allocate)), free_(std::move(free)) {}
    BlockCache(const BlockCache&) = delete;
    BlockCache& operator=(const BlockCache&) = delete;

    // Gives the cached blocks back; blocks still in use are the holders' to release first.
    ~BlockCache() { trim(); }

    static std::size_t rounded(std::size_t bytes) {
        return (bytes + kBlockCacheGranularity - 1) / kBlockCacheGranularity * kBlockCacheGranularity;
    }

    // A block of at least `bytes` (nullptr for 0 bytes); nullptr when
    // `allocate` fails even with the cache emptied.
    void* acquire(std::size_t bytes) {
        if (bytes == 0) return nullptr;
        const std::size_t size = rounded(bytes);
        std::lock_guard<std::mutex> lock(mutex_);
        const auto cached = free_blocks_.lower_bound(size);
        if (cached != free_blocks_.end() && cached->first <= size / 4 * 5) {
            void* block = cached->second;
            stats_.bytes_cached -= cached->first;
            stats_.bytes_in_use += cached->first;
            in_use_.emplace(block, cached->first);
            free_blocks_.erase(cached);
            ++stats_.reuses;
            return block;
        }
        void* block = allocate_(size);
        if (!block) {
            trim_locked();
            block = allocate_(size);
        }
        if (!block) return nullptr;
        in_use_.emplace(block, size);
        stats_.bytes_in_use += size;
        ++stats_.allocations;
        return block;
    }

    // Returns a block that acquire() handed out; nullptr is ignored.
    void release(void* block) {
        if (!block) return;
        std::lock_guard<std::mutex> lock(mutex_);
        const auto found = in_use_.find(block);
        BCNN_CHECK(found != in_use_.end(), "BlockCache::release: block " << block << " was not handed out by this cache");
        free_blocks_.emplace(found->second, block);
        stats_.bytes_in_use -= found->second;
        stats_.bytes_cached += found->second;
        in_use_.erase(found);
    }

    // True when `block` is handed out by this cache and not yet released.
    bool owns(void* block) const {
        std::lock_guard<std::mutex> lock(mutex_);
        return in_use_.count(block) > 0;
    }

    // Gives every cached block back through `free`.
    void trim() {
        std::lock_guard<std::mutex> lock(mutex_);
        trim_locked();
    }

    Stats stats() const {
        std::lock_guard<std::mutex> lock(mutex_);
        return stats_;
    }

private:
    void trim_locked() {
        for (const auto& [size, block] : free_blocks_) free_(block);
        free_blocks_.clear();
        stats_.bytes_cached = 0;
    }

    Allocate allocate_;
    Free free_;
    mutable std::mutex mutex_;
    std::multimap<std::size_t, void*> free_blocks_;  // rounded size -> block
    std::unordered_map<void*, std::size_t> in_use_;  // block -> rounded size
    Stats stats_;
};

}  // namespace bcnn

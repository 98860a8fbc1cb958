#pragma once
// BatchLoader: float batches (B, H, W, C) scaled by 1/255 and int32 labels
// (B) drawn from uint8 images held in memory, prepared by a background
// thread up to `prefetch` batches ahead while the caller trains on the
// current one. It serves float samples (N, ...) the same way, copied as they
// are: e.g. a frozen backbone's features computed once (train/features.hpp),
// so that fit() and evaluate() train and score a model's head on them with
// the same orders, batches and callbacks as on images.
//
// Deterministic: the order of an epoch is the index list shuffled by a seed
// derived from (seed, epoch), and the optional per-sample transform gets
// (epoch, sample index), so the contents of every batch depend only on the
// seed and the epoch, never on timing. The last, partial batch of an epoch is
// kept (as Keras does). An exception thrown while preparing a batch is
// re-thrown by next() in the caller, after the batches prepared before it.
// The destructor stops the thread cleanly, even in the middle of an epoch.
//
//   BatchLoader loader(images, labels, train_indices, {32, true, seed});
//   for (std::uint64_t epoch = 0; epoch < epochs; ++epoch) {
//       loader.start_epoch(epoch);
//       Batch batch;
//       while (loader.next(batch)) train_step(batch.images, batch.labels);
//   }

#include <algorithm>
#include <array>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <exception>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "bcnn/core/tensor.hpp"
#include "bcnn/data/augment.hpp"
#include "bcnn/data/seed.hpp"

namespace bcnn {
namespace data {

struct Batch {
    Tensor<float> images;          // (B, H, W, C), uint8 values / 255; or (B, ...) float samples as given
    Tensor<std::int32_t> labels;   // (B)
    std::vector<Index> indices;    // the samples, as indices into the loader's images
    Index number = 0;              // position of the batch in its epoch, from 0
};

// Changes one sample's float image (H, W, C) (or float sample) in place;
// called with the epoch and the sample's index into the loader's images, from
// the loader's thread.
using SampleTransform = std::function<void(const Tensor<float>& image, std::uint64_t epoch, Index index)>;

// The transform that applies `policy` (augment.hpp), drawn per (epoch, sample).
inline SampleTransform random_augmentation(const Augmentation& policy, std::uint64_t seed) {
    return [policy, seed](const Tensor<float>& image, std::uint64_t epoch, Index index) {
        apply_augmentation(image, draw_augmentation(policy, seed, epoch, static_cast<std::uint64_t>(index)));
    };
}

struct BatchLoaderOptions {
    Index batch_size = 32;
    bool shuffle = true;        // shuffle the indices each epoch (else keep their order)
    std::uint64_t seed = 0;     // drives the shuffles
    int prefetch = 2;           // batches prepared ahead of the caller, >= 1
    SampleTransform transform;  // optional augmentation
};

class BatchLoader {
public:
    // images (N, H, W, C) uint8, contiguous; labels (N); indices: the samples to serve.
    BatchLoader(Tensor<std::uint8_t> images, Tensor<std::int32_t> labels, std::vector<Index> indices,
                BatchLoaderOptions options)
        : BatchLoader(checked_images(std::move(images)), Tensor<float>(), std::move(labels), std::move(indices),
                      std::move(options)) {}

    // samples (N, ...) float, contiguous, served as they are (no scaling); labels (N); indices as above.
    BatchLoader(Tensor<float> samples, Tensor<std::int32_t> labels, std::vector<Index> indices,
                BatchLoaderOptions options)
        : BatchLoader(Tensor<std::uint8_t>(), std::move(samples), std::move(labels), std::move(indices),
                      std::move(options)) {}

    ~BatchLoader() {
        {
            std::lock_guard<std::mutex> lock(mutex_);
            stop_ = true;
        }
        changed_.notify_all();
        worker_.join();
    }

    BatchLoader(const BatchLoader&) = delete;
    BatchLoader& operator=(const BatchLoader&) = delete;

    Index samples() const { return static_cast<Index>(indices_.size()); }
    Index batches_per_epoch() const { return (samples() + options_.batch_size - 1) / options_.batch_size; }

    // The sample order of `epoch` (what start_epoch uses).
    std::vector<Index> epoch_order(std::uint64_t epoch) const {
        std::vector<Index> order = indices_;
        if (options_.shuffle) {
            Rng rng(derive_seed(options_.seed, SeedStream::epoch_order, epoch));
            shuffle_in_place(order, rng);
        }
        return order;
    }

    // Starts (or restarts) serving `epoch`; batches of an unfinished epoch are dropped.
    void start_epoch(std::uint64_t epoch) {
        auto order = std::make_shared<const std::vector<Index>>(epoch_order(epoch));
        {
            std::lock_guard<std::mutex> lock(mutex_);
            ++generation_;
            epoch_ = epoch;
            order_ = std::move(order);
            prepared_ = handed_out_ = 0;
            ready_.clear();
            error_ = nullptr;
        }
        changed_.notify_all();
    }

    // The next batch of the epoch into `batch`; false when the epoch is over.
    // Re-throws, in the caller, an exception raised while preparing it.
    bool next(Batch& batch) {
        std::unique_lock<std::mutex> lock(mutex_);
        BCNN_CHECK(order_ != nullptr, "BatchLoader::next: call start_epoch first");
        if (handed_out_ == batches_per_epoch()) return false;
        changed_.wait(lock, [&] { return !ready_.empty() || error_; });
        if (ready_.empty()) std::rethrow_exception(error_);
        batch = std::move(ready_.front());
        ready_.pop_front();
        ++handed_out_;
        lock.unlock();
        changed_.notify_all();
        return true;
    }

    // Batches of the current epoch prepared so far (handed out or waiting).
    Index batches_prepared() const {
        std::lock_guard<std::mutex> lock(mutex_);
        return prepared_;
    }

private:
    // The worker: prepares the next batch whenever fewer than `prefetch` wait.
    void work() {
        std::unique_lock<std::mutex> lock(mutex_);
        for (;;) {
            changed_.wait(lock, [&] {
                return stop_ || (order_ && !error_ && prepared_ < batches_per_epoch() &&
                                 static_cast<int>(ready_.size()) < options_.prefetch);
            });
            if (stop_) return;
            const std::uint64_t generation = generation_, epoch = epoch_;
            const Index number = prepared_;
            const std::shared_ptr<const std::vector<Index>> order = order_;
            lock.unlock();
            Batch batch;
            std::exception_ptr failure;
            try {
                batch = prepare(*order, number, epoch);
            } catch (...) {
                failure = std::current_exception();
            }
            lock.lock();
            if (generation != generation_) continue;  // the epoch was restarted meanwhile
            if (failure) {
                error_ = failure;
            } else {
                ready_.push_back(std::move(batch));
                ++prepared_;
            }
            changed_.notify_all();
        }
    }

    static Tensor<std::uint8_t> checked_images(Tensor<std::uint8_t> images) {
        BCNN_CHECK(images.rank() == 4 && images.is_contiguous(),
                   "BatchLoader: images must be a contiguous (N, H, W, C) tensor, got shape " << images.shape());
        return images;
    }

    // Exactly one of images and samples is defined (the public constructors).
    BatchLoader(Tensor<std::uint8_t> images, Tensor<float> samples, Tensor<std::int32_t> labels,
                std::vector<Index> indices, BatchLoaderOptions options)
        : images_(std::move(images)), samples_(std::move(samples)), labels_(std::move(labels)),
          indices_(std::move(indices)), options_(std::move(options)) {
        const bool from_images = images_.defined();
        const Shape shape = from_images ? images_.shape() : samples_.shape();
        BCNN_CHECK(shape.rank() >= 2 && (from_images ? images_.is_contiguous() : samples_.is_contiguous()),
                   "BatchLoader: " << (from_images ? "images" : "samples")
                                   << " must be a contiguous tensor with a batch axis, got shape " << shape);
        if (from_images)
            images_.require_cpu("BatchLoader images");
        else
            samples_.require_cpu("BatchLoader samples");
        const Index count = shape[0];
        for (int axis = 1; axis < shape.rank(); ++axis) sample_shape_.push_back(shape[axis]);
        BCNN_CHECK(labels_.rank() == 1 && labels_.dim(0) == count && labels_.is_contiguous(),
                   "BatchLoader: labels have shape " << labels_.shape() << ", expected (" << count << ")");
        BCNN_CHECK(options_.batch_size >= 1, "BatchLoader: batch_size must be >= 1, got " << options_.batch_size);
        BCNN_CHECK(options_.prefetch >= 1, "BatchLoader: prefetch must be >= 1, got " << options_.prefetch);
        for (Index i : indices_)
            BCNN_CHECK(i >= 0 && i < count, "BatchLoader: index " << i << " out of range for " << count << " "
                                                                 << (from_images ? "images" : "samples"));
        worker_ = std::thread([this] { work(); });
    }

    // Batch `number` of an epoch whose sample order is `order`.
    Batch prepare(const std::vector<Index>& order, Index number, std::uint64_t epoch) const {
        static const std::array<float, 256> scaled = [] {
            std::array<float, 256> table{};
            for (int v = 0; v < 256; ++v) table[v] = static_cast<float>(v) / 255.0f;
            return table;
        }();
        const Index first = number * options_.batch_size;
        const Index count = std::min<Index>(options_.batch_size, samples() - first);
        const Index sample_size = sample_shape_.numel();
        Shape batch_shape{count};
        for (Index extent : sample_shape_) batch_shape.push_back(extent);

        Batch batch;
        batch.number = number;
        batch.images = Tensor<float>::uninitialized(batch_shape);
        batch.labels = Tensor<std::int32_t>::uninitialized(Shape{count});
        batch.indices.assign(order.begin() + first, order.begin() + first + count);
        for (Index j = 0; j < count; ++j) {
            const Index index = batch.indices[static_cast<std::size_t>(j)];
            float* to = batch.images.data() + j * sample_size;
            if (images_.defined()) {
                const std::uint8_t* from = images_.data() + index * sample_size;
                for (Index e = 0; e < sample_size; ++e) to[e] = scaled[from[e]];
            } else {
                const float* from = samples_.data() + index * sample_size;
                std::copy(from, from + sample_size, to);
            }
            batch.labels.data()[j] = labels_.data()[index];
            if (options_.transform)
                options_.transform(batch.images.slice(0, j, j + 1).reshape(sample_shape_), epoch, index);
        }
        return batch;
    }

    const Tensor<std::uint8_t> images_;  // the uint8 source, or undefined
    const Tensor<float> samples_;        // the float source, or undefined
    Shape sample_shape_;                 // one sample's shape (no batch axis)
    const Tensor<std::int32_t> labels_;
    const std::vector<Index> indices_;
    const BatchLoaderOptions options_;

    mutable std::mutex mutex_;
    std::condition_variable changed_;
    bool stop_ = false;
    std::uint64_t generation_ = 0;  // bumped by start_epoch; stale batches are dropped
    std::uint64_t epoch_ = 0;
    std::shared_ptr<const std::vector<Index>> order_;  // null until start_epoch
    Index prepared_ = 0, handed_out_ = 0;
    std::deque<Batch> ready_;
    std::exception_ptr error_;
    std::thread worker_;  // last: starts after everything above exists
};

}  // namespace data
}  // namespace bcnn

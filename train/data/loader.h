// The shard-fed loader of bevkd-train: batches of train/data/batch.h from a manifest's shards
// and the dataroot's camera JPEGs, decoded and augmented on TBB threads ahead of the trainer.
//
//   LoaderSetup setup;
//   setup.split = "train";
//   setup.expected_views = preset.bev_augment;          // refused unless the shards' views match
//   setup.expected_views_name = "student preset bevdepth-r50";
//   setup.student_grid = preset.grid;                     // DESIGN.md's grid rule against the shards
//   Loader loader(Manifest::load("shards/manifest.json"), "/data/nuscenes", cfg, setup);
//   loader.seek(checkpoint.loader_position);             // {epoch, index}; {0, 0} to start
//   for (;;) {
//     auto batch = loader.next();                        // nullopt at the end of the epoch
//     if (!batch) { loader.seek({loader.position().epoch + 1, 0}); continue; }
//     Batch b = batch->to(device);                       // teacher fields become float32 there
//     ...; checkpoint.loader_position = loader.position();
//   }
//
// Pipeline (a diagram of the files):
//   ShardStream (storage/)       order, rank split, view policy, shard decoding — on `threads`
//     └─ per item, same thread:  SampleLoader (sample_loader.h): JPEGs, augmentation, depth targets, GT
//   producer thread:             items -> Batch (stacking), into a PrefetchQueue of prefetch_batches
//   consumer (the trainer):      next()
//
// Order and randomness: the epoch order is ShardStream's; the view of a sample and its image
// augmentation are drawn from Rng(mix_keys(seed, epoch, sample identity, ...)) — never from the
// rank, the thread or the position — so a run's data does not depend on how it is split, and a
// restored position gives exactly the batches an uninterrupted run gets. A sample skipped for a
// missing JPEG (skip_missing_images) is replaced by the next item, so every batch but an
// epoch's last has batch_size samples.
//
// Training vs evaluation (LoaderSetup::train): training shuffles, replays views by the
// configured policy and draws the image augmentation; evaluation reads in shard order, view 0,
// with the deterministic resize + crop.
//
// Errors: a decoding error (a corrupt shard, a refused image path, a missing JPEG without
// skip_missing_images) is re-thrown by next() naming shard, sample, camera and file; after
// one, next() throws it again until seek().
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "base/bev_grid.h"
#include "core/nn/bev_augment.h"
#include "storage/manifest.h"
#include "storage/shard_stream.h"
#include "train/data/batch.h"
#include "train/data/loader_config.h"

namespace bevkd::train::data {

struct LoaderSetup {
  std::string split;  // shards of this split ("" = all)
  bool train = true;  // see the header comment
  int rank = 0, world_size = 1;
  // When set, the shards' stored view ranges must equal these (check_view_ranges), e.g. the
  // student preset's BEV augmentation; expected_views_name names it in the message.
  std::optional<core::nn::BevAugmentConfig> expected_views;
  std::string expected_views_name = "the student preset";
  // When set, the student's BEV grid, checked against the shards' grid by DESIGN.md's grid rule
  // (check_grid_rule: same x-y range, cells equal or one integer ratio apart); refused naming both.
  std::optional<BevGrid> student_grid;
  std::string student_grid_name = "the student preset";
};

struct LoaderStats {
  std::int64_t batches = 0;           // delivered by next()
  std::int64_t samples = 0;
  std::int64_t skipped_samples = 0;   // dropped for a missing JPEG (skip_missing_images)
  std::vector<std::string> skipped;   // the first kMaxSkippedMessages reasons (sample, camera, file)
  double elapsed_s = 0;  // from the first next() to the last return (summed over the spans between seeks)
  double wait_s = 0;     // time spent inside next() (the consumer waiting for data)

  static constexpr std::size_t kMaxSkippedMessages = 64;
  double samples_per_s() const { return elapsed_s > 0 ? static_cast<double>(samples) / elapsed_s : 0; }
  double wait_fraction() const { return elapsed_s > 0 ? wait_s / elapsed_s : 0; }
};

class Loader {
 public:
  // Validates the configuration and checks it against the shards (taps, views, schema version,
  // expected view ranges, dataroot); throws bevkd::Error naming both sides. Starts at {0, 0}.
  Loader(storage::Manifest manifest, const std::string& dataroot, LoaderConfig cfg, LoaderSetup setup);
  ~Loader();
  Loader(const Loader&) = delete;
  Loader& operator=(const Loader&) = delete;

  // The next batch of the epoch, or nullopt at its end.
  std::optional<Batch> next();
  // Stream position after the last batch next() returned: seek() there resumes exactly.
  storage::StreamPosition position() const;
  // Restarts at `pos` (prefetched batches are dropped; statistics keep counting).
  void seek(storage::StreamPosition pos);

  std::int64_t samples_per_epoch() const;  // this rank's stream items (before skips)
  std::int64_t batches_per_epoch() const;  // without skips
  LoaderStats stats() const;
  const BevGrid& grid() const;  // the shards' (teacher's) grid, from the manifest
  // The shards' stored views: count V and the ranges views 1..V-1 were drawn from (the manifest's
  // producing configuration), for the trainer's log and its own checks.
  const StoredViews& stored_views() const;
  const LoaderConfig& config() const;

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

// The teacher fields `cfg` requests, stacked over a batch the way the loader does: one stored
// sample per batch element holding that view's teacher datasets with the view first ([1, ...];
// a shard record of one view, e.g. precompute's post-process stage with one view, is one).
// tokens name the samples in messages.
TeacherStored stack_teacher(const std::vector<const storage::Sample*>& samples, const std::vector<std::string>& tokens,
                            const LoaderConfig& cfg);

// The stream options the loader uses for `cfg` and `setup` (fields left empty; for tools and tests).
storage::StreamOptions stream_options(const LoaderConfig& cfg, const LoaderSetup& setup);

}  // namespace bevkd::train::data

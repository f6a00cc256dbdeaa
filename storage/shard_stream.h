// ShardStream: the TBB-parallel streaming reader over a manifest that feeds training.
//
//   StreamOptions o;
//   o.split = "train";
//   o.fields = {"teacher/features/neck", "gt/*", "cams/*"};
//   o.rank = rank;
//   o.world_size = world;
//   ShardStream stream(Manifest::load("out/manifest.json"), o);
//   stream.seek(saved_position);                      // {epoch, index}; {0, 0} to start
//   while (auto item = stream.next()) { ...; checkpoint.position = stream.position(); }
//   stream.seek({epoch + 1, 0});                      // next epoch
//
// Order. Each epoch is a permutation of the split's samples, a pure function of (manifest,
// seed, epoch): every shard is cut into blocks of `block_samples` consecutive samples, the
// blocks are shuffled, and the samples inside each window of `window_blocks` consecutive blocks
// are shuffled again. So the order is sample-level random while reads stay local: at any time
// the readers work inside a few blocks (a few ragged chunks, a few open files).
//
// Ranks. The epoch's order is cut into world_size contiguous parts of equal length: the
// shorter last part is filled by wrapping around to the start of the order (like PyTorch's
// DistributedSampler), or, with drop_last, the tail is dropped. Every rank gets
// samples_per_epoch() items.
//
// Prefetch. Up to `prefetch` items (default: 2 per thread) ahead of the consumer are decoded
// concurrently by `num_threads` TBB workers (an arena of that size); items come out in order.
// A worker's exception is re-thrown by next() when the consumer reaches that item, naming the
// shard and sample; position() has then moved past it, so the consumer may skip it and go on.
// A shard that cannot be opened (damaged, truncated, replaced: see ShardReader) is tried once;
// every item of it then fails with the same message naming it, the other shards go on.
//
// Fields. Asking for a field the manifest's schema version does not have (teacher/class_probs
// of 1.0 shards) is refused by the constructor, naming the field and the version that writes it.
//
// Views. A shard stores V BEV views per sample (SHARD_FORMAT.md). Three policies:
//   * every view (view = -1, draw_view = false): per-view fields keep their V axis;
//   * a fixed view (view >= 0): only that view of every sample is decoded (per-view fields have
//     1 on their view axis), e.g. view 0 for evaluation;
//   * a drawn view (draw_view = true): one view per (seed, epoch, sample), uniform over
//     view_choices (empty: 0..V-1), and only that view is decoded. The draw is keyed by the
//     sample's identity — its manifest shard index and index in the shard (sample_key()) — never
//     by the rank, the position or the thread, so a run sees the same views however it is split
//     across ranks, threads or restarts. StreamItem::view says which view an item carries.
//
// Per-item work. `process`, when set, runs on the decoding thread right after an item is read
// (the trainer's loader decodes the item's images there), so the num_threads workers do all
// per-item work and `prefetch` bounds finished items. It may fill StreamItem::payload. Its
// exceptions are reported like read errors.
//
// Position. position() is {epoch, index of the next item}; seek() to a saved position resumes
// exactly: the same items, in the same order, with the same data.
#pragma once

#include <any>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "storage/array.h"
#include "storage/manifest.h"

namespace bevkd::storage {

struct StreamItem;

struct StreamOptions {
  std::string split;                  // shards of this split ("" = all shards of the manifest)
  std::vector<std::string> fields;    // selectors as in ShardReader::select ("" = every field)
  int view = -1;                      // fixed-view mode, as ReadOptions::view (-1: every view)
  bool draw_view = false;             // per-item view policy (see the header comment); view must be -1
  std::vector<int> view_choices;      // views draw_view picks from (empty: all V)
  int num_threads = 2;                // decoding workers
  // Items decoded ahead of the consumer (the bounded queue); 0 = 2 * num_threads. Keep it small:
  // every item in flight is a fresh teacher-tensor buffer, and a few of them stay in the CPU's
  // last-level cache while many do not (8 in flight decode ~15% slower than 2 on one thread).
  int prefetch = 0;
  bool shuffle = true;
  std::uint64_t seed = 0;
  int block_samples = 16;             // shard-locality block
  int window_blocks = 8;              // blocks mixed together
  int rank = 0;
  int world_size = 1;
  bool drop_last = false;             // drop the tail instead of wrapping around
  bool verify = false;                // verify every field's checksum while reading
  bool check_manifest = true;         // compare each shard's header (and file size) with the manifest
  // Hash each whole shard file (XXH64) and compare it with the manifest before HDF5 opens it:
  // one extra read of every shard per process (README "Integrity" has the cost). Schema 1.2
  // shards do not need it for safety (HDF5 checksums their metadata); it also catches damaged
  // chunk data before training on it.
  bool check_file_hash = false;
  // For shards older than schema 1.2 (the manifest's version): check the file hash anyway. Their
  // string attributes sit in HDF5's unchecksummed global heap; without a checked hash the reader
  // reads them in a forked child, whose cost grows with this process's resident memory (a
  // trainer's gigabytes), while the hash costs one read of the file (README "Integrity").
  bool check_legacy_file_hash = true;
  int max_open_shards = 16;           // open ShardReaders kept (LRU)
  // Per-item work on the decoding thread (see the header comment); may be empty.
  std::function<void(StreamItem&)> process;
};

struct StreamPosition {
  std::int64_t epoch = 0;
  std::int64_t index = 0;  // items of this rank already consumed in the epoch
  bool operator==(const StreamPosition& o) const { return epoch == o.epoch && index == o.index; }
};

// One entry of an epoch's order: shard (index into the manifest's shards) and sample.
struct SampleRef {
  int shard = 0;
  std::int64_t sample = 0;
  bool operator==(const SampleRef& o) const { return shard == o.shard && sample == o.sample; }
};

// The identity of a sample for keyed random draws (base/rng.h): a function of (manifest shard
// index, sample index) only. Draws of one sample use Rng(mix_keys(seed, epoch, sample_key(ref), salt)).
std::uint64_t sample_key(const SampleRef& ref);

// The view drawn for `ref` in `epoch` (uniform over `choices`, or over 0..num_views-1 when empty).
int draw_view(std::uint64_t seed, std::int64_t epoch, const SampleRef& ref, std::int64_t num_views,
              const std::vector<int>& choices = {});

struct StreamItem {
  Sample sample;
  std::string shard;            // manifest-relative shard path
  std::int64_t sample_index = 0;  // index inside the shard
  SampleRef ref;                // manifest shard index and sample index (the sample's identity)
  int view = -1;                // the view the per-view fields hold (-1: all views)
  StreamPosition position;      // of this item (position() after it is {epoch, index + 1})
  std::any payload;             // filled by StreamOptions::process, if any
};

class ShardStream {
 public:
  // Throws bevkd::Error if the split has no samples or the options are invalid.
  ShardStream(Manifest manifest, StreamOptions opts);
  ~ShardStream();  // waits for in-flight decoding
  ShardStream(const ShardStream&) = delete;
  ShardStream& operator=(const ShardStream&) = delete;

  // Restarts at `pos` (drops prefetched items). The constructor starts at {0, 0}.
  void seek(StreamPosition pos);
  // The next item of this rank, or nullopt at the end of the epoch. Re-throws a worker's error.
  std::optional<StreamItem> next();
  StreamPosition position() const;
  std::int64_t samples_per_epoch() const;

  // This rank's order for an epoch (what next() will return), for tests and tools.
  std::vector<SampleRef> rank_order(std::int64_t epoch) const;
  // The whole epoch's order before the rank split.
  std::vector<SampleRef> epoch_order(std::int64_t epoch) const;
  // The view an item of `ref` carries in `epoch` under this stream's policy (-1: all views).
  int view_of(std::int64_t epoch, const SampleRef& ref) const;
  const Manifest& manifest() const;
  // The manifest indices of the shards in this stream's split.
  const std::vector<int>& shard_indices() const;

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace bevkd::storage

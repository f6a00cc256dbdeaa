#include <gtest/gtest.h>

#include <algorithm>
#include <any>
#include <cstring>
#include <filesystem>
#include <map>
#include <set>

#include "base/fs.h"
#include "storage/shard_stream.h"
#include "storage/shard_writer.h"
#include "tests/storage/test_util.h"

namespace bevkd::storage {
namespace {

using testing::FixtureSpec;
using testing::TempDir;

// Three shards of 7, 4 and 6 samples (17 in all) from different fixture seeds.
class Stream : public ::testing::Test {
 protected:
  void SetUp() override {
    const ShardMeta meta = testing::make_meta(specs[0]);  // one producing config for all shards
    Manifest m(meta);
    const std::int64_t sizes[3] = {7, 4, 6};
    for (int s = 0; s < 3; ++s) {
      specs[s].seed = 100 + s;
      ShardWriter w(cat(dir.path(), "/train/shard-0000", s, ".h5"), meta);
      for (std::int64_t i = 0; i < sizes[s]; ++i) w.append(testing::make_sample(specs[s], i));
      m.add(w.close(), dir.path());
    }
    m.save(dir / Manifest::kFileName);
    manifest = Manifest::load(dir / Manifest::kFileName);
  }
  static std::vector<FixtureSpec> make_specs() {
    std::vector<FixtureSpec> v(3, testing::small_spec());
    for (auto& s : v) s.depth_points = 40;
    return v;
  }

  TempDir dir;
  std::vector<FixtureSpec> specs = make_specs();
  Manifest manifest;
};

StreamOptions options(int threads = 2) {
  StreamOptions o;
  o.split = "train";
  o.num_threads = threads;
  o.prefetch = 4;
  o.block_samples = 2;
  o.window_blocks = 2;
  o.seed = 7;
  return o;
}

TEST_F(Stream, EpochOrderIsASeededPermutationWithShardLocality) {
  const ShardStream s(manifest, options());
  const auto e0 = s.epoch_order(0), e1 = s.epoch_order(1);
  ASSERT_EQ(e0.size(), 17u);
  std::set<std::pair<int, std::int64_t>> seen;
  for (const auto& r : e0) seen.insert({r.shard, r.sample});
  EXPECT_EQ(seen.size(), 17u);  // every sample exactly once
  EXPECT_NE(e0, e1);            // reshuffled per epoch
  EXPECT_EQ(ShardStream(manifest, options()).epoch_order(1), e1);  // a pure function of (seed, epoch)
  StreamOptions other = options();
  other.seed = 8;
  EXPECT_NE(ShardStream(manifest, other).epoch_order(0), e0);
  // Locality: with one block per window, every block of 2 consecutive samples of a shard comes
  // out as one contiguous run (in shuffled order inside the run).
  StreamOptions local = options();
  local.window_blocks = 1;
  const auto runs = ShardStream(manifest, local).epoch_order(0);
  std::map<std::pair<int, std::int64_t>, int> run_count;
  for (std::size_t k = 0; k < runs.size(); ++k) {
    const std::pair<int, std::int64_t> block{runs[k].shard, runs[k].sample / 2};
    if (k == 0 || block != std::make_pair(runs[k - 1].shard, runs[k - 1].sample / 2)) ++run_count[block];
  }
  EXPECT_EQ(run_count.size(), 9u);  // 4 + 2 + 3 blocks
  for (const auto& [block, count] : run_count) EXPECT_EQ(count, 1) << block.first << "/" << block.second;
  StreamOptions plain = options();
  plain.shuffle = false;
  const auto ordered = ShardStream(manifest, plain).epoch_order(0);
  EXPECT_EQ(ordered.front(), (SampleRef{0, 0}));
  EXPECT_EQ(ordered.back(), (SampleRef{2, 5}));
}

TEST_F(Stream, RanksGetEqualContiguousParts) {
  StreamOptions o = options();
  o.world_size = 3;
  const auto all = ShardStream(manifest, o).epoch_order(2);
  std::vector<SampleRef> joined;
  for (int r = 0; r < 3; ++r) {
    o.rank = r;
    const ShardStream s(manifest, o);
    EXPECT_EQ(s.samples_per_epoch(), 6);  // ceil(17 / 3); the 18th item wraps to the start
    const auto part = s.rank_order(2);
    joined.insert(joined.end(), part.begin(), part.end());
  }
  ASSERT_EQ(joined.size(), 18u);
  for (std::size_t k = 0; k < 18; ++k) EXPECT_EQ(joined[k], all[k % 17]) << k;
  o.drop_last = true;
  o.rank = 2;
  EXPECT_EQ(ShardStream(manifest, o).samples_per_epoch(), 5);
  o.rank = 3;
  EXPECT_ERROR_WITH(ShardStream(manifest, o), "rank 3 is not in [0, world_size = 3)");
  o = options();
  o.split = "val";
  EXPECT_ERROR_WITH(ShardStream(manifest, o), "no samples in split \"val\"");
}

TEST_F(Stream, DeliversTheRightDataInOrderWithOneAndTwoThreads) {
  for (int threads : {1, 2}) {
    ShardStream s(manifest, options(threads));
    const auto order = s.rank_order(0);
    std::int64_t k = 0;
    while (auto item = s.next()) {
      const SampleRef ref = order[static_cast<std::size_t>(k)];
      EXPECT_EQ(item->shard, manifest.shards()[ref.shard].path);
      EXPECT_EQ(item->sample_index, ref.sample);
      EXPECT_EQ(item->position, (StreamPosition{0, k}));
      const Sample want = testing::make_sample(specs[ref.shard], ref.sample);
      for (const auto& [name, a] : want.fields())
        ASSERT_TRUE(item->sample.get(name).same_as(a)) << name << " of item " << k;
      ++k;
      EXPECT_EQ(s.position(), (StreamPosition{0, k}));
    }
    EXPECT_EQ(k, 17);
    EXPECT_FALSE(s.next().has_value());  // stays at the end of the epoch
  }
}

TEST_F(Stream, SavedPositionsResumeExactly) {
  auto take = [](ShardStream& s, int n) {
    std::vector<std::pair<std::string, std::uint64_t>> got;
    for (int i = 0; i < n; ++i) {
      auto item = s.next();
      if (!item) break;
      const Array& neck = item->sample.get("teacher/features/neck");
      got.push_back({cat(item->shard, "#", item->sample_index), xxh64(neck.raw(), neck.nbytes())});
    }
    return got;
  };
  StreamOptions o = options();
  o.fields = {"teacher/features/neck", "gt/*"};
  ShardStream a(manifest, o);
  take(a, 5);
  const StreamPosition saved = a.position();
  EXPECT_EQ(saved, (StreamPosition{0, 5}));
  const auto rest_a = take(a, 20);  // to the end of epoch 0
  a.seek({1, 0});
  const auto epoch1_a = take(a, 6);

  ShardStream b(manifest, o);
  b.seek(saved);
  EXPECT_EQ(take(b, 20), rest_a);
  b.seek({1, 0});
  EXPECT_EQ(take(b, 6), epoch1_a);
  using Items = std::vector<std::pair<std::string, std::uint64_t>>;
  EXPECT_NE(epoch1_a, Items(rest_a.begin(), rest_a.begin() + 6));

  // Field selection: only what was asked for.
  b.seek({0, 0});
  const auto item = b.next();
  EXPECT_EQ(item->sample.size(), 8u);  // neck + 7 gt fields
  EXPECT_FALSE(item->sample.has("teacher/heatmap"));
  EXPECT_ERROR_WITH(b.seek({0, 18}), "outside an epoch of 17 items");
}

TEST_F(Stream, WorkerErrorsSurfaceInTheConsumerNamingShardAndSample) {
  const std::string shard1 = dir / "train/shard-00001.h5";
  const auto c = testing::locate_chunk(shard1, "teacher/features/neck", {2, 0, 0, 0, 0});
  testing::flip_bytes(shard1, c.address + c.size / 2, 8);
  // The file no longer matches the manifest's checksum, but its size does: the stream opens it
  // and fails on exactly that sample.
  ShardStream s(manifest, options());
  const auto order = s.rank_order(0);
  const auto bad = std::find(order.begin(), order.end(), SampleRef{1, 2}) - order.begin();
  std::int64_t good = 0;
  for (std::int64_t k = 0; k < 17; ++k) {
    if (k == bad) {
      EXPECT_ERROR_WITH(s.next(), cat("epoch 0, item ", k), "shard train/shard-00001.h5, sample 2",
                        "dataset teacher/features/neck, sample 2", "zstd");
    } else {
      EXPECT_TRUE(s.next().has_value());
      ++good;
    }
  }
  EXPECT_EQ(good, 16);
  EXPECT_FALSE(s.next().has_value());
}

TEST_F(Stream, ShardsThatDisagreeWithTheManifestAreRefused) {
  const std::string shard0 = dir / "train/shard-00000.h5";
  std::filesystem::resize_file(shard0, std::filesystem::file_size(shard0) - 10);
  StreamOptions o = options();
  o.shuffle = false;  // shard 0 first
  ShardStream s(manifest, o);
  EXPECT_ERROR_WITH(s.next(), "shard train/shard-00000.h5", "bytes, the manifest says",
                    "replaced or truncated after the manifest was written");
}

TEST_F(Stream, ACorruptShardFailsItsItemsByNameAndTheOthersGoOn) {
  const std::string shard1 = dir / "train/shard-00001.h5";
  const std::string bytes = read_file(shard1);
  testing::flip_bytes(shard1, bytes.find("OHDR") + 12, 1);  // the root's object header: HDF5 refuses the file
  ShardStream s(manifest, options());
  const auto order = s.rank_order(0);
  std::int64_t good = 0, bad = 0;
  for (std::int64_t k = 0; k < 17; ++k) {
    if (order[static_cast<std::size_t>(k)].shard == 1) {
      EXPECT_ERROR_WITH(s.next(), "shard train/shard-00001.h5", "the file is corrupt");
      ++bad;
    } else {
      EXPECT_TRUE(s.next().has_value());
      ++good;
    }
  }
  EXPECT_GT(bad, 0);
  EXPECT_EQ(good + bad, 17);
}

TEST_F(Stream, FileHashCheckCatchesDamageHdf5CannotSee) {
  const std::string shard0 = dir / "train/shard-00000.h5";
  const auto c = testing::locate_chunk(shard0, "timestamp", {1});
  testing::flip_bytes(shard0, c.address, 1);  // raw chunk: no zstd frame, no HDF5 checksum
  StreamOptions o = options();
  o.shuffle = false;
  o.check_file_hash = true;
  ShardStream s(manifest, o);
  EXPECT_ERROR_WITH(s.next(), "shard train/shard-00000.h5", "the file's XXH64 is", "the manifest says",
                    "the file is corrupt");
}

// The per-item view policy: one view per (seed, epoch, sample), keyed by the sample's identity.
TEST_F(Stream, DrawnViewsAreKeyedBySampleIdentityAndOnlyThatViewIsDecoded) {
  StreamOptions o = options(1);
  o.draw_view = true;
  o.fields = {"teacher/features/neck", "view/bda", "teacher/boxes", "fg_mask"};
  std::map<std::pair<int, std::int64_t>, int> views0;
  {
    ShardStream s(manifest, o);
    int count[2] = {0, 0};
    while (auto item = s.next()) {
      const SampleRef ref = item->ref;
      EXPECT_EQ(manifest.shards()[ref.shard].path, item->shard);
      EXPECT_EQ(ref.sample, item->sample_index);
      ASSERT_TRUE(item->view == 0 || item->view == 1);
      EXPECT_EQ(item->view, s.view_of(0, ref));
      EXPECT_EQ(item->view, draw_view(o.seed, 0, ref, 2));
      views0[{ref.shard, ref.sample}] = item->view;
      ++count[item->view];
      // Only the drawn view: per-view fields have 1 on their view axis and equal that view of a
      // full read.
      const Sample full = testing::make_sample(specs[ref.shard], ref.sample);
      const Array& neck = item->sample.get("teacher/features/neck");
      ASSERT_EQ(neck.dim(0), 1);
      const Array& full_neck = full.get("teacher/features/neck");
      ASSERT_EQ(neck.nbytes() * 2, full_neck.nbytes());
      EXPECT_EQ(std::memcmp(neck.raw(), full_neck.bytes() + item->view * neck.nbytes(), neck.nbytes()), 0);
      const Array& bda = item->sample.get("view/bda");
      EXPECT_EQ(std::memcmp(bda.raw(), full.get("view/bda").bytes() + item->view * 36, 36), 0);
      const Array& boxes = item->sample.get("teacher/boxes");
      const Array& full_boxes = full.get("teacher/boxes");
      ASSERT_EQ(boxes.segments.size(), 1u);
      EXPECT_EQ(boxes.segments[0], full_boxes.segments[static_cast<std::size_t>(item->view)]);
      const std::size_t row = 9 * sizeof(float);
      const std::size_t skip = item->view == 1 ? static_cast<std::size_t>(full_boxes.segments[0]) * row : 0;
      EXPECT_EQ(std::memcmp(boxes.raw(), full_boxes.bytes() + skip, boxes.nbytes()), 0);
    }
    EXPECT_GT(count[0], 0);  // both views occur in an epoch of 17 samples
    EXPECT_GT(count[1], 0);
  }
  // Independent of the split: 3 ranks with 2 threads each see the same view for every sample.
  StreamOptions split = o;
  split.num_threads = 2;
  split.world_size = 3;
  for (int r = 0; r < 3; ++r) {
    split.rank = r;
    ShardStream s(manifest, split);
    s.seek({0, 2});  // and of the position
    while (auto item = s.next())
      EXPECT_EQ(item->view, (views0[{item->ref.shard, item->ref.sample}])) << "rank " << r;
  }
  // Another epoch or seed draws again; view_choices restricts the draw.
  ShardStream s(manifest, o);
  int changed_epoch = 0, changed_seed = 0;
  for (const auto& [key, v] : views0) {
    const SampleRef ref{key.first, key.second};
    changed_epoch += s.view_of(1, ref) != v;
    changed_seed += draw_view(o.seed + 1, 0, ref, 2) != v;
  }
  EXPECT_GT(changed_epoch, 0);
  EXPECT_GT(changed_seed, 0);
  StreamOptions only1 = o;
  only1.view_choices = {1};
  ShardStream one(manifest, only1);
  while (auto item = one.next()) EXPECT_EQ(item->view, 1);
}

TEST_F(Stream, FixedViewModeAndBadViewOptions) {
  StreamOptions o = options();
  o.view = 1;
  o.fields = {"fg_mask"};
  ShardStream s(manifest, o);
  while (auto item = s.next()) {
    EXPECT_EQ(item->view, 1);
    const Array& m = item->sample.get("fg_mask");
    const Array full = testing::make_sample(specs[item->ref.shard], item->ref.sample).take("fg_mask");
    ASSERT_EQ(m.nbytes() * 2, full.nbytes());
    EXPECT_EQ(std::memcmp(m.raw(), full.bytes() + m.nbytes(), m.nbytes()), 0);
  }
  o.view = 2;
  EXPECT_ERROR_WITH(ShardStream(manifest, o), "view 2 is not a stored view (the shards store 2 views");
  o.view = 0;
  o.draw_view = true;
  EXPECT_ERROR_WITH(ShardStream(manifest, o), "a fixed view (0) and draw_view exclude each other");
  o.view = -1;
  o.view_choices = {0, 3};
  EXPECT_ERROR_WITH(ShardStream(manifest, o), "view choice 3 is not a stored view");
}

// StreamOptions::process runs on the decoding threads; its result travels in the item, its
// errors surface at the item's position naming shard and sample.
TEST_F(Stream, PerItemWorkRunsOnTheWorkersAndItsErrorsNameTheSample) {
  StreamOptions o = options(2);
  o.fields = {"sample_token"};
  o.process = [](StreamItem& item) {
    BEVKD_CHECK(!(item.ref.shard == 2 && item.sample_index == 4), "no image for this one");
    item.payload = item.sample.get("sample_token").string_at(0) + "!";
  };
  ShardStream s(manifest, o);
  int good = 0, bad = 0;
  for (std::int64_t k = 0; k < 17; ++k) {
    try {
      const auto item = s.next();
      ASSERT_TRUE(item.has_value());
      EXPECT_EQ(std::any_cast<std::string>(item->payload), item->sample.get("sample_token").string_at(0) + "!");
      ++good;
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("shard train/shard-00002.h5, sample 4: no image for this one"),
                std::string::npos)
          << e.what();
      ++bad;
    }
  }
  EXPECT_EQ(good, 16);
  EXPECT_EQ(bad, 1);
}

}  // namespace
}  // namespace bevkd::storage

// Deterministic, realistic shard samples for the storage tests and the shard benchmark.
//
// make_sample(spec, i) is a pure function of (spec, i): teacher features look like a ReLU'd
// BEV neck (mostly exact zeros, sparse blobs around objects, low-frequency structure, noisy
// mantissas), heat maps are sigmoid outputs (peaks at objects, small positive background),
// the foreground mask is a max-merged Gaussian, and there are GT, teacher and FD3D boxes,
// cameras and projected depth points. Some samples have empty ragged parts on purpose:
// sample i % 5 == 3 has no GT, no racks and no teacher boxes; camera 2 of sample i % 4 == 1 has
// no depth points.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "storage/array.h"
#include "storage/shard_meta.h"

namespace bevkd::storage::testing {

struct FixtureSpec {
  BevGrid grid = BevGrid::make({-51.2, -51.2, -5.0, 51.2, 51.2, 3.0}, 0.8, 0.8);  // 128 x 128
  std::int64_t num_views = 1;
  std::vector<TapSpec> taps{{"neck", 384, DType::kFloat16}, {"head_shared", 256, DType::kFloat16}};
  std::int64_t fd3d_points = 0;     // Q; 0 = no fd3d group (schema 1.0 only)
  int max_objects = 40;             // GT boxes per sample: 0 .. max_objects
  int false_positives = 20;         // extra low-score teacher boxes per view
  int depth_points = 2000;          // projected points per camera (before the empty cases)
  std::uint64_t seed = 1;
  std::string split = "train";
  // The schema version the samples are made for: teacher/class_probs from 1.1 on.
  SchemaVersion schema_version = Schema::current().version();
};

// A small layout for unit tests: 16 x 16 grid, taps neck [8] float16 and head_shared [4] int8,
// two views, few boxes and points.
FixtureSpec small_spec();
// small_spec() for an older schema version: 1.0 with the fd3d group (Q = 4) and without
// teacher/class_probs, 1.1 with class_probs.
FixtureSpec small_spec(SchemaVersion version);

ShardMeta make_meta(const FixtureSpec& spec);
Sample make_sample(const FixtureSpec& spec, std::int64_t index);

// 32 lower-case hex characters derived from (seed, index, salt): a nuScenes-style token.
std::string make_token(std::uint64_t seed, std::int64_t index, std::uint64_t salt);

}  // namespace bevkd::storage::testing

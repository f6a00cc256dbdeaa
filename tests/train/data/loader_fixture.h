// A tiny dataset for the loader's tests and benchmark: shards written from the storage fixture
// (tests/support/shard_fixture.h) whose camera fields are made consistent with real JPEG files in
// a fake dataroot — intrinsics of the written image size, and depth/uvd the exact projections of
// known ego-frame points, each drawn into its camera's image as a white disc on a textured
// background. No GoogleTest dependency (the benchmark links it too).
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "storage/array.h"
#include "tests/support/shard_fixture.h"

namespace bevkd::train::data::testing {

struct LoaderDatasetSpec {
  storage::testing::FixtureSpec shard = storage::testing::small_spec();
  std::vector<std::int64_t> shard_sizes{5, 4};  // samples per shard (one split)
  int image_width = 320, image_height = 180;     // the JPEGs (pixels)
  double focal = 250;                            // fx = fy (pixels); principal point at the centre
  int points_per_camera = 24;  // on a jittered pixel grid, at least ~40 px apart
  int jpeg_quality = 92;
  int marker_radius = 5;       // white disc at every point (0: none)
  // Stored as the shards' config.views (the producing configuration's view ranges).
  nlohmann::json views_config = {
      {"count", 2},
      {"augmentation",
       {{"rotation_range", {-0.3925, 0.3925}}, {"scale_range", {0.95, 1.05}}, {"flip_x_prob", 0.5}, {"flip_y_prob", 0.5}}}};
  // Edits a sample before it is written (shard index, sample index in the shard).
  std::function<void(storage::Sample&, int, std::int64_t)> customize;
};

// The LiDAR points of one camera: ego-frame positions and what the shard stores for them.
struct CameraPoints {
  std::vector<std::array<double, 3>> ego;  // m, key-frame ego frame
  std::vector<float> uvd;                  // [P, 3] original pixels + depth (m)
  std::vector<std::int32_t> box_id;        // [P] gt row or -1
};

struct SampleTruth {
  int shard = 0;
  std::int64_t index = 0;               // in the shard
  std::vector<CameraPoints> cameras;    // 6
  std::vector<std::string> image_files;  // absolute JPEG paths, per camera
};

struct LoaderDataset {
  std::string dataroot;
  std::string manifest_path;
  std::map<std::string, SampleTruth> samples;  // by sample token
};

// Writes <dir>/dataroot (JPEGs) and <dir>/shards (manifest.json, train/shard-0000k.h5).
LoaderDataset make_loader_dataset(const LoaderDatasetSpec& spec, const std::string& dir);

// The sample the dataset stores at (shard, index), with its points (before `customize`).
storage::Sample make_loader_sample(const LoaderDatasetSpec& spec, int shard, std::int64_t index, SampleTruth* truth);

// The intrinsics the dataset stores (row-major 3x3).
std::array<float, 9> dataset_intrinsics(const LoaderDatasetSpec& spec);

// A textured RGB image [height, width, 3] (sinusoids of a ~20 px period, values 30..130) with
// white discs of `radius` at `centres` (pixel coordinates, centres at integers).
std::vector<std::uint8_t> textured_image(int width, int height, std::uint64_t seed,
                                         const std::vector<std::array<double, 2>>& centres, int radius);

}  // namespace bevkd::train::data::testing

// GT from bevkd shards (core/eval/gt_shards.h): the stored GT reaches the evaluation with the
// fields the official filters use, in the global frame, and perfect predictions score AP 1.
#include "base/math.h"
#include "core/eval/gt_shards.h"

#include <gtest/gtest.h>

#include <sys/wait.h>

#include <cmath>
#include <cstdlib>

#include "base/fs.h"
#include "core/eval/evaluate.h"
#include "core/eval/results_io.h"
#include "core/geometry.h"
#include "storage/manifest.h"
#include "storage/shard_writer.h"
#include "tests/support/shard_fixture.h"
#include "tests/storage/test_util.h"

namespace bevkd::core::eval {
namespace {

namespace st = bevkd::storage;

// Writes `n` fixture samples of split `split` as one shard plus its manifest under `dir`.
st::testing::FixtureSpec write_dataset(const std::string& dir, const std::string& split, int n) {
  st::testing::FixtureSpec spec = st::testing::small_spec();
  spec.grid = BevGrid::make({-51.2, -51.2, -5.0, 51.2, 51.2, 3.0}, 3.2, 3.2);
  spec.split = split;
  spec.max_objects = 30;
  const std::string path = dir + "/" + split + "/shard-00000.h5";
  make_dirs(dir + "/" + split);
  st::Manifest m(st::testing::make_meta(spec));
  m.add(st::testing::write_fixture_shard(path, spec, n), dir);
  m.save(dir + "/manifest.json");
  return spec;
}

TEST(EvalGtShards, StoredGtReachesTheEvaluationInTheGlobalFrame) {
  st::testing::TempDir tmp;
  const auto spec = write_dataset(tmp.path(), "mini_val", 6);
  const GroundTruth gt = shard_ground_truth(tmp.path(), "mini_val");
  EXPECT_EQ(gt.split_kind, SplitKind::kPredefined);
  ASSERT_EQ(gt.boxes.num_samples(), 6u);
  ASSERT_EQ(gt.context.size(), 6u);
  std::size_t nan_velocities = 0, racks = 0;
  for (int i = 0; i < 6; ++i) {
    const st::Sample s = st::testing::make_sample(spec, i);
    EXPECT_EQ(gt.boxes.token(i), s.get("sample_token").string_at(0));
    const double* m = s.get("ego2global").data<double>();
    const double ego_yaw = std::atan2(m[4], m[0]);
    EXPECT_DOUBLE_EQ(gt.context[i].ego_translation[0], m[3]);
    EXPECT_DOUBLE_EQ(gt.context[i].ego_translation[1], m[7]);
    const auto& boxes = gt.boxes.boxes(i);
    const st::Array& stored = s.get("gt/boxes");
    ASSERT_EQ(static_cast<std::int64_t>(boxes.size()), stored.shape()[0]);
    for (std::size_t g = 0; g < boxes.size(); ++g) {
      const float* b = stored.data<float>() + 9 * g;
      const EvalBox& e = boxes[g];
      // centre: R(ego_yaw) (x, y) + t, worked out directly
      EXPECT_NEAR(e.translation[0], std::cos(ego_yaw) * b[0] - std::sin(ego_yaw) * b[1] + m[3], 1e-4);
      EXPECT_NEAR(e.translation[1], std::sin(ego_yaw) * b[0] + std::cos(ego_yaw) * b[1] + m[7], 1e-4);
      EXPECT_NEAR(e.translation[2], b[2], 1e-6);
      // nuScenes size order [w, l, h]
      EXPECT_FLOAT_EQ(static_cast<float>(e.size[0]), b[4]);
      EXPECT_FLOAT_EQ(static_cast<float>(e.size[1]), b[3]);
      EXPECT_FLOAT_EQ(static_cast<float>(e.size[2]), b[5]);
      EXPECT_NEAR(std::remainder(quaternion_yaw(e.rotation) - (ego_yaw + b[6]), 2 * kPi), 0.0, 1e-5);
      EXPECT_EQ(e.label, s.get("gt/labels").data<std::int16_t>()[g]);
      EXPECT_EQ(e.attribute, s.get("gt/attributes").data<std::int16_t>()[g]);
      EXPECT_EQ(e.num_pts, s.get("gt/num_lidar_pts").data<std::int32_t>()[g] +
                               s.get("gt/num_radar_pts").data<std::int32_t>()[g]);
      EXPECT_DOUBLE_EQ(e.score, -1.0);
      if (s.get("gt/velocity_valid").data<std::uint8_t>()[g] == 0) {
        EXPECT_TRUE(std::isnan(e.velocity[0]) && std::isnan(e.velocity[1]));
        ++nan_velocities;
      } else {
        // velocity is a direction: rotated, not translated
        EXPECT_NEAR(e.velocity[0], std::cos(ego_yaw) * b[7] - std::sin(ego_yaw) * b[8], 1e-4);
        EXPECT_NEAR(e.velocity[1], std::sin(ego_yaw) * b[7] + std::cos(ego_yaw) * b[8], 1e-4);
      }
    }
    EXPECT_EQ(static_cast<std::int64_t>(gt.context[i].bicycle_racks.size()), s.get("gt/rack_boxes").shape()[0]);
    racks += gt.context[i].bicycle_racks.size();
  }
  EXPECT_GT(nan_velocities, 0u) << "the fixture should exercise undefined velocities";
  EXPECT_GT(racks, 0u) << "the fixture should exercise bicycle racks";
}

TEST(EvalGtShards, PerfectPredictionsScoreApOne) {
  st::testing::TempDir tmp;
  write_dataset(tmp.path(), "val", 10);
  const GroundTruth gt = shard_ground_truth(tmp.path() + "/manifest.json", "val");
  EvalBoxes pred;
  for (std::size_t i = 0; i < gt.boxes.num_samples(); ++i) {
    // One prediction per GT box the evaluation keeps: GT without points is dropped by the
    // point filter, so a prediction there would be a false positive.
    std::vector<EvalBox> boxes;
    for (EvalBox b : gt.boxes.boxes(i)) {
      if (b.num_pts == 0) continue;
      b.score = 0.9;
      b.num_pts = -1;
      if (std::isnan(b.velocity[0])) b.velocity = {0, 0};
      boxes.push_back(b);
    }
    pred.add_sample(gt.boxes.token(i), std::move(boxes));
  }
  EvalOptions opts;
  opts.num_threads = 1;
  const EvalResult r = evaluate(gt, pred, DetectionConfig::cvpr_2019(), {}, opts);
  int perfect = 0;
  for (int label = 0; label < kNumClasses; ++label) {
    for (int t = 0; t < 4; ++t) {
      const double ap = r.metrics.ap(label, t);
      // 1 up to the devkit's own rounding (mean of 90 precisions / 0.9)
      EXPECT_TRUE(ap == 0.0 || std::abs(ap - 1.0) < 1e-12) << kClassNames[label] << " AP " << ap;
    }
    if (std::abs(r.metrics.ap(label, 0) - 1.0) < 1e-12) ++perfect;
  }
  EXPECT_GE(perfect, 4);
  EXPECT_LT(r.metrics.tp_errors[static_cast<int>(TpMetric::kTrans)], 1e-4);
  EXPECT_LT(r.metrics.tp_errors[static_cast<int>(TpMetric::kScale)], 1e-4);
}

// Two shards of `split`: fixture samples 0..n-1 and n..2n-1.
std::vector<std::string> write_two_shards(const std::string& dir, const std::string& split, int n) {
  st::testing::FixtureSpec spec = st::testing::small_spec();
  spec.grid = BevGrid::make({-51.2, -51.2, -5.0, 51.2, 51.2, 3.0}, 3.2, 3.2);
  spec.split = split;
  spec.max_objects = 30;
  make_dirs(dir + "/" + split);
  st::Manifest m(st::testing::make_meta(spec));
  std::vector<std::string> paths;
  for (int k = 0; k < 2; ++k) {
    paths.push_back(dir + "/" + split + "/shard-0000" + std::to_string(k) + ".h5");
    st::ShardWriter w(paths.back(), st::testing::make_meta(spec));
    for (int i = 0; i < n; ++i) w.append(st::testing::make_sample(spec, k * n + i));
    m.add(w.close(), dir);
  }
  m.save(dir + "/manifest.json");
  return paths;
}

TEST(EvalGtShards, ADamagedShardIsNamedAndLeftOutTheOthersAreEvaluated) {
  st::testing::TempDir tmp;
  const auto paths = write_two_shards(tmp.path(), "mini_val", 4);
  const GroundTruth all = shard_ground_truth(tmp.path(), "mini_val");
  ASSERT_EQ(all.boxes.num_samples(), 8u);
  EXPECT_TRUE(all.unreadable.empty());
  // The first shard's root object header: HDF5 refuses the file.
  const std::string bytes = read_file(paths[0]);
  st::testing::flip_bytes(paths[0], bytes.find("OHDR") + 12, 1);
  const GroundTruth gt = shard_ground_truth(tmp.path(), "mini_val");
  ASSERT_EQ(gt.unreadable.size(), 1u);
  EXPECT_NE(gt.unreadable[0].find("shard " + paths[0]), std::string::npos) << gt.unreadable[0];
  EXPECT_NE(gt.unreadable[0].find("the file is corrupt"), std::string::npos) << gt.unreadable[0];
  EXPECT_NE(gt.unreadable[0].find("its 4 samples are left out"), std::string::npos) << gt.unreadable[0];
  EXPECT_EQ(gt.split_kind, SplitKind::kCustom);
  ASSERT_EQ(gt.boxes.num_samples(), 4u);
  for (std::size_t i = 0; i < 4; ++i) EXPECT_EQ(gt.boxes.token(i), all.boxes.token(4 + i));
}

TEST(EvalGtShards, ASampleWhoseGtFailsItsChecksumIsLeftOut) {
  st::testing::TempDir tmp;
  const auto paths = write_two_shards(tmp.path(), "val", 4);
  const auto c = st::testing::locate_chunk(paths[1], "ego2global", {2, 0, 0});
  st::testing::flip_bytes(paths[1], c.address + c.size - 3, 1);
  const GroundTruth gt = shard_ground_truth(tmp.path(), "val");
  ASSERT_EQ(gt.unreadable.size(), 1u);
  EXPECT_NE(gt.unreadable[0].find("dataset ego2global, sample 2"), std::string::npos) << gt.unreadable[0];
  EXPECT_NE(gt.unreadable[0].find("the sample is left out"), std::string::npos) << gt.unreadable[0];
  EXPECT_EQ(gt.boxes.num_samples(), 7u);
}

TEST(EvalGtShards, BevkdEvalOnADamagedShardExitsTwoAfterEvaluatingTheRest) {
  st::testing::TempDir tmp;
  const auto paths = write_two_shards(tmp.path(), "val", 4);
  // Results for all 8 samples (empty lists are fine).
  const GroundTruth all = shard_ground_truth(tmp.path(), "val");
  std::vector<SampleDetections> dets;
  for (std::size_t i = 0; i < all.boxes.num_samples(); ++i) {
    SampleDetections d;
    d.sample_token = all.boxes.token(i);
    dets.push_back(d);
  }
  const std::string results = tmp.path() + "/results.json";
  ResultsMeta meta;
  meta.use_lidar = true;
  write_results_json(results, to_eval_boxes(dets), meta, 500);
  const std::string bytes = read_file(paths[1]);
  st::testing::flip_bytes(paths[1], bytes.find("OHDR") + 12, 1);
  const std::string cmd = std::string(BEVKD_BINARY_DIR) + "/core/eval/bevkd-eval " + results + " --shards " +
                          tmp.path() + " --split val --no-plots --quiet > " + tmp.path() + "/out 2> " + tmp.path() + "/err";
  const int rc = std::system(cmd.c_str());
  ASSERT_TRUE(WIFEXITED(rc));
  EXPECT_EQ(WEXITSTATUS(rc), 2);
  const std::string out = read_file(tmp.path() + "/out"), err = read_file(tmp.path() + "/err");
  EXPECT_NE(err.find("CORRUPT ground truth left out: shard " + paths[1]), std::string::npos) << err;
  EXPECT_NE(out.find("mAP"), std::string::npos) << out;
  EXPECT_NE(out.find("metrics cover 4 readable samples only"), std::string::npos) << out;
  EXPECT_TRUE(path_exists(tmp.path() + "/metrics_summary.json"));
}

TEST(EvalGtShards, ErrorsNameTheManifestAndSplit) {
  st::testing::TempDir tmp;
  write_dataset(tmp.path(), "train", 2);
  EXPECT_ERROR_WITH(shard_ground_truth(tmp.path(), "val"), tmp.path() + "/manifest.json",
                    "no shard of split \"val\" (the manifest lists 1 shards)");
  EXPECT_ERROR_WITH(shard_ground_truth(tmp.path() + "/nothing", "val"), tmp.path() + "/nothing/manifest.json");
}

}  // namespace
}  // namespace bevkd::core::eval

// bevkd-precompute run on a tiny bevkd-synth dataset with a tiny random-initialised teacher:
//  * RunShards: the shards verify (bevkd-inspect verify) and their fields agree with the schema,
//    with each other and with the KeyFrameLoader (boxes inside the decode range, masks peaking at
//    the GT centres of every view, depth targets inside the images and inside their GT box);
//    the quality formula on a hand-worked case;
//  * RunResume: a process SIGKILLed mid-shard and rerun, a second identical run, and a 2-worker
//    run + merge give byte-identical shards and manifest; another configuration is refused;
//  * RunErrors: a missing LiDAR file names the file and the sample, or is skipped and recorded
//    under --skip-missing-files;
//  * RunEval: export-results + bevkd-eval --shards score the stored teacher against the stored GT.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <sstream>

#include "base/error.h"
#include "base/fs.h"
#include "core/nn/bev_augment.h"
#include "core/nuscenes/key_frame.h"
#include "core/nuscenes/tables.h"
#include "precompute/run/run_pipeline.h"
#include "precompute/run/shard_plan.h"
#include "precompute/run/stage_postprocess.h"
#include "precompute/teacher/teacher.h"
#include "precompute/run/stage_voxelize.h"
#include "precompute/run/stage_read.h"
#include "storage/half.h"
#include "storage/manifest.h"
#include "storage/shard_reader.h"
#include "tests/precompute/precompute_fixtures.h"

namespace bevkd::precompute {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using storage::Array;
namespace t = testing;

constexpr const char* kCreated = "2026-01-01T00:00:00Z";
const std::vector<std::string> kSplits{"mini_train", "mini_val"};

const std::string& checkpoint() {
  static const std::string path =
      t::random_teacher_checkpoint(t::temp_dir("precompute_run", "teacher") + "/tiny.ckpt", "tiny", 7);
  return path;
}

// 9 samples (6 mini_train, 3 mini_val), 2 per shard: 5 shards; 2 views.
RunConfig base_run_config(const std::string& out) {
  RunConfig c;
  c.dataroot = t::tiny_synth_dataset();
  c.splits = kSplits;
  c.nsweeps = 2;
  c.teacher.checkpoint = checkpoint();
  c.samples_per_shard = 2;
  c.views = 2;
  c.batch_size = 2;
  c.out_dir = out;
  c.threads = 2;
  c.quiet = true;
  c.created_utc = kCreated;
  return c;
}

// The uninterrupted single-worker run every comparison uses (once per test process).
const std::string& reference_run() {
  static const std::string out = [] {
    const std::string dir = t::temp_dir("precompute_run", "reference");
    std::ostringstream log;
    run_precompute(base_run_config(dir), log);
    return dir;
  }();
  return out;
}

// The CLI arguments equivalent to base_run_config().
std::string cli_args(const std::string& out) {
  return "--dataroot " + t::tiny_synth_dataset() + " --split mini_train,mini_val --sweeps 2 --checkpoint " +
         checkpoint() + " --samples-per-shard 2 --views 2 --batch-size 2 --threads 2 --quiet --created-utc " +
         kCreated + " --out " + out;
}

std::vector<std::string> shard_files(const std::string& out) {
  std::vector<std::string> files;
  for (const auto& split : kSplits)
    for (const auto& e : fs::directory_iterator(out + "/" + split)) files.push_back(split + "/" + e.path().filename().string());
  std::sort(files.begin(), files.end());
  return files;
}

// Every shard and the manifest of `out` equal the reference's byte for byte.
void expect_same_output(const std::string& out) {
  const std::string& ref = reference_run();
  const auto files = shard_files(ref);
  ASSERT_EQ(files.size(), 5u);
  EXPECT_EQ(shard_files(out), files);
  for (const auto& f : files) EXPECT_TRUE(read_file(out + "/" + f) == read_file(ref + "/" + f)) << f << " differs";
  EXPECT_EQ(read_file(out + "/manifest.json"), read_file(ref + "/manifest.json"));
}

float f16(const Array& a, int64_t i) { return storage::half_to_float(a.data<std::uint16_t>()[i]); }

TEST(RunShards, VerifyAndFieldsAgree) {
  const std::string& out = reference_run();
  std::string log;
  ASSERT_EQ(t::run_command(t::binary("bevkd-inspect") + " verify " + out, &log), 0) << log;
  EXPECT_NE(log.find("5 shard(s), 9 samples, every checksum matches"), std::string::npos) << log;

  const auto manifest = storage::Manifest::load(out + "/manifest.json");
  EXPECT_EQ(manifest.num_samples("mini_train"), 6);
  EXPECT_EQ(manifest.num_samples("mini_val"), 3);
  EXPECT_EQ(manifest.num_views(), 2);
  EXPECT_TRUE(manifest.skipped().empty());

  const auto db = core::nusc::NuScenes::load(t::tiny_synth_dataset(), "v1.0-mini");
  core::nusc::KeyFrameOptions ko;
  ko.nsweeps = 2;
  const core::nusc::KeyFrameLoader loader(db, ko);
  std::vector<std::string> planned;
  for (const auto& split : kSplits)
    for (auto s : db.split_samples(split)) planned.emplace_back(db.token(core::nusc::Table::kSample, s));

  std::vector<std::string> seen;
  int64_t boxes_total = 0, depth_total = 0, in_box_total = 0, peaks_checked = 0;
  for (const auto& entry : manifest.shards()) {
    const storage::ShardReader r(manifest.shard_path(entry));
    const auto& meta = r.header().meta;
    const BevGrid grid = BevGrid::make(meta.grid.range, meta.grid.dx, meta.grid.dy);
    const auto pcr = meta.teacher.at("config").at("decode").at("post_center_range").get<std::vector<double>>();
    for (int64_t i = 0; i < r.num_samples(); ++i) {
      const auto s = r.read(i, {}, storage::ReadOptions{true, -1});
      const std::string token = s.get("sample_token").string_at(0);
      seen.push_back(token);
      const auto kf = loader.load(db.at(core::nusc::Table::kSample, token));
      ASSERT_TRUE(kf.has_value());
      SCOPED_TRACE(entry.path + " sample " + token);

      // GT as the KeyFrameLoader gives it (ego frame, sample.anns order), bicycle racks too.
      const Array& gt = s.get("gt/boxes");
      ASSERT_EQ(gt.dim(0), static_cast<int64_t>(kf->gt.size()));
      for (size_t g = 0; g < kf->gt.size(); ++g) {
        const auto want = kf->gt[g].box.to_array();
        for (int k = 0; k < 9; ++k) EXPECT_EQ(gt.data<float>()[9 * g + k], want[static_cast<size_t>(k)]);
        EXPECT_EQ(s.get("gt/labels").data<std::int16_t>()[g], kf->gt[g].label);
        EXPECT_EQ(s.get("gt/attributes").data<std::int16_t>()[g], kf->gt[g].attribute);
        EXPECT_EQ(s.get("gt/num_lidar_pts").data<std::int32_t>()[g], kf->gt[g].num_lidar_pts);
        EXPECT_EQ(s.get("gt/num_radar_pts").data<std::int32_t>()[g], kf->gt[g].num_radar_pts);
        EXPECT_EQ(s.get("gt/velocity_valid").data<std::uint8_t>()[g], kf->gt[g].velocity_valid ? 1 : 0);
      }
      EXPECT_EQ(s.get("gt/rack_boxes").dim(0), static_cast<int64_t>(kf->bicycle_racks.size()));
      EXPECT_EQ(s.get("timestamp").data<std::int64_t>()[0], kf->timestamp);
      for (int c = 0; c < core::kNumCameras; ++c)
        EXPECT_EQ(s.get("cams/image_path").string_at(c), kf->cameras[static_cast<size_t>(c)].image_path);

      // Views: view 0 the identity; view 1 a rotation x scale (x flips) from the default ranges.
      const Array& bda = s.get("view/bda");
      ASSERT_EQ(bda.shape(), (std::vector<int64_t>{2, 3, 3}));
      std::array<core::Mat3, 2> M;
      for (int v = 0; v < 2; ++v)
        for (int a = 0; a < 3; ++a)
          for (int b = 0; b < 3; ++b) M[v].m[a][b] = bda.data<float>()[9 * v + 3 * a + b];
      for (int a = 0; a < 3; ++a)
        for (int b = 0; b < 3; ++b) EXPECT_EQ(M[0].m[a][b], a == b ? 1.0 : 0.0);
      const double det = std::abs(M[1].det());
      EXPECT_GE(det, std::pow(0.95, 3) - 1e-5);
      EXPECT_LE(det, std::pow(1.05, 3) + 1e-5);

      // Teacher boxes inside the decoder's centre range, scores and quality in [0, 1], quality
      // what the formula gives against the view's valid GT.
      const Array& tb = s.get("teacher/boxes");
      const Array& ts = s.get("teacher/scores");
      const Array& tl = s.get("teacher/labels");
      const Array& tq = s.get("teacher/quality");
      ASSERT_EQ(tb.segments.size(), 2u);
      boxes_total += tb.dim(0);
      for (int64_t k = 0; k < tb.dim(0); ++k) {
        const float* b = tb.data<float>() + 9 * k;
        EXPECT_TRUE(b[0] >= pcr[0] && b[0] <= pcr[3] && b[1] >= pcr[1] && b[1] <= pcr[4]) << b[0] << ", " << b[1];
        EXPECT_GT(b[3], 0.f);
        EXPECT_GE(ts.data<float>()[k], 0.1f - 1e-6f);  // the tiny preset's score threshold
        EXPECT_LE(ts.data<float>()[k], 1.f);
        EXPECT_TRUE(tl.data<std::int16_t>()[k] >= 0 && tl.data<std::int16_t>()[k] < 10);
        EXPECT_TRUE(tq.data<float>()[k] >= 0.f && tq.data<float>()[k] <= std::pow(ts.data<float>()[k], 0.5f) + 1e-6f);
      }
      std::vector<core::Box> valid;
      std::vector<int64_t> valid_labels;
      for (const auto& g : kf->gt)
        if (g.num_lidar_pts + g.num_radar_pts > 0) valid.push_back(g.box), valid_labels.push_back(g.label);
      int64_t row0 = 0;
      for (int v = 0; v < 2; ++v) {
        const int64_t m = tb.segments[static_cast<size_t>(v)];
        auto gtv = torch::empty({static_cast<int64_t>(valid.size()), 9});
        for (size_t g = 0; g < valid.size(); ++g) {
          const auto c = M[v] * core::Vec3{valid[g].x, valid[g].y, valid[g].z};
          auto a = valid[g].to_array();
          // Centre and velocity through M, sizes scaled, heading (cos, sin) through M.
          const auto h = M[v] * core::Vec3{std::cos(valid[g].yaw), std::sin(valid[g].yaw), 0.0};
          const auto vel = M[v] * core::Vec3{valid[g].vx, valid[g].vy, 0.0};
          a[0] = static_cast<float>(c[0]), a[1] = static_cast<float>(c[1]), a[2] = static_cast<float>(c[2]);
          for (int k = 3; k < 6; ++k) a[k] *= static_cast<float>(std::cbrt(std::abs(M[v].det())));
          a[6] = static_cast<float>(std::atan2(h[1], h[0]));
          a[7] = static_cast<float>(vel[0]), a[8] = static_cast<float>(vel[1]);
          for (int k = 0; k < 9; ++k) gtv[static_cast<int64_t>(g)][k] = a[static_cast<size_t>(k)];
        }
        const auto q = teacher_quality(
            torch::from_blob(const_cast<float*>(tb.data<float>()) + 9 * row0, {m, 9}, torch::kFloat32),
            torch::from_blob(const_cast<float*>(ts.data<float>()) + row0, {m}, torch::kFloat32),
            torch::from_blob(const_cast<std::int16_t*>(tl.data<std::int16_t>()) + row0, {m}, torch::kInt16),
            gtv, torch::tensor(valid_labels), 0.5);
        for (int64_t k = 0; k < m; ++k) EXPECT_NEAR(q[k].item<float>(), tq.data<float>()[row0 + k], 1e-3) << "view " << v;

        // The foreground mask is 1 at the truncated centre cell of every valid GT in the grid
        // (spec/losses.md §2), in [0, 1] everywhere, and 0 far from every GT.
        const Array& fg = s.get("fg_mask");
        const int64_t H = grid.H, W = grid.W;
        for (int64_t g = 0; g < gtv.size(0); ++g) {
          const float cx = (gtv[g][0].item<float>() - static_cast<float>(grid.range[0])) / static_cast<float>(grid.dx);
          const float cy = (gtv[g][1].item<float>() - static_cast<float>(grid.range[1])) / static_cast<float>(grid.dy);
          const auto col = static_cast<int64_t>(cx), row = static_cast<int64_t>(cy);
          if (col < 0 || col >= W || row < 0 || row >= H) continue;
          EXPECT_EQ(f16(fg, (v * H + row) * W + col), 1.0f) << "view " << v << " GT " << g;
          ++peaks_checked;
        }
        int64_t positive = 0;
        for (int64_t k = 0; k < H * W; ++k) {
          const float x = f16(fg, v * H * W + k);
          ASSERT_TRUE(x >= 0.f && x <= 1.f);
          positive += x > 0;
        }
        EXPECT_LT(positive, H * W / 4) << "the mask covers foreground only";
        row0 += m;
      }

      // Heat maps in [0, 1]; both taps present with the manifest's channels.
      const Array& hm = s.get("teacher/heatmap");
      EXPECT_EQ(hm.shape(), (std::vector<int64_t>{2, 10, grid.H, grid.W}));
      for (int64_t k = 0; k < hm.numel(); k += 97) ASSERT_TRUE(f16(hm, k) >= 0.f && f16(hm, k) <= 1.f);
      for (const auto& tap : manifest.taps())
        EXPECT_EQ(s.get("teacher/features/" + tap.name).shape(),
                  (std::vector<int64_t>{2, tap.channels, grid.H, grid.W}));

      // Depth targets inside the image and the depth range; a point with a box id lies in that box.
      const Array& uvd = s.get("depth/uvd");
      const Array& bid = s.get("depth/box_id");
      ASSERT_EQ(uvd.segments.size(), static_cast<size_t>(core::kNumCameras));
      int64_t p0 = 0;
      for (int c = 0; c < core::kNumCameras; ++c) {
        const auto& cam = kf->cameras[static_cast<size_t>(c)];
        const auto& K = cam.intrinsics;
        for (int64_t p = p0; p < p0 + uvd.segments[static_cast<size_t>(c)]; ++p) {
          const float u = uvd.data<float>()[3 * p], vv = uvd.data<float>()[3 * p + 1], d = uvd.data<float>()[3 * p + 2];
          ASSERT_TRUE(u >= 0 && u < cam.width && vv >= 0 && vv < cam.height) << u << ", " << vv;
          ASSERT_TRUE(d >= 1.0f && d < 100.0f) << d;
          const int32_t id = bid.data<std::int32_t>()[p];
          ASSERT_TRUE(id >= -1 && id < gt.dim(0));
          if (id < 0) continue;
          // Back-project: camera frame (x right, y down, z forward), then camera -> ego.
          const double xc = (u - K[2]) * d / K[0], yc = (vv - K[5]) * d / K[4];
          const core::Vec3 ego = cam.cam_to_ego.apply({xc, yc, d});
          core::Box b = kf->gt[static_cast<size_t>(id)].box;
          b.l += 0.2f, b.w += 0.2f, b.h += 0.2f;  // float32 round trip of u, v, d
          EXPECT_TRUE(core::point_in_box(b, ego)) << "camera " << c << " point " << p << " box " << id;
          ++in_box_total;
        }
        p0 += uvd.segments[static_cast<size_t>(c)];
      }
      depth_total += uvd.dim(0);
    }
  }
  EXPECT_EQ(seen, planned) << "every planned sample once, in plan order";
  EXPECT_GT(boxes_total, 0);
  EXPECT_GT(depth_total, 100);
  EXPECT_GT(in_box_total, 0);
  EXPECT_GT(peaks_checked, 20);
}

// View 1's stored heat map and boxes are the teacher run on the view-1-transformed cloud (and
// not on the untransformed one): rerun the teacher here and compare.
TEST(RunShards, StoredViewIsTheTeacherOnTheTransformedCloud) {
  const RunConfig cfg = base_run_config(reference_run());
  auto teacher = open_teacher(cfg.teacher);
  const auto db = core::nusc::NuScenes::load(cfg.dataroot, cfg.version);
  core::nusc::KeyFrameOptions ko;
  ko.nsweeps = cfg.nsweeps;
  const core::nusc::KeyFrameLoader loader(db, ko);
  const storage::ShardReader r(reference_run() + "/mini_val/shard-00000.h5");
  const auto smp = r.read(0);
  const std::string token = smp.get("sample_token").string_at(0);
  const auto kf = loader.load(db.at(core::nusc::Table::kSample, token));
  ASSERT_TRUE(kf.has_value());
  const auto views = sample_views(cfg, token);
  ASSERT_EQ(views.size(), 2u);
  const torch::Tensor points = key_frame_points(*kf);
  const TeacherOutput on_view = teacher->infer({views[1].apply_points(points)});
  const TeacherOutput on_raw = teacher->infer({points});

  const Array& hm = smp.get("teacher/heatmap");  // [V, K, H, W] float16
  const int64_t n = hm.numel() / 2;
  std::vector<float> stored(static_cast<size_t>(n));
  storage::half_to_float(hm.data<std::uint16_t>() + n, stored.data(), stored.size());  // view 1
  const auto want = on_view.heatmap[0].contiguous();
  const auto raw = on_raw.heatmap[0].contiguous();
  ASSERT_EQ(want.numel(), n);
  double err_view = 0, err_raw = 0;
  for (int64_t i = 0; i < n; ++i) {
    err_view = std::max(err_view, std::abs(double(stored[size_t(i)]) - want.data_ptr<float>()[i]));
    err_raw = std::max(err_raw, std::abs(double(stored[size_t(i)]) - raw.data_ptr<float>()[i]));
  }
  EXPECT_LT(err_view, 2e-3) << "float16 rounding of sigmoid values only";
  EXPECT_GT(err_raw, 1e-2) << "the transformed and the raw cloud must give different heat maps";

  const Array& tb = smp.get("teacher/boxes");
  const int64_t m0 = tb.segments.at(0), m1 = tb.segments.at(1);
  const auto& det = on_view.detections.at(0);
  ASSERT_EQ(det.size(), m1);
  const auto boxes = det.boxes.contiguous();
  // The random teacher's sizes are exp(large logits): compare relative to the magnitude.
  for (int64_t k = 0; k < m1 * 9; ++k) {
    const double a = tb.data<float>()[m0 * 9 + k], b = boxes.data_ptr<float>()[k];
    EXPECT_LE(std::abs(a - b), 1e-3 + 1e-4 * std::abs(b)) << "row " << k / 9 << ": " << a << " vs " << b;
  }
}

TEST(RunShards, ClassProbsAreTheHeatMapsAtEachBoxPeak) {
  // teacher/class_probs[m] = the view's stored heat maps (all 10 classes) at one cell, bit for
  // bit (both float16 of the same float32 sigmoid), and its label's entry is the box's score.
  const std::string& out = reference_run();
  const auto manifest = storage::Manifest::load(out + "/manifest.json");
  int64_t boxes = 0;
  for (const auto& entry : manifest.shards()) {
    const storage::ShardReader r(manifest.shard_path(entry));
    const int64_t H = r.header().meta.grid.H, W = r.header().meta.grid.W;
    for (int64_t i = 0; i < r.num_samples(); ++i) {
      const auto s = r.read(i, {"teacher/*"});
      const Array& probs = s.get("teacher/class_probs");
      const Array& heat = s.get("teacher/heatmap");  // [V, 10, H, W]
      ASSERT_EQ(probs.segments, s.get("teacher/scores").segments);
      int64_t m = 0;
      for (size_t v = 0; v < probs.segments.size(); ++v)
        for (int64_t k = 0; k < probs.segments[v]; ++k, ++m) {
          const auto* p = probs.data<std::uint16_t>() + 10 * m;
          const int label = s.get("teacher/labels").data<std::int16_t>()[m];
          EXPECT_EQ(p[label], storage::float_to_half(s.get("teacher/scores").data<float>()[m]));
          bool found = false;
          for (int64_t cell = 0; cell < H * W && !found; ++cell) {
            bool all = true;
            for (int c = 0; c < 10 && all; ++c)
              all = heat.data<std::uint16_t>()[((static_cast<int64_t>(v) * 10 + c) * H * W) + cell] == p[c];
            found = all;
          }
          EXPECT_TRUE(found) << entry.path << " sample " << i << " view " << v << " box " << k;
          ++boxes;
        }
    }
  }
  EXPECT_GT(boxes, 20);
}

TEST(RunShards, QualityByHand) {
  // A teacher box equal to its GT: IoU 1, q = c^gamma; a box shifted by half its length along x:
  // IoU 1/3, q = c^g (1/3)^(1-g); a box of another class: 0; no GT: 0.
  const auto gt = torch::tensor({0.f, 0.f, 0.f, 4.f, 2.f, 1.5f, 0.f, 0.f, 0.f}).reshape({1, 9});
  auto boxes = torch::cat({gt, gt.clone(), gt.clone()}, 0);
  boxes[1][0] = 2.f;
  const auto scores = torch::tensor({0.64f, 0.81f, 0.9f});
  const auto labels = torch::tensor({3, 3, 4});
  const auto q = teacher_quality(boxes, scores, labels, gt, torch::tensor({3}), 0.5);
  EXPECT_NEAR(q[0].item<float>(), 0.8f, 1e-5);
  EXPECT_NEAR(q[1].item<float>(), std::sqrt(0.81f) * std::sqrt(1.f / 3.f), 1e-4);
  EXPECT_EQ(q[2].item<float>(), 0.f);
  const auto q0 = teacher_quality(boxes, scores, labels, torch::zeros({0, 9}), torch::zeros({0}, torch::kInt64), 0.5);
  EXPECT_EQ(q0.sum().item<float>(), 0.f);
  const auto g1 = teacher_quality(boxes, scores, labels, gt, torch::tensor({3}), 1.0);
  EXPECT_NEAR(g1[1].item<float>(), 0.81f, 1e-6);
}

TEST(RunResume, KilledRunResumesToTheSameBytes) {
  const std::string out = t::temp_dir("precompute_run", "killed");
  std::string log;
  // Killed after its 3rd sample: shard 0 of mini_train is complete, shard 1 half written.
  const int rc = t::run_command("BEVKD_PRECOMPUTE_KILL_AFTER_SAMPLES=3 " + t::binary("bevkd-precompute") +
                                    " run " + cli_args(out),
                                &log);
  ASSERT_EQ(rc, 128 + 9) << log;
  EXPECT_TRUE(path_exists(out + "/mini_train/shard-00000.h5"));
  EXPECT_TRUE(path_exists(out + "/mini_train/shard-00001.h5.partial"));
  EXPECT_FALSE(path_exists(out + "/mini_train/shard-00001.h5"));
  EXPECT_FALSE(path_exists(out + "/manifest.json"));
  const auto partial_manifest = storage::Manifest::load(out + "/manifest.worker-000-of-001.json");
  ASSERT_EQ(partial_manifest.shards().size(), 1u);

  ASSERT_EQ(t::run_command(t::binary("bevkd-precompute") + " run " + cli_args(out), &log), 0) << log;
  EXPECT_NE(log.find("7 samples in 4 shard(s) written, 1 kept"), std::string::npos) << log;
  EXPECT_FALSE(path_exists(out + "/mini_train/shard-00001.h5.partial"));
  expect_same_output(out);

  // A finished output whose shard 1 got damaged: the rerun that rewrites it first stops claiming
  // completeness — killed right after, neither manifest names the damaged or a missing shard.
  const std::string damaged = out + "/mini_train/shard-00001.h5";
  std::filesystem::resize_file(damaged, file_size(damaged) / 2);
  ASSERT_EQ(t::run_command("BEVKD_PRECOMPUTE_KILL_AFTER_SAMPLES=1 " + t::binary("bevkd-precompute") +
                               " run " + cli_args(out),
                           &log),
            128 + 9)
      << log;
  EXPECT_FALSE(path_exists(out + "/manifest.json")) << log;
  const auto worker = storage::Manifest::load(out + "/manifest.worker-000-of-001.json");
  for (const auto& s : worker.shards()) {
    EXPECT_NE(s.path, "mini_train/shard-00001.h5");
    EXPECT_TRUE(path_exists(out + "/" + s.path)) << s.path;
  }
  ASSERT_EQ(t::run_command(t::binary("bevkd-precompute") + " run " + cli_args(out), &log), 0) << log;
  expect_same_output(out);
}

TEST(RunResume, RerunRewritesFinishedShardsDamagedAfterTheyWereWritten) {
  // A finished output, then a shard damaged where HDF5 cannot see it (inside a compressed
  // chunk): a rerun checks the shards it keeps against the manifest's size and XXH64, rewrites
  // the damaged one, says so, and the output is the reference's again.
  const std::string out = t::temp_dir("precompute_run", "repair");
  auto c = base_run_config(out);
  std::ostringstream first;
  run_precompute(c, first);
  const std::string damaged = out + "/" + shard_files(out).front();
  {
    const std::string bytes = read_file(damaged);
    std::string b = bytes;
    const auto ohdr = b.rfind("OHDR");  // any byte of the file would do; stay clear of the header
    const std::size_t at = (ohdr + b.size()) / 2;
    b[at] = static_cast<char>(b[at] ^ 0x01);
    write_file_atomic(damaged, b);
  }
  std::string verify;
  EXPECT_EQ(t::run_command(t::binary("bevkd-inspect") + " verify " + out, &verify), 2) << verify;
  std::ostringstream log;
  const auto r = run_precompute(c, log);
  EXPECT_EQ(r.shards_written, 1);
  EXPECT_EQ(r.shards_kept, 4);
  EXPECT_NE(log.str().find("run: " + damaged + " is damaged or not a valid shard, writing it again"), std::string::npos)
      << log.str();
  EXPECT_NE(log.str().find("the file's XXH64 is"), std::string::npos) << log.str();
  expect_same_output(out);
  EXPECT_EQ(t::run_command(t::binary("bevkd-inspect") + " verify " + out, &verify), 0) << verify;

  // Without any manifest (an earlier run killed between the rename and the manifest), every
  // sample's checksums decide: a raw-stored chunk changed is caught and the shard rewritten.
  fs::remove(out + "/manifest.json");
  fs::remove(out + "/manifest.worker-000-of-001.json");
  const std::string other = out + "/" + shard_files(out).back();
  const storage::ShardReader probe(other);
  const auto ts = probe.read_field(0, "timestamp");
  {
    std::string b = read_file(other);
    std::string needle(reinterpret_cast<const char*>(ts.raw()), 8);
    const std::size_t at = b.find(needle);  // the timestamp chunk is stored raw (8 bytes zstd cannot shrink)
    ASSERT_NE(at, std::string::npos);
    b[at] = static_cast<char>(b[at] ^ 0x01);
    write_file_atomic(other, b);
  }
  std::ostringstream log2;
  const auto r2 = run_precompute(c, log2);
  EXPECT_EQ(r2.shards_written, 1);
  EXPECT_NE(log2.str().find("run: " + other + " is damaged or not a valid shard, writing it again"), std::string::npos)
      << log2.str();
  EXPECT_NE(log2.str().find("checksum mismatch"), std::string::npos) << log2.str();
  expect_same_output(out);
}

TEST(RunResume, RerunIsDeterministic) {
  // A second uninterrupted run (another directory, no pipeline overlap) writes the same bytes;
  // a rerun into a finished directory keeps every shard.
  const std::string out = t::temp_dir("precompute_run", "again");
  auto c = base_run_config(out);
  c.max_batches_in_flight = 1;
  std::ostringstream log;
  const auto r = run_precompute(c, log);
  EXPECT_EQ(r.samples_written, 9);
  expect_same_output(out);
  const auto again = run_precompute(c, log);
  EXPECT_EQ(again.shards_kept, 5);
  EXPECT_EQ(again.samples_written, 0);
  expect_same_output(out);
}

TEST(RunResume, TwoWorkersMergeToTheSingleWorkerOutput) {
  const std::string out = t::temp_dir("precompute_run", "workers");
  std::ostringstream log;
  auto c = base_run_config(out);
  c.num_workers = 2;
  c.worker_index = 1;
  const auto r1 = run_precompute(c, log);
  EXPECT_EQ(r1.shards_written, 2);  // plan shards 1 and 3
  EXPECT_FALSE(r1.merge.complete());
  EXPECT_FALSE(path_exists(out + "/manifest.json"));
  EXPECT_NE(r1.merge.describe().find("workers without a manifest: 0"), std::string::npos) << r1.merge.describe();
  c.worker_index = 0;
  const auto r0 = run_precompute(c, log);
  EXPECT_EQ(r0.shards_written, 3);
  EXPECT_TRUE(r0.merge.complete());
  expect_same_output(out);

  // `bevkd-precompute merge` rewrites the same manifest.
  fs::remove(out + "/manifest.json");
  std::string text;
  ASSERT_EQ(t::run_command(t::binary("bevkd-precompute") + " merge --out " + out, &text), 0) << text;
  EXPECT_NE(text.find("merged 2 worker manifests"), std::string::npos) << text;
  expect_same_output(out);
}

TEST(RunResume, WorkerFromSchedulerEnvironment) {
  std::map<std::string, std::string> env{{"SLURM_ARRAY_TASK_ID", "5"}, {"SLURM_ARRAY_TASK_COUNT", "3"},
                                         {"SLURM_ARRAY_TASK_MIN", "4"}};
  auto get = [&](const char* n) -> const char* {
    auto it = env.find(n);
    return it == env.end() ? nullptr : it->second.c_str();
  };
  const auto w = resolve_worker(std::nullopt, std::nullopt, get);
  EXPECT_EQ(w.index, 1);
  EXPECT_EQ(w.count, 3);
  EXPECT_NE(w.source.find("SLURM"), std::string::npos);
  env = {{"SLURM_ARRAY_TASK_ID", "2"}};
  try {
    resolve_worker(std::nullopt, std::nullopt, get);
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("SLURM_ARRAY_TASK_COUNT is not: give --num-workers"), std::string::npos)
        << e.what();
  }
}

TEST(RunResume, AnotherConfigurationIsRefused) {
  const std::string out = t::temp_dir("precompute_run", "refused");
  auto c = base_run_config(out);
  c.splits = {"mini_val"};
  std::ostringstream log;
  run_precompute(c, log);
  c.quality_gamma = 0.25;
  try {
    run_precompute(c, log);
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("holds the output of another configuration"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("first difference at config.quality.gamma (stored 0.5, given 0.25)"),
              std::string::npos)
        << e.what();
  }
}

// A copy of the tiny dataset with the key-frame LiDAR file of mini_val's second sample removed.
struct MissingLidar {
  std::string root, token, file;
};

MissingLidar dataset_without_lidar() {
  MissingLidar m;
  m.root = t::temp_dir("precompute_run", "missing") + "/data";
  fs::copy(t::tiny_synth_dataset(), m.root, fs::copy_options::recursive);
  const auto db = core::nusc::NuScenes::load(m.root, "v1.0-mini");
  const auto sample = db.split_samples("mini_val").at(1);
  m.token = std::string(db.token(core::nusc::Table::kSample, sample));
  core::nusc::KeyFrameOptions o;
  o.load_points = false;
  const auto kf = core::nusc::KeyFrameLoader(db, o).load(sample);
  m.file = m.root + "/" + kf->lidar_path;
  fs::remove(m.file);
  return m;
}

TEST(RunErrors, MissingLidarFileNamesFileAndSample) {
  const auto m = dataset_without_lidar();
  auto c = base_run_config(fs::path(m.root).parent_path().string() + "/out_fail");
  c.dataroot = m.root;
  c.splits = {"mini_val"};
  std::ostringstream log;
  try {
    run_precompute(c, log);
    FAIL() << "a missing LiDAR file must fail the run";
  } catch (const Error& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("sample " + m.token), std::string::npos) << msg;
    EXPECT_NE(msg.find("missing LiDAR file " + m.file), std::string::npos) << msg;
    EXPECT_NE(msg.find("--skip-missing-files"), std::string::npos) << msg;
  }
  // The shard before the bad sample's stays finished (shard 0 holds samples 0 and 1: none).
  EXPECT_FALSE(path_exists(c.out_dir + "/mini_val/shard-00000.h5.partial"));
}

TEST(RunErrors, SkipMissingFilesRecordsTheSample) {
  const auto m = dataset_without_lidar();
  auto c = base_run_config(fs::path(m.root).parent_path().string() + "/out_skip");
  c.dataroot = m.root;
  c.splits = {"mini_val"};
  c.skip_missing_files = true;
  std::ostringstream log;
  const auto r = run_precompute(c, log);
  EXPECT_EQ(r.samples_written, 2);
  EXPECT_EQ(r.samples_skipped, 1);
  const auto manifest = storage::Manifest::load(c.out_dir + "/manifest.json");
  EXPECT_EQ(manifest.num_samples("mini_val"), 2);
  ASSERT_EQ(manifest.skipped().size(), 1u);
  const auto& k = manifest.skipped()[0];
  EXPECT_EQ(k.sample_token, m.token);
  EXPECT_EQ(k.split, "mini_val");
  EXPECT_EQ(k.shard, "mini_val/shard-00000.h5");
  EXPECT_EQ(k.reason, "missing files");
  EXPECT_EQ(k.files, std::vector<std::string>{m.file});
  const storage::ShardReader shard0(c.out_dir + "/mini_val/shard-00000.h5");
  ASSERT_EQ(shard0.num_samples(), 1);
  EXPECT_NE(shard0.read_field(0, "sample_token").string_at(0), m.token);
  // A rerun keeps the shards and still records the skipped sample.
  const auto again = run_precompute(c, log);
  EXPECT_EQ(again.shards_kept, 2);
  EXPECT_EQ(storage::Manifest::load(c.out_dir + "/manifest.json").skipped().size(), 1u);
}

TEST(RunErrors, ADamagedCameraImageFailsTheRunNamingIt) {
  const std::string root = t::temp_dir("precompute_run", "badjpeg") + "/data";
  fs::copy(t::tiny_synth_dataset(), root, fs::copy_options::recursive);
  const auto db = core::nusc::NuScenes::load(root, "v1.0-mini");
  const auto sample = db.split_samples("mini_val").at(0);
  const std::string img = root + "/" + std::string(db.filename(db.key_frame(sample, "CAM_FRONT")));
  std::string bytes = read_file(img);
  bytes.resize(bytes.size() / 2);  // the header survives; the image data does not
  write_file_atomic(img, bytes);
  auto c = base_run_config(fs::path(root).parent_path().string() + "/out");
  c.dataroot = root;
  c.splits = {"mini_val"};
  std::ostringstream log;
  try {
    run_precompute(c, log);
    FAIL() << "a damaged JPEG must fail the run";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("image file " + img + ": the JPEG does not decode"), std::string::npos)
        << e.what();
  }
}

TEST(RunEval, BevkdEvalScoresExportedTeacherOnShards) {
  const std::string& out = reference_run();
  const std::string results = t::temp_dir("precompute_run", "eval") + "/teacher_results.json";
  std::string log;
  ASSERT_EQ(t::run_command(t::binary("bevkd-precompute") + " export-results --shards " + out +
                               " --split mini_val -o " + results,
                           &log),
            0)
      << log;
  EXPECT_NE(log.find("of 3 samples -> " + results), std::string::npos) << log;
  const json res = json::parse(read_file(results));
  EXPECT_EQ(res.at("results").size(), 3u);
  EXPECT_TRUE(res.at("meta").at("use_lidar").get<bool>());

  // Each exported box, moved back from the global frame through the stored ego pose, is one of
  // the view-0 teacher boxes of its sample (centre, l/w/h order, yaw, velocity): an independent
  // inverse of export's ego -> global conversion.
  const auto manifest = storage::Manifest::load(out + "/manifest.json");
  int64_t checked = 0;
  for (const auto& entry : manifest.shards()) {
    if (entry.split != "mini_val") continue;
    const storage::ShardReader r(manifest.shard_path(entry));
    for (int64_t i = 0; i < r.num_samples(); ++i) {
      const auto smp = r.read(i);
      const std::string token = smp.get("sample_token").string_at(0);
      const json& boxes = res.at("results").at(token);
      const Array& tb = smp.get("teacher/boxes");
      const int64_t m0 = tb.segments.at(0);  // view 0's rows come first
      ASSERT_EQ(static_cast<int64_t>(boxes.size()), m0) << token;
      std::array<double, 16> pose{};
      std::copy_n(smp.get("ego2global").data<double>(), 16, pose.begin());
      const core::Rigid ego_from_global = core::Rigid::from_mat4(pose).inverse();
      for (const json& b : boxes) {
        core::NuscBox nb;
        const auto tr = b.at("translation").get<std::vector<double>>();
        const auto sz = b.at("size").get<std::vector<double>>();
        const auto q = b.at("rotation").get<std::vector<double>>();
        const auto vel = b.at("velocity").get<std::vector<double>>();
        nb.translation = {tr[0], tr[1], tr[2]};
        nb.size = {sz[0], sz[1], sz[2]};
        nb.rotation = core::Quat{q[0], q[1], q[2], q[3]};
        nb.velocity = {vel[0], vel[1]};
        const core::Box back = core::to_box(nb, ego_from_global);
        double best = 1e9;
        int64_t best_k = -1;
        for (int64_t k = 0; k < m0; ++k) {
          const float* t = tb.data<float>() + 9 * k;
          const double d = std::hypot(t[0] - back.x, t[1] - back.y);
          if (d < best) best = d, best_k = k;
        }
        ASSERT_GE(best_k, 0);
        const float* t = tb.data<float>() + 9 * best_k;
        EXPECT_LT(best, 1e-3) << token;
        EXPECT_NEAR(back.z, t[2], 1e-3);
        EXPECT_NEAR(back.l, t[3], 1e-3);
        EXPECT_NEAR(back.w, t[4], 1e-3);
        EXPECT_NEAR(back.h, t[5], 1e-3);
        EXPECT_NEAR(core::wrap_angle(back.yaw - t[6]), 0.0, 1e-3);
        // Results keep the x-y part of the global velocity; the ego pose's small pitch/roll
        // make the round trip inexact by ~angle^2 relative.
        EXPECT_NEAR(back.vx, t[7], 1e-3 + 1e-4 * std::abs(t[7]));
        EXPECT_NEAR(back.vy, t[8], 1e-3 + 1e-4 * std::abs(t[8]));
        ++checked;
      }
    }
  }
  EXPECT_GT(checked, 0) << "the random teacher exported no box to check";
  const std::string eval_dir = fs::path(results).parent_path().string() + "/metrics";
  ASSERT_EQ(t::run_command(t::binary("bevkd-eval") + " --shards " + out + " --split mini_val --quiet " +
                               "--no-plots --threads 2 --output-dir " + eval_dir + " " + results,
                           &log),
            0)
      << log;
  // The devkit writes NaN for undefined errors, which strict JSON parsers refuse: read the keys.
  const std::string summary = read_file(eval_dir + "/metrics_summary.json");
  EXPECT_NE(summary.find("\"mean_ap\""), std::string::npos) << summary;
  EXPECT_NE(summary.find("\"nd_score\""), std::string::npos) << summary;
  EXPECT_NE(log.find("mAP"), std::string::npos) << log;
}

}  // namespace
}  // namespace bevkd::precompute

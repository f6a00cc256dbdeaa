// The loader on tiny generated shards + JPEG dataroots (loader_fixture.h): depth targets and
// images move together, GT after the view's bda on the teacher's peaks, evaluation's fixed
// resize + crop, views and augmentation independent of the split, exact resume, teacher field
// conversion, missing and escaping images, start-up checks.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <map>
#include <set>
#include <sstream>
#include <array>

#include "base/fs.h"
#include "base/math.h"
#include "base/rng.h"
#include "core/nn/bev_augment.h"
#include "core/nuscenes/jpeg.h"
#include "storage/half.h"
#include "storage/manifest.h"
#include "storage/shard_reader.h"
#include "tests/storage/test_util.h"
#include "tests/train/data/loader_fixture.h"
#include "train/data/image_aug.h"
#include "train/data/loader.h"
#include "train/data/sample_loader.h"
#include "train/data/view_check.h"

namespace bevkd::train::data {
namespace {

using storage::Array;
using storage::StreamPosition;
using storage::testing::TempDir;

// 9 samples in two shards, 320 x 180 JPEGs, student input 64 x 128 at depth stride 8.
LoaderConfig small_config() {
  LoaderConfig c;
  c.batch_size = 2;
  c.image.final_size = {64, 128};
  c.image.resize_range = {0.36, 0.5};
  c.image.rotation_range = {-12, 12};
  c.image.flip_prob = 0.5;
  c.depth_stride = 8;
  c.depth_range = {2.0, 58.0};
  c.depth_box_id = true;
  c.threads = 2;
  c.seed = 5;
  return c;
}

LoaderSetup train_setup() {
  LoaderSetup s;
  s.split = "train";
  return s;
}

LoaderSetup eval_setup() {
  LoaderSetup s;
  s.split = "train";
  s.train = false;
  return s;
}

std::vector<Batch> epoch(Loader& loader) {
  std::vector<Batch> out;
  while (auto b = loader.next()) out.push_back(std::move(*b));
  return out;
}

class LoaderTest : public ::testing::Test {
 protected:
  void make(const testing::LoaderDatasetSpec& spec = testing::LoaderDatasetSpec()) {
    spec_ = spec;
    data_ = testing::make_loader_dataset(spec, dir_.path());
  }
  storage::Manifest manifest() const { return storage::Manifest::load(data_.manifest_path); }
  std::unique_ptr<Loader> loader(const LoaderConfig& cfg, const LoaderSetup& setup) const {
    return std::make_unique<Loader>(manifest(), data_.dataroot, cfg, setup);
  }
  std::string shard_file(const std::string& rel) const {
    return std::filesystem::path(data_.manifest_path).parent_path().string() + "/" + rel;
  }

  TempDir dir_;
  testing::LoaderDatasetSpec spec_;
  testing::LoaderDataset data_;
};

// Bad input and start-up checks (a suite of its own: ctest runs suites in parallel).
class LoaderErrors : public LoaderTest {};

// The ego point p projected with the batch's camera (intrinsics = A K, cam2ego): augmented pixel
// coordinates and depth.
std::array<double, 3> project(const torch::Tensor& ak, const torch::Tensor& cam2ego, const std::array<double, 3>& p) {
  const auto T = cam2ego.accessor<float, 2>();
  const auto K = ak.accessor<float, 2>();
  double q[3];
  for (int r = 0; r < 3; ++r)
    q[r] = T[0][r] * (p[0] - T[0][3]) + T[1][r] * (p[1] - T[1][3]) + T[2][r] * (p[2] - T[2][3]);
  double x[3];
  for (int r = 0; r < 3; ++r) x[r] = K[r][0] * q[0] + K[r][1] * q[1] + K[r][2] * q[2];
  return {x[0] / x[2], x[1] / x[2], q[2]};
}

double frac_distance(double x) {  // distance of x + 1/2 to the nearest integer (a rounding boundary)
  const double f = x + 0.5 - std::floor(x + 0.5);
  return std::min(f, 1 - f);
}

TEST_F(LoaderTest, DepthTargetsAndImagesStayOnThePixelOfTheirLidarPoint) {
  make();
  const LoaderConfig cfg = small_config();
  auto l = loader(cfg, train_setup());
  const std::array<float, 9> K = testing::dataset_intrinsics(spec_);
  const std::int64_t S = cfg.depth_stride, fH = 64, fW = 128, h = fH / S, w = fW / S;
  int flipped = 0, rotated = 0, checked_points = 0, white_checked = 0;
  for (const Batch& b : epoch(*l)) {
    ASSERT_EQ(b.depth.depth.sizes(), (std::vector<std::int64_t>{b.size(), 6, h, w}));
    ASSERT_EQ(b.cameras.images.sizes(), (std::vector<std::int64_t>{b.size(), 6, 3, fH, fW}));
    for (std::int64_t s = 0; s < b.size(); ++s) {
      const testing::SampleTruth& truth = data_.samples.at(b.sample_tokens[s]);
      for (std::int64_t n = 0; n < 6; ++n) {
        const auto A = b.cameras.img_aug[s][n].to(torch::kFloat64);
        const auto AK = b.cameras.intrinsics[s][n];
        const auto Kt = torch::tensor(std::vector<float>(K.begin(), K.end())).reshape({3, 3}).to(torch::kFloat64);
        ASSERT_TRUE(torch::allclose(AK.to(torch::kFloat64), torch::matmul(A, Kt), 1e-5, 1e-3)) << "intrinsics = A K";
        flipped += A[0][0].item<double>() * A[1][1].item<double>() - A[0][1].item<double>() * A[1][0].item<double>() < 0;
        rotated += std::abs(A[1][0].item<double>()) > 1e-3;
        // Brute-force reference from the ego points: nearest per floor cell, then [2, 58).
        std::map<std::int64_t, std::pair<double, std::int64_t>> nearest;  // cell -> (depth, point)
        std::set<std::int64_t> ambiguous;
        const auto& cam = truth.cameras[static_cast<std::size_t>(n)];
        const auto image = b.cameras.images[s][n];
        for (std::size_t k = 0; k < cam.ego.size(); ++k) {
          const auto x = project(AK, b.cameras.cam2ego[s][n], cam.ego[k]);
          const double col = std::floor(x[0] + 0.5), row = std::floor(x[1] + 0.5);
          if (!(col >= 0 && col < fW && row >= 0 && row < fH)) continue;
          const std::int64_t cell = static_cast<std::int64_t>(row) / S * w + static_cast<std::int64_t>(col) / S;
          if (frac_distance(x[0]) < 1e-3 || frac_distance(x[1]) < 1e-3) ambiguous.insert(cell);
          auto it = nearest.find(cell);
          if (it == nearest.end() || x[2] < it->second.first) nearest[cell] = {x[2], static_cast<std::int64_t>(k)};
          // The image moved with the point: its white disc is under the point's pixel.
          bool all_white = true;
          for (int c = 0; c < 3; ++c) {
            const double raw = (image[c][static_cast<std::int64_t>(row)][static_cast<std::int64_t>(col)].item<float>() *
                                    cfg.image.std[c] + cfg.image.mean[c]) * 255.0;
            all_white = all_white && raw > 170;
          }
          EXPECT_TRUE(all_white) << b.sample_tokens[s] << " camera " << n << " point " << k << " at (" << row << ", "
                                 << col << ")";
          ++white_checked;
        }
        const auto depth = b.depth.depth[s][n];
        const auto box = b.depth.box_id[s][n];
        for (std::int64_t cell = 0; cell < h * w; ++cell) {
          if (ambiguous.count(cell)) continue;
          const float got = depth[cell / w][cell % w].item<float>();
          const std::int64_t got_box = box[cell / w][cell % w].item<std::int64_t>();
          const auto it = nearest.find(cell);
          if (it == nearest.end() || it->second.first < 2.0 || it->second.first >= 58.0) {
            EXPECT_EQ(got, 0.0f) << "cell " << cell;
            EXPECT_EQ(got_box, 0) << "cell " << cell;
            continue;
          }
          EXPECT_NEAR(got, it->second.first, 1e-4 * it->second.first) << "cell " << cell;
          EXPECT_EQ(got_box, cam.box_id[static_cast<std::size_t>(it->second.second)] + 1) << "cell " << cell;
          ++checked_points;
        }
      }
    }
  }
  EXPECT_GT(flipped, 5);  // the augmentation was exercised
  EXPECT_GT(rotated, 5);
  EXPECT_GT(checked_points, 200);
  EXPECT_GT(white_checked, 300);
}

TEST_F(LoaderTest, EvaluationUsesTheFixedResizeAndCropAndDctDecodingIsAccountedFor) {
  make();
  const LoaderConfig cfg = small_config();
  auto l = loader(cfg, eval_setup());
  const auto batches = epoch(*l);
  std::vector<std::string> order;
  for (const Batch& b : batches)
    for (std::int64_t s = 0; s < b.size(); ++s) {
      order.push_back(b.sample_tokens[s]);
      EXPECT_EQ(b.views[s], 0);
      EXPECT_TRUE(torch::equal(b.cameras.bda[s], torch::eye(3)));
    }
  ASSERT_EQ(order.size(), 9u);
  for (std::size_t k = 0; k < order.size(); ++k) {  // shard order
    const auto& t = data_.samples.at(order[k]);
    EXPECT_EQ(t.shard * 5 + t.index, static_cast<std::int64_t>(k));
  }
  // A = resize 0.4 about pixel centres, then the bottom crop (y0 = 8): worked by hand in
  // image_aug_test.cpp. 0.4 <= 1/2, so the JPEGs were decoded at 1/2 in the DCT domain.
  const auto want = torch::tensor({0.4f, 0.0f, -0.3f, 0.0f, 0.4f, -8.3f, 0.0f, 0.0f, 1.0f}).reshape({3, 3});
  const Batch& b = batches[1];
  for (std::int64_t n = 0; n < 6; ++n) EXPECT_TRUE(torch::allclose(b.cameras.img_aug[0][n], want, 0, 1e-6));
  // The image equals a full-resolution decode warped with A alone (no DCT step); the same
  // reference with the half-pixel term of the DCT scale dropped is visibly worse.
  const std::string file = data_.samples.at(b.sample_tokens[0]).image_files[2];
  const core::nusc::RgbImage full = core::nusc::decode_jpeg(file);
  Affine2 A;
  A.m[0] = {0.4, 0, -0.3};
  A.m[1] = {0, 0.4, -8.3};
  std::vector<float> ref(3 * 64 * 128), wrong(3 * 64 * 128);
  warp_normalize(full.rgb.data(), full.width, full.height, A.inverse(), 64, 128, cfg.image.mean, cfg.image.std,
                 ref.data());
  const core::nusc::RgbImage half = core::nusc::decode_jpeg_bytes(read_file(file), file, core::nusc::JpegScale{1, 2});
  Affine2 half_scale;  // u_dec = u / 2 instead of (u + 1/2) / 2 - 1/2
  half_scale.m[0][0] = half_scale.m[1][1] = 0.5;
  warp_normalize(half.rgb.data(), half.width, half.height, half_scale * A.inverse(), 64, 128,
                 cfg.image.mean, cfg.image.std, wrong.data());
  const auto got = b.cameras.images[0][2].contiguous();
  const float* g = got.data_ptr<float>();
  double err = 0, err_wrong = 0;
  for (std::size_t k = 0; k < ref.size(); ++k) {
    err += std::abs(g[k] - ref[k]);
    err_wrong += std::abs(wrong[k] - ref[k]);
  }
  err /= static_cast<double>(ref.size());
  err_wrong /= static_cast<double>(ref.size());
  EXPECT_LT(err, 0.06);  // normalised units (~3.5 grey levels)
  EXPECT_GT(err_wrong, 1.5 * err) << "a half-pixel error in the DCT scale must be visible";
}

// A stored view with a rotation, a scale and a flip; GT centres chosen so that their view-frame
// positions are cell centres, and the view's heat map / fg_mask drawn in the test as Gaussian
// bumps at those positions (computed here with the matrix, independently of BevTransform).
TEST_F(LoaderTest, GtCentresAfterTheViewsBdaSitOnTheTeachersPeaks) {
  testing::LoaderDatasetSpec spec;
  const BevGrid g = spec.shard.grid;  // 16 x 16 cells of 1.6 m
  const double th = 0.3, sc = 1.04;
  // M = diag(-1, 1) * sc * R(th): a rotation, a scale and an x flip.
  const double M[3][3] = {
      {-sc * std::cos(th), sc * std::sin(th), 0}, {sc * std::sin(th), sc * std::cos(th), 0}, {0, 0, sc}};
  const double det = M[0][0] * M[1][1] - M[0][1] * M[1][0];
  struct Want {
    std::int64_t row, col;
    int label;
    bool velocity_valid;
    bool has_points;
  };
  // Rows 0..3 land on cells; row 4 lands outside the grid (x = 13.6 m; dropped by in_range) from
  // inside it in the key frame; row 5 has no LiDAR or radar point (dropped by the GT rule).
  const std::vector<Want> wants = {{3, 4, 0, true, true}, {8, 12, 1, false, true}, {12, 2, 3, true, true},
                                   {5, 9, 8, true, true}, {8, 16, 2, true, true},  {7, 7, 4, true, false}};
  auto stored_box = [&](std::size_t k) {
    const Want& wk = wants[k];
    const double xv = g.x_center(wk.col), yv = g.y_center(wk.row);  // view frame
    std::array<float, 9> b{};
    b[0] = static_cast<float>((M[1][1] * xv - M[0][1] * yv) / det);
    b[1] = static_cast<float>((-M[1][0] * xv + M[0][0] * yv) / det);
    b[2] = static_cast<float>(-1.0 + 0.1 * static_cast<double>(k));
    b[3] = 4.0f;
    b[4] = 2.0f;
    b[5] = 1.5f;
    b[6] = static_cast<float>(0.4 + 0.7 * static_cast<double>(k));
    b[7] = wk.velocity_valid ? static_cast<float>(2 + k) : 0.0f;
    b[8] = wk.velocity_valid ? -1.0f : 0.0f;
    return b;
  };
  spec.customize = [&](storage::Sample& s, int, std::int64_t) {
    std::vector<float> bda = {1, 0, 0, 0, 1, 0, 0, 0, 1};
    for (const auto& row : M)
      for (double x : row) bda.push_back(static_cast<float>(x));
    s.set("view/bda", Array::of<float>({2, 3, 3}, bda));
    std::vector<float> boxes;
    std::vector<std::int16_t> labels, attrs;
    std::vector<std::int32_t> lidar, radar;
    std::vector<std::uint8_t> valid;
    for (std::size_t k = 0; k < wants.size(); ++k) {
      const auto b = stored_box(k);
      boxes.insert(boxes.end(), b.begin(), b.end());
      labels.push_back(static_cast<std::int16_t>(wants[k].label));
      attrs.push_back(-1);
      lidar.push_back(wants[k].has_points ? 10 : 0);
      radar.push_back(0);
      valid.push_back(wants[k].velocity_valid ? 1 : 0);
    }
    const auto G = static_cast<std::int64_t>(wants.size());
    auto ragged = [&](Array a) {
      a.segments = {G};
      return a;
    };
    s.set("gt/boxes", ragged(Array::of<float>({G, 9}, boxes)));
    s.set("gt/labels", ragged(Array::of<std::int16_t>({G}, labels)));
    s.set("gt/attributes", ragged(Array::of<std::int16_t>({G}, attrs)));
    s.set("gt/num_lidar_pts", ragged(Array::of<std::int32_t>({G}, lidar)));
    s.set("gt/num_radar_pts", ragged(Array::of<std::int32_t>({G}, radar)));
    s.set("gt/velocity_valid", ragged(Array::of<std::uint8_t>({G}, valid)));
    std::vector<float> heat(2 * 10 * 16 * 16, 0.0f), mask(2 * 16 * 16, 0.0f);
    for (std::size_t k = 0; k < 4; ++k)
      for (std::int64_t i = 0; i < 16; ++i)
        for (std::int64_t j = 0; j < 16; ++j) {
          const double d2 = static_cast<double>((i - wants[k].row) * (i - wants[k].row) + (j - wants[k].col) * (j - wants[k].col));
          const auto v = static_cast<float>(std::exp(-d2 / 2));
          float& hv = heat[static_cast<std::size_t>(((10 + wants[k].label) * 16 + i) * 16 + j)];
          hv = std::max(hv, v);
          float& mv = mask[static_cast<std::size_t>((16 + i) * 16 + j)];
          mv = std::max(mv, v);
        }
    Array h(storage::DType::kFloat16, {2, 10, 16, 16}), m(storage::DType::kFloat16, {2, 16, 16});
    storage::float_to_half(heat.data(), h.data<std::uint16_t>(), heat.size());
    storage::float_to_half(mask.data(), m.data<std::uint16_t>(), mask.size());
    s.set("teacher/heatmap", std::move(h));
    s.set("fg_mask", std::move(m));
  };
  make(spec);

  LoaderConfig cfg = small_config();
  cfg.view_policy = "fixed";
  cfg.fixed_view = 1;
  cfg.teacher_heatmap = true;
  cfg.teacher_fg_mask = true;
  auto l = loader(cfg, train_setup());
  int boxes_checked = 0;
  for (const Batch& stored : epoch(*l)) {
    const Batch b = stored.to(torch::kCPU);
    for (std::int64_t s = 0; s < b.size(); ++s) {
      EXPECT_EQ(b.views[s], 1);
      const SampleGt& gt = b.gt[s];
      ASSERT_EQ(gt.boxes.size(0), 4) << "rows 4 (outside the grid) and 5 (no points) dropped";
      EXPECT_TRUE(torch::equal(gt.index, torch::arange(4, torch::kInt64)));
      const auto heat = b.teacher[s].heatmap, mask = b.teacher[s].fg_mask;
      ASSERT_EQ(heat.scalar_type(), torch::kFloat32);
      for (std::int64_t k = 0; k < 4; ++k) {
        const Want& wk = wants[static_cast<std::size_t>(k)];
        const auto box = gt.boxes[k];
        const double x = box[0].item<double>(), y = box[1].item<double>();
        std::int64_t row = -1, col = -1;
        ASSERT_TRUE(g.cell_of(x, y, &row, &col));
        EXPECT_EQ(row, wk.row);
        EXPECT_EQ(col, wk.col);
        EXPECT_NEAR(x, g.x_center(wk.col), 1e-4);
        EXPECT_NEAR(y, g.y_center(wk.row), 1e-4);
        EXPECT_EQ(gt.labels[k].item<std::int64_t>(), wk.label);
        // On the peak of its class's heat map and of the fg_mask: 1 there, lower around.
        EXPECT_EQ(heat[wk.label][row][col].item<float>(), 1.0f);
        EXPECT_EQ(mask[row][col].item<float>(), 1.0f);
        for (std::int64_t di = -1; di <= 1; ++di)
          for (std::int64_t dj = -1; dj <= 1; ++dj)
            if ((di || dj) && row + di >= 0 && row + di < 16 && col + dj >= 0 && col + dj < 16) {
              EXPECT_LT(heat[wk.label][row + di][col + dj].item<float>(), 1.0f);
            }
        // Size, height, yaw and velocity moved by M.
        const auto sb = stored_box(static_cast<std::size_t>(k));
        EXPECT_NEAR(box[2].item<double>(), sc * sb[2], 1e-5);
        EXPECT_NEAR(box[3].item<double>(), sc * 4.0, 1e-5);
        EXPECT_NEAR(box[4].item<double>(), sc * 2.0, 1e-5);
        EXPECT_NEAR(box[5].item<double>(), sc * 1.5, 1e-5);
        const double hx = M[0][0] * std::cos(sb[6]) + M[0][1] * std::sin(sb[6]);
        const double hy = M[1][0] * std::cos(sb[6]) + M[1][1] * std::sin(sb[6]);
        const double dyaw = box[6].item<double>() - std::atan2(hy, hx);
        EXPECT_NEAR(std::sin(dyaw), 0, 1e-5);
        EXPECT_NEAR(std::cos(dyaw), 1, 1e-5);
        EXPECT_GE(box[6].item<double>(), -kPi);
        EXPECT_LT(box[6].item<double>(), kPi);
        if (wk.velocity_valid) {
          EXPECT_NEAR(box[7].item<double>(), M[0][0] * sb[7] + M[0][1] * sb[8], 1e-4);
          EXPECT_NEAR(box[8].item<double>(), M[1][0] * sb[7] + M[1][1] * sb[8], 1e-4);
        } else {
          EXPECT_TRUE(std::isnan(box[7].item<float>()) && std::isnan(box[8].item<float>())) << "unknown velocity";
        }
        ++boxes_checked;
      }
    }
  }
  EXPECT_EQ(boxes_checked, 9 * 4);
  // View 0 replays the key frame: the stored centres, unmoved (row 4 is inside the grid there).
  cfg.fixed_view = 0;
  auto l0 = loader(cfg, train_setup());
  const auto b0 = l0->next();
  ASSERT_TRUE(b0.has_value());
  const auto& gt0 = b0->gt[0];
  ASSERT_EQ(gt0.boxes.size(0), 5);
  for (std::int64_t k = 0; k < 5; ++k) {
    const auto sb = stored_box(static_cast<std::size_t>(k));
    EXPECT_EQ(gt0.boxes[k][0].item<float>(), sb[0]);
    EXPECT_EQ(gt0.boxes[k][1].item<float>(), sb[1]);
  }
}

// map token -> (view, img_aug, images) of an epoch.
struct Seen {
  std::int64_t view;
  torch::Tensor img_aug, images, depth;
};
std::map<std::string, Seen> seen_by_token(Loader& l) {
  std::map<std::string, Seen> out;
  for (const Batch& b : epoch(l))
    for (std::int64_t s = 0; s < b.size(); ++s)
      out[b.sample_tokens[s]] = Seen{b.views[s], b.cameras.img_aug[s], b.cameras.images[s], b.depth.depth[s]};
  return out;
}

TEST_F(LoaderTest, ViewsAndAugmentationDoNotDependOnRankThreadsOrPosition) {
  make();
  LoaderConfig cfg = small_config();
  cfg.threads = 1;
  const auto single = seen_by_token(*loader(cfg, train_setup()));
  ASSERT_EQ(single.size(), 9u);
  int views1 = 0;
  for (const auto& [token, s] : single) views1 += s.view == 1;
  EXPECT_GT(views1, 0);
  EXPECT_LT(views1, 9);
  cfg.threads = 2;
  cfg.batch_size = 3;
  std::set<std::string> covered;
  for (int rank = 0; rank < 2; ++rank) {
    LoaderSetup setup = train_setup();
    setup.rank = rank;
    setup.world_size = 2;
    const auto part = seen_by_token(*loader(cfg, setup));
    EXPECT_EQ(part.size(), 5u);  // ceil(9 / 2); rank 1 wraps around to one sample of rank 0
    for (const auto& [token, s] : part) {
      const Seen& ref = single.at(token);
      EXPECT_EQ(s.view, ref.view) << token;
      EXPECT_TRUE(torch::equal(s.img_aug, ref.img_aug)) << token;
      EXPECT_TRUE(torch::equal(s.images, ref.images)) << token;
      EXPECT_TRUE(torch::equal(s.depth, ref.depth)) << token;
      covered.insert(token);
    }
  }
  EXPECT_EQ(covered.size(), 9u);
  // Another epoch draws again (same samples, other augmentation for most of them).
  auto l = loader(cfg, train_setup());
  l->seek({1, 0});
  int differ = 0;
  for (const auto& [token, s] : seen_by_token(*l)) differ += !torch::equal(s.img_aug, single.at(token).img_aug);
  EXPECT_GT(differ, 5);
}

void expect_same_batch(const Batch& a, const Batch& b) {
  ASSERT_EQ(a.sample_tokens, b.sample_tokens);
  EXPECT_EQ(a.views, b.views);
  EXPECT_TRUE(torch::equal(a.cameras.images, b.cameras.images));
  EXPECT_TRUE(torch::equal(a.cameras.intrinsics, b.cameras.intrinsics));
  EXPECT_TRUE(torch::equal(a.cameras.img_aug, b.cameras.img_aug));
  EXPECT_TRUE(torch::equal(a.cameras.bda, b.cameras.bda));
  EXPECT_TRUE(torch::equal(a.depth.depth, b.depth.depth));
  EXPECT_TRUE(torch::equal(a.depth.box_id, b.depth.box_id));
  ASSERT_EQ(a.gt.size(), b.gt.size());
  for (std::size_t s = 0; s < a.gt.size(); ++s) {
    EXPECT_TRUE(torch::allclose(a.gt[s].boxes, b.gt[s].boxes, 0, 0, /*equal_nan=*/true));
    EXPECT_TRUE(torch::equal(a.gt[s].labels, b.gt[s].labels));
  }
  for (const auto& [tap, t] : a.teacher_stored.features) EXPECT_TRUE(torch::equal(t, b.teacher_stored.features.at(tap)));
}

TEST_F(LoaderTest, ARestoredPositionGivesTheSameNextBatches) {
  make();
  LoaderConfig cfg = small_config();
  cfg.teacher_taps = {"neck"};
  auto a = loader(cfg, train_setup());
  EXPECT_EQ(a->batches_per_epoch(), 5);
  for (int k = 0; k < 2; ++k) ASSERT_TRUE(a->next().has_value());
  const StreamPosition saved = a->position();
  EXPECT_EQ(saved, (StreamPosition{0, 4}));
  const auto rest = epoch(*a);  // 2 + 2 + 1 samples
  ASSERT_EQ(rest.size(), 3u);
  EXPECT_EQ(rest.back().size(), 1);
  EXPECT_EQ(a->position(), (StreamPosition{0, 9}));
  EXPECT_FALSE(a->next().has_value());  // stays at the end of the epoch
  a->seek({1, 0});
  const auto first_of_1 = a->next();

  LoaderConfig other = cfg;
  other.threads = 1;  // the thread count changes nothing
  other.prefetch_batches = 1;
  auto b = loader(other, train_setup());
  b->seek(saved);
  const auto rest_b = epoch(*b);
  ASSERT_EQ(rest_b.size(), rest.size());
  for (std::size_t k = 0; k < rest.size(); ++k) expect_same_batch(rest[k], rest_b[k]);
  b->seek({1, 0});
  expect_same_batch(*first_of_1, *b->next());

  EXPECT_ERROR_WITH(b->seek({0, 10}), "position {epoch 0, index 10} is outside an epoch of 9 items");
  EXPECT_ERROR_WITH(b->next(), "outside an epoch of 9 items");  // not a silent end of epoch
  b->seek({0, 8});
  EXPECT_EQ(b->next()->size(), 1);

  cfg.drop_last_batch = true;
  auto c = loader(cfg, train_setup());
  EXPECT_EQ(c->batches_per_epoch(), 4);
  EXPECT_EQ(epoch(*c).size(), 4u);
  const LoaderStats st = c->stats();
  EXPECT_EQ(st.batches, 4);
  EXPECT_EQ(st.samples, 8);
  EXPECT_LE(st.wait_s, st.elapsed_s);
  EXPECT_GT(st.samples_per_s(), 0);
}

TEST_F(LoaderTest, Int8AndFloat16TeacherFieldsBecomeFloat32OnTheConsumerSide) {
  make();
  LoaderConfig cfg = small_config();
  cfg.teacher_taps = {"neck", "head_shared"};  // float16 [8] and int8 [4] (small_spec)
  cfg.teacher_heatmap = true;
  cfg.teacher_fg_mask = true;
  cfg.teacher_boxes = true;
  cfg.view_policy = "fixed";
  cfg.fixed_view = 1;
  auto lt = loader(cfg, train_setup());  // training: the fixed policy's view 1
  const auto stored = lt->next();
  ASSERT_TRUE(stored.has_value());
  EXPECT_EQ(stored->teacher_stored.features.at("neck").scalar_type(), torch::kHalf);
  EXPECT_EQ(stored->teacher_stored.features.at("head_shared").scalar_type(), torch::kChar);
  EXPECT_EQ(stored->teacher_stored.feature_scales.at("head_shared").sizes(), (std::vector<std::int64_t>{2, 4}));
  EXPECT_TRUE(stored->teacher.empty());
  const Batch b = stored->to(torch::kCPU);
  ASSERT_EQ(b.teacher.size(), 2u);
  for (std::int64_t s2 = 0; s2 < b.size(); ++s2) {
    const storage::ShardReader reader(shard_file(b.shards[s2]));
    storage::ReadOptions ro;
    ro.view = 1;
    const storage::Sample raw = reader.read(b.shard_samples[s2], {"teacher/*", "fg_mask"}, ro);
    const SampleTeacher& t = b.teacher[s2];
    // int8: value = q * scale[c], computed here element by element.
    const Array& q = raw.get("teacher/features/head_shared");
    const Array& scale = raw.get("teacher/feature_scales/head_shared");
    const auto hs = t.features.at("head_shared");
    ASSERT_EQ(hs.sizes(), (std::vector<std::int64_t>{4, 16, 16}));
    ASSERT_EQ(hs.scalar_type(), torch::kFloat32);
    const auto hsc = hs.contiguous();
    for (std::int64_t c = 0; c < 4; ++c)
      for (std::int64_t k = 0; k < 256; ++k)
        ASSERT_EQ(hsc.data_ptr<float>()[c * 256 + k],
                  static_cast<float>(q.data<std::int8_t>()[c * 256 + k]) * scale.data<float>()[c])
            << "channel " << c << " cell " << k;
    EXPECT_GT(hsc.abs().max().item<float>(), 0.0f);
    // float16: exact conversion.
    const Array& neck = raw.get("teacher/features/neck");
    const auto nc = t.features.at("neck").contiguous();
    ASSERT_EQ(nc.numel(), neck.numel());
    for (std::int64_t k = 0; k < neck.numel(); ++k)
      ASSERT_EQ(nc.data_ptr<float>()[k], storage::half_to_float(neck.data<std::uint16_t>()[k]));
    EXPECT_EQ(t.heatmap.sizes(), (std::vector<std::int64_t>{10, 16, 16}));
    const Array& h = raw.get("teacher/heatmap");
    std::vector<float> hf(static_cast<std::size_t>(h.numel()));
    storage::half_to_float(h.data<std::uint16_t>(), hf.data(), hf.size());
    EXPECT_TRUE(torch::equal(t.heatmap.flatten(), torch::tensor(hf)));
    const Array& m = raw.get("fg_mask");
    std::vector<float> mf(static_cast<std::size_t>(m.numel()));
    storage::half_to_float(m.data<std::uint16_t>(), mf.data(), mf.size());
    EXPECT_TRUE(torch::equal(t.fg_mask.flatten(), torch::tensor(mf)));
    const Array& boxes = raw.get("teacher/boxes");
    ASSERT_EQ(t.boxes.size(0), boxes.dim(0));
    if (boxes.dim(0) > 0) {
      EXPECT_EQ(std::memcmp(t.boxes.contiguous().data_ptr<float>(), boxes.raw(), boxes.nbytes()), 0);
    }
    EXPECT_EQ(t.labels.scalar_type(), torch::kInt64);
    EXPECT_EQ(t.scores.size(0), boxes.dim(0));
    EXPECT_FALSE(t.class_probs.defined());
  }
}

TEST_F(LoaderErrors, MissingJpegIsAnErrorNamingSampleCameraAndFileOrSkippedAndCounted) {
  make();
  // Shard order in evaluation: sample (0, 3) is the fourth item.
  std::string token;
  for (const auto& [t, truth] : data_.samples)
    if (truth.shard == 0 && truth.index == 3) token = t;
  const std::string file = data_.samples.at(token).image_files[2];
  std::filesystem::remove(file);
  LoaderConfig cfg = small_config();
  {
    auto l = loader(cfg, eval_setup());
    ASSERT_TRUE(l->next().has_value());  // items 0, 1
    EXPECT_ERROR_WITH(l->next(), "shard train/shard-00000.h5, sample 3", "sample " + token + ", camera CAM_FRONT_LEFT",
                      "image file " + std::filesystem::canonical(data_.dataroot).string(), "does not exist",
                      "--skip-missing-images");
    EXPECT_ERROR_WITH(l->next(), "sample " + token + ", camera CAM_FRONT_LEFT");  // again until seek()
    l->seek({0, 4});
    EXPECT_TRUE(l->next().has_value());
  }
  cfg.skip_missing_images = true;
  auto l = loader(cfg, eval_setup());
  std::vector<std::int64_t> sizes;
  std::set<std::string> tokens;
  for (const Batch& b : epoch(*l)) {
    sizes.push_back(b.size());
    tokens.insert(b.sample_tokens.begin(), b.sample_tokens.end());
  }
  EXPECT_EQ(sizes, (std::vector<std::int64_t>{2, 2, 2, 2}));  // the skipped sample is replaced by the next one
  EXPECT_EQ(tokens.size(), 8u);
  EXPECT_EQ(tokens.count(token), 0u);
  const LoaderStats st = l->stats();
  EXPECT_EQ(st.skipped_samples, 1);
  ASSERT_EQ(st.skipped.size(), 1u);
  EXPECT_NE(st.skipped[0].find("sample " + token + ", camera CAM_FRONT_LEFT: image file"), std::string::npos);
  EXPECT_NE(st.skipped[0].find(std::filesystem::path(file).filename().string()), std::string::npos);
  EXPECT_EQ(l->position(), (StreamPosition{0, 9}));
}

TEST_F(LoaderErrors, ImagePathsLeavingTheDatarootAreRefusedEvenWhenSkippingMissingImages) {
  testing::LoaderDatasetSpec spec;
  spec.customize = [](storage::Sample& s, int shard, std::int64_t i) {
    Array& paths = s.get("cams/image_path");
    if (shard == 0 && i == 1) paths.set_string(3, "../../etc/passwd");
    if (shard == 1 && i == 0) paths.set_string(0, "/etc/passwd");
  };
  make(spec);
  std::map<std::pair<int, std::int64_t>, std::string> tokens;
  for (const auto& [t, truth] : data_.samples) tokens[{truth.shard, truth.index}] = t;
  LoaderConfig cfg = small_config();
  cfg.skip_missing_images = true;
  auto l = loader(cfg, eval_setup());
  EXPECT_ERROR_WITH(l->next(), "shard train/shard-00000.h5, sample 1",
                    "sample " + tokens.at({0, 1}) + ", camera CAM_BACK: image path \"../../etc/passwd\" (cams/image_path) "
                    "leaves the dataroot " + std::filesystem::canonical(data_.dataroot).string());
  l->seek({0, 2});
  ASSERT_TRUE(l->next().has_value());  // items 2, 3
  EXPECT_ERROR_WITH(l->next(), "shard train/shard-00001.h5, sample 0",
                    "sample " + tokens.at({1, 0}) + ", camera CAM_FRONT: image path \"/etc/passwd\" (cams/image_path) "
                    "is absolute");
  EXPECT_EQ(l->stats().skipped_samples, 0);
}

TEST_F(LoaderErrors, StartupChecksNameBothSides) {
  testing::LoaderDatasetSpec spec;
  spec.shard = storage::testing::small_spec(storage::SchemaVersion{1, 0});  // no teacher/class_probs
  make(spec);
  LoaderConfig cfg = small_config();
  LoaderSetup setup = train_setup();
  setup.expected_views = core::nn::BevAugmentConfig{};
  setup.expected_views->rotation_range = {-0.7854, 0.7854};
  setup.expected_views_name = "student preset bevdepth-r50";
  EXPECT_ERROR_WITH(loader(cfg, setup), "shards " + std::filesystem::path(data_.manifest_path).parent_path().string(),
                    "views.augmentation.rotation_range = [-0.3925,0.3925]",
                    "student preset bevdepth-r50 expects [-0.7854, 0.7854]");
  setup.expected_views->rotation_range = {-0.3925, 0.3925};
  EXPECT_NO_THROW(loader(cfg, setup));
  cfg.teacher_class_probs = true;
  EXPECT_ERROR_WITH(loader(cfg, train_setup()), "teacher.class_probs needs the dataset teacher/class_probs",
                    "shard schema 1.0", "written by bevkd-precompute with shard schema 1.1");
  cfg = small_config();
  cfg.teacher_taps = {"bev"};
  EXPECT_ERROR_WITH(loader(cfg, train_setup()), "teacher.taps asks for tap \"bev\", the shards store");
  cfg = small_config();
  cfg.view_policy = "fixed";
  cfg.fixed_view = 2;
  EXPECT_ERROR_WITH(loader(cfg, train_setup()), "views.fixed_view 2 is not a view of the shards", "store 2 views");
  cfg = small_config();
  cfg.view_choices = {0, 5};
  EXPECT_ERROR_WITH(loader(cfg, train_setup()), "views.choices holds 5");
  EXPECT_ERROR_WITH(Loader(manifest(), dir_ / "no-such-dataroot", small_config(), train_setup()), "image dataroot",
                    "is not a directory");
  cfg = small_config();
  cfg.image.final_size = {60, 128};
  EXPECT_ERROR_WITH(loader(cfg, train_setup()), "image.final_size [60, 128] is not a multiple of depth.stride 8");
}

TEST_F(LoaderErrors, StudentGridAndStoredViewsAtStartUp) {
  make();
  const BevGrid shards = manifest().grid();
  LoaderSetup setup = train_setup();
  setup.student_grid = shards.coarsened(2);
  setup.student_grid_name = "student preset tiny";
  auto l = loader(small_config(), setup);
  EXPECT_TRUE(l->grid().same_as(shards));
  // The fixture's stored views (LoaderDatasetSpec::views_config).
  const StoredViews& v = l->stored_views();
  EXPECT_EQ(v.count, 2);
  ASSERT_TRUE(v.augmentation.has_value());
  EXPECT_EQ(v.augmentation->rotation_range, (std::array<double, 2>{-0.3925, 0.3925}));
  EXPECT_EQ(v.augmentation->scale_range, (std::array<double, 2>{0.95, 1.05}));
  EXPECT_EQ(v.augmentation->flip_x_prob, 0.5);
  EXPECT_EQ(v.augmentation->flip_y_prob, 0.5);
  // 1.5 times the shards' cell count on each axis: the same range, no integer ratio.
  ASSERT_EQ(shards.H % 2, 0);
  setup.student_grid = shards.with_cell((shards.x_max() - shards.x_min()) / static_cast<double>(shards.W * 3 / 2),
                                        (shards.y_max() - shards.y_min()) / static_cast<double>(shards.H * 3 / 2));
  EXPECT_ERROR_WITH(loader(small_config(), setup), "BEV grids cannot be aligned",
                    "shards " + std::filesystem::path(data_.manifest_path).parent_path().string() + " have the grid " +
                        shards.describe(),
                    "student preset tiny has " + setup.student_grid->describe());
}

TEST_F(LoaderErrors, CorruptShardDataIsReportedByNextNamingShardSampleAndDataset) {
  make();
  // Evaluation reads shard 0 in order: sample 2 is in the second batch.
  const std::string shard0 = shard_file("train/shard-00000.h5");
  const auto c = storage::testing::locate_chunk(shard0, "teacher/features/neck", {2, 0, 0, 0, 0});
  storage::testing::flip_bytes(shard0, c.address + c.size / 2, 8);
  LoaderConfig cfg = small_config();
  cfg.teacher_taps = {"neck"};
  auto l = loader(cfg, eval_setup());
  ASSERT_TRUE(l->next().has_value());  // items 0, 1
  EXPECT_ERROR_WITH(l->next(), "shard train/shard-00000.h5, sample 2", "dataset teacher/features/neck, sample 2");
  EXPECT_ERROR_WITH(l->next(), "shard train/shard-00000.h5, sample 2");  // again until seek()
  l->seek({0, 3});
  EXPECT_TRUE(l->next().has_value());
  // Without the tap the damaged bytes are never read.
  auto l2 = loader(small_config(), eval_setup());
  EXPECT_EQ(epoch(*l2).size(), 5u);
}

// Greedy centre matching worked by hand: highest score first, same class only, nearest free GT
// within the radius, scores below the threshold ignored.
TEST(MatchCentres, GreedyByScoreWithinTheRadiusAndClassWorkedByHand) {
  // Teacher boxes (x, y), scores, labels.
  const auto tb = torch::tensor({0.0, 0.0, 0.5, 0.0, 10.0, 0.0, 0.2, 0.1, 20.0, 20.0}, torch::kFloat64).view({5, 2});
  const auto ts = torch::tensor({0.6, 0.9, 0.8, 0.2, 0.7});
  const auto tl = torch::tensor({0, 0, 1, 0, 0}, torch::kInt64);
  // GT centres (x, y, z) and labels.
  const auto gc =
      torch::tensor({0.1, 0.0, 0.0, 1.0, 0.0, 0.0, 10.0, 1.0, 0.0, 21.5, 20.0, 0.0}, torch::kFloat64).view({4, 3});
  const auto gl = torch::tensor({0, 0, 1, 0}, torch::kInt64);
  const auto m = match_centres(tb, ts, tl, gc, gl, 0.3, 2.0);
  // Order by score: box 1 (0.9) takes GT 0 (0.4 m; GT 1 is 0.5 m); box 2 (0.8, class 1) takes GT 2
  // (1 m); box 4 (0.7) takes GT 3 (1.5 m); box 0 (0.6) takes the remaining GT 1 (1 m); box 3 is
  // below 0.3.
  ASSERT_EQ(m.size(), 4u);
  const std::vector<std::array<double, 3>> want = {{1, 0, 0.4}, {2, 2, 1.0}, {4, 3, 1.5}, {0, 1, 1.0}};
  for (std::size_t i = 0; i < want.size(); ++i) {
    EXPECT_EQ(m[i].teacher, static_cast<std::int64_t>(want[i][0])) << i;
    EXPECT_EQ(m[i].gt, static_cast<std::int64_t>(want[i][1])) << i;
    EXPECT_NEAR(m[i].distance, want[i][2], 1e-12) << i;
  }
  // Within 0.9 m only box 1 matches (box 0 would need GT 1 at 1 m).
  EXPECT_EQ(match_centres(tb, ts, tl, gc, gl, 0.3, 0.9).size(), 1u);
  EXPECT_TRUE(match_centres(tb.slice(0, 0, 0), ts.slice(0, 0, 0), tl.slice(0, 0, 0), gc, gl, 0.3, 2.0).empty());
  EXPECT_EQ(ViewAlignment::fraction_within({0.4, 1.0, 1.5, 1.0}, 1.0), 0.75);
  EXPECT_NEAR(ViewAlignment::quantile({0.4, 1.0, 1.5, 1.0}, 0.5), 1.0, 1e-12);
  EXPECT_TRUE(std::isnan(ViewAlignment::quantile({}, 0.5)));
}

class ViewCheck : public LoaderTest {
 protected:
  ViewCheckConfig config() const {
    ViewCheckConfig c;
    c.shards = data_.manifest_path;
    c.dataroot = data_.dataroot;
    c.split = "train";
    c.min_score = 0.4;  // the fixture's false positives score below 0.35
    return c;
  }
};

// The fixture's teacher boxes are its GT moved by each view's bda (computed by the fixture, not the
// loader) plus 0.2 m of jitter: with the loader's bda on the GT they sit within one 1.6 m cell;
// without it (the control) the rotated / flipped view does not.
TEST_F(ViewCheck, TeacherBoxesSitOnTheTransformedGtAndTheControlDoesNot) {
  make();
  const auto r = check_view_alignment(config());
  EXPECT_DOUBLE_EQ(r.cell, spec_.shard.grid.dx);
  ASSERT_EQ(r.views.size(), 2u);
  EXPECT_TRUE(r.passed);
  for (const auto& a : r.views) {
    EXPECT_EQ(a.samples, 9);
    EXPECT_GE(a.with_bda.size(), 9u) << "view " << a.view;
    EXPECT_EQ(ViewAlignment::fraction_within(a.with_bda, r.cell), 1.0) << "view " << a.view;
  }
  // View 0 is the key frame: the control is the same matching.
  EXPECT_EQ(r.views[0].without_bda, r.views[0].with_bda);
  const auto& v1 = r.views[1];
  EXPECT_GE(v1.on_gt(r.cell), 0.95);
  EXPECT_LT(v1.on_gt(r.cell, false), 0.6 * v1.on_gt(r.cell)) << "the control must lose most teacher boxes";
  std::ostringstream table;
  print_view_check(r, config(), table);
  EXPECT_NE(table.str().find("check-views: PASS"), std::string::npos) << table.str();

  // One view only, and a view the shards do not store.
  auto c = config();
  c.view = 1;
  c.max_samples = 3;
  const auto one = check_view_alignment(c);
  ASSERT_EQ(one.views.size(), 1u);
  EXPECT_EQ(one.views[0].view, 1);
  EXPECT_EQ(one.views[0].samples, 3);
  c.view = 2;
  EXPECT_ERROR_WITH(check_view_alignment(c), "view 2 requested", "stores 2 view(s) per sample");
}

// A bda that does not match what the teacher saw (here: view 1's stored bda replaced by the
// identity, as if precompute had recorded the wrong transform) fails the check.
TEST_F(ViewCheck, AStoredBdaTheTeacherDidNotSeeFails) {
  testing::LoaderDatasetSpec spec;
  spec.customize = [](storage::Sample& s, int, std::int64_t) {
    s.set("view/bda", Array::of<float>({2, 3, 3}, {1, 0, 0, 0, 1, 0, 0, 0, 1, 1, 0, 0, 0, 1, 0, 0, 0, 1}));
  };
  make(spec);
  const auto r = check_view_alignment(config());
  ASSERT_EQ(r.views.size(), 2u);
  EXPECT_EQ(ViewAlignment::fraction_within(r.views[0].with_bda, r.cell), 1.0);
  // Teacher boxes near the origin still meet their GT; most do not.
  EXPECT_LT(r.views[1].on_gt(r.cell), 0.8 * r.views[0].on_gt(r.cell));
  EXPECT_FALSE(r.passed);
  std::ostringstream table;
  print_view_check(r, config(), table);
  EXPECT_NE(table.str().find("check-views: FAIL"), std::string::npos) << table.str();
}

}  // namespace
}  // namespace bevkd::train::data

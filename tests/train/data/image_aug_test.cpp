// Unit tests of the loader's pieces: the augmentation matrix, the warp, DCT-scaled decoding,
// the depth min-pool, bda -> BevTransform, image path resolution and the configuration checks.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>

#include <nlohmann/json.hpp>

#include "base/config.h"
#include "base/fs.h"
#include "base/math.h"
#include "base/rng.h"
#include "core/nn/bev_augment.h"
#include "core/nuscenes/jpeg.h"
#include "tests/storage/test_util.h"
#include "tests/train/data/loader_fixture.h"
#include "train/data/depth_targets.h"
#include "train/data/image_aug.h"
#include "train/data/image_source.h"
#include "train/data/loader_config.h"

namespace bevkd::train::data {
namespace {

void expect_affine_near(const Affine2& a, const std::array<std::array<double, 3>, 2>& want, double tol = 1e-12) {
  for (int r = 0; r < 2; ++r)
    for (int c = 0; c < 3; ++c) EXPECT_NEAR(a.m[r][c], want[r][c], tol) << "entry " << r << "," << c;
  EXPECT_EQ(a.m[2][0], 0);
  EXPECT_EQ(a.m[2][1], 0);
  EXPECT_EQ(a.m[2][2], 1);
}

TEST(ImageAugMatrix, EvaluationResizeAndCropWorkedByHand) {
  // 320 x 180 -> 64 x 128: s = max(64/180, 128/320) = 0.4, resized 128 x 72, bottom crop
  // y0 = 72 - 64 = 8, centred x0 = 0. With pixel centres at integers u' = 0.4 (u + 1/2) - 1/2 - x0.
  ImageAugConfig cfg;
  cfg.final_size = {64, 128};
  const ImageAugParams p = draw_image_aug(cfg, 320, 180, nullptr);
  EXPECT_DOUBLE_EQ(p.resize, 0.4);
  EXPECT_EQ(p.crop_x, 0);
  EXPECT_EQ(p.crop_y, 8);
  EXPECT_FALSE(p.flip);
  EXPECT_EQ(p.rotation_deg, 0);
  expect_affine_near(image_aug_matrix(p, cfg), {{{0.4, 0, -0.3}, {0, 0.4, -8.3}}});
  // BEVDepth's nuScenes case: 1600 x 900 -> 256 x 704: s = 0.44, resized 704 x 396, y0 = 140.
  cfg.final_size = {256, 704};
  const ImageAugParams q = draw_image_aug(cfg, 1600, 900, nullptr);
  EXPECT_DOUBLE_EQ(q.resize, 0.44);
  EXPECT_EQ(q.crop_x, 0);
  EXPECT_EQ(q.crop_y, 140);
  // 1600 x 900 -> 256 x 512: s = max(256/900, 512/1600) = 0.32, resized 512 x 288; evaluation
  // takes the mean bottom fraction 0.1: y0 = int(0.9 * 288) - 256 = 3.
  cfg.final_size = {256, 512};
  cfg.bottom_crop_range = {0.0, 0.2};
  const ImageAugParams r = draw_image_aug(cfg, 1600, 900, nullptr);
  EXPECT_DOUBLE_EQ(r.resize, 0.32);
  EXPECT_EQ(r.crop_x, 0);
  EXPECT_EQ(r.crop_y, static_cast<std::int64_t>(0.9 * 288) - 256);
}

TEST(ImageAugMatrix, FlipAndRotationComposeInBevDepthOrder) {
  ImageAugConfig cfg;
  cfg.final_size = {64, 128};
  ImageAugParams p;
  p.resize = 0.5;
  p.crop_x = 10;
  p.crop_y = 20;
  p.flip = true;
  p.rotation_deg = 90;
  const Affine2 a = image_aug_matrix(p, cfg);
  // (100, 80): resize (49.75, 39.75), crop (39.75, 19.75), flip about 127: (87.25, 19.75),
  // rotate 90 deg about (63.5, 31.5) with [[c, s], [-s, c]]: (63.5 + (19.75 - 31.5), 31.5 - (87.25 - 63.5)).
  double u, v;
  a.apply(100, 80, &u, &v);
  EXPECT_NEAR(u, 51.75, 1e-9);
  EXPECT_NEAR(v, 7.75, 1e-9);
  // Inverse and composition.
  double x, y;
  a.inverse().apply(u, v, &x, &y);
  EXPECT_NEAR(x, 100, 1e-9);
  EXPECT_NEAR(y, 80, 1e-9);
  // A counter-clockwise rotation (as displayed: v points down) moves a point right of the centre up.
  Affine2::rotation_deg(30, 0, 0).apply(10, 0, &u, &v);
  EXPECT_NEAR(u, 10 * std::cos(kPi / 6), 1e-12);
  EXPECT_NEAR(v, -10 * std::sin(kPi / 6), 1e-12);
}

TEST(ImageAugMatrix, TrainingDrawsStayInTheirRangesAndAreKeyed) {
  ImageAugConfig cfg;
  cfg.final_size = {256, 704};
  int flips = 0;
  for (std::uint64_t k = 0; k < 200; ++k) {
    Rng rng(mix_keys(3, k));
    const ImageAugParams p = draw_image_aug(cfg, 1600, 900, &rng);
    EXPECT_GE(p.resize, 0.386);
    EXPECT_LT(p.resize, 0.55);
    EXPECT_GE(p.rotation_deg, -5.4);
    EXPECT_LT(p.rotation_deg, 5.4);
    const auto new_w = static_cast<std::int64_t>(1600 * p.resize), new_h = static_cast<std::int64_t>(900 * p.resize);
    EXPECT_EQ(p.crop_y, new_h - 256);  // bottom crop
    EXPECT_GE(p.crop_x, 0);
    EXPECT_LE(p.crop_x, std::max<std::int64_t>(0, new_w - 704));
    flips += p.flip;
    Rng again(mix_keys(3, k));
    const ImageAugParams q = draw_image_aug(cfg, 1600, 900, &again);
    EXPECT_EQ(p.resize, q.resize);
    EXPECT_EQ(p.crop_x, q.crop_x);
    EXPECT_EQ(p.rotation_deg, q.rotation_deg);
  }
  EXPECT_GT(flips, 60);
  EXPECT_LT(flips, 140);
}

TEST(ImageWarp, IdentityCopiesAndHalfPixelShiftAverages) {
  const int W = 5, H = 3;
  std::vector<std::uint8_t> rgb(W * H * 3);
  for (int i = 0; i < W * H * 3; ++i) rgb[i] = static_cast<std::uint8_t>(7 * i % 251);
  const std::array<double, 3> mean{0.5, 0.25, 0.0}, sd{0.5, 0.25, 1.0};
  std::vector<float> out(3 * H * W);
  warp_normalize(rgb.data(), W, H, Affine2::identity(), H, W, mean, sd, out.data());
  for (int y = 0; y < H; ++y)
    for (int x = 0; x < W; ++x)
      for (int c = 0; c < 3; ++c)
        EXPECT_NEAR(out[(c * H + y) * W + x], (rgb[(y * W + x) * 3 + c] / 255.0 - mean[c]) / sd[c], 1e-6);
  // Sampling half a pixel to the right (x = u + 1/2) averages neighbours; column W samples
  // x = W + 1/2, outside the image: black.
  std::vector<float> shifted(3 * H * (W + 1));
  warp_normalize(rgb.data(), W, H, Affine2::translation(0.5, 0), H, W + 1, {0, 0, 0}, {1, 1, 1}, shifted.data());
  for (int y = 0; y < H; ++y) {
    for (int x = 0; x + 1 < W; ++x)
      EXPECT_NEAR(shifted[y * (W + 1) + x] * 255.0, 0.5 * (rgb[(y * W + x) * 3] + rgb[(y * W + x + 1) * 3]), 1e-3);
    EXPECT_EQ(shifted[y * (W + 1) + W], 0.0f);
  }
}

TEST(JpegScale, ChoosesTheSmallestDctFactorNotBelowTheTarget) {
  using core::nusc::JpegScale;
  EXPECT_EQ(choose_jpeg_scale(0.9), (JpegScale{1, 1}));
  EXPECT_EQ(choose_jpeg_scale(0.51), (JpegScale{1, 1}));
  EXPECT_EQ(choose_jpeg_scale(0.5), (JpegScale{1, 2}));
  EXPECT_EQ(choose_jpeg_scale(0.44), (JpegScale{1, 2}));  // bevdepth-r50: 704 / 1600
  EXPECT_EQ(choose_jpeg_scale(0.386), (JpegScale{1, 2}));  // 3/8 = 0.375 would lose resolution
  EXPECT_EQ(choose_jpeg_scale(0.3), (JpegScale{3, 8}));
  EXPECT_EQ(choose_jpeg_scale(0.2), (JpegScale{1, 4}));
  EXPECT_EQ(choose_jpeg_scale(0.125), (JpegScale{1, 8}));
  EXPECT_EQ(choose_jpeg_scale(0.05), (JpegScale{1, 8}));
}

// Area average of f x f blocks (f = 2, 4) of a full decode: what a DCT-domain 1/f decode approximates.
std::vector<double> area_downscale(const core::nusc::RgbImage& img, int f) {
  const int w = img.width / f, h = img.height / f;
  std::vector<double> out(static_cast<std::size_t>(w) * h * 3, 0.0);
  for (int y = 0; y < h * f; ++y)
    for (int x = 0; x < w * f; ++x)
      for (int c = 0; c < 3; ++c)
        out[((y / f) * w + x / f) * 3 + c] += img.rgb[(static_cast<std::size_t>(y) * img.width + x) * 3 + c] / double(f * f);
  return out;
}

TEST(JpegScale, DctScaledDecodeApproximatesFullDecodePlusAreaDownscale) {
  storage::testing::TempDir dir;
  const int W = 320, H = 176;
  const auto rgb = testing::textured_image(W, H, 11, {{100, 60}, {200, 120}}, 6);
  const std::string path = dir / "a.jpg";
  write_file_atomic(path, core::nusc::encode_jpeg(rgb.data(), W, H, 95));
  const ImageRef ref{"tok", "CAM_FRONT", "a.jpg"};
  const CameraJpeg jpeg = read_camera_jpeg(path, ref);
  EXPECT_EQ(jpeg.width, W);
  EXPECT_EQ(jpeg.height, H);
  const core::nusc::RgbImage full = core::nusc::decode_jpeg(path);
  for (int f : {2, 4}) {
    const DecodedImage d = decode_camera_jpeg(jpeg, 1.0 / f - 0.01, ref, path);
    ASSERT_EQ(d.scale, (core::nusc::JpegScale{1, f}));
    ASSERT_EQ(d.image.width, W / f);
    ASSERT_EQ(d.image.height, H / f);
    const auto area = area_downscale(full, f);
    double sum = 0, worst = 0;
    for (std::size_t k = 0; k < area.size(); ++k) {
      const double e = std::abs(area[k] - d.image.rgb[k]);
      sum += e;
      worst = std::max(worst, e);
    }
    const double mean_err = sum / static_cast<double>(area.size());
    EXPECT_LT(mean_err, 2.5) << "1/" << f;  // grey levels; the texture spans 30..130 and 255 discs
    EXPECT_LT(worst, 60) << "1/" << f;       // at the discs' edges, DCT low-pass vs box average
  }
  const DecodedImage same = decode_camera_jpeg(jpeg, 0.7, ref, path);
  EXPECT_EQ(same.scale, (core::nusc::JpegScale{1, 1}));
  EXPECT_EQ(same.image.rgb, full.rgb);
  // A file that is not a JPEG names sample, camera and file.
  write_file_atomic(dir / "b.jpg", "not a jpeg");
  EXPECT_ERROR_WITH(read_camera_jpeg(dir / "b.jpg", ref), "sample tok, camera CAM_FRONT", "b.jpg",
                    "not a readable JPEG");
}

TEST(ImagePaths, PathsLeavingTheDatarootAreRefusedNamingSampleAndCamera) {
  storage::testing::TempDir dir;
  make_dirs(dir / "root/samples/CAM_FRONT");
  make_dirs(dir / "outside");
  write_file_atomic(dir / "outside/secret.jpg", "x");
  write_file_atomic(dir / "root/samples/CAM_FRONT/a.jpg", "x");
  std::filesystem::create_symlink(dir / "outside/secret.jpg", dir / "root/samples/CAM_FRONT/link.jpg");
  std::filesystem::create_symlink(dir / "outside", dir / "root/samples/linkdir");
  std::filesystem::create_symlink("a.jpg", dir / "root/samples/CAM_FRONT/inside_link.jpg");
  std::filesystem::create_symlink(dir / "nowhere.jpg", dir / "root/samples/CAM_FRONT/dangling.jpg");
  const ImageRoot root(dir / "root");
  const std::string canon_root = std::filesystem::canonical(dir / "root").string();
  auto ref = [](const std::string& p) { return ImageRef{"0123token", "CAM_BACK", p}; };

  EXPECT_EQ(root.resolve(ref("samples/CAM_FRONT/a.jpg")), canon_root + "/samples/CAM_FRONT/a.jpg");
  EXPECT_EQ(root.resolve(ref("samples/CAM_FRONT/inside_link.jpg")), canon_root + "/samples/CAM_FRONT/a.jpg");
  EXPECT_EQ(root.resolve(ref("samples/../samples/CAM_FRONT/a.jpg")), canon_root + "/samples/CAM_FRONT/a.jpg");
  // A missing file inside the dataroot resolves (missing files are the caller's business).
  EXPECT_EQ(root.resolve(ref("samples/CAM_FRONT/missing.jpg")), canon_root + "/samples/CAM_FRONT/missing.jpg");

  EXPECT_ERROR_WITH(root.resolve(ref("../../etc/passwd")), "sample 0123token, camera CAM_BACK",
                    "image path \"../../etc/passwd\" (cams/image_path) leaves the dataroot " + canon_root);
  EXPECT_ERROR_WITH(root.resolve(ref("samples/../../outside/secret.jpg")), "sample 0123token, camera CAM_BACK",
                    "leaves the dataroot", "outside/secret.jpg");
  EXPECT_ERROR_WITH(root.resolve(ref("/etc/passwd")), "sample 0123token, camera CAM_BACK",
                    "image path \"/etc/passwd\" (cams/image_path) is absolute");
  EXPECT_ERROR_WITH(root.resolve(ref("samples/CAM_FRONT/link.jpg")), "sample 0123token, camera CAM_BACK",
                    "image path \"samples/CAM_FRONT/link.jpg\" (cams/image_path) leaves the dataroot",
                    "resolves to " + std::filesystem::canonical(dir / "outside/secret.jpg").string());
  EXPECT_ERROR_WITH(root.resolve(ref("samples/linkdir/secret.jpg")), "leaves the dataroot");
  EXPECT_ERROR_WITH(root.resolve(ref("samples/CAM_FRONT/dangling.jpg")), "sample 0123token, camera CAM_BACK",
                    "is a symbolic link to", "which does not exist");
  EXPECT_ERROR_WITH(root.resolve(ref("")), "cams/image_path) is empty");
  EXPECT_ERROR_WITH(ImageRoot(dir / "nope"), "image dataroot", "is not a directory");
}

TEST(DepthPool, NearestPointPerStrideCellWorkedByHand) {
  DepthPoolOptions o;
  o.image_height = 4;
  o.image_width = 4;
  o.stride = 2;  // 2 x 2 cells
  o.min_depth = 2;
  o.max_depth = 20;
  const std::vector<float> uvd = {
      0.4f,  0.4f,  5.0f,   // 0: pixel (0, 0) -> cell (0, 0)
      1.2f,  0.2f,  3.0f,   // 1: pixel (0, 1) -> cell (0, 0), nearer: wins
      1.6f,  0.0f,  10.0f,  // 2: column round(1.6) = 2 -> cell (0, 1)
      2.4f,  1.49f, 10.0f,  // 3: same cell and depth as 2: the lower index (2) keeps the box id
      -0.6f, 1.0f,  2.5f,   // 4: column round(-0.6) = -1: outside the image
      3.4f,  3.4f,  1.5f,   // 5: pixel (3, 3) -> cell (1, 1), nearest but below min_depth
      2.6f,  2.6f,  4.0f,   // 6: pixel (3, 3) as well, farther: the cell stays empty (BEVDepth)
      0.0f,  3.49f, 25.0f,  // 7: cell (1, 0), beyond max_depth: empty
      3.51f, 0.0f,  6.0f,   // 8: column round(3.51) = 4: outside
  };
  const std::vector<std::int32_t> ids = {7, 3, 1, 2, 0, 4, 5, 6, 8};
  std::vector<float> depth(4, -1);
  std::vector<std::int64_t> box(4, -1);
  min_pool_depth(uvd.data(), ids.data(), 9, Affine2::identity(), o, depth.data(), box.data());
  EXPECT_EQ(depth, (std::vector<float>{3.0f, 10.0f, 0.0f, 0.0f}));
  EXPECT_EQ(box, (std::vector<std::int64_t>{4, 2, 0, 0}));  // stored id + 1
  // Under an affine map: u' = 2u (pixel-centre scale would shift; a plain doubling is enough here).
  Affine2 twice;
  twice.m[0][0] = 2;
  twice.m[1][1] = 2;
  o.image_height = 8;
  o.image_width = 8;
  o.stride = 4;
  min_pool_depth(uvd.data(), nullptr, 9, twice, o, depth.data(), box.data());
  // point 1 -> (2.4, 0.4): pixel (0, 2), cell (0, 0); point 2 -> (3.2, 0): pixel (0, 3), cell (0, 0);
  // point 3 -> (4.8, 2.98): cell (0, 1); 5 and 6 -> cell (1, 1), nearest 1.5 < 2: empty;
  // 7 -> (0, 6.98): pixel (7, 0), cell (1, 0), 25 m: empty; 8 -> (7.02, 0): pixel (0, 7), cell (0, 1), 6 m.
  EXPECT_EQ(depth, (std::vector<float>{3.0f, 6.0f, 0.0f, 0.0f}));
  EXPECT_EQ(box, (std::vector<std::int64_t>{0, 0, 0, 0}));  // no ids given
}

TEST(BevFromMatrix, StoredMatricesGiveTransformsThatMoveBoxesAlike) {
  // Every combination of flips with rotations and scales: from_matrix(M) moves boxes (centre,
  // size, yaw, velocity) exactly like the transform M came from.
  const auto boxes = torch::tensor({3.0f, -4.0f, 0.5f, 4.2f, 1.8f, 1.6f, 0.7f, 2.0f, -1.0f,  //
                                    -20.0f, 7.0f, -1.0f, 0.6f, 0.6f, 1.7f, -2.9f, 0.0f, 0.5f})
                         .reshape({2, 9});
  for (int fx = 0; fx < 2; ++fx)
    for (int fy = 0; fy < 2; ++fy)
      for (double rot : {-0.39, 0.0, 0.2, 3.0})
        for (double scale : {0.95, 1.0, 1.05}) {
          core::nn::BevTransform t;
          t.rotation = rot;
          t.scale = scale;
          t.flip_x = fx;
          t.flip_y = fy;
          core::Mat3 m = t.matrix();
          for (auto& row : m.m)
            for (auto& x : row) x = static_cast<float>(x);  // as stored
          const auto back = core::nn::BevTransform::from_matrix(m, "test");
          EXPECT_NEAR(back.scale, scale, 1e-6);
          EXPECT_EQ(back.flip_x, false);
          EXPECT_EQ(back.flip_y, fx != fy);
          const auto want = t.apply_boxes(boxes), got = back.apply_boxes(boxes);
          EXPECT_TRUE(torch::allclose(got.narrow(1, 0, 6), want.narrow(1, 0, 6), 1e-5, 1e-5)) << fx << fy << rot;
          EXPECT_TRUE(torch::allclose(got.narrow(1, 7, 2), want.narrow(1, 7, 2), 1e-5, 1e-5)) << fx << fy << rot;
          const auto dyaw = got.select(1, 6) - want.select(1, 6);
          EXPECT_TRUE(torch::allclose(torch::sin(dyaw), torch::zeros_like(dyaw), 0, 1e-5)) << fx << fy << rot;
          EXPECT_TRUE(torch::allclose(torch::cos(dyaw), torch::ones_like(dyaw), 0, 1e-5)) << fx << fy << rot;
        }
  core::Mat3 shear;
  shear.m = {{{1, 0.3, 0}, {0, 1, 0}, {0, 0, 1}}};
  EXPECT_ERROR_WITH(core::nn::BevTransform::from_matrix(shear, "sample x, view 1 (view/bda)"),
                    "sample x, view 1 (view/bda): BEV augmentation matrix [[1, 0.3, 0]",
                    "is not a scaled rotation or reflection about z");
  core::Mat3 zero;
  zero.m = {{{0, 0, 0}, {0, 0, 0}, {0, 0, 1}}};
  EXPECT_ERROR_WITH(core::nn::BevTransform::from_matrix(zero, "w"), "w: BEV augmentation matrix", "is singular");
}

TEST(LoaderConfigCheck, ValidationNamesTheField) {
  LoaderConfig c;
  c.validate();
  c.image.final_size = {250, 704};
  EXPECT_ERROR_WITH(c.validate(), "image.final_size [250, 704] is not a multiple of depth.stride 16");
  c = LoaderConfig();
  c.image.resize_range = {0.6, 0.5};
  EXPECT_ERROR_WITH(c.validate(), "image.resize_range: [0.6, 0.5] must satisfy 0 < min <= max");
  c = LoaderConfig();
  c.view_policy = "random";
  EXPECT_ERROR_WITH(c.validate(), "views.policy \"random\" is not one of drawn, fixed");
  c = LoaderConfig();
  c.image.std = {0.2, 0.0, 0.2};
  EXPECT_ERROR_WITH(c.validate(), "image.mean/std: channel 1");
  c = LoaderConfig();
  c.depth_range = {3, 2};
  EXPECT_ERROR_WITH(c.validate(), "depth.range [3, 2]");
  // The field list round-trips through JSON and refuses unknown keys.
  LoaderConfig d;
  d.teacher_taps = {"neck"};
  d.image.final_size = {128, 352};
  LoaderConfig e;
  config::from_json(config::to_json(d), e, "test");
  EXPECT_EQ(config::to_json(e), config::to_json(d));
  EXPECT_ERROR_WITH(config::from_json(nlohmann::json{{"image", {{"final_sise", {1, 2}}}}}, e, "cfg.json"),
                    "cfg.json", "final_sise");
}

TEST(LoaderConfigCheck, StoredViewRangesAreCheckedAgainstThePreset) {
  core::nn::BevAugmentConfig preset;  // +-0.3925 rad, scale 0.95..1.05, flips 0.5
  nlohmann::json cfg = {{"views",
                         {{"count", 3},
                          {"augmentation",
                           {{"rotation_range", {-0.3925, 0.3925}},
                            {"scale_range", {0.95, 1.05}},
                            {"flip_x_prob", 0.5},
                            {"flip_y_prob", 0.5}}}}}};
  check_view_ranges(cfg, "shards s", preset, "student preset bevdepth-r50");
  preset.rotation_range = {-0.5, 0.5};
  EXPECT_ERROR_WITH(check_view_ranges(cfg, "shards /x", preset, "student preset bevdepth-r50"),
                    "shards /x: stored views were drawn with views.augmentation.rotation_range = [-0.3925,0.3925]",
                    "but student preset bevdepth-r50 expects [-0.5, 0.5]");
  preset = {};
  preset.flip_y_prob = 0;
  EXPECT_ERROR_WITH(check_view_ranges(cfg, "shards /x", preset, "preset tiny"),
                    "views.augmentation.flip_y_prob = 0.5, but preset tiny expects 0");
  preset = {};
  cfg["views"]["count"] = 1;
  EXPECT_ERROR_WITH(check_view_ranges(cfg, "shards /x", preset, "preset tiny"),
                    "shards /x store 1 view (no BEV augmentation), but preset tiny expects augmented views");
  EXPECT_ERROR_WITH(check_view_ranges(nlohmann::json{{"gamma", 0.5}}, "shards /y", preset, "preset tiny"),
                    "shards /y: the producing configuration has no views.augmentation");
}

TEST(LoaderConfigCheck, StoredViewsAreReadFromTheProducingConfiguration) {
  nlohmann::json cfg = {{"views",
                         {{"count", 3},
                          {"augmentation",
                           {{"rotation_range", {-0.25, 0.5}},
                            {"scale_range", {0.9, 1.1}},
                            {"flip_x_prob", 0.25},
                            {"flip_y_prob", 0.0}}}}}};
  const StoredViews v = stored_views(cfg, 3, "shards s");
  EXPECT_EQ(v.count, 3);
  ASSERT_TRUE(v.augmentation.has_value());
  EXPECT_EQ(v.augmentation->rotation_range, (std::array<double, 2>{-0.25, 0.5}));
  EXPECT_EQ(v.augmentation->scale_range, (std::array<double, 2>{0.9, 1.1}));
  EXPECT_EQ(v.augmentation->flip_x_prob, 0.25);
  EXPECT_EQ(v.augmentation->flip_y_prob, 0.0);
  EXPECT_FALSE(stored_views(nlohmann::json{{"gamma", 1}}, 1, "shards s").augmentation.has_value());
  cfg["views"]["augmentation"].erase("scale_range");
  EXPECT_ERROR_WITH(stored_views(cfg, 3, "shards /z"), "shards /z: views.augmentation.scale_range is missing");
}

TEST(LoaderConfigCheck, StudentGridFollowsTheGridRule) {
  const std::array<double, 6> r{-51.2, -51.2, -5, 51.2, 51.2, 3};
  const BevGrid teacher = BevGrid::make(r, 0.8);  // 128 x 128
  // Same cells, 2x coarser (64 x 64), 2x finer (256 x 256); another z range is allowed (BEV maps).
  EXPECT_EQ(check_grid_rule(teacher, "shards s", BevGrid::make(r, 0.8), "preset p"), 1);
  EXPECT_EQ(check_grid_rule(teacher, "shards s", BevGrid::make(r, 1.6), "preset p"), 2);
  EXPECT_EQ(check_grid_rule(teacher, "shards s", BevGrid::make(r, 0.4), "preset p"), -2);
  EXPECT_EQ(check_grid_rule(teacher, "shards s", BevGrid::make({-51.2, -51.2, -10, 51.2, 51.2, 10}, 0.8), "preset p"),
            1);
  // 0.512 m cells: 200 x 200, not an integer ratio of 128.
  EXPECT_ERROR_WITH(check_grid_rule(teacher, "shards s", BevGrid::make(r, 0.512), "student preset tiny"),
                    "BEV grids cannot be aligned: shards s have the grid range [-51.2, -51.2, -5, 51.2, 51.2, 3], "
                    "cell 0.8x0.8 m, 128x128",
                    "student preset tiny has range [-51.2, -51.2, -5, 51.2, 51.2, 3], cell 0.512x0.512 m, 200x200",
                    "integer ratio");
  // Different ratios on the two axes (x 2x coarser, y the same).
  EXPECT_ERROR_WITH(check_grid_rule(teacher, "shards s", BevGrid::make(r, 1.6, 0.8), "preset p"),
                    "BEV grids cannot be aligned", "cell 1.6x0.8 m, 128x64 (HxW)");
  EXPECT_ERROR_WITH(check_grid_rule(teacher, "shards s", BevGrid::make({-54, -54, -5, 54, 54, 3}, 0.8), "preset p"),
                    "do not cover the same x-y range", "shards s have the grid range [-51.2", "preset p has range [-54");
}

}  // namespace
}  // namespace bevkd::train::data

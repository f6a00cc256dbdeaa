#include "train/data/sample_loader.h"

#include <tbb/parallel_for.h>

#include <cstring>

#include "base/error.h"
#include "base/fs.h"
#include "base/rng.h"
#include "core/nn/bev_augment.h"
#include "core/nn/gt_filter.h"
#include "schemas/shard_names.h"
#include "train/data/array_tensor.h"
#include "train/data/depth_targets.h"
#include "train/data/image_aug.h"

namespace bevkd::train::data {

namespace ds = schemas::ds;
using storage::Array;
using storage::DType;

namespace {

constexpr std::uint64_t kImageAugSalt = 0x494D414745415547ull;  // "IMAGEAUG"

std::string feature_name(const std::string& tap) { return cat(ds::kTeacherFeaturesPrefix, tap); }
std::string scale_name(const std::string& tap) { return cat(ds::kTeacherFeatureScalesPrefix, tap); }

}  // namespace

SampleLoader::SampleLoader(LoaderConfig cfg, const std::string& dataroot, BevGrid grid,
                           std::vector<storage::TapSpec> taps, std::vector<std::string> camera_names, bool train)
    : cfg_(std::move(cfg)),
      root_(dataroot),
      grid_(grid),
      taps_(std::move(taps)),
      cameras_(std::move(camera_names)),
      train_(train) {
  cfg_.validate();
  for (const auto& tap : cfg_.teacher_taps) {
    bool found = false;
    std::string stored;
    for (const auto& t : taps_) {
      found = found || t.name == tap;
      stored += cat(stored.empty() ? "" : ", ", t.name);
    }
    BEVKD_CHECK(found, "loader config: teacher.taps asks for tap \"", tap, "\", the shards store ", stored);
  }
}

std::vector<std::string> SampleLoader::fields() const {
  std::vector<std::string> f{std::string(ds::kSampleToken), std::string(ds::kEgo2global), std::string(ds::kViewBda),
                             std::string(ds::kCamsImagePath), std::string(ds::kCamsIntrinsics),
                             std::string(ds::kCamsCam2ego), std::string(ds::kDepthUvd),
                             std::string(ds::kGtBoxes), std::string(ds::kGtLabels), std::string(ds::kGtNumLidarPts),
                             std::string(ds::kGtNumRadarPts), std::string(ds::kGtVelocityValid)};
  if (cfg_.depth_box_id) f.emplace_back(ds::kDepthBoxId);
  for (const auto& tap : cfg_.teacher_taps) {
    f.push_back(feature_name(tap));
    for (const auto& t : taps_)
      if (t.name == tap && t.dtype == DType::kInt8) f.push_back(scale_name(tap));
  }
  if (cfg_.teacher_heatmap) f.emplace_back(ds::kTeacherHeatmap);
  if (cfg_.teacher_fg_mask) f.emplace_back(ds::kFgMask);
  if (cfg_.teacher_boxes)
    for (auto n : {ds::kTeacherBoxes, ds::kTeacherScores, ds::kTeacherLabels, ds::kTeacherQuality}) f.emplace_back(n);
  if (cfg_.teacher_class_probs) f.emplace_back(schemas::ds::kTeacherClassProbs);
  return f;
}

LoadedSample SampleLoader::load(storage::Sample& sample, std::int64_t epoch, const storage::SampleRef& ref,
                                std::int64_t view) const {
  LoadedSample out;
  out.token = sample.get(ds::kSampleToken).string_at(0);
  out.view = view;
  const std::int64_t N = static_cast<std::int64_t>(cameras_.size());
  const std::int64_t fH = cfg_.image.final_size[0], fW = cfg_.image.final_size[1];

  const Array& paths = sample.get(ds::kCamsImagePath);
  const Array& K = sample.get(ds::kCamsIntrinsics);
  const Array& T = sample.get(ds::kCamsCam2ego);
  const Array& uvd = sample.get(ds::kDepthUvd);
  const Array* box_ids = cfg_.depth_box_id ? &sample.get(ds::kDepthBoxId) : nullptr;
  BEVKD_CHECK(paths.numel() == N && K.numel() == N * 9 && T.numel() == N * 16 &&
                  static_cast<std::int64_t>(uvd.segments.size()) == N,
              "sample ", out.token, ": camera fields have ", paths.numel(), " paths, ", K.numel() / 9,
              " intrinsics, ", T.numel() / 16, " poses, ", uvd.segments.size(), " depth segments; the shards name ", N,
              " cameras");

  DepthPoolOptions dopt;
  dopt.image_height = fH;
  dopt.image_width = fW;
  dopt.stride = cfg_.depth_stride;
  dopt.min_depth = cfg_.depth_range[0];
  dopt.max_depth = cfg_.depth_range[1];
  const std::int64_t h = dopt.out_height(), w = dopt.out_width();

  if (!cfg_.cameras) {
    out.images = torch::zeros({N, 3, 1, 1}, torch::kFloat32);
    out.intrinsics = torch::eye(3, torch::kFloat32).repeat({N, 1, 1});
    out.img_aug = out.intrinsics.clone();
    out.cam2ego = tensor_of(T).reshape({N, 4, 4});
    out.depth = torch::zeros({N, 1, 1}, torch::kFloat32);
    if (cfg_.depth_box_id) out.box_id = torch::zeros({N, 1, 1}, torch::kInt64);
  } else {
    out.images = pooled_empty({N, 3, fH, fW}, storage::DType::kFloat32);
    out.intrinsics = torch::empty({N, 3, 3}, torch::kFloat32);
    out.img_aug = torch::empty({N, 3, 3}, torch::kFloat32);
    out.cam2ego = tensor_of(T).reshape({N, 4, 4});
    out.depth = torch::empty({N, h, w}, torch::kFloat32);
    if (cfg_.depth_box_id) out.box_id = torch::empty({N, h, w}, torch::kInt64);

    std::vector<std::int64_t> first_point(static_cast<std::size_t>(N) + 1, 0);
    for (std::int64_t n = 0; n < N; ++n) first_point[n + 1] = first_point[n] + uvd.segments[n];

    // Cameras in parallel (nested in the loader's arena); missing files are collected, other
    // errors are re-thrown as they are.
    std::vector<std::string> missing(static_cast<std::size_t>(N));
    tbb::parallel_for(std::int64_t{0}, N, [&](std::int64_t n) {
      const ImageRef ref_n{out.token, cameras_[static_cast<std::size_t>(n)], paths.string_at(n)};
      const std::string path = root_.resolve(ref_n);
      if (!path_exists(path)) {
        missing[static_cast<std::size_t>(n)] = cat(ref_n.describe(), ": image file ", path,
                                                   " does not exist (cams/image_path \"",
                                                   ref_n.stored_path, "\" under the dataroot ", root_.dir(), ")");
        return;
      }
      const CameraJpeg jpeg = read_camera_jpeg(path, ref_n);
      std::unique_ptr<Rng> rng;
      if (train_)
        rng = std::make_unique<Rng>(mix_keys(cfg_.seed, static_cast<std::uint64_t>(epoch), storage::sample_key(ref),
                                             kImageAugSalt + static_cast<std::uint64_t>(n)));
      const ImageAugParams p = draw_image_aug(cfg_.image, jpeg.width, jpeg.height, rng.get());
      const Affine2 A = image_aug_matrix(p, cfg_.image);
      thread_local DecodedImage dec;  // the decoding thread's pixel buffer, reused
      decode_camera_jpeg(jpeg, p.resize, ref_n, path, &dec);
      // Source pixel of an output pixel: decoded = D(original), original = A^-1(output).
      const Affine2 D = Affine2::scale_about_pixel_centres(dec.scale.value());
      warp_normalize(dec.image.rgb.data(), dec.image.width, dec.image.height, D * A.inverse(), fH, fW, cfg_.image.mean,
                     cfg_.image.std, out.images[n].data_ptr<float>());

      const float* k = K.data<float>() + 9 * n;
      float* ak = out.intrinsics[n].data_ptr<float>();
      float* a = out.img_aug[n].data_ptr<float>();
      for (int r = 0; r < 3; ++r)
        for (int c = 0; c < 3; ++c) {
          double v = 0;
          for (int j = 0; j < 3; ++j) v += A.m[r][j] * k[3 * j + c];
          ak[3 * r + c] = static_cast<float>(v);
          a[3 * r + c] = static_cast<float>(A.m[r][c]);
        }
      const std::int64_t p0 = first_point[n];
      min_pool_depth(uvd.data<float>() + 3 * p0, box_ids ? box_ids->data<std::int32_t>() + p0 : nullptr,
                     uvd.segments[n], A, dopt, out.depth[n].data_ptr<float>(),
                     cfg_.depth_box_id ? out.box_id[n].data_ptr<std::int64_t>() : nullptr);
    });
    for (const auto& m : missing)
      if (!m.empty()) {
        BEVKD_CHECK(cfg_.skip_missing_images, m, " (--skip-missing-images skips such samples)");
        if (!out.skip_reason.empty()) out.skip_reason += "; ";
        out.skip_reason += m;
        out.skipped = true;
      }
  }  // cameras
  if (out.skipped) return out;

  // Ground truth: the one rule, then the view's BEV augmentation, then the grid.
  core::nn::StoredGt stored;
  stored.boxes = tensor_of(sample.get(ds::kGtBoxes)).reshape({-1, 9});
  stored.labels = tensor_of(sample.get(ds::kGtLabels));
  stored.num_lidar_pts = tensor_of(sample.get(ds::kGtNumLidarPts));
  stored.num_radar_pts = tensor_of(sample.get(ds::kGtNumRadarPts));
  stored.velocity_valid = tensor_of(sample.get(ds::kGtVelocityValid));
  const Array& bda = sample.get(ds::kViewBda);
  BEVKD_CHECK(bda.numel() == 9, "sample ", out.token, ": view/bda holds ", bda.numel(),
              " values for one view, expected 9 (3x3)");
  core::Mat3 m;
  for (int r = 0; r < 3; ++r)
    for (int c = 0; c < 3; ++c) m.m[r][c] = bda.data<float>()[3 * r + c];
  out.bda = tensor_of(bda).reshape({3, 3});
  const core::nn::BevTransform t =
      core::nn::BevTransform::from_matrix(m, cat("sample ", out.token, ", view ", view, " (view/bda)"));
  core::nn::TrainingGt gt = core::nn::training_gt(stored);
  gt.boxes = t.apply_boxes(gt.boxes);
  gt = core::nn::in_range(gt, grid_);
  out.gt = SampleGt{gt.boxes, gt.labels, gt.index};

  const Array& e2g = sample.get(ds::kEgo2global);
  out.ego2global.resize(16);
  for (int i = 0; i < 16; ++i) out.ego2global[static_cast<std::size_t>(i)] = static_cast<float>(e2g.data<double>()[i]);

  // Teacher fields, as stored.
  for (const auto& name : fields())
    if (name.rfind("teacher/", 0) == 0 || name == ds::kFgMask) out.teacher.set(name, sample.take(name));
  return out;
}

}  // namespace bevkd::train::data

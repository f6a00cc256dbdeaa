#include "precompute/run/stage_postprocess.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "base/error.h"
#include "schemas/shard_names.h"
#include "core/nn/gt_filter.h"
#include "core/nuscenes_vocab.h"
#include "kernels/depth_projection.h"
#include "kernels/iou.h"
#include "storage/half.h"
#include "storage/quantize.h"

namespace bevkd::precompute {

namespace ds = schemas::ds;

namespace {

using storage::Array;
using storage::DType;

constexpr float kHalfMax = 65504.0f;
constexpr size_t kTokenLength = 32;
constexpr size_t kImagePathLength = 256;

// [n, ...] float32 tensor -> an Array of the same shape (copied).
template <typename T>
Array array_from(const torch::Tensor& t, std::vector<int64_t> shape) {
  const auto c = t.contiguous();
  Array a = Array::uninitialized(storage::dtype_of<T>(), std::move(shape));
  BEVKD_ASSERT(static_cast<size_t>(c.numel()) * sizeof(T) == a.nbytes(), "array_from: ", c.numel(),
               " elements for ", a.describe());
  if (a.nbytes() > 0) std::memcpy(a.raw(), c.data_ptr<T>(), a.nbytes());
  return a;
}

// float32 [V, ...] -> float16 Array of `shape`; counts saturated values.
Array half_array(const torch::Tensor& t, std::vector<int64_t> shape, std::atomic<int64_t>& saturated) {
  auto c = t.contiguous();
  const auto over = c.abs().gt(kHalfMax).sum().item<int64_t>();
  if (over > 0) {
    saturated += over;
    c = c.clamp(-kHalfMax, kHalfMax);
  }
  Array a = Array::uninitialized(DType::kFloat16, std::move(shape));
  storage::float_to_half(c.data_ptr<float>(), a.data<std::uint16_t>(), static_cast<size_t>(c.numel()));
  return a;
}

// A ragged Array from per-view tensors, concatenated with one segment per view.
template <typename T>
Array ragged(const std::vector<torch::Tensor>& parts, std::vector<int64_t> row_shape) {
  int64_t rows = 0;
  std::vector<int64_t> segments;
  for (const auto& p : parts) {
    segments.push_back(p.size(0));
    rows += p.size(0);
  }
  std::vector<int64_t> shape{rows};
  shape.insert(shape.end(), row_shape.begin(), row_shape.end());
  Array a = Array::uninitialized(storage::dtype_of<T>(), shape);
  auto* dst = static_cast<std::byte*>(a.raw());
  for (const auto& p : parts) {
    const auto c = p.contiguous();
    const size_t n = static_cast<size_t>(c.numel()) * sizeof(T);
    if (n > 0) std::memcpy(dst, c.data_ptr<T>(), n);
    dst += n;
  }
  a.segments = std::move(segments);
  return a;
}

Array scalar_string(const std::string& s, size_t length) { return Array::strings({}, {s}, length); }

}  // namespace

PostprocessParams PostprocessParams::from(const RunConfig& cfg, const BevGrid& grid,
                                          std::vector<std::string> taps) {
  PostprocessParams p;
  p.grid = grid;
  std::sort(taps.begin(), taps.end());
  p.taps = std::move(taps);
  p.int8_features = cfg.feature_dtype == "int8";
  p.quality_gamma = cfg.quality_gamma;
  p.fg.grid = grid;
  p.fg.out_size_factor = 1;
  p.fg.min_overlap = cfg.fg_min_overlap;
  p.fg.min_radius = cfg.fg_min_radius;
  p.depth_stride = cfg.depth_stride;
  p.depth_min = static_cast<float>(cfg.depth_min);
  p.depth_max = static_cast<float>(cfg.depth_max);
  p.depth_key_frame_only = cfg.depth_key_frame_only;
  return p;
}

torch::Tensor teacher_quality(const torch::Tensor& boxes, const torch::Tensor& scores, const torch::Tensor& labels,
                              const torch::Tensor& gt_boxes, const torch::Tensor& gt_labels, double gamma) {
  const int64_t M = boxes.size(0);
  BEVKD_CHECK(boxes.dim() == 2 && boxes.size(1) == 9 && scores.size(0) == M && labels.size(0) == M &&
                  gt_boxes.dim() == 2 && gt_boxes.size(1) == 9 && gt_labels.size(0) == gt_boxes.size(0),
              "teacher_quality: boxes ", boxes.sizes(), ", scores ", scores.sizes(), ", labels ", labels.sizes(),
              ", gt_boxes ", gt_boxes.sizes(), ", gt_labels ", gt_labels.sizes(),
              " (expected [M, 9], [M], [M], [G, 9], [G])");
  auto q = torch::zeros({M}, torch::kFloat32);
  if (M == 0 || gt_boxes.size(0) == 0) return q;
  const auto iou = kernels::iou_3d(boxes.to(torch::kFloat32), gt_boxes.to(torch::kFloat32));  // [M, G]
  const auto same = labels.to(torch::kInt64).unsqueeze(1).eq(gt_labels.to(torch::kInt64).unsqueeze(0));
  const auto best = std::get<0>(torch::where(same, iou, torch::zeros_like(iou)).max(1)).to(torch::kFloat64);  // [M]
  const auto c = scores.to(torch::kFloat64).clamp(0.0, 1.0);
  const auto value = c.pow(gamma) * best.pow(1.0 - gamma);
  return torch::where(best.gt(0), value, torch::zeros_like(value)).clamp(0.0, 1.0).to(torch::kFloat32);
}

void PostprocessStage::run(SampleWork& s, const TeacherOutput& out, int64_t first) const {
  BEVKD_ASSERT(s.frame.has_value(), "post-process: sample ", s.token, " was skipped");
  const auto& kf = *s.frame;
  const int64_t V = static_cast<int64_t>(s.views.size());
  const int64_t H = p_.grid.H, W = p_.grid.W, K = core::kNumClasses;
  storage::Sample& r = s.record;

  // Identity and pose.
  r.set(std::string(ds::kSampleToken), scalar_string(kf.sample_token, kTokenLength));
  r.set(std::string(ds::kSceneToken), scalar_string(kf.scene_token, kTokenLength));
  r.set(std::string(ds::kTimestamp), Array::scalar<int64_t>(kf.timestamp));
  const auto pose = kf.ego_to_global.to_mat4();
  r.set(std::string(ds::kEgo2global), Array::of<double>({4, 4}, std::vector<double>(pose.begin(), pose.end())));

  // Teacher features and heat maps of the V views.
  for (const auto& tap : p_.taps) {
    const auto it = out.features.find(tap);
    BEVKD_CHECK(it != out.features.end(), "post-process: the teacher returned no feature tap '", tap, "'");
    const auto f = it->second.narrow(0, first, V).contiguous();  // [V, C, H, W]
    const int64_t C = f.size(1);
    if (!p_.int8_features) {
      r.set(std::string(ds::kTeacherFeaturesPrefix) + tap, half_array(f, {V, C, H, W}, saturated_));
      continue;
    }
    Array q = Array::uninitialized(DType::kInt8, {V, C, H, W});
    Array scale = Array::uninitialized(DType::kFloat32, {V, C});
    for (int64_t v = 0; v < V; ++v)
      storage::quantize_int8(f[v].data_ptr<float>(), C, H * W, q.data<std::int8_t>() + v * C * H * W,
                             scale.data<float>() + v * C);
    r.set(std::string(ds::kTeacherFeaturesPrefix) + tap, std::move(q));
    r.set(std::string(ds::kTeacherFeatureScalesPrefix) + tap, std::move(scale));
  }
  r.set(std::string(ds::kTeacherHeatmap), half_array(out.heatmap.narrow(0, first, V), {V, K, H, W}, saturated_));

  // Per view: boxes, quality against the view's valid GT, foreground mask, the view's matrix.
  const auto training = core::nn::training_gt(core::nn::stored_gt(kf));  // the one GT rule (core/nn/gt_filter.h)
  const torch::Tensor& gt_valid = training.boxes;
  const torch::Tensor& gt_valid_labels = training.labels;
  std::vector<torch::Tensor> boxes, scores, labels, quality, class_probs;
  auto fg = torch::empty({V, H, W}, torch::kFloat32);
  std::vector<float> bda;
  for (int64_t v = 0; v < V; ++v) {
    const auto& view = s.views[static_cast<size_t>(v)];
    const auto gt_view = view.is_identity() ? gt_valid : view.apply_boxes(gt_valid);
    const auto& d = out.detections[static_cast<size_t>(first + v)];
    boxes.push_back(d.boxes.to(torch::kFloat32).contiguous());
    scores.push_back(d.scores.to(torch::kFloat32).contiguous());
    labels.push_back(d.labels.to(torch::kInt16).contiguous());
    quality.push_back(teacher_quality(d.boxes, d.scores, d.labels, gt_view, gt_valid_labels, p_.quality_gamma));
    // [10, H*W] -> the peak cells' columns -> [M, 10]
    const auto heat = out.heatmap[first + v].reshape({K, H * W});
    class_probs.push_back(d.size() > 0 ? heat.index_select(1, d.cells.to(torch::kInt64)).t().contiguous()
                                       : torch::zeros({0, K}, torch::kFloat32));
    fg[v].copy_(kernels::gaussian_mask(gt_view, p_.fg));
    const auto m = view.matrix();
    for (int i = 0; i < 3; ++i)
      for (int j = 0; j < 3; ++j) bda.push_back(static_cast<float>(m.m[i][j]));
  }
  r.set(std::string(ds::kTeacherBoxes), ragged<float>(boxes, {9}));
  r.set(std::string(ds::kTeacherScores), ragged<float>(scores, {}));
  r.set(std::string(ds::kTeacherLabels), ragged<std::int16_t>(labels, {}));
  r.set(std::string(ds::kTeacherQuality), ragged<float>(quality, {}));
  {
    // Sigmoid values in [0, 1]: float16 never saturates here.
    std::vector<int64_t> segments;
    for (const auto& c : class_probs) segments.push_back(c.size(0));
    const auto all = torch::cat(class_probs, 0).to(torch::kFloat32).contiguous();  // [M, 10]
    Array probs = Array::uninitialized(DType::kFloat16, {all.size(0), K});
    storage::float_to_half(all.data_ptr<float>(), probs.data<std::uint16_t>(), static_cast<size_t>(all.numel()));
    probs.segments = std::move(segments);
    r.set(std::string(ds::kTeacherClassProbs), std::move(probs));
  }
  r.set(std::string(ds::kFgMask), half_array(fg, {V, H, W}, saturated_));
  r.set(std::string(ds::kViewBda), Array::of<float>({V, 3, 3}, bda));

  // Ground truth (all 10-class boxes, key-frame ego frame) and bicycle racks.
  const auto G = static_cast<int64_t>(kf.gt.size());
  std::vector<float> gt_boxes;
  std::vector<std::int16_t> gt_labels, gt_attrs;
  std::vector<std::int32_t> n_lidar, n_radar;
  std::vector<std::uint8_t> vel_valid;
  for (const auto& g : kf.gt) {
    const auto a = g.box.to_array();
    gt_boxes.insert(gt_boxes.end(), a.begin(), a.end());
    gt_labels.push_back(static_cast<std::int16_t>(g.label));
    gt_attrs.push_back(static_cast<std::int16_t>(g.attribute));
    n_lidar.push_back(g.num_lidar_pts);
    n_radar.push_back(g.num_radar_pts);
    vel_valid.push_back(g.velocity_valid ? 1 : 0);
  }
  r.set(std::string(ds::kGtBoxes), Array::of<float>({G, 9}, gt_boxes));
  r.set(std::string(ds::kGtLabels), Array::of<std::int16_t>({G}, gt_labels));
  r.set(std::string(ds::kGtAttributes), Array::of<std::int16_t>({G}, gt_attrs));
  r.set(std::string(ds::kGtNumLidarPts), Array::of<std::int32_t>({G}, n_lidar));
  r.set(std::string(ds::kGtNumRadarPts), Array::of<std::int32_t>({G}, n_radar));
  r.set(std::string(ds::kGtVelocityValid), Array::of<std::uint8_t>({G}, vel_valid));
  std::vector<float> racks;
  for (const auto& b : kf.bicycle_racks) {
    const auto a = b.to_array();
    racks.insert(racks.end(), a.begin(), a.end());
  }
  r.set(std::string(ds::kGtRackBoxes), Array::of<float>({static_cast<int64_t>(kf.bicycle_racks.size()), 9}, racks));

  // Cameras.
  constexpr int64_t kCams = core::kNumCameras;
  std::vector<std::string> paths;
  auto K3 = torch::empty({kCams, 3, 3}, torch::kFloat64);
  auto cam2ego = torch::empty({kCams, 4, 4}, torch::kFloat64);
  bool same_size = true;
  for (int64_t c = 0; c < kCams; ++c) {
    const auto& cam = kf.cameras[static_cast<size_t>(c)];
    paths.push_back(cam.image_path);
    std::memcpy(K3[c].data_ptr<double>(), cam.intrinsics.data(), 9 * sizeof(double));
    const auto m = cam.cam_to_ego.to_mat4();
    std::memcpy(cam2ego[c].data_ptr<double>(), m.data(), 16 * sizeof(double));
    same_size = same_size && cam.width == kf.cameras[0].width && cam.height == kf.cameras[0].height;
  }
  r.set(std::string(ds::kCamsImagePath), Array::strings({kCams}, paths, kImagePathLength));
  r.set(std::string(ds::kCamsIntrinsics), array_from<float>(K3.to(torch::kFloat32), {kCams, 3, 3}));
  r.set(std::string(ds::kCamsCam2ego), array_from<float>(cam2ego.to(torch::kFloat32), {kCams, 4, 4}));

  // LiDAR depth targets per camera, with the GT row each point lies in.
  const auto P = static_cast<int64_t>(kf.num_points());
  auto points = torch::from_blob(const_cast<float*>(kf.points.data()), {P, core::nusc::kPointDims}, torch::kFloat32);
  if (p_.depth_key_frame_only) points = points.index({points.select(1, 4).eq(0)});
  points = points.narrow(1, 0, 3).contiguous();
  const auto all_gt = G > 0 ? torch::from_blob(gt_boxes.data(), {G, 9}, torch::kFloat32) : torch::Tensor();
  kernels::DepthProjectionOptions dopt;
  dopt.stride = p_.depth_stride;
  dopt.min_depth = p_.depth_min;
  dopt.max_depth = p_.depth_max;
  std::vector<torch::Tensor> uvd, box_id;
  const int64_t groups = same_size ? 1 : kCams;  // one call when the six images share a size
  for (int64_t c0 = 0; c0 < kCams; c0 += kCams / groups) {
    const int64_t n = kCams / groups;
    const auto& cam = kf.cameras[static_cast<size_t>(c0)];
    dopt.image_width = cam.width;
    dopt.image_height = cam.height;
    const auto d = kernels::project_depth_sparse(points, cam2ego.narrow(0, c0, n), K3.narrow(0, c0, n),
                                                 all_gt, dopt);
    const auto off = d.offsets.contiguous();
    for (int64_t k = 0; k < n; ++k) {
      const int64_t a = off[k].item<int64_t>(), b = off[k + 1].item<int64_t>();
      uvd.push_back(d.uvd.narrow(0, a, b - a));
      box_id.push_back(d.box_id.narrow(0, a, b - a).to(torch::kInt32));
    }
  }
  r.set(std::string(ds::kDepthUvd), ragged<float>(uvd, {3}));
  r.set(std::string(ds::kDepthBoxId), ragged<std::int32_t>(box_id, {}));

  // The points are no longer needed; the record is.
  s.frame->points.clear();
  s.frame->points.shrink_to_fit();
}

}  // namespace bevkd::precompute

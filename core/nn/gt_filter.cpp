#include "core/nn/gt_filter.h"

#include <cstring>
#include <limits>

#include "base/error.h"
#include "core/nuscenes/key_frame.h"

namespace bevkd::core::nn {

namespace {

void check_rows(const torch::Tensor& t, int64_t n, const char* name) {
  BEVKD_CHECK(t.defined() && t.dim() == 1 && t.size(0) == n, "ground truth: ", name, " has shape ",
              t.defined() ? t.sizes() : c10::IntArrayRef{}, ", expected [", n, "] (one per box)");
  BEVKD_CHECK(!c10::isFloatingType(t.scalar_type()), "ground truth: ", name, " has dtype ", t.scalar_type(),
              ", expected an integer or bool type");
}

}  // namespace

TrainingGt training_gt(const StoredGt& gt, int num_classes) {
  BEVKD_CHECK(gt.boxes.defined() && gt.boxes.dim() == 2 && gt.boxes.size(1) == 9 &&
                  gt.boxes.scalar_type() == torch::kFloat32,
              "ground truth: boxes have shape ", gt.boxes.defined() ? gt.boxes.sizes() : c10::IntArrayRef{},
              ", expected [N, 9] float32");
  const int64_t n = gt.boxes.size(0);
  check_rows(gt.labels, n, "labels");
  check_rows(gt.num_lidar_pts, n, "num_lidar_pts");
  check_rows(gt.num_radar_pts, n, "num_radar_pts");
  check_rows(gt.velocity_valid, n, "velocity_valid");
  const auto labels = gt.labels.to(torch::kInt64);
  const auto keep = ((gt.num_lidar_pts.to(torch::kInt64) + gt.num_radar_pts.to(torch::kInt64)).gt(0) &
                     labels.ge(0) & labels.lt(num_classes))
                        .nonzero()
                        .squeeze(1);
  TrainingGt out;
  out.index = keep;
  out.labels = labels.index_select(0, keep).contiguous();
  out.boxes = gt.boxes.index_select(0, keep).contiguous();
  const auto unknown = gt.velocity_valid.index_select(0, keep).to(torch::kBool).logical_not();
  if (out.boxes.size(0) > 0) {
    const auto nan = torch::full({}, std::numeric_limits<float>::quiet_NaN(), torch::kFloat32);
    auto vel = out.boxes.narrow(1, 7, 2);
    vel.copy_(torch::where(unknown.unsqueeze(1), nan, vel));
  }
  return out;
}

TrainingGt in_range(const TrainingGt& gt, const BevGrid& grid) {
  if (gt.size() == 0) return gt;
  const auto x = gt.boxes.select(1, 0), y = gt.boxes.select(1, 1);
  const auto keep = (x.gt(grid.x_min()) & x.lt(grid.x_max()) & y.gt(grid.y_min()) & y.lt(grid.y_max()))
                        .nonzero()
                        .squeeze(1);
  TrainingGt out;
  out.boxes = gt.boxes.index_select(0, keep).contiguous();
  out.labels = gt.labels.index_select(0, keep).contiguous();
  out.index = gt.index.index_select(0, keep).contiguous();
  return out;
}

StoredGt stored_gt(const nusc::KeyFrame& kf) {
  const auto n = static_cast<int64_t>(kf.gt.size());
  StoredGt g;
  g.boxes = torch::empty({n, 9}, torch::kFloat32);
  g.labels = torch::empty({n}, torch::kInt64);
  g.num_lidar_pts = torch::empty({n}, torch::kInt64);
  g.num_radar_pts = torch::empty({n}, torch::kInt64);
  g.velocity_valid = torch::empty({n}, torch::kUInt8);
  float* b = g.boxes.data_ptr<float>();
  for (int64_t i = 0; i < n; ++i) {
    const auto& a = kf.gt[static_cast<size_t>(i)];
    const auto v = a.box.to_array();
    std::memcpy(b + 9 * i, v.data(), sizeof(float) * 9);
    if (!a.velocity_valid) b[9 * i + 7] = b[9 * i + 8] = 0.0f;  // the stored form
    g.labels.data_ptr<int64_t>()[i] = a.label;
    g.num_lidar_pts.data_ptr<int64_t>()[i] = a.num_lidar_pts;
    g.num_radar_pts.data_ptr<int64_t>()[i] = a.num_radar_pts;
    g.velocity_valid.data_ptr<uint8_t>()[i] = a.velocity_valid ? 1 : 0;
  }
  return g;
}

}  // namespace bevkd::core::nn

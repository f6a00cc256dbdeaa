#include "precompute/run/stage_voxelize.h"

#include <cstring>

#include "base/error.h"

namespace bevkd::precompute {

torch::Tensor key_frame_points(const core::nusc::KeyFrame& kf) {
  const auto P = static_cast<int64_t>(kf.num_points());
  auto t = torch::empty({P, core::nusc::kPointDims}, torch::kFloat32);
  if (P > 0) std::memcpy(t.data_ptr<float>(), kf.points.data(), kf.points.size() * sizeof(float));
  return t;
}

void VoxelizeStage::run(SampleWork& s) const {
  BEVKD_ASSERT(!s.skipped() && !s.views.empty(), "voxelize: sample ", s.token, " was not read");
  const torch::Tensor points = key_frame_points(*s.frame);
  s.clouds.clear();
  s.clouds.reserve(s.views.size());
  for (const auto& view : s.views)
    s.clouds.push_back(teacher_.prepare(view.is_identity() ? points : view.apply_points(points)));
}

}  // namespace bevkd::precompute

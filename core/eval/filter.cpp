#include "core/eval/filter.h"

#include <algorithm>

#include "base/error.h"
#include "core/nuscenes_vocab.h"

namespace bevkd::core::eval {

namespace {

const SampleContext& context_of(const GroundTruth& gt, const std::string& token) {
  const long s = gt.boxes.index_of(token);
  BEVKD_CHECK(s >= 0, "sample ", token, " is not part of the ground truth (",
              gt.description.empty() ? std::string("no description") : gt.description, ")");
  return gt.context[static_cast<std::size_t>(s)];
}

const int kBicycle = class_index("bicycle");
const int kMotorcycle = class_index("motorcycle");

}  // namespace

void add_ego_translation(std::vector<EvalBox>& boxes, const SampleContext& ctx) {
  const core::Vec3& ego = ctx.ego_translation;
  for (EvalBox& b : boxes)
    b.ego_translation = {b.translation[0] - ego[0], b.translation[1] - ego[1], b.translation[2] - ego[2]};
}

void add_ego_translation(EvalBoxes& boxes, const GroundTruth& gt) {
  for (std::size_t s = 0; s < boxes.num_samples(); ++s) add_ego_translation(boxes.boxes(s), context_of(gt, boxes.token(s)));
}

bool point_in_nusc_box(const core::NuscBox& box, const std::array<double, 3>& p) {
  // Corners as the devkit's Box.corners(): R * (±l/2, ±w/2, ±h/2) + centre; corner 0 is
  // (+l/2, +w/2, +h/2), corner 4 (-l/2, +w/2, +h/2), corner 1 (+l/2, -w/2, +h/2),
  // corner 3 (+l/2, +w/2, -h/2).
  const core::Mat3 r = box.rotation.to_matrix();
  const double w = box.size[0], l = box.size[1], h = box.size[2];
  auto corner = [&](double sx, double sy, double sz) {
    const core::Vec3 local{sx * l / 2, sy * w / 2, sz * h / 2};
    const core::Vec3 g = r * local;
    return core::Vec3{g[0] + box.translation[0], g[1] + box.translation[1], g[2] + box.translation[2]};
  };
  const core::Vec3 p1 = corner(1, 1, 1), px = corner(-1, 1, 1), py = corner(1, -1, 1), pz = corner(1, 1, -1);
  const core::Vec3 i{px[0] - p1[0], px[1] - p1[1], px[2] - p1[2]};
  const core::Vec3 j{py[0] - p1[0], py[1] - p1[1], py[2] - p1[2]};
  const core::Vec3 k{pz[0] - p1[0], pz[1] - p1[1], pz[2] - p1[2]};
  const core::Vec3 v{p[0] - p1[0], p[1] - p1[1], p[2] - p1[2]};
  auto dot = [](const core::Vec3& a, const core::Vec3& b) { return a[0] * b[0] + a[1] * b[1] + a[2] * b[2]; };
  const double iv = dot(i, v), jv = dot(j, v), kv = dot(k, v);
  return 0 <= iv && iv <= dot(i, i) && 0 <= jv && jv <= dot(j, j) && 0 <= kv && kv <= dot(k, k);
}

void filter_sample(std::vector<EvalBox>& list, const SampleContext& ctx, const DetectionConfig& cfg, FilterStats& st) {
  st.total += list.size();
  auto end = std::remove_if(list.begin(), list.end(), [&](const EvalBox& b) {
    return !(b.ego_dist() < cfg.class_range[static_cast<std::size_t>(b.label)]);
  });
  st.after_range += static_cast<std::size_t>(end - list.begin());
  end = std::remove_if(list.begin(), end, [](const EvalBox& b) { return b.num_pts == 0; });
  st.after_points += static_cast<std::size_t>(end - list.begin());
  if (!ctx.bicycle_racks.empty()) {
    end = std::remove_if(list.begin(), end, [&](const EvalBox& b) {
      if (b.label != kBicycle && b.label != kMotorcycle) return false;
      for (const core::NuscBox& rack : ctx.bicycle_racks)
        if (point_in_nusc_box(rack, b.translation)) return true;
      return false;
    });
  }
  list.erase(end, list.end());
  st.after_bike_racks += list.size();
}

FilterStats filter_eval_boxes(EvalBoxes& boxes, const GroundTruth& gt, const DetectionConfig& cfg) {
  FilterStats st;
  for (std::size_t s = 0; s < boxes.num_samples(); ++s) filter_sample(boxes.boxes(s), context_of(gt, boxes.token(s)), cfg, st);
  return st;
}

}  // namespace bevkd::core::eval

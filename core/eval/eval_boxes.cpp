#include "core/eval/eval_boxes.h"

#include <cmath>

#include "base/error.h"
#include "base/json_writer.h"
#include "core/nuscenes_vocab.h"

namespace bevkd::core::eval {

double EvalBox::ego_dist() const {
  return std::sqrt(ego_translation[0] * ego_translation[0] + ego_translation[1] * ego_translation[1]);
}

void EvalBoxes::add_sample(std::string token, std::vector<EvalBox> boxes) {
  const auto [it, inserted] = index_.emplace(token, tokens_.size());
  BEVKD_CHECK(inserted, "sample ", token, " appears twice");
  tokens_.push_back(std::move(token));
  boxes_.push_back(std::move(boxes));
}

long EvalBoxes::index_of(const std::string& token) const {
  const auto it = index_.find(token);
  return it == index_.end() ? -1 : static_cast<long>(it->second);
}

std::size_t EvalBoxes::total_boxes() const {
  std::size_t n = 0;
  for (const auto& b : boxes_) n += b.size();
  return n;
}

std::string box_problem(const EvalBox& b) {
  if (b.label < 0 || b.label >= kNumClasses)
    return cat(".detection_name: label id ", b.label, " is not a detection class (0..", kNumClasses - 1, ")");
  if (b.attribute < -1 || b.attribute >= kNumAttributes)
    return cat(".attribute_name: attribute id ", b.attribute, " is not an attribute (-1..", kNumAttributes - 1, ")");
  for (int k = 0; k < 3; ++k)
    if (!std::isfinite(b.translation[k]))
      return cat(".translation[", k, "]: expected a finite number, found ", python_float_repr(b.translation[k]));
  for (int k = 0; k < 3; ++k) {
    if (!std::isfinite(b.size[k])) return cat(".size[", k, "]: expected a finite number, found ", python_float_repr(b.size[k]));
    if (!(b.size[k] > 0)) return cat(".size[", k, "]: sizes [w, l, h] must be > 0, found ", python_float_repr(b.size[k]));
  }
  for (int k = 0; k < 4; ++k)
    if (!std::isfinite(b.rotation[k]))
      return cat(".rotation[", k, "]: expected a finite number, found ", python_float_repr(b.rotation[k]));
  if (!(b.rotation[0] * b.rotation[0] + b.rotation[1] * b.rotation[1] + b.rotation[2] * b.rotation[2] +
            b.rotation[3] * b.rotation[3] >
        0))
    return ".rotation: the quaternion [w, x, y, z] is all zeros";
  for (int k = 0; k < 2; ++k)
    if (std::isinf(b.velocity[k]))
      return cat(".velocity[", k, "]: expected a finite number or NaN, found ", python_float_repr(b.velocity[k]));
  if (!std::isfinite(b.score)) return cat(".detection_score: expected a finite number, found ", python_float_repr(b.score));
  return {};
}

void GroundTruth::validate() const {
  const std::string what = description.empty() ? std::string("ground truth") : description;
  BEVKD_CHECK(context.size() == boxes.num_samples(), what, ": ", boxes.num_samples(), " samples but ",
              context.size(), " sample contexts");
  for (std::size_t s = 0; s < boxes.num_samples(); ++s) {
    const auto& list = boxes.boxes(s);
    for (std::size_t i = 0; i < list.size(); ++i) {
      const std::string problem = box_problem(list[i]);
      BEVKD_CHECK(problem.empty(), what, ": sample ", boxes.token(s), " GT box ", i, problem);
    }
  }
}

double quaternion_yaw(const std::array<double, 4>& q_in) {
  double w = q_in[0], x = q_in[1], y = q_in[2], z = q_in[3];
  const double sumsq = w * w + x * x + y * y + z * z;
  if (!(std::abs(1.0 - sumsq) < 1e-14)) {  // pyquaternion's _normalise()
    const double n = std::sqrt(sumsq);
    if (n > 0) {
      w /= n;
      x /= n;
      y /= n;
      z /= n;
    }
  }
  // First column of the rotation matrix: the rotated x axis.
  const double r00 = w * w + x * x - y * y - z * z;
  const double r10 = 2.0 * (x * y + w * z);
  return std::atan2(r10, r00);
}

}  // namespace bevkd::core::eval

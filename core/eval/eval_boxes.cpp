#include "core/eval/eval_boxes.h"

#include <cmath>

#include "base/error.h"
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

void GroundTruth::validate() const {
  const std::string what = description.empty() ? std::string("ground truth") : description;
  BEVKD_CHECK(context.size() == boxes.num_samples(), what, ": ", boxes.num_samples(), " samples but ",
              context.size(), " sample contexts");
  for (std::size_t s = 0; s < boxes.num_samples(); ++s) {
    const auto& list = boxes.boxes(s);
    for (std::size_t i = 0; i < list.size(); ++i) {
      const EvalBox& b = list[i];
      BEVKD_CHECK(b.label >= 0 && b.label < kNumClasses, what, ": sample ", boxes.token(s), " box ", i,
                  ": label ", b.label, " is not a detection class id");
      BEVKD_CHECK(b.attribute >= -1 && b.attribute < kNumAttributes, what, ": sample ", boxes.token(s),
                  " box ", i, ": attribute ", b.attribute, " is not an attribute id");
      for (int k = 0; k < 3; ++k)
        BEVKD_CHECK(std::isfinite(b.translation[k]) && std::isfinite(b.size[k]) && b.size[k] > 0, what,
                    ": sample ", boxes.token(s), " box ", i, ": translation/size must be finite with size > 0, found translation[",
                    k, "] = ", b.translation[k], ", size[", k, "] = ", b.size[k]);
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

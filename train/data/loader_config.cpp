#include "train/data/loader_config.h"

#include <nlohmann/json.hpp>

#include <cmath>

#include "base/error.h"

namespace bevkd::train::data {

void ImageAugConfig::validate(const std::string& where) const {
  BEVKD_CHECK(final_size[0] > 0 && final_size[1] > 0, where, ".final_size: [", final_size[0], ", ", final_size[1],
              "] must be positive (H, W pixels)");
  BEVKD_CHECK(resize_range[0] > 0 && resize_range[0] <= resize_range[1] && std::isfinite(resize_range[1]), where,
              ".resize_range: [", resize_range[0], ", ", resize_range[1], "] must satisfy 0 < min <= max");
  BEVKD_CHECK(rotation_range[0] <= rotation_range[1] && std::abs(rotation_range[0]) <= 180 &&
                  std::abs(rotation_range[1]) <= 180,
              where, ".rotation_range: [", rotation_range[0], ", ", rotation_range[1],
              "] must satisfy -180 <= min <= max <= 180 (degrees)");
  BEVKD_CHECK(flip_prob >= 0 && flip_prob <= 1, where, ".flip_prob: ", flip_prob, " is not in [0, 1]");
  BEVKD_CHECK(reference_width >= 0 && std::isfinite(reference_width), where, ".reference_width: ", reference_width,
              " must be >= 0 (0 = resize_range scales the original image)");
  BEVKD_CHECK(bottom_crop_range[0] >= 0 && bottom_crop_range[0] <= bottom_crop_range[1] && bottom_crop_range[1] < 1,
              where, ".bottom_crop_range: [", bottom_crop_range[0], ", ", bottom_crop_range[1],
              "] must satisfy 0 <= min <= max < 1");
  for (int c = 0; c < 3; ++c)
    BEVKD_CHECK(std::isfinite(mean[c]) && std[c] > 0 && std::isfinite(std[c]), where, ".mean/std: channel ", c,
                " has mean ", mean[c], " and std ", std[c], " (std must be positive)");
}

void LoaderConfig::validate() const {
  BEVKD_CHECK(batch_size >= 1, "loader config: batch_size ", batch_size, " must be >= 1");
  image.validate("loader config: image");
  BEVKD_CHECK(depth_stride >= 1, "loader config: depth.stride ", depth_stride, " must be >= 1");
  BEVKD_CHECK(image.final_size[0] % depth_stride == 0 && image.final_size[1] % depth_stride == 0,
              "loader config: image.final_size [", image.final_size[0], ", ", image.final_size[1],
              "] is not a multiple of depth.stride ", depth_stride);
  BEVKD_CHECK(depth_range[0] > 0 && depth_range[0] < depth_range[1], "loader config: depth.range [", depth_range[0],
              ", ", depth_range[1], "] must satisfy 0 < min < max (m)");
  for (const auto& tap : teacher_taps)
    BEVKD_CHECK(!tap.empty(), "loader config: teacher.taps holds an empty name");
  BEVKD_CHECK(view_policy == "drawn" || view_policy == "fixed", "loader config: views.policy \"", view_policy,
              "\" is not one of drawn, fixed");
  BEVKD_CHECK(fixed_view >= 0, "loader config: views.fixed_view ", fixed_view, " must be >= 0");
  BEVKD_CHECK(view_policy == "drawn" || view_choices.empty(),
              "loader config: views.choices is given but views.policy is \"", view_policy, "\"");
  for (auto v : view_choices) BEVKD_CHECK(v >= 0, "loader config: views.choices holds ", v, ", views are >= 0");
  BEVKD_CHECK(threads >= 1, "loader config: threads ", threads, " must be >= 1");
  BEVKD_CHECK(prefetch_batches >= 1, "loader config: prefetch_batches ", prefetch_batches, " must be >= 1");
}

namespace {

std::string range_str(const nlohmann::json& j) { return j.dump(); }

}  // namespace

void check_view_ranges(const nlohmann::json& shard_config, const std::string& shards_name,
                       const core::nn::BevAugmentConfig& expected, const std::string& expected_name) {
  const nlohmann::json* views = nullptr;
  if (shard_config.is_object() && shard_config.contains("views") && shard_config["views"].is_object())
    views = &shard_config["views"];
  BEVKD_CHECK(views != nullptr && views->contains("augmentation") && (*views)["augmentation"].is_object(),
              shards_name, ": the producing configuration has no views.augmentation (not written by "
              "bevkd-precompute run?), so its view ranges cannot be checked against ", expected_name);
  const nlohmann::json& aug = (*views)["augmentation"];
  const std::int64_t count = views->value("count", std::int64_t{1});
  const bool expects_augmentation = expected.rotation_range[0] != 0 || expected.rotation_range[1] != 0 ||
                                    expected.scale_range[0] != 1 || expected.scale_range[1] != 1 ||
                                    expected.flip_x_prob != 0 || expected.flip_y_prob != 0;
  BEVKD_CHECK(count >= 2 || !expects_augmentation, shards_name, " store ", count,
              " view (no BEV augmentation), but ", expected_name,
              " expects augmented views; rerun bevkd-precompute run with --views 2 or more");

  auto check_pair = [&](const char* key, const std::array<double, 2>& want) {
    BEVKD_CHECK(aug.contains(key) && aug[key].is_array() && aug[key].size() == 2 && aug[key][0].is_number() &&
                    aug[key][1].is_number(),
                shards_name, ": views.augmentation.", key, " is missing or not a pair of numbers");
    const double a = aug[key][0].get<double>(), b = aug[key][1].get<double>();
    BEVKD_CHECK(std::abs(a - want[0]) <= 1e-6 && std::abs(b - want[1]) <= 1e-6, shards_name,
                ": stored views were drawn with views.augmentation.", key, " = ", range_str(aug[key]), ", but ",
                expected_name, " expects [", want[0], ", ", want[1], "]");
  };
  auto check_value = [&](const char* key, double want) {
    BEVKD_CHECK(aug.contains(key) && aug[key].is_number(), shards_name, ": views.augmentation.", key,
                " is missing or not a number");
    const double a = aug[key].get<double>();
    BEVKD_CHECK(std::abs(a - want) <= 1e-6, shards_name, ": stored views were drawn with views.augmentation.", key,
                " = ", a, ", but ", expected_name, " expects ", want);
  };
  check_pair("rotation_range", expected.rotation_range);
  check_pair("scale_range", expected.scale_range);
  check_value("flip_x_prob", expected.flip_x_prob);
  check_value("flip_y_prob", expected.flip_y_prob);
}

StoredViews stored_views(const nlohmann::json& shard_config, std::int64_t count, const std::string& shards_name) {
  StoredViews out;
  out.count = count;
  if (!shard_config.is_object() || !shard_config.contains("views") || !shard_config["views"].is_object() ||
      !shard_config["views"].contains("augmentation"))
    return out;
  const nlohmann::json& aug = shard_config["views"]["augmentation"];
  BEVKD_CHECK(aug.is_object(), shards_name, ": views.augmentation is ", aug.dump(), ", expected an object");
  core::nn::BevAugmentConfig a;
  auto pair = [&](const char* key, std::array<double, 2>* v) {
    BEVKD_CHECK(aug.contains(key) && aug[key].is_array() && aug[key].size() == 2 && aug[key][0].is_number() &&
                    aug[key][1].is_number(),
                shards_name, ": views.augmentation.", key, " is missing or not a pair of numbers");
    *v = {aug[key][0].get<double>(), aug[key][1].get<double>()};
  };
  auto value = [&](const char* key, double* v) {
    BEVKD_CHECK(aug.contains(key) && aug[key].is_number(), shards_name, ": views.augmentation.", key,
                " is missing or not a number");
    *v = aug[key].get<double>();
  };
  pair("rotation_range", &a.rotation_range);
  pair("scale_range", &a.scale_range);
  value("flip_x_prob", &a.flip_x_prob);
  value("flip_y_prob", &a.flip_y_prob);
  out.augmentation = a;
  return out;
}

std::int64_t check_grid_rule(const BevGrid& shards, const std::string& shards_name, const BevGrid& student,
                             const std::string& student_name) {
  auto both = [&] {
    return cat(shards_name, " have the grid ", shards.describe(), "; ", student_name, " has ", student.describe());
  };
  BEVKD_CHECK(shards.valid() && student.valid(), "BEV grids: ", both(), " (an empty grid)");
  const double tol = BevGrid::kSameTolerance;
  bool same_xy = true;
  for (int k : {0, 1, 3, 4}) same_xy = same_xy && std::abs(shards.range[k] - student.range[k]) <= tol;
  BEVKD_CHECK(same_xy, "BEV grids do not cover the same x-y range: ", both(),
              " (DESIGN.md \"Grids\": the student covers the teacher's range)");
  if (shards.H == student.H && shards.W == student.W) return 1;
  // Exact integer ratio of the cell counts, the same on both axes.
  auto ratio = [](std::int64_t big_h, std::int64_t big_w, std::int64_t small_h, std::int64_t small_w) -> std::int64_t {
    if (small_h <= 0 || big_h % small_h != 0 || big_w % small_w != 0) return 0;
    const std::int64_t r = big_h / small_h;
    return big_w / small_w == r ? r : 0;
  };
  const std::int64_t coarser = ratio(shards.H, shards.W, student.H, student.W);  // student cells r x larger
  const std::int64_t finer = ratio(student.H, student.W, shards.H, shards.W);
  BEVKD_CHECK(coarser > 1 || finer > 1, "BEV grids cannot be aligned: ", both(),
              "; the cells must be equal or differ by one integer ratio on both axes (DESIGN.md \"Grids\")");
  return coarser > 1 ? coarser : -finer;
}

}  // namespace bevkd::train::data

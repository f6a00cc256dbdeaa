#include "precompute/run_config.h"

#include <cmath>

#include "base/error.h"
#include "storage/codec.h"

namespace bevkd::precompute {

using nlohmann::json;

void RunConfig::validate() const {
  BEVKD_CHECK(!dataroot.empty(), "run: --dataroot is required");
  BEVKD_CHECK(!version.empty(), "run: --version is empty");
  BEVKD_CHECK(splits.empty() != scenes.empty(), "run: give exactly one of --split and --scenes, got ",
              splits.empty() ? "neither" : "both");
  for (size_t i = 0; i < splits.size(); ++i) {
    BEVKD_CHECK(!splits[i].empty() && splits[i].find('/') == std::string::npos && splits[i] != "." &&
                    splits[i] != "..",
                "run: --split '", splits[i], "' is not a valid split name");
    for (size_t j = 0; j < i; ++j) BEVKD_CHECK(splits[i] != splits[j], "run: --split lists ", splits[i], " twice");
  }
  if (!scenes.empty())
    BEVKD_CHECK(!scenes_split.empty() && scenes_split.find('/') == std::string::npos, "run: --scenes-split '",
                scenes_split, "' is not a valid split name");
  BEVKD_CHECK(nsweeps >= 1, "run: --sweeps is ", nsweeps, ", expected >= 1 (1 = key frame only)");
  teacher.validate();
  BEVKD_CHECK(samples_per_shard >= 1, "run: --samples-per-shard is ", samples_per_shard, ", expected >= 1");
  BEVKD_CHECK(feature_dtype == "float16" || feature_dtype == "int8", "run: --feature-dtype is '", feature_dtype,
              "', expected float16 or int8");
  BEVKD_CHECK(compression_level >= 1 && compression_level <= 22, "run: --compression-level is ", compression_level,
              ", expected 1..22 (zstd)");
  BEVKD_CHECK(views >= 1 && views <= 64, "run: --views is ", views, ", expected 1..64 (view 0 is the identity)");
  view_augment.validate("run: view augmentation");
  BEVKD_CHECK(fg_min_radius >= 0, "run: --fg-min-radius is ", fg_min_radius, ", expected >= 0");
  BEVKD_CHECK(fg_min_overlap > 0 && fg_min_overlap < 1, "run: --fg-min-overlap is ", fg_min_overlap,
              ", expected in (0, 1)");
  BEVKD_CHECK(quality_gamma >= 0 && quality_gamma <= 1, "run: --quality-gamma is ", quality_gamma,
              ", expected in [0, 1]");
  BEVKD_CHECK(depth_stride >= 1, "run: --depth-stride is ", depth_stride, ", expected >= 1");
  BEVKD_CHECK(std::isfinite(depth_min) && depth_min > 0 && depth_max > depth_min, "run: depth limits [", depth_min,
              ", ", depth_max, ") must satisfy 0 < --depth-min < --depth-max");
  BEVKD_CHECK(batch_size >= 1, "run: --batch-size is ", batch_size, ", expected >= 1");
  BEVKD_CHECK(!out_dir.empty(), "run: --out is required");
  BEVKD_CHECK(max_batches_in_flight >= 1, "run: --max-batches-in-flight is ", max_batches_in_flight,
              ", expected >= 1");
  BEVKD_CHECK(threads >= 0, "run: --threads is ", threads, ", expected >= 0 (0 = all cores)");
  BEVKD_CHECK(num_workers >= 1 && worker_index >= 0 && worker_index < num_workers, "run: worker index ", worker_index,
              " (", worker_source, ") is out of range for ", num_workers, " workers (expected 0..", num_workers - 1, ")");
}

json RunConfig::output_json() const {
  json data{{"dataroot", dataroot},
            {"version", version},
            {"splits", splits},
            {"scenes", scenes},
            {"scenes_split", scenes.empty() ? std::string() : scenes_split},
            {"nsweeps", nsweeps},
            {"skip_missing_files", skip_missing_files},
            {"drop_nonfinite_points", drop_nonfinite_points}};
  json t{{"checkpoint", teacher.checkpoint}, {"preset", teacher.preset}, {"torchscript", teacher.torchscript},
         {"device", teacher.device}};
  if (!teacher.torchscript.empty()) {
    t["grid_range"] = teacher.grid_range;
    t["grid_cell"] = teacher.grid_cell;
    t["tasks"] = teacher.tasks;
  }
  const auto& a = view_augment;
  return json{{"data", data},
              {"teacher", t},
              {"shards",
               {{"samples_per_shard", samples_per_shard},
                {"feature_dtype", feature_dtype},
                {"compression_level", compression_level},
                {"shuffle", shuffle}}},
              {"views",
               {{"count", views},
                {"rotation_range", a.rotation_range},
                {"scale_range", a.scale_range},
                {"flip_x_prob", a.flip_x_prob},
                {"flip_y_prob", a.flip_y_prob}}},
              {"fg_mask", {{"min_radius", fg_min_radius}, {"min_overlap", fg_min_overlap}}},
              {"quality", {{"gamma", quality_gamma}, {"matching", "best 3D IoU among valid GT of the same class"}}},
              {"depth",
               {{"stride", depth_stride},
                {"min_depth", depth_min},
                {"max_depth", depth_max},
                {"key_frame_only", depth_key_frame_only}}},
              {"inference", {{"batch_size", batch_size}}},
              {"seed", seed}};
}

json RunConfig::to_json() const {
  return json{{"config", output_json()},
              {"runtime",
               {{"out_dir", out_dir},
                {"threads", threads},
                {"num_workers", num_workers},
                {"worker_index", worker_index},
                {"worker_source", worker_source},
                {"quiet", quiet},
                {"max_batches_in_flight", max_batches_in_flight},
                {"created_utc", created_utc}}}};
}

std::string RunConfig::output_hash() const {
  const std::string text = output_json().dump();
  return "xxh64:" + storage::hex64(storage::xxh64(text.data(), text.size()));
}

std::vector<std::string> RunConfig::split_names() const {
  return scenes.empty() ? splits : std::vector<std::string>{scenes_split};
}

std::string first_difference(const json& stored, const json& given) {
  struct Walk {
    static std::string run(const json& a, const json& b, const std::string& path) {
      const auto label = [&](const std::string& k) { return path.empty() ? k : path + "." + k; };
      if (a.is_object() && b.is_object()) {
        for (auto it = a.begin(); it != a.end(); ++it) {
          if (!b.contains(it.key()))
            return cat(label(it.key()), " (stored ", it.value().dump(), ", given: absent)");
          std::string d = run(it.value(), b.at(it.key()), label(it.key()));
          if (!d.empty()) return d;
        }
        for (auto it = b.begin(); it != b.end(); ++it)
          if (!a.contains(it.key())) return cat(label(it.key()), " (stored: absent, given ", it.value().dump(), ")");
        return "";
      }
      if (a.is_array() && b.is_array() && a.size() == b.size()) {
        for (size_t i = 0; i < a.size(); ++i) {
          std::string d = run(a[i], b[i], cat(path, "[", i, "]"));
          if (!d.empty()) return d;
        }
        return "";
      }
      if (a == b) return "";
      return cat(path.empty() ? "<root>" : path, " (stored ", a.dump(), ", given ", b.dump(), ")");
    }
  };
  return Walk::run(stored, given, "");
}

}  // namespace bevkd::precompute

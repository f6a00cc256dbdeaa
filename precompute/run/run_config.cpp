#include "precompute/run/run_config.h"

#include <cmath>

#include "base/config.h"
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

json RunConfig::to_json() const { return config::to_json(*this); }

json RunConfig::output_json() const {
  json j = to_json();
  j.erase("runtime");
  return j;
}

std::string RunConfig::output_hash() const {
  const std::string text = output_json().dump();
  return "xxh64:" + storage::hex64(storage::xxh64(text.data(), text.size()));
}

std::vector<std::string> RunConfig::split_names() const {
  return scenes.empty() ? splits : std::vector<std::string>{scenes_split};
}

}  // namespace bevkd::precompute

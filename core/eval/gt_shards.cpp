#include "core/eval/gt_shards.h"

#include <cmath>
#include <limits>
#include <memory>

#include "base/error.h"
#include "schemas/shard_names.h"
#include "base/fs.h"
#include "core/geometry.h"
#include "core/nuscenes/splits.h"
#include "core/nuscenes_vocab.h"
#include "storage/manifest.h"
#include "storage/shard_reader.h"

namespace bevkd::core::eval {

namespace ds = schemas::ds;
namespace {

NuscBox global_box(const float* b9, const Rigid& ego2global, bool velocity_valid) {
  Box b = Box::from_array(b9);
  NuscBox g = to_nusc_box(b, ego2global);
  if (!velocity_valid) g.velocity = {std::numeric_limits<double>::quiet_NaN(), std::numeric_limits<double>::quiet_NaN()};
  return g;
}

}  // namespace

GroundTruth shard_ground_truth(const std::string& manifest_path, const std::string& split) {
  const std::string mpath = storage::Manifest::file_of(manifest_path);
  const storage::Manifest manifest = storage::Manifest::load(mpath);
  GroundTruth gt;
  gt.split_kind = nusc::is_predefined_split(split) ? SplitKind::kPredefined : SplitKind::kCustom;
  gt.description = cat(mpath, " split ", split);
  int shards = 0;
  for (const storage::ManifestShard& entry : manifest.shards()) {
    if (entry.split != split) continue;
    ++shards;
    std::unique_ptr<storage::ShardReader> opened;
    try {
      opened = std::make_unique<storage::ShardReader>(manifest.shard_path(entry), manifest.open_options(entry, false));
      manifest.check_shard(opened->header(), entry, cat("shard ", manifest.shard_path(entry)));
    } catch (const Error& e) {
      gt.unreadable.push_back(cat(e.what(), " (its ", entry.num_samples, " samples are left out)"));
      continue;
    }
    const storage::ShardReader& reader = *opened;
    // Shard label -> bevkd label (the shard names its classes itself).
    const std::vector<std::string>& names = reader.header().meta.class_names;
    std::vector<int> label_map(names.size());
    for (std::size_t k = 0; k < names.size(); ++k) {
      label_map[k] = class_index(names[k]);
      BEVKD_CHECK(label_map[k] >= 0, reader.path(), ": class_names[", k, "] is \"", names[k],
                  "\", not one of the 10 nuScenes detection classes");
    }
    storage::ReadOptions verify;
    verify.verify = true;  // GT decides the metrics: a damaged sample is left out, not evaluated
    for (std::int64_t i = 0; i < reader.num_samples(); ++i) {
      storage::Sample s;
      try {
        s = reader.read(i, {ds::kSampleToken, ds::kEgo2global, "gt/*"}, verify);
      } catch (const Error& e) {
        gt.unreadable.push_back(cat(e.what(), " (the sample is left out)"));
        continue;
      }
      const std::string where = cat(reader.path(), " sample ", i);
      const std::array<double, 16> m = [&] {
        std::array<double, 16> out{};
        const double* p = s.get(ds::kEgo2global).data<double>();
        std::copy(p, p + 16, out.begin());
        return out;
      }();
      const Rigid ego2global = Rigid::from_mat4(m);
      SampleContext ctx;
      ctx.ego_translation = ego2global.t;

      const storage::Array& boxes = s.get(ds::kGtBoxes);
      const storage::Array& labels = s.get(ds::kGtLabels);
      const storage::Array& attrs = s.get(ds::kGtAttributes);
      const storage::Array& lidar = s.get(ds::kGtNumLidarPts);
      const storage::Array& radar = s.get(ds::kGtNumRadarPts);
      const storage::Array& vel_ok = s.get(ds::kGtVelocityValid);
      const std::int64_t n = boxes.shape()[0];
      std::vector<EvalBox> out;
      out.reserve(static_cast<std::size_t>(n));
      for (std::int64_t g = 0; g < n; ++g) {
        const int shard_label = labels.data<std::int16_t>()[g];
        BEVKD_CHECK(shard_label >= 0 && shard_label < static_cast<int>(label_map.size()), where, ": gt/labels[",
                    g, "] is ", shard_label, ", expected 0..", label_map.size() - 1);
        const int attribute = attrs.data<std::int16_t>()[g];
        BEVKD_CHECK(attribute >= -1 && attribute < kNumAttributes, where, ": gt/attributes[", g, "] is ",
                    attribute, ", expected -1..", kNumAttributes - 1);
        const NuscBox nb = global_box(boxes.data<float>() + 9 * g, ego2global, vel_ok.data<std::uint8_t>()[g] != 0);
        EvalBox b;
        b.translation = nb.translation;
        b.size = nb.size;
        b.rotation = {nb.rotation.w, nb.rotation.x, nb.rotation.y, nb.rotation.z};
        b.velocity = nb.velocity;
        b.num_pts = lidar.data<std::int32_t>()[g] + radar.data<std::int32_t>()[g];
        b.label = label_map[static_cast<std::size_t>(shard_label)];
        b.attribute = attribute;
        b.score = -1.0;
        out.push_back(b);
      }
      const storage::Array& racks = s.get(ds::kGtRackBoxes);
      for (std::int64_t r = 0; r < racks.shape()[0]; ++r)
        ctx.bicycle_racks.push_back(global_box(racks.data<float>() + 9 * r, ego2global, true));
      gt.boxes.add_sample(s.get(ds::kSampleToken).string_at(0), std::move(out));
      gt.context.push_back(std::move(ctx));
    }
  }
  BEVKD_CHECK(shards > 0, mpath, ": no shard of split \"", split, "\" (the manifest lists ",
              manifest.shards().size(), " shards)");
  if (!gt.unreadable.empty()) {
    gt.split_kind = SplitKind::kCustom;
    gt.description += cat(" (", gt.unreadable.size(), " damaged shard(s) or sample(s) left out)");
  }
  BEVKD_CHECK(gt.boxes.num_samples() > 0, mpath, ": no readable sample of split \"", split, "\": ",
              gt.unreadable.empty() ? std::string() : gt.unreadable.front());
  gt.validate();
  return gt;
}

}  // namespace bevkd::core::eval

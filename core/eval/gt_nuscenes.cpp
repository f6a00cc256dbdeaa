#include "core/eval/gt_nuscenes.h"

#include <unordered_set>

#include "base/error.h"
#include "core/nuscenes/splits.h"
#include "core/nuscenes_vocab.h"

namespace bevkd::core::eval {

namespace {

GroundTruth build(const nusc::NuScenes& db, const std::vector<std::uint32_t>& samples, SplitKind kind,
                  std::string description) {
  BEVKD_CHECK(!samples.empty(), description, ": no samples in ", db.dataroot(), "/", db.version());
  GroundTruth gt;
  gt.split_kind = kind;
  gt.description = std::move(description);
  // Attribute table index -> detection attribute id.
  std::vector<int> attribute_id(db.attribute().size());
  for (std::size_t a = 0; a < db.attribute().size(); ++a) attribute_id[a] = attribute_index(db.attribute()[a].name);
  for (const std::uint32_t s : samples) {
    SampleContext ctx;
    ctx.ego_translation = db.lidar_key_pose(s).translation;
    std::vector<EvalBox> boxes;
    for (const std::uint32_t ann : db.sample_anns(s)) {
      const std::string_view category = db.category_name(ann);
      const nusc::SampleAnnotation& rec = db.sample_annotation()[ann];
      if (category == kBicycleRackCategory) {
        ctx.bicycle_racks.push_back(rec.box());
        continue;
      }
      const int label = class_from_category(category);
      if (label < 0) continue;  // not one of the 10 detection classes: not a GT box at all
      const nusc::Span<std::uint32_t> attrs = db.attributes_of(ann);
      BEVKD_CHECK(attrs.size() <= 1, db.table_path(nusc::Table::kSampleAnnotation), ": annotation ",
                  db.token(nusc::Table::kSampleAnnotation, ann), " has ", attrs.size(),
                  " attributes; the detection evaluation allows at most one");
      EvalBox b;
      b.translation = rec.translation;
      b.size = rec.size;
      b.rotation = {rec.rotation.w, rec.rotation.x, rec.rotation.y, rec.rotation.z};
      const core::Vec3 v = db.box_velocity(ann);
      b.velocity = {v[0], v[1]};
      b.num_pts = rec.num_lidar_pts + rec.num_radar_pts;
      b.label = label;
      b.score = -1.0;
      if (!attrs.empty()) {
        b.attribute = attribute_id[attrs[0]];
        BEVKD_CHECK(b.attribute >= 0, db.table_path(nusc::Table::kSampleAnnotation), ": annotation ",
                    db.token(nusc::Table::kSampleAnnotation, ann), " has attribute \"", db.attribute()[attrs[0]].name,
                    "\", which is not one of the 8 nuScenes attributes");
      }
      boxes.push_back(b);
    }
    gt.boxes.add_sample(std::string(db.token(nusc::Table::kSample, s)), std::move(boxes));
    gt.context.push_back(std::move(ctx));
  }
  gt.validate();
  return gt;
}

}  // namespace

GroundTruth nuscenes_ground_truth(const nusc::NuScenes& db, const std::string& split) {
  const bool predefined = nusc::is_predefined_split(split);
  if (split == "test")
    BEVKD_CHECK(!db.sample_annotation().empty(), db.dataroot(), "/", db.version(),
                ": split test has no annotations (sample_annotation.json is empty), nothing to evaluate against");
  return build(db, db.split_samples(split), predefined ? SplitKind::kPredefined : SplitKind::kCustom,
               cat(db.version(), " split ", split));
}

GroundTruth nuscenes_ground_truth_of_scenes(const nusc::NuScenes& db, const std::vector<std::string>& scenes) {
  std::unordered_set<std::string> known;
  for (const nusc::Scene& sc : db.scene()) known.insert(sc.name);
  for (const std::string& name : scenes)
    BEVKD_CHECK(known.count(name) > 0, db.table_path(nusc::Table::kScene), ": no scene named \"", name, "\"");
  std::string names;
  for (std::size_t i = 0; i < scenes.size() && i < 3; ++i) names += cat(i ? ", " : "", scenes[i]);
  if (scenes.size() > 3) names += cat(" and ", scenes.size() - 3, " more");
  return build(db, db.samples_of_scenes(scenes), SplitKind::kCustom, cat(db.version(), " scenes ", names));
}

}  // namespace bevkd::core::eval

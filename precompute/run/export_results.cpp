#include "precompute/run/export_results.h"

#include <algorithm>
#include <filesystem>
#include <memory>
#include <numeric>

#include "base/error.h"
#include "schemas/shard_names.h"
#include "base/fs.h"
#include "core/eval/results_io.h"
#include "core/nuscenes_vocab.h"
#include "storage/manifest.h"
#include "storage/shard_reader.h"

namespace bevkd::precompute {

namespace ds = schemas::ds;

ExportResultsSummary export_teacher_results(const ExportResultsOptions& opts) {
  const std::string mpath = opts.shards.size() >= 5 && opts.shards.compare(opts.shards.size() - 5, 5, ".json") == 0
                                ? opts.shards
                                : opts.shards + "/" + storage::Manifest::kFileName;
  const storage::Manifest manifest = storage::Manifest::load(mpath);
  std::vector<core::eval::SampleDetections> samples;
  ExportResultsSummary summary;
  storage::ReadOptions view0;
  view0.view = 0;
  for (const auto& entry : manifest.shards()) {
    if (entry.split != opts.split) continue;
    std::unique_ptr<storage::ShardReader> opened;
    try {
      opened = std::make_unique<storage::ShardReader>(manifest.shard_path(entry), manifest.open_options(entry, false));
    } catch (const Error& e) {
      summary.unreadable.push_back(cat(e.what(), " (its ", entry.num_samples, " samples are left out)"));
      continue;
    }
    const storage::ShardReader& reader = *opened;
    const auto& names = reader.header().meta.class_names;
    std::vector<int> label_map(names.size());
    for (size_t k = 0; k < names.size(); ++k) {
      label_map[k] = core::class_index(names[k]);
      BEVKD_CHECK(label_map[k] >= 0, reader.path(), ": class_names[", k, "] is \"", names[k],
                  "\", not one of the 10 nuScenes detection classes");
    }
    for (int64_t i = 0; i < reader.num_samples(); ++i) {
      storage::Sample s;
      try {
        s = reader.read(i, {ds::kSampleToken, ds::kEgo2global, ds::kTeacherBoxes, ds::kTeacherScores, ds::kTeacherLabels}, view0);
      } catch (const Error& e) {
        summary.unreadable.push_back(cat(e.what(), " (the sample is left out)"));
        continue;
      }
      core::eval::SampleDetections d;
      d.sample_token = s.get(ds::kSampleToken).string_at(0);
      std::array<double, 16> m{};
      std::copy_n(s.get(ds::kEgo2global).data<double>(), 16, m.begin());
      d.ego2global = core::Rigid::from_mat4(m);
      const auto& boxes = s.get(ds::kTeacherBoxes);
      const float* scores = s.get(ds::kTeacherScores).data<float>();
      const auto* labels = s.get(ds::kTeacherLabels).data<std::int16_t>();
      std::vector<int64_t> order(static_cast<size_t>(boxes.dim(0)));
      std::iota(order.begin(), order.end(), 0);
      std::stable_sort(order.begin(), order.end(), [&](int64_t a, int64_t b) { return scores[a] > scores[b]; });
      if (order.size() > static_cast<size_t>(opts.max_boxes_per_sample))
        order.resize(static_cast<size_t>(opts.max_boxes_per_sample));
      for (int64_t k : order) {
        const int shard_label = labels[k];
        BEVKD_CHECK(shard_label >= 0 && static_cast<size_t>(shard_label) < label_map.size(), reader.path(),
                    ": sample ", i, " teacher/labels has ", shard_label, ", outside class_names");
        core::eval::EgoDetection e;
        e.box = core::Box::from_array(boxes.data<float>() + 9 * k);
        e.label = label_map[static_cast<size_t>(shard_label)];
        e.score = scores[k];
        e.attribute = core::attribute_index(core::default_attribute(e.label));
        d.detections.push_back(e);
      }
      summary.boxes += static_cast<int64_t>(d.detections.size());
      samples.push_back(std::move(d));
    }
  }
  BEVKD_CHECK(!samples.empty(), mpath, ": no readable sample of split ", opts.split,
              summary.unreadable.empty() ? std::string() : cat(" (", summary.unreadable.front(), ")"), " (splits: ",
              [&] {
                std::string s;
                for (const auto& x : manifest.splits()) s += (s.empty() ? "" : ", ") + x;
                return s;
              }(),
              ")");
  summary.samples = static_cast<int64_t>(samples.size());
  core::eval::ResultsMeta meta;
  meta.use_lidar = true;
  if (const auto parent = std::filesystem::path(opts.out).parent_path(); !parent.empty()) make_dirs(parent.string());
  core::eval::write_results_json(opts.out, core::eval::to_eval_boxes(samples), meta, opts.max_boxes_per_sample);
  return summary;
}

}  // namespace bevkd::precompute

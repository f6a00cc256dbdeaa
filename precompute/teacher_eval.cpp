#include "precompute/teacher_eval.h"

#include <tbb/parallel_for.h>

#include <iostream>

#include "base/error.h"
#include "base/fs.h"
#include "base/progress.h"
#include "core/eval/evaluate.h"
#include "core/eval/gt_nuscenes.h"
#include "core/eval/report.h"
#include "core/eval/results_io.h"
#include "core/nuscenes/tables.h"
#include "precompute/lidar_frames.h"

namespace bevkd::precompute {

TeacherEvalResult evaluate_teacher(Teacher& teacher, const TeacherEvalOptions& opts) {
  BEVKD_CHECK(opts.batch_size >= 1, "evaluate teacher: batch_size must be >= 1, got ", opts.batch_size);
  BEVKD_CHECK(!opts.out_dir.empty(), "evaluate teacher: no output directory");
  auto db = std::make_shared<const core::nusc::NuScenes>(core::nusc::NuScenes::load(opts.dataroot, opts.version));
  const auto gt = core::eval::nuscenes_ground_truth(*db, opts.split);
  NuscenesFramesOptions fo;
  fo.split = opts.split;
  fo.num_sweeps = opts.num_sweeps;
  const auto frames = open_nuscenes_frames(db, fo);
  const int64_t n = frames->size();

  ProgressOptions po;
  po.unit = "samples";
  po.enabled = !opts.quiet;
  Progress progress("eval-teacher " + opts.split, n, po);
  std::vector<core::eval::SampleDetections> samples(static_cast<size_t>(n));
  for (int64_t first = 0; first < n; first += opts.batch_size) {
    const int64_t count = std::min(opts.batch_size, n - first);
    std::vector<LidarFrame> batch(static_cast<size_t>(count));
    tbb::parallel_for(int64_t{0}, count, [&](int64_t i) { batch[static_cast<size_t>(i)] = frames->frame(first + i); });
    std::vector<torch::Tensor> points;
    for (const auto& f : batch) points.push_back(f.points);
    const auto out = teacher.infer(points);
    for (int64_t i = 0; i < count; ++i) {
      const auto& f = batch[static_cast<size_t>(i)];
      const auto& d = out.detections[static_cast<size_t>(i)];
      auto& s = samples[static_cast<size_t>(first + i)];
      s.sample_token = f.sample_token;
      s.ego2global = f.ego_to_global;
      const auto boxes = d.boxes.contiguous();
      for (int64_t k = 0; k < d.size(); ++k) {
        core::eval::EgoDetection e;
        e.box = core::Box::from_array(boxes[k].data_ptr<float>());
        e.label = static_cast<int>(d.labels[k].item<int64_t>());
        e.score = d.scores[k].item<float>();
        // The teacher has no attribute head: mmdetection3d's per-class default attribute.
        e.attribute = core::attribute_index(core::default_attribute(e.label));
        s.detections.push_back(e);
      }
    }
    progress.advance(count);
  }
  progress.finish();

  const auto preds = core::eval::to_eval_boxes(samples);
  core::eval::ResultsMeta meta;
  meta.use_lidar = true;
  make_dirs(opts.out_dir);
  TeacherEvalResult r;
  r.results_path = opts.out_dir + "/results_nusc.json";
  core::eval::write_results_json(r.results_path, preds, meta);
  core::eval::EvalOptions eo;
  eo.predictions_name = r.results_path;
  const auto result = core::eval::evaluate(gt, preds, core::eval::DetectionConfig::cvpr_2019(), meta, eo);
  core::eval::write_eval_outputs(opts.out_dir, result, /*plots=*/true);
  r.metrics_path = opts.out_dir + "/metrics_summary.json";
  r.map = result.metrics.mean_ap;
  r.nds = result.metrics.nd_score;
  r.table = core::eval::format_summary(result.metrics);
  if (!opts.quiet) std::cerr << r.table << "\n";
  return r;
}

}  // namespace bevkd::precompute

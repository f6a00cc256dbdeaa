#include "precompute/fit/teacher_eval.h"

#include <tbb/parallel_for.h>

#include <iostream>

#include "base/error.h"
#include "base/fs.h"
#include "base/progress.h"
#include "core/eval/detections_eval.h"
#include "core/eval/gt_nuscenes.h"
#include "core/nn/detections_eval.h"
#include "core/nuscenes/tables.h"
#include "precompute/fit/lidar_frames.h"

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
      samples[static_cast<size_t>(first + i)] =
          core::nn::sample_detections(out.detections[static_cast<size_t>(i)], f.sample_token, f.ego_to_global);
    }
    progress.advance(count);
  }
  progress.finish();

  core::eval::DetectionsEvalOptions eo;
  eo.out_dir = opts.out_dir;
  eo.meta.use_lidar = true;
  const auto ev = core::eval::evaluate_detections(samples, gt, eo);
  TeacherEvalResult r;
  r.results_path = ev.results_path;
  r.metrics_path = ev.metrics_path;
  r.map = ev.map;
  r.nds = ev.nds;
  r.table = ev.table;
  if (!opts.quiet) std::cerr << r.table << "\n";
  return r;
}

}  // namespace bevkd::precompute

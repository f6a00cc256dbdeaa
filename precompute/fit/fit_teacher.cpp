#include "precompute/fit/fit_teacher.h"

#include <tbb/parallel_for.h>
#include <tbb/task_arena.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>

#include "base/config.h"
#include "base/error.h"
#include "base/fs.h"
#include "base/prefetch_queue.h"
#include "base/progress.h"
#include "base/rng.h"
#include "core/nn/center_loss.h"
#include "core/nn/center_targets.h"
#include "core/nn/checkpoint.h"
#include "core/nn/gt_filter.h"
#include "core/nn/metrics_log.h"
#include "precompute/fit/lidar_frames.h"
#include "precompute/fit/teacher_eval.h"
#include "precompute/teacher/builtin_teacher.h"
#include "precompute/teacher/pointpillars.h"

namespace bevkd::precompute {

namespace nn = core::nn;
using nlohmann::json;
using Clock = std::chrono::steady_clock;

namespace {

double seconds_since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

std::string fmt(double v, int prec = 4) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*g", prec, v);
  return buf;
}

// ---- data -----------------------------------------------------------------------------------

struct TrainBatch {
  PillarBatch pillars;
  std::vector<nn::TaskTargets> targets;
  std::vector<std::string> tokens;
  int64_t num_gt = 0;
};

struct DataContext {
  const FitTeacherConfig& cfg;
  const TeacherModelConfig& model_cfg;
  const LidarFrameSource& source;
  int64_t steps_per_epoch;
};

std::vector<int64_t> epoch_order(uint64_t seed, int64_t epoch, int64_t n) {
  std::vector<int64_t> order(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) order[static_cast<size_t>(i)] = i;
  Rng rng(mix_keys(seed, 0x5EED, static_cast<uint64_t>(epoch)));
  rng.shuffle(order);
  return order;
}

// A non-finite input is the data's fault, not the optimiser's: name the sample and its file.
void check_finite_inputs(const LidarFrame& f, const nn::TrainingGt& gt) {
  if (f.points.numel() > 0 && !torch::isfinite(f.points).all().item<bool>()) {
    const auto bad = torch::isfinite(f.points).all(1).logical_not().nonzero();
    const int64_t k = bad[0][0].item<int64_t>();
    const auto p = f.points[k];
    BEVKD_FAIL("fit-teacher: sample ", f.sample_token, ": LiDAR point ", k, " of its cloud (key frame ",
               f.lidar_path, ", time lag ", p[4].item<float>(), " s) is not finite: (", p[0].item<float>(), ", ",
               p[1].item<float>(), ", ", p[2].item<float>(), ", ", p[3].item<float>(),
               "). The input data is broken; no learning rate fixes that");
  }
  if (gt.size() > 0 && !torch::isfinite(gt.boxes.narrow(1, 0, 7)).all().item<bool>())
    BEVKD_FAIL("fit-teacher: sample ", f.sample_token, ": a ground-truth box of its annotations is not finite "
               "(the dataset's sample_annotation records are broken)");
}

// One training sample: frame -> training GT -> augmentation -> point shuffle -> GT range filter.
void prepare_sample(const DataContext& ctx, int64_t epoch, int64_t position, int64_t index, torch::Tensor* points,
                    nn::TrainingGt* gt_out, std::string* token) {
  const auto& cfg = ctx.cfg;
  const auto frame = ctx.source.frame(index);
  auto gt = nn::training_gt(frame.stored_gt());
  check_finite_inputs(frame, gt);
  auto pts = frame.points;
  Rng rng(mix_keys(cfg.seed, static_cast<uint64_t>(epoch), static_cast<uint64_t>(position)));
  if (cfg.augment) {
    const auto t = cfg.augmentation.sample(rng);
    pts = t.apply_points(pts);
    gt.boxes = t.apply_boxes(gt.boxes);
  }
  if (cfg.shuffle_points && pts.size(0) > 1) {
    std::vector<int64_t> perm(static_cast<size_t>(pts.size(0)));
    for (size_t i = 0; i < perm.size(); ++i) perm[i] = static_cast<int64_t>(i);
    rng.shuffle(perm);
    pts = pts.index_select(0, torch::tensor(perm, torch::kInt64));
  }
  *points = pts.contiguous();
  *gt_out = nn::in_range(gt, ctx.model_cfg.pillar_grid());
  *token = frame.sample_token;
}

TrainBatch load_batch(const DataContext& ctx, tbb::task_arena& arena, int64_t step) {
  const int64_t n = ctx.source.size();
  const int64_t epoch = step / ctx.steps_per_epoch;
  const int64_t first = (step % ctx.steps_per_epoch) * ctx.cfg.batch_size;
  const int64_t count = std::min(ctx.cfg.batch_size, n - first);
  const auto order = epoch_order(ctx.cfg.seed, epoch, n);
  std::vector<torch::Tensor> points(static_cast<size_t>(count));
  std::vector<nn::TrainingGt> gts(static_cast<size_t>(count));
  TrainBatch b;
  b.tokens.resize(static_cast<size_t>(count));
  arena.execute([&] {
    tbb::parallel_for(int64_t{0}, count, [&](int64_t i) {
      const auto k = static_cast<size_t>(i);
      prepare_sample(ctx, epoch, first + i, order[static_cast<size_t>(first + i)], &points[k], &gts[k], &b.tokens[k]);
    });
  });
  std::vector<torch::Tensor> boxes, labels;
  for (const auto& g : gts) {
    boxes.push_back(g.boxes);
    labels.push_back(g.labels);
    b.num_gt += g.size();
  }
  b.pillars = pillarize_batch(points, ctx.model_cfg.pillars, /*training=*/true);
  b.targets = nn::center_targets(boxes, labels, ctx.model_cfg.target_config());
  return b;
}

// ---- the run --------------------------------------------------------------------------------

struct FitRun {
  const FitTeacherConfig& cfg;
  TeacherModelConfig model_cfg;
  json resolved;             // the resolved configuration (config.json)
  std::string latest, final_ckpt, metrics_path;
  std::unique_ptr<LidarFrameSource> source;
  int64_t steps_per_epoch = 0, total = 0, step = 0;
  PointPillarsCenterPoint model{nullptr};
  std::unique_ptr<torch::optim::AdamW> opt;
  std::unique_ptr<nn::MetricsLog> log;
  json last_metrics = json::object();
  Clock::time_point t_start = Clock::now();
};

// The parts of the resolved configuration a resumed run must share with the checkpoint's.
json resume_identity(const json& resolved) {
  json j = resolved;
  j.erase("runtime");
  j.erase("evaluation");
  return j;
}

void setup(FitRun& r) {
  const auto& cfg = r.cfg;
  r.model_cfg = cfg.resolved_model();
  if (cfg.threads > 0) torch::set_num_threads(static_cast<int>(cfg.threads));
  make_dirs(cfg.out_dir);
  FitTeacherConfig resolved = cfg;
  resolved.model = r.model_cfg;
  resolved.model_config.clear();
  resolved.preset = r.model_cfg.preset;
  r.resolved = config::to_json(resolved);
  write_file_atomic(cfg.out_dir + "/config.json", r.resolved.dump(2) + "\n");
  r.latest = cfg.out_dir + "/checkpoint-latest.ckpt";
  r.final_ckpt = cfg.out_dir + "/teacher.ckpt";
  r.metrics_path = cfg.out_dir + "/metrics.jsonl";

  NuscenesFramesOptions fo;
  fo.dataroot = cfg.dataroot;
  fo.version = cfg.version;
  fo.split = cfg.train_split;
  fo.num_sweeps = cfg.num_sweeps;
  r.source = open_nuscenes_frames(fo);
  BEVKD_CHECK(r.source->size() > 0, "fit-teacher: split ", cfg.train_split, " of ", cfg.dataroot, " has no samples");
  r.steps_per_epoch = (r.source->size() + cfg.batch_size - 1) / cfg.batch_size;
  r.total = r.steps_per_epoch * cfg.epochs;

  torch::manual_seed(cfg.seed);
  r.model = PointPillarsCenterPoint(r.model_cfg);
  r.model->to(torch::Device(cfg.device));
  r.opt = std::make_unique<torch::optim::AdamW>(
      r.model->parameters(), torch::optim::AdamWOptions(cfg.schedule.lr).weight_decay(cfg.weight_decay));
}

void resume_or_start(FitRun& r) {
  const auto& cfg = r.cfg;
  if (!(cfg.resume && path_exists(r.latest))) {
    r.log = std::make_unique<nn::MetricsLog>(r.metrics_path, -1);
    return;
  }
  const auto ck = nn::read_checkpoint(r.latest, kTeacherCheckpointKind);
  const json meta = config::parse(ck.meta_json, "checkpoint " + r.latest + " meta");
  BEVKD_CHECK(meta.contains("fit") && meta.contains("step"), "cannot resume from ", r.latest,
              ": it holds no training state (a final teacher checkpoint?)");
  const std::string diff =
      config::first_difference(resume_identity(meta.at("fit")), resume_identity(r.resolved), "the checkpoint", "this run");
  BEVKD_CHECK(diff.empty(), "cannot resume from ", r.latest, ": it was made with another configuration, first "
              "difference at ", diff, " (use another --out directory, or --no-resume to start over)");
  nn::load_module_state(*r.model, ck.module("model", r.latest), "checkpoint " + r.latest,
                        "preset " + r.model_cfg.preset);
  BEVKD_CHECK(ck.optimizers.count("adamw") != 0, "cannot resume from ", r.latest, ": it holds no optimizer state");
  nn::optimizer_from_bytes(*r.opt, ck.optimizers.at("adamw"), r.latest);
  r.step = meta.at("step").get<int64_t>();
  r.log = std::make_unique<nn::MetricsLog>(r.metrics_path, r.step);
  if (!cfg.quiet)
    std::cerr << "fit-teacher: resuming from " << r.latest << " at step " << r.step << "/" << r.total << "\n";
}

void save_latest(FitRun& r, int64_t done) {
  nn::Checkpoint ck;
  ck.kind = kTeacherCheckpointKind;
  ck.meta_json = json{{"config", config::to_json(r.model_cfg)},
                      {"fit", r.resolved},
                      {"step", done},
                      {"epoch", done / r.steps_per_epoch},
                      {"metrics", r.last_metrics}}
                     .dump();
  ck.modules["model"] = nn::module_state(*r.model);
  ck.optimizers["adamw"] = nn::optimizer_to_bytes(*r.opt);
  nn::save_checkpoint(r.latest, ck);
}

// Sums of the logged interval.
struct Interval {
  double loss = 0, heatmap = 0, bbox = 0, wait_s = 0;
  int64_t steps = 0, samples = 0;
  Clock::time_point start = Clock::now();
};

void log_interval(FitRun& r, Interval& iv, int64_t done, int64_t end, int64_t first_step, double lr,
                  Clock::time_point t_run, FitTeacherResult& result) {
  const double dt = seconds_since(iv.start);
  const double rate = dt > 0 ? static_cast<double>(iv.samples) / dt : 0;
  const double eta = static_cast<double>(end - done) * seconds_since(t_run) / static_cast<double>(done - first_step);
  const double n = static_cast<double>(iv.steps);
  r.last_metrics = json{{"step", done},
                        {"epoch", static_cast<double>(done) / static_cast<double>(r.steps_per_epoch)},
                        {"loss", iv.loss / n},
                        {"loss_heatmap", iv.heatmap / n},
                        {"loss_bbox", iv.bbox / n},
                        {"lr", lr},
                        {"samples_per_s", rate},
                        {"data_wait", dt > 0 ? iv.wait_s / dt : 0.0},
                        {"elapsed_s", seconds_since(r.t_start)}};
  r.log->append(r.last_metrics);
  result.last_loss = iv.loss / n;
  if (!r.cfg.quiet)
    std::cerr << "fit-teacher  step " << done << "/" << r.total << "  epoch "
              << fmt(static_cast<double>(done) / static_cast<double>(r.steps_per_epoch), 3) << "/" << r.cfg.epochs
              << "  loss " << fmt(result.last_loss) << " (heatmap " << fmt(iv.heatmap / n) << ", bbox "
              << fmt(iv.bbox / n) << ")  lr " << fmt(lr, 3) << "  " << fmt(rate, 3) << " samples/s  data wait "
              << fmt(dt > 0 ? 100 * iv.wait_s / dt : 0.0, 2) << "%  ETA " << Progress::format_duration(eta) << "\n";
  iv = Interval{};
}

void train_steps(FitRun& r, FitTeacherResult& result) {
  const auto& cfg = r.cfg;
  const int64_t end = cfg.stop_after > 0 ? std::min(r.total, cfg.stop_after) : r.total;
  if (r.step >= end) return;
  if (!cfg.quiet)
    std::cerr << "fit-teacher: " << r.source->describe() << ", preset " << r.model_cfg.preset << ", "
              << r.steps_per_epoch << " steps/epoch x " << cfg.epochs << " epochs, batch " << cfg.batch_size
              << ", device " << cfg.device << "\n";
  r.model->train();
  const DataContext ctx{cfg, r.model_cfg, *r.source, r.steps_per_epoch};
  tbb::task_arena arena(static_cast<int>(std::max<int64_t>(cfg.num_workers, 1)));
  Prefetcher<TrainBatch> prefetch(r.step, end, [&](int64_t s) { return load_batch(ctx, arena, s); });
  const auto params = r.model->parameters();
  Interval iv;
  const auto t_run = Clock::now();
  const int64_t first_step = r.step;
  for (; r.step < end; ++r.step) {
    const auto t_wait = Clock::now();
    auto batch = prefetch.next();
    BEVKD_ASSERT(batch.has_value(), "fit-teacher: no batch for step ", r.step);
    iv.wait_s += seconds_since(t_wait);
    const auto lp = nn::lr_at(cfg.schedule, r.step, r.total);
    nn::apply_lr(*r.opt, lp);
    const auto out = r.model->forward_pillars(batch->pillars);
    const auto loss = nn::center_head_loss(out.head.tasks, batch->targets, r.model_cfg.loss);
    const double loss_v = loss.total.item<double>();
    if (!std::isfinite(loss_v)) {
      std::string tokens;
      for (const auto& t : batch->tokens) tokens += (tokens.empty() ? "" : ", ") + t;
      BEVKD_FAIL("fit-teacher: the loss became ", loss_v, " at step ", r.step, " (epoch ", r.step / r.steps_per_epoch,
                 ", samples ", tokens, "); the inputs of the step were finite, so the optimisation diverged: try a "
                 "lower --lr (now ", cfg.schedule.lr, ") or --grad-clip");
    }
    r.opt->zero_grad();
    loss.total.backward();
    if (cfg.grad_clip > 0) nn::clip_grad_norm(params, cfg.grad_clip);
    r.opt->step();

    for (const auto& t : loss.heatmap) iv.heatmap += t.item<double>();
    for (const auto& t : loss.bbox) iv.bbox += t.item<double>();
    iv.loss += loss_v;
    ++iv.steps;
    iv.samples += batch->pillars.batch_size;
    const int64_t done = r.step + 1;
    const bool epoch_end = done % r.steps_per_epoch == 0;
    if (done % cfg.log_every == 0 || done == end || epoch_end)
      log_interval(r, iv, done, end, first_step, lp.lr, t_run, result);
    if ((cfg.checkpoint_every > 0 && done % cfg.checkpoint_every == 0) || epoch_end || done == end)
      save_latest(r, done);
  }
}

void finish(FitRun& r, FitTeacherResult& result) {
  const auto& cfg = r.cfg;
  result.steps_done = r.step;
  result.total_steps = r.total;
  result.finished = r.step >= r.total;
  result.checkpoint = r.latest;
  if (!result.finished) return;
  // The final checkpoint carries the training state too, so `teacher.ckpt` alone documents the run.
  copy_file_atomic(r.latest, r.final_ckpt);
  result.checkpoint = r.final_ckpt;
  if (cfg.val_split.empty()) return;
  TeacherIdentity id;
  id.kind = "builtin";
  id.preset = r.model_cfg.preset;
  id.checkpoint = r.final_ckpt;
  id.checkpoint_hash = file_hash(r.final_ckpt);
  id.config_json = r.model_cfg.to_json();
  auto teacher = make_builtin_teacher(r.model, id);
  TeacherEvalOptions eo;
  eo.dataroot = cfg.dataroot;
  eo.version = cfg.version;
  eo.split = cfg.val_split;
  eo.num_sweeps = cfg.num_sweeps;
  eo.batch_size = cfg.eval_batch_size;
  eo.out_dir = cfg.out_dir + "/eval/" + cfg.val_split;
  eo.quiet = cfg.quiet;
  const auto ev = evaluate_teacher(*teacher, eo);
  result.map = ev.map;
  result.nds = ev.nds;
  result.metrics_json = ev.metrics_path;
  r.log->append(json{{"event", "eval"}, {"step", r.step}, {"split", cfg.val_split}, {"mAP", ev.map},
                     {"NDS", ev.nds}, {"metrics", ev.metrics_path}});
}

}  // namespace

void FitTeacherConfig::validate() const {
  const std::string w = "fit-teacher";
  BEVKD_CHECK(!dataroot.empty(), w, ": --dataroot (config key data.dataroot) is required");
  BEVKD_CHECK(!out_dir.empty(), w, ": --out (config key runtime.out_dir) is required");
  BEVKD_CHECK(!train_split.empty(), w, ": --train-split is empty");
  BEVKD_CHECK(num_sweeps >= 1, w, ": --sweeps must be >= 1, got ", num_sweeps);
  BEVKD_CHECK(epochs >= 1, w, ": --epochs must be >= 1, got ", epochs);
  BEVKD_CHECK(batch_size >= 1, w, ": --batch-size must be >= 1, got ", batch_size);
  schedule.validate(w + " schedule");
  BEVKD_CHECK(weight_decay >= 0, w, ": --weight-decay must be >= 0, got ", weight_decay);
  BEVKD_CHECK(grad_clip >= 0, w, ": --grad-clip must be >= 0, got ", grad_clip);
  augmentation.validate(w + " augmentation");
  BEVKD_CHECK(num_workers >= 1, w, ": --workers must be >= 1, got ", num_workers);
  BEVKD_CHECK(threads >= 0, w, ": --threads must be >= 0, got ", threads);
  BEVKD_CHECK(checkpoint_every >= 0 && log_every >= 1 && stop_after >= 0 && eval_batch_size >= 1, w,
              ": checkpoint_every, stop_after must be >= 0 and log_every, eval_batch_size >= 1");
  try {
    (void)torch::Device(device);
  } catch (const c10::Error&) {
    BEVKD_FAIL(w, ": --device '", device, "' is not a device (cpu, cuda, cuda:1, ...)");
  }
  if (model.pillar_grid().valid()) {
    BEVKD_CHECK(model_config.empty(), w, ": the configuration holds a full model config (model.model) and "
                "--model-config ", model_config, "; give one of them");
    BEVKD_CHECK(preset == model.preset, w, ": the configuration holds a full model config of preset ", model.preset,
                " but --preset is ", preset, "; give one of them");
  }
}

TeacherModelConfig FitTeacherConfig::resolved_model() const {
  if (model.pillar_grid().valid()) {
    model.validate();
    return model;
  }
  if (model_config.empty()) return teacher_preset(preset);
  return TeacherModelConfig::from_json(read_file(model_config), model_config);
}

FitTeacherResult fit_teacher(const FitTeacherConfig& cfg) {
  cfg.validate();
  FitRun run{cfg};
  FitTeacherResult result;
  setup(run);
  resume_or_start(run);
  train_steps(run, result);
  finish(run, result);
  result.wall_s = seconds_since(run.t_start);
  return result;
}

}  // namespace bevkd::precompute

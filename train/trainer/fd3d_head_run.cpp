#include "train/trainer/fd3d_head_run.h"

#include <torch/optim/adamw.h>
#include <torch/torch.h>

#include <chrono>
#include <cmath>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "base/config.h"
#include "base/error.h"
#include "base/fs.h"
#include "base/progress.h"
#include "core/eval/detections_eval.h"
#include "core/eval/gt_shards.h"
#include "core/geometry.h"
#include "core/nn/checkpoint.h"
#include "core/nn/detections_eval.h"
#include "core/nn/lr_schedule.h"
#include "core/nn/metrics_log.h"
#include "storage/manifest.h"
#include "train/data/loader.h"
#include "train/losses/fd3d_head.h"
#include "train/trainer/loss_entry_util.h"

namespace bevkd::train::trainer {

namespace cn = core::nn;
using Clock = std::chrono::steady_clock;

void Fd3dHeadRunConfig::validate() const {
  BEVKD_CHECK(!shards.empty(), "bevkd-train fd3d-head: --shards is required");
  BEVKD_CHECK(!out_dir.empty(), "bevkd-train fd3d-head: --out is required");
  BEVKD_CHECK(steps >= 0, "bevkd-train fd3d-head: --steps ", steps, " must be >= 0");
  BEVKD_CHECK(batch_size >= 1, "bevkd-train fd3d-head: --batch-size ", batch_size, " must be >= 1");
  BEVKD_CHECK(log_every >= 1 && checkpoint_every >= 1, "bevkd-train fd3d-head: --log-every ", log_every,
              " and --checkpoint-every ", checkpoint_every, " must be >= 1");
  schedule.validate("bevkd-train fd3d-head schedule");
  BEVKD_CHECK(max_det >= 1, "bevkd-train fd3d-head: --max-det ", max_det, " must be >= 1");
}

namespace {

double elapsed_since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

losses::Fd3dHeadOptions head_options(const Fd3dHeadRunConfig& c, int64_t in_channels) {
  losses::Fd3dHeadOptions o;
  o.decoder.in_channels = in_channels;
  o.decoder.num_queries = c.num_queries;
  o.decoder.embed_dims = c.embed_dims;
  o.decoder.num_layers = c.num_layers;
  o.decoder.heads = c.heads;
  o.decoder.points = c.points;
  o.decoder.ffn_dims = 2 * c.embed_dims;
  o.loss.cls_weight = c.alpha;
  o.loss.box_weight = c.beta;
  o.rho_c = c.rho_c;
  o.rho_b = c.rho_b;
  o.validate("bevkd-train fd3d-head");
  return o;
}

void gt_of(const data::Batch& b, std::vector<torch::Tensor>& boxes, std::vector<torch::Tensor>& labels) {
  boxes.clear();
  labels.clear();
  for (const auto& g : b.gt) {
    boxes.push_back(g.boxes);
    labels.push_back(g.labels);
  }
}

core::Rigid ego2global_of(const data::Batch& b, std::size_t i) {
  std::array<double, 16> m{};
  for (std::size_t k = 0; k < 16; ++k) m[k] = b.ego2global[i][k];
  return core::Rigid::from_mat4(m);
}

}  // namespace

Fd3dHeadRunResult run_fd3d_head(const Fd3dHeadRunConfig& cfg, std::ostream& log) {
  cfg.validate();
  const torch::Device device(cfg.device);
  make_dirs(cfg.out_dir);
  const std::string manifest_path = storage::Manifest::file_of(cfg.shards);
  const auto manifest = storage::Manifest::load(manifest_path);
  int64_t channels = -1;
  for (const auto& t : manifest.taps())
    if (t.name == cfg.tap) channels = t.channels;
  BEVKD_CHECK(channels > 0, "bevkd-train fd3d-head: the shards ", manifest_path, " hold no teacher tap '", cfg.tap,
              "' (write it with bevkd-precompute run --taps ", cfg.tap, ")");
  const BevGrid grid = manifest.grid();
  const auto opts = head_options(cfg, channels);
  torch::manual_seed(cfg.seed);
  losses::Fd3dHead head(opts, grid);
  head->to(device);
  torch::optim::AdamW opt(head->parameters(), torch::optim::AdamWOptions(cfg.schedule.lr).weight_decay(cfg.weight_decay));

  const nlohmann::json resolved = config::to_json(cfg);
  write_file_atomic(cfg.out_dir + "/config.json", resolved.dump(2) + "\n");
  const std::string ckpt_path = cfg.out_dir + "/fd3d_head.ckpt";

  data::LoaderConfig lc;
  lc.batch_size = cfg.batch_size;
  lc.threads = cfg.threads;
  lc.seed = cfg.seed;
  lc.cameras = false;
  lc.teacher_taps = {cfg.tap};
  data::LoaderSetup ls;
  ls.split = cfg.train_split;
  ls.train = true;
  ls.student_grid = grid;
  ls.student_grid_name = "the teacher grid";

  // Resume: the last checkpoint of this output directory, when its configuration matches.
  int64_t step = 0;
  storage::StreamPosition pos{0, 0};
  if (path_exists(ckpt_path)) {
    const auto ck = cn::read_checkpoint(ckpt_path, kFd3dHeadCheckpointKind);
    const auto meta = config::parse(ck.meta_json, "checkpoint " + ckpt_path + " meta");
    auto a = meta.at("config"), b = resolved;
    for (auto* j : {&a, &b})
      for (const char* k : {"steps", "quiet", "threads", "log_every", "checkpoint_every", "max_det", "val_split", "out_dir"})
        j->erase(k);
    const std::string diff = config::first_difference(a, b, "the checkpoint", "this run");
    BEVKD_CHECK(diff.empty(), "bevkd-train fd3d-head: ", ckpt_path, " was written with another configuration (", diff,
                "); use another --out or remove it");
    cn::load_module_state(*head, ck.module("fd3d_head", ckpt_path), "checkpoint " + ckpt_path, "the fd3d head");
    BEVKD_CHECK(ck.optimizers.count("adamw") != 0, "cannot resume from ", ckpt_path, ": it holds no optimizer state");
    cn::optimizer_from_bytes(opt, ck.optimizers.at("adamw"), ckpt_path);
    step = meta.at("step").get<int64_t>();
    pos = {meta.at("loader_epoch").get<int64_t>(), meta.at("loader_index").get<int64_t>()};
    if (!cfg.quiet) log << "bevkd-train fd3d-head: resuming " << ckpt_path << " at step " << step << "\n";
  }
  cn::MetricsLog metrics(cfg.out_dir + "/metrics.jsonl", step);

  data::Loader loader(manifest, cfg.dataroot, lc, ls);
  loader.seek(pos);
  auto save = [&] {
    cn::Checkpoint ck;
    ck.kind = kFd3dHeadCheckpointKind;
    const auto p = loader.position();
    nlohmann::json meta{{"step", step},
                        {"loader_epoch", p.epoch},
                        {"loader_index", p.index},
                        {"config", resolved},
                        {"decoder", config::to_json(opts.decoder)},
                        {"loss", config::to_json(opts.loss)},
                        {"rho_c", opts.rho_c},
                        {"rho_b", opts.rho_b},
                        {"grid", grid.to_json()},
                        {"tap", cfg.tap}};
    ck.meta_json = meta.dump();
    ck.modules["fd3d_head"] = cn::module_state(*head);
    ck.optimizers["adamw"] = cn::optimizer_to_bytes(opt);
    cn::save_checkpoint(ckpt_path, ck);
  };

  if (!cfg.quiet && step < cfg.steps)
    log << "bevkd-train fd3d-head: " << opts.decoder.num_queries << " queries, " << opts.decoder.num_layers
        << " layers, on tap " << cfg.tap << " (" << channels << " channels, grid " << grid.H << "x" << grid.W
        << ") of " << manifest_path << " split " << cfg.train_split << ": " << loader.samples_per_epoch()
        << " samples, steps " << step << " -> " << cfg.steps << ", batch " << cfg.batch_size << "\n";
  head->train();
  std::vector<torch::Tensor> boxes, labels;
  double s_cls = 0, s_box = 0, s_focal = 0, s_cov = 0;
  int64_t n_int = 0, samples_int = 0, first = step;
  auto t_int = Clock::now();
  const auto t_run = Clock::now();
  while (step < cfg.steps) {
    auto host = loader.next();
    if (!host) {
      const auto p = loader.position();
      loader.seek({p.epoch + 1, 0});
      host = loader.next();
      BEVKD_CHECK(host.has_value(), "bevkd-train fd3d-head: split ", cfg.train_split, " delivers no batch");
    }
    const data::Batch b = host->to(device);
    gt_of(b, boxes, labels);
    const auto lp = cn::lr_at(cfg.schedule, step, cfg.steps);
    cn::apply_lr(opt, lp);
    const double lr = lp.lr;
    torch::manual_seed(cfg.seed + static_cast<uint64_t>(step) * 7919u);  // dropout, keyed by the step
    auto st = losses::fd3d_head_step(head, teacher_map(b, cfg.tap), boxes, labels);
    opt.zero_grad();
    const double loss_v = st.loss.item<double>();
    BEVKD_CHECK(std::isfinite(loss_v), "bevkd-train fd3d-head: step ", step, ": non-finite loss ", loss_v,
                " (samples of the batch: ", b.sample_tokens.front(), ", ...); ", ckpt_path, " holds the last good state");
    st.loss.backward();
    if (cfg.grad_clip > 0) cn::clip_grad_norm(head->parameters(), cfg.grad_clip);
    opt.step();
    ++step;
    s_cls += st.cls.item<double>();
    s_box += st.box.item<double>();
    const auto& f = st.focal;
    s_focal += f.samples_with_gt ? static_cast<double>(f.count) / static_cast<double>(f.samples_with_gt) : 0;
    s_cov += f.gt_total ? static_cast<double>(f.gt_covered) / static_cast<double>(f.gt_total) : 0;
    ++n_int;
    samples_int += b.size();
    if (step % cfg.log_every == 0 || step == cfg.steps) {
      const double dt = elapsed_since(t_int), n = static_cast<double>(n_int);
      const double eta = static_cast<double>(cfg.steps - step) * elapsed_since(t_run) / static_cast<double>(step - first);
      const nlohmann::json rec{{"step", step},
                               {"lr", lr},
                               {"loss_cls", s_cls / n},
                               {"loss_box", s_box / n},
                               {"focal_per_gt_sample", s_focal / n},
                               {"gt_covered", s_cov / n},
                               {"samples_per_s", dt > 0 ? static_cast<double>(samples_int) / dt : 0.0}};
      metrics.append(rec);
      if (!cfg.quiet)
        log << "bevkd-train fd3d-head  step " << step << "/" << cfg.steps << "  cls " << s_cls / n << "  box "
            << s_box / n << "  focal/sample-with-GT " << s_focal / n << "  GT covered " << 100 * s_cov / n << "%  "
            << rec["samples_per_s"].get<double>() << " samples/s  ETA " << Progress::format_duration(eta) << "\n";
      s_cls = s_box = s_focal = s_cov = 0;
      n_int = samples_int = 0;
      t_int = Clock::now();
    }
    if (step % cfg.checkpoint_every == 0 || step == cfg.steps) save();
  }

  // ---- evaluation on val_split: the head's detections and the stored teacher boxes ----------
  Fd3dHeadRunResult res;
  res.steps_done = step;
  res.checkpoint = ckpt_path;
  data::LoaderConfig ec = lc;
  ec.teacher_boxes = true;
  data::LoaderSetup es = ls;
  es.split = cfg.val_split;
  es.train = false;
  data::Loader eval_loader(manifest, cfg.dataroot, ec, es);
  const auto gt = core::eval::shard_ground_truth(manifest_path, cfg.val_split);
  head->eval();
  torch::NoGradGuard no_grad;
  std::vector<core::eval::SampleDetections> head_dets, teacher_dets;
  int64_t focal = 0, with_gt = 0, gt_total = 0, covered = 0;
  ProgressOptions po;
  po.unit = "samples";
  po.enabled = !cfg.quiet;
  Progress progress("fd3d-head eval " + cfg.val_split, eval_loader.samples_per_epoch(), log, po);
  while (auto host = eval_loader.next()) {
    const data::Batch b = host->to(device);
    gt_of(b, boxes, labels);
    const auto st = losses::fd3d_head_step(head, teacher_map(b, cfg.tap), boxes, labels);
    const auto& out = st.out;
    focal += st.focal.count;
    with_gt += st.focal.samples_with_gt;
    gt_total += st.focal.gt_total;
    covered += st.focal.gt_covered;
    for (std::size_t i = 0; i < b.sample_tokens.size(); ++i) {
      const auto ii = static_cast<int64_t>(i);
      const auto top = cn::query_topk(out.cls_logits.back()[ii], cfg.max_det);
      cn::Detections d;
      d.boxes = cn::decode_query_boxes(out.codes.back()[ii].index_select(0, top.query.to(device))).cpu();
      d.scores = top.score;
      d.labels = top.label;
      head_dets.push_back(cn::sample_detections(d, b.sample_tokens[i], ego2global_of(b, i)));
      const auto& t = b.teacher[i];
      cn::Detections td;
      td.boxes = t.boxes.cpu();
      td.scores = t.scores.cpu();
      td.labels = t.labels.cpu().to(torch::kInt64);
      teacher_dets.push_back(cn::sample_detections(td, b.sample_tokens[i], ego2global_of(b, i)));
    }
    progress.advance(b.size());
  }
  progress.finish();
  auto eval = [&](const std::vector<core::eval::SampleDetections>& dets, const std::string& which) {
    core::eval::DetectionsEvalOptions eo;
    eo.out_dir = cfg.out_dir + "/eval/" + cfg.val_split + "/" + which;
    eo.meta.use_lidar = which == "teacher";
    eo.meta.use_camera = false;
    eo.plots = false;
    return core::eval::evaluate_detections(dets, gt, eo);
  };
  const auto he = eval(head_dets, "head");
  const auto te = eval(teacher_dets, "teacher");
  res.samples = static_cast<int64_t>(head_dets.size());
  res.head_map = he.map;
  res.head_nds = he.nds;
  res.teacher_map = te.map;
  res.teacher_nds = te.nds;
  res.focal_per_gt_sample = with_gt ? static_cast<double>(focal) / static_cast<double>(with_gt) : 0;
  res.gt_covered = gt_total ? static_cast<double>(covered) / static_cast<double>(gt_total) : 0;
  res.report = cfg.out_dir + "/report.json";
  const nlohmann::json report{{"split", cfg.val_split},
                              {"samples", res.samples},
                              {"steps", step},
                              {"head", {{"mAP", he.map}, {"NDS", he.nds}, {"metrics", he.metrics_path}}},
                              {"teacher", {{"mAP", te.map}, {"NDS", te.nds}, {"metrics", te.metrics_path}}},
                              {"head_over_teacher_mAP", te.map > 0 ? he.map / te.map : 0.0},
                              {"focal_queries", focal},
                              {"samples_with_gt", with_gt},
                              {"focal_per_gt_sample", res.focal_per_gt_sample},
                              {"gt_boxes", gt_total},
                              {"gt_covered_by_focal", covered},
                              {"gt_covered_share", res.gt_covered},
                              {"rho_c", opts.rho_c},
                              {"rho_b", opts.rho_b}};
  write_file_atomic(res.report, report.dump(2) + "\n");
  metrics.append(nlohmann::json{{"event", "eval"}, {"step", step}, {"report", report}});
  return res;
}

}  // namespace bevkd::train::trainer

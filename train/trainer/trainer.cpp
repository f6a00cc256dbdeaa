#include "train/trainer/trainer.h"

#include <ATen/CPUGeneratorImpl.h>
#include <ATen/autocast_mode.h>
#include <torch/optim/adamw.h>
#include <torch/torch.h>
#include <torch/version.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <nlohmann/json.hpp>

#include "base/config.h"
#include "base/error.h"
#include "base/fs.h"
#include "base/plot.h"
#include "base/progress.h"
#include "base/rng.h"
#include "core/eval/detections_eval.h"
#include "core/eval/gt_shards.h"
#include "core/geometry.h"
#include "core/nn/center_decode.h"
#include "core/nn/center_loss.h"
#include "core/nn/center_targets.h"
#include "core/nn/checkpoint.h"
#include "core/nn/detections_eval.h"
#include "core/nn/lr_schedule.h"
#include "core/nn/metrics_log.h"
#include "core/nn/query_decoder.h"
#include "core/nn/query_loss.h"
#include "storage/manifest.h"
#include "train/data/loader.h"
#include "train/student/depth_loss.h"
#include "train/student/student.h"
#include "train/trainer/distributed.h"
#include "train/trainer/loss_registry.h"

namespace bevkd::train::trainer {

namespace nn = core::nn;
namespace fs = std::filesystem;
using nlohmann::json;
using Clock = std::chrono::steady_clock;
using student::Student;
using student::StudentConfig;

namespace {

double seconds_since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

std::string fmt(double v, int prec = 4) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*g", prec, v);
  return buf;
}

// bf16 autocast on CUDA for the forward pass (the losses run in float32 outside it).
class AutocastScope {
 public:
  explicit AutocastScope(bool on) : on_(on) {
    if (!on_) return;
#if TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 4)
    at::autocast::set_autocast_dtype(at::kCUDA, at::kBFloat16);
    at::autocast::set_autocast_enabled(at::kCUDA, true);
#else
    at::autocast::set_autocast_gpu_dtype(at::kBFloat16);
    at::autocast::set_enabled(true);
#endif
  }
  ~AutocastScope() {
    if (!on_) return;
#if TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 4)
    at::autocast::set_autocast_enabled(at::kCUDA, false);
#else
    at::autocast::set_enabled(false);
#endif
    at::autocast::clear_cache();
  }
  AutocastScope(const AutocastScope&) = delete;
  AutocastScope& operator=(const AutocastScope&) = delete;

 private:
  bool on_;
};

torch::Tensor f32(const torch::Tensor& t) { return t.defined() ? t.to(torch::kFloat32) : t; }

// The outputs the losses read, in float32 (a no-op outside autocast).
void outputs_to_float32(student::StudentOutput& o) {
  for (auto& t : o.tasks) {
    t.heatmap = f32(t.heatmap);
    t.reg = f32(t.reg);
    t.height = f32(t.height);
    t.dim = f32(t.dim);
    t.rot = f32(t.rot);
    t.vel = f32(t.vel);
  }
  for (auto* v : {&o.query.cls_logits, &o.query.codes})
    for (auto& t : *v) t = f32(t);
  o.head_shared = f32(o.head_shared);
  o.neck = f32(o.neck);
  o.lss = f32(o.lss);
  o.depth = f32(o.depth);
  o.depth_logits = f32(o.depth_logits);
}

// host: the loader's batch (GT on the CPU, where center_targets runs); the targets go to `dev`.
std::vector<nn::TaskTargets> batch_targets(const data::Batch& host, const StudentConfig& s, const torch::Device& dev) {
  std::vector<torch::Tensor> boxes, labels;
  for (const auto& g : host.gt) {
    boxes.push_back(g.boxes);
    labels.push_back(g.labels);
  }
  auto t = nn::center_targets(boxes, labels, s.target_config());
  for (auto& x : t) {
    x.heatmap = x.heatmap.to(dev);
    x.box = x.box.to(dev);
    x.index = x.index.to(dev);
    x.mask = x.mask.to(dev);
  }
  return t;
}

// Exponential moving average of the student's weights (BEVDepth's EMAHook: decay * (1 -
// exp(-updates / ramp))); buffers (BatchNorm statistics) are copied.
struct Ema {
  Student model{nullptr};
  int64_t updates = 0;
  void update(const Student& src, double decay, double ramp) {
    ++updates;
    const double d = decay * (1.0 - std::exp(-static_cast<double>(updates) / ramp));
    torch::NoGradGuard g;
    const auto sp = src->parameters();
    auto ep = model->parameters();
    for (std::size_t i = 0; i < sp.size(); ++i) ep[i].mul_(d).add_(sp[i].detach(), 1.0 - d);
    const auto sb = src->buffers();
    auto eb = model->buffers();
    for (std::size_t i = 0; i < sb.size(); ++i) eb[i].copy_(sb[i]);
  }
};

struct ActiveLoss {
  std::string name;
  double weight = 1;
  json params;
  std::shared_ptr<DistillLoss> module;
  std::unique_ptr<GradReducer> own_reducer;  // data parallel: its own parameters' all-reduce
};

struct TrainRun {
  TrainRun(const TrainConfig& c, std::ostream& l, const TrainHooks& h) : cfg(c), log(l), hooks(h) {}
  const TrainConfig& cfg;
  std::ostream& log;
  const TrainHooks& hooks;
  torch::Device device{torch::kCPU};
  json resolved;
  StudentConfig student_cfg;
  std::string manifest_path;
  // Data parallel: this process's rank, the process group, the gradient reducer (none alone).
  DistEnv env;
  std::unique_ptr<Dist> dist;
  std::unique_ptr<GradReducer> reducer;
  bool rank0 = true, quiet = false;
  int64_t parts = 1;  // world_size x accumulate parts of the epoch's order
  // One loader per micro-batch of the step: loaders[k] reads part rank x accumulate + k.
  std::vector<std::unique_ptr<data::Loader>> loaders;
  data::LoaderConfig loader_cfg;
  Student model{nullptr};
  std::optional<Ema> ema;
  std::vector<ActiveLoss> losses;
  std::unique_ptr<torch::optim::AdamW> opt;
  std::unique_ptr<nn::MetricsLog> metrics;
  std::string latest, final_ckpt, metrics_path;
  int64_t steps_per_epoch = 0, total = 0, step = 0, bad_steps = 0;
  std::vector<int64_t> bad_step_list;
  json last_metrics = json::object();
  Clock::time_point t_start = Clock::now();
};

// The parts of the resolved configuration a resumed run must share with its checkpoint.
json resume_identity(const json& resolved) {
  json j = resolved;
  j.erase("runtime");
  j.erase("evaluation");
  if (j.contains("optimisation")) j["optimisation"].erase("accumulate");  // the split: resume handles a new one
  for (const char* k : {"threads", "prefetch_batches"})
    if (j.contains("loader")) j["loader"].erase(k);
  return j;
}

// The distillation losses: registry entries, parameters, shard needs (refused by name when the
// shards lack a field), loader switches.
void setup_losses(TrainRun& r, const storage::Manifest& manifest, const student::GridAlignment& al) {
  const auto taps = manifest.taps();
  const auto sv = manifest.schema_version();
  for (const auto& spec : r.cfg.losses) {
    const LossEntry& e = find_loss(spec.name);
    ActiveLoss a;
    a.name = e.name;
    a.weight = std::isnan(spec.weight) ? e.default_weight : spec.weight;
    a.params = resolve_params(e, spec.params);
    for (const auto& need : e.needs(a.params)) {
      if (!shards_have(need, taps, sv.major, sv.minor)) {
        std::string have;
        for (const auto& t : taps) have += (have.empty() ? "" : ", ") + t.name;
        BEVKD_FAIL("bevkd-train train: loss ", e.name, " needs the shard field ", need.dataset, ", which the shards ",
                   r.manifest_path, " lack (they hold the taps: ", have.empty() ? "none" : have, "; schema ", sv.str(),
                   "); write it with bevkd-precompute run ", need.precompute_option);
      }
      need.request(r.loader_cfg);
    }
    LossSetup setup{r.student_cfg, al.teacher, taps, a.params, "loss " + e.name};
    a.module = e.make(setup);
    a.module->to(r.device);
    r.losses.push_back(std::move(a));
  }
}

void setup(TrainRun& r) {
  const auto& cfg = r.cfg;
  r.env = dist_env();
  r.rank0 = r.env.rank == 0;
  r.quiet = cfg.quiet || !r.rank0;
  r.parts = r.env.world_size * cfg.accumulate;
  r.device = torch::Device(cfg.device);
  if (r.env.distributed() && r.device.is_cuda() && !r.device.has_index())  // one device per local rank
    r.device = torch::Device(torch::kCUDA, static_cast<c10::DeviceIndex>(r.env.local_rank));
  if (cfg.threads > 0) torch::set_num_threads(static_cast<int>(cfg.threads));
  make_dirs(cfg.out_dir);
  if (r.env.distributed()) {
    DistOptions o;
    o.timeout_s = cfg.dist_timeout_s;
    o.backend = cfg.dist_backend;
    o.bucket_mb = cfg.dist_bucket_mb;
    o.overlap = cfg.dist_overlap;
    r.dist = std::make_unique<Dist>(r.env, o, r.device);
    if (!r.quiet)
      r.log << "bevkd-train: data parallel, " << r.env.describe() << ", " << r.dist->backend() << ", "
            << cfg.accumulate << " micro-batch(es) per rank and step\n";
  }
  r.manifest_path = storage::Manifest::file_of(cfg.shards);
  const auto manifest = storage::Manifest::load(r.manifest_path);

  // The student's grid against the shards' (DESIGN.md "Grids").
  StudentConfig s = resolve_student(cfg);
  const auto al = student::align_student_grid(s.grid, manifest.grid());
  s.grid = al.student;
  s.validate();
  r.student_cfg = s;

  // The loader follows the student: image size, augmentation, normalisation, depth stride and range.
  r.loader_cfg = cfg.loader;
  const data::ImageAugConfig untouched;
  const std::string image_diff =
      config::first_difference(config::to_json(untouched), config::to_json(cfg.loader.image), "default", "set");
  const auto derived = loader_image_config(s);
  const std::string derived_diff =
      config::first_difference(config::to_json(derived), config::to_json(cfg.loader.image), "student", "given");
  BEVKD_CHECK(image_diff.empty() || derived_diff.empty(), "bevkd-train train: loader.image is derived from the "
              "student (image size, image_aug, mean/std); set those under student instead (loader.image was set at ",
              image_diff, ")");
  follow_student(r.loader_cfg, s);

  torch::manual_seed(cfg.loader.seed);
  r.model = Student(s);
  if (!cfg.init.empty()) {
    const auto rep = r.model->load_image_backbone_weights(cfg.init);
    (void)rep;
    if (!r.quiet) r.log << "bevkd-train: image backbone initialised from " << cfg.init << "\n";
  }
  r.model->to(r.device);
  if (cfg.ema) {
    Ema e;
    e.model = Student(s);
    nn::load_module_state(*e.model, nn::module_state(*r.model), "the student", "its EMA");
    e.model->to(r.device);
    e.model->eval();
    r.ema = std::move(e);
  }
  setup_losses(r, manifest, al);
  if (r.hooks.on_setup) r.hooks.on_setup(r.loader_cfg);
  if (!r.hooks.loader_reads_teacher) {  // the hook supplies the teacher fields
    r.loader_cfg.teacher_taps.clear();
    r.loader_cfg.teacher_heatmap = r.loader_cfg.teacher_fg_mask = false;
    r.loader_cfg.teacher_boxes = r.loader_cfg.teacher_class_probs = false;
  }

  data::LoaderSetup ls;
  ls.split = cfg.train_split;
  ls.train = true;
  ls.expected_views = s.view_ranges;
  ls.expected_views_name = "student preset " + s.preset + " (view_ranges)";
  ls.student_grid = s.grid;
  ls.student_grid_name = "student preset " + s.preset;
  ls.world_size = static_cast<int>(r.parts);
  for (int64_t k = 0; k < cfg.accumulate; ++k) {
    ls.rank = static_cast<int>(r.env.rank * cfg.accumulate + k);
    r.loaders.push_back(std::make_unique<data::Loader>(manifest, cfg.dataroot, r.loader_cfg, ls));
  }
  r.steps_per_epoch = r.loaders.front()->batches_per_epoch();
  BEVKD_CHECK(r.steps_per_epoch > 0, "bevkd-train train: split ", cfg.train_split, " of ", r.manifest_path,
              " gives no batch (", r.loaders.front()->samples_per_epoch(), " samples in each of ", r.parts,
              " parts (world size x accumulate), batch size ", r.loader_cfg.batch_size,
              r.loader_cfg.drop_last_batch ? ", drop_last_batch" : "", ")");
  r.total = r.steps_per_epoch * cfg.epochs;

  std::vector<torch::optim::OptimizerParamGroup> groups;
  groups.emplace_back(r.model->parameters());
  for (const auto& l : r.losses)
    if (!l.module->student_parameters().empty()) groups.emplace_back(l.module->student_parameters());
  r.opt = std::make_unique<torch::optim::AdamW>(
      groups, torch::optim::AdamWOptions(cfg.schedule.lr).weight_decay(cfg.weight_decay));

  TrainConfig resolved = cfg;
  resolved.student = s;
  resolved.student_config.clear();
  resolved.preset = s.preset;
  resolved.loader = r.loader_cfg;
  for (std::size_t i = 0; i < resolved.losses.size(); ++i) {
    resolved.losses[i].weight = r.losses[i].weight;
    resolved.losses[i].params = r.losses[i].params;
  }
  r.resolved = config::to_json(resolved);
  if (r.rank0) write_file_atomic(cfg.out_dir + "/config.json", r.resolved.dump(2) + "\n");
  r.latest = cfg.out_dir + "/checkpoint-latest.ckpt";
  r.final_ckpt = cfg.out_dir + "/student.ckpt";
  r.metrics_path = cfg.out_dir + "/metrics.jsonl";
}

std::string generator_state() {
  auto gen = at::detail::getDefaultCPUGenerator();
  std::lock_guard<std::mutex> lock(gen.mutex());
  return nn::tensor_bytes(gen.get_state());
}

void set_generator_state(const std::string& bytes) {
  auto gen = at::detail::getDefaultCPUGenerator();
  std::lock_guard<std::mutex> lock(gen.mutex());
  gen.set_state(nn::bytes_tensor(bytes));
}

// Every part's loader position, in part order (gathered from all ranks: a collective).
std::vector<storage::StreamPosition> loader_positions(TrainRun& r) {
  std::vector<int64_t> mine;
  for (const auto& l : r.loaders) {
    const auto p = l->position();
    mine.push_back(p.epoch);
    mine.push_back(p.index);
  }
  const auto all = r.dist ? r.dist->allgather(mine, "gathering the loader positions for a checkpoint") : mine;
  std::vector<storage::StreamPosition> out;
  for (std::size_t i = 0; i + 1 < all.size(); i += 2) out.push_back({all[i], all[i + 1]});
  return out;
}

// Called on every rank at the same steps; rank 0 writes.
void save_latest(TrainRun& r) {
  const auto positions = loader_positions(r);
  if (!r.rank0) return;
  nn::Checkpoint ck;
  ck.kind = kStudentCheckpointKind;
  json pos = json::array();
  for (const auto& p : positions) pos.push_back({{"epoch", p.epoch}, {"index", p.index}});
  ck.meta_json = json{{"train", r.resolved},
                      {"student", config::to_json(r.student_cfg)},
                      {"step", r.step},
                      {"total_steps", r.total},
                      {"steps_per_epoch", r.steps_per_epoch},
                      {"world_size", r.env.world_size},
                      {"accumulate", r.cfg.accumulate},
                      {"loader_positions", pos},
                      {"ema_updates", r.ema ? r.ema->updates : 0},
                      {"bad_steps", r.bad_step_list},
                      {"metrics", r.last_metrics}}
                     .dump();
  ck.modules["model"] = nn::module_state(*r.model);
  if (r.ema) ck.modules["ema"] = nn::module_state(*r.ema->model);
  for (const auto& l : r.losses)
    if (!l.module->parameters().empty() || !l.module->buffers().empty())
      ck.modules["loss." + l.name] = nn::module_state(*l.module);
  ck.optimizers["adamw"] = nn::optimizer_to_bytes(*r.opt);
  for (const auto& l : r.losses)
    if (auto* o = l.module->own_optimizer()) ck.optimizers["loss." + l.name] = nn::optimizer_to_bytes(*o);
  ck.blobs["rng.cpu"] = generator_state();
  nn::save_checkpoint(r.latest, ck);
}

// Rank 0's parameters and buffers (model, EMA, the losses' modules) on every rank.
void broadcast_state(TrainRun& r) {
  std::vector<torch::Tensor> ts;
  auto add = [&](const torch::nn::Module& m) {
    for (const auto& p : m.parameters()) ts.push_back(p);
    for (const auto& b : m.buffers()) ts.push_back(b);
  };
  add(*r.model);
  if (r.ema) add(*r.ema->model);
  for (const auto& l : r.losses) add(*l.module);
  r.dist->broadcast(ts, 0, "the start-up broadcast of rank 0's parameters");
}

// BatchNorm statistics and other floating buffers: the mean over ranks after each step, so every
// rank (and rank 0's checkpoint) holds the same state.
void average_buffers(TrainRun& r) {
  std::vector<torch::Tensor> ts;
  auto add = [&](const torch::nn::Module& m) {
    for (const auto& b : m.buffers())
      if (b.is_floating_point()) ts.push_back(b);
  };
  add(*r.model);
  for (const auto& l : r.losses) add(*l.module);
  if (ts.empty()) return;
  r.dist->allreduce_sum(ts, "the BatchNorm statistics' all-reduce");
  torch::NoGradGuard g;
  for (auto& t : ts) t.div_(static_cast<double>(r.env.world_size));
}

void resume_or_start(TrainRun& r) {
  const auto& cfg = r.cfg;
  const bool have = cfg.resume && path_exists(r.latest);
  if (r.dist) {  // every rank must see the same out_dir (a shared filesystem across machines)
    const auto seen = r.dist->allgather({have ? 1 : 0}, "checking that every rank sees " + r.latest);
    std::string lacking;
    for (std::size_t k = 0; k < seen.size(); ++k)
      if ((seen[k] != 0) != (seen[0] != 0)) lacking += (lacking.empty() ? "" : ", ") + std::to_string(k);
    BEVKD_CHECK(lacking.empty(), "bevkd-train: rank 0 ", seen[0] != 0 ? "sees" : "does not see", " ", r.latest,
                " but rank(s) ", lacking, seen[0] != 0 ? " do not" : " do", ": --out must be one directory every rank "
                "shares (a shared filesystem across machines)");
  }
  if (!have) {
    if (r.rank0) r.metrics = std::make_unique<nn::MetricsLog>(r.metrics_path, -1);
    return;
  }
  const auto ck = nn::read_checkpoint(r.latest, kStudentCheckpointKind);
  const json meta = config::parse(ck.meta_json, "checkpoint " + r.latest + " meta");
  const std::string diff = config::first_difference(resume_identity(meta.at("train")), resume_identity(r.resolved),
                                                    "the checkpoint", "this run");
  BEVKD_CHECK(diff.empty(), "cannot resume from ", r.latest, ": it was made with another configuration, first "
              "difference at ", diff, " (use another --out directory, or --no-resume to start over)");
  const std::string src = "checkpoint " + r.latest;
  nn::load_module_state(*r.model, ck.module("model", r.latest), src, "student preset " + r.student_cfg.preset);
  if (r.ema) {
    nn::load_module_state(*r.ema->model, ck.module("ema", r.latest), src, "the student's EMA");
    r.ema->updates = meta.at("ema_updates").get<int64_t>();
  }
  for (auto& l : r.losses)
    if (!l.module->parameters().empty() || !l.module->buffers().empty())
      nn::load_module_state(*l.module, ck.module("loss." + l.name, r.latest), src, "loss " + l.name);
  BEVKD_CHECK(ck.optimizers.count("adamw") != 0, "cannot resume from ", r.latest, ": it holds no optimizer state");
  nn::optimizer_from_bytes(*r.opt, ck.optimizers.at("adamw"), r.latest);
  for (auto& l : r.losses)
    if (auto* o = l.module->own_optimizer()) {
      BEVKD_CHECK(ck.optimizers.count("loss." + l.name) != 0, "cannot resume from ", r.latest, ": it holds no state "
                  "of loss ", l.name, "'s own optimizer (optimizers: loss.", l.name, " expected)");
      nn::optimizer_from_bytes(*o, ck.optimizers.at("loss." + l.name), r.latest);
    }
  if (ck.blobs.count("rng.cpu")) set_generator_state(ck.blobs.at("rng.cpu"));
  r.step = meta.at("step").get<int64_t>();
  r.bad_step_list = meta.at("bad_steps").get<std::vector<int64_t>>();
  r.bad_steps = static_cast<int64_t>(r.bad_step_list.size());
  std::vector<storage::StreamPosition> saved;
  if (meta.contains("loader_positions")) {
    for (const auto& p : meta.at("loader_positions"))
      saved.push_back({p.at("epoch").get<std::int64_t>(), p.at("index").get<std::int64_t>()});
  } else {  // a single-process checkpoint of before data parallel
    const auto& p = meta.at("loader_position");
    saved.push_back({p.at("epoch").get<std::int64_t>(), p.at("index").get<std::int64_t>()});
  }
  const auto saved_parts = static_cast<int64_t>(saved.size());
  int64_t cut = r.step;
  std::string resharded;
  if (saved_parts == r.parts) {  // the same split: every part continues exactly where it was
    for (std::size_t k = 0; k < r.loaders.size(); ++k)
      r.loaders[k]->seek(saved[static_cast<std::size_t>(r.env.rank * cfg.accumulate) + k]);
  } else {
    // Another split (world size x accumulate): the parts of the epoch in progress hold other
    // samples now, so that epoch restarts from its beginning with the new split; finished
    // epochs are kept, and the step counter moves to the epoch's first step in the new units.
    const int64_t old_spe = meta.value("steps_per_epoch", int64_t{0});
    BEVKD_CHECK(old_spe > 0, "cannot resume from ", r.latest, " with ", r.parts, " parts (world size ",
                r.env.world_size, " x accumulate ", cfg.accumulate, "): it was written by ", saved_parts,
                " parts and does not record its steps per epoch");
    const int64_t epoch = r.step / old_spe;
    const int64_t old_step = r.step;
    r.step = epoch * r.steps_per_epoch;
    cut = r.step;
    for (auto& l : r.loaders) l->seek({epoch, 0});
    resharded = cat("the checkpoint was written by ", saved_parts, " parts (world size x accumulate) at step ",
                    old_step, " (", old_spe, " steps per epoch); this run has ", r.parts, " (", r.steps_per_epoch,
                    " steps per epoch): epoch ", epoch, " restarts from its beginning at step ", r.step,
                    ", so its samples seen before the stop are seen again");
  }
  if (r.rank0) {
    r.metrics = std::make_unique<nn::MetricsLog>(r.metrics_path, cut);
    if (!resharded.empty())
      r.metrics->append(json{{"event", "resharded"}, {"step", r.step}, {"parts", r.parts}, {"saved_parts", saved_parts},
                             {"message", resharded}});
  }
  if (!r.quiet) {
    r.log << "bevkd-train: resuming from " << r.latest << " at step " << r.step << "/" << r.total << "\n";
    if (!resharded.empty()) r.log << "bevkd-train: " << resharded << "\n";
  }
}

// Sums over the logged interval.
struct Interval {
  std::map<std::string, double> sums;
  double wait_s = 0, comm_s = 0, grad_norm = 0;
  int64_t steps = 0, samples = 0;
  Clock::time_point start = Clock::now();
};

Student& eval_model(TrainRun& r, std::string* which) {
  const bool use_ema = r.ema && r.cfg.eval_weights != "model";
  *which = use_ema ? "ema" : "model";
  return use_ema ? r.ema->model : r.model;
}

}  // namespace

// ---- evaluation ----------------------------------------------------------------------------

namespace {

// The query head's detections: per sample the top max_det (query, class) pairs of the last layer
// by sigmoid score, their boxes decoded (NMS-free, as DETR3D's coder).
std::vector<nn::Detections> query_detections(const nn::QueryDecoderOutput& q, int64_t max_det) {
  std::vector<nn::Detections> out;
  const auto& logits = q.cls_logits.back();
  const auto& codes = q.codes.back();
  for (int64_t b = 0; b < logits.size(0); ++b) {
    const auto top = nn::query_topk(logits[b], max_det);
    nn::Detections d;
    d.boxes = nn::decode_query_boxes(codes[b].index_select(0, top.query.to(codes.device()))).cpu().to(torch::kFloat32);
    d.scores = top.score;
    d.labels = top.label;
    d.cells = top.query;  // the query index (no grid cell)
    out.push_back(std::move(d));
  }
  return out;
}

StudentEvalResult evaluate_student(Student& model, const StudentConfig& s, const std::string& manifest_path,
                                   const std::string& dataroot, const std::string& split, int64_t batch_size,
                                   int threads, const torch::Device& device, const std::string& out_dir,
                                   const std::string& weights, bool plots, bool quiet, std::ostream& log) {
  const auto manifest = storage::Manifest::load(manifest_path);
  data::LoaderConfig lc;
  lc.batch_size = batch_size;
  lc.threads = threads;
  follow_student(lc, s);
  data::LoaderSetup ls;
  ls.split = split;
  ls.train = false;
  ls.student_grid = s.grid;
  ls.student_grid_name = "student preset " + s.preset;
  data::Loader loader(manifest, dataroot, lc, ls);
  const auto gt = core::eval::shard_ground_truth(manifest_path, split);

  const bool was_training = model->is_training();
  model->eval();
  torch::NoGradGuard no_grad;
  const auto decode = s.decode_config();
  ProgressOptions po;
  po.unit = "samples";
  po.enabled = !quiet;
  Progress progress("eval " + split + " (" + weights + " weights)", loader.samples_per_epoch(), log, po);
  std::vector<core::eval::SampleDetections> samples;
  while (auto batch = loader.next()) {
    const auto cams = batch->cameras.to(device);
    auto out = model->forward(cams);
    const auto dets = s.query() ? query_detections(out.query, s.query_max_det) : nn::decode_center_head(out.tasks, decode);
    for (int64_t i = 0; i < batch->size(); ++i) {
      std::array<double, 16> m{};
      for (int k = 0; k < 16; ++k) m[static_cast<std::size_t>(k)] = batch->ego2global[static_cast<std::size_t>(i)][static_cast<std::size_t>(k)];
      samples.push_back(nn::sample_detections(dets[static_cast<std::size_t>(i)],
                                              batch->sample_tokens[static_cast<std::size_t>(i)],
                                              core::Rigid::from_mat4(m)));
    }
    progress.advance(batch->size());
  }
  progress.finish();
  if (was_training) model->train();

  core::eval::DetectionsEvalOptions eo;
  eo.out_dir = out_dir;
  eo.meta.use_camera = true;
  eo.plots = plots;
  const auto ev = core::eval::evaluate_detections(samples, gt, eo);
  StudentEvalResult r;
  r.map = ev.map;
  r.nds = ev.nds;
  r.weights = weights;
  r.results_path = ev.results_path;
  r.metrics_path = ev.metrics_path;
  r.table = ev.table;
  r.samples = static_cast<int64_t>(samples.size());
  if (!quiet) log << r.table << "\n";
  return r;
}

void run_eval(TrainRun& r, TrainResult& result) {
  std::string which;
  Student& m = eval_model(r, &which);
  const std::string dir = r.cfg.out_dir + "/eval/" + r.cfg.val_split + "/step-" + std::to_string(r.step);
  const auto ev = evaluate_student(m, r.student_cfg, r.manifest_path, r.cfg.dataroot, r.cfg.val_split,
                                   r.loader_cfg.batch_size, r.loader_cfg.threads, r.device, dir, which, true,
                                   r.quiet, r.log);
  result.map = ev.map;
  result.nds = ev.nds;
  result.metrics_json = ev.metrics_path;
  r.metrics->append(json{{"event", "eval"}, {"step", r.step}, {"split", r.cfg.val_split}, {"weights", which},
                         {"mAP", ev.map}, {"NDS", ev.nds}, {"metrics", ev.metrics_path}});
  if (!r.quiet)
    r.log << "bevkd-train: step " << r.step << " " << r.cfg.val_split << " (" << which << " weights): mAP "
          << fmt(ev.map) << "  NDS " << fmt(ev.nds) << "\n";
}

// ---- training ------------------------------------------------------------------------------

void log_interval(TrainRun& r, Interval& iv, int64_t end, int64_t first_step, double lr, Clock::time_point t_run,
                  TrainResult& result) {
  const double dt = seconds_since(iv.start);
  if (r.dist) {  // the interval's terms as the mean over ranks, which must log the same terms
    const auto counts = r.dist->allgather({static_cast<int64_t>(iv.sums.size())}, "the metrics' term count");
    for (std::size_t k = 1; k < counts.size(); ++k)
      BEVKD_CHECK(counts[k] == counts[0], "bevkd-train: rank ", k, " logs ", counts[k], " loss terms at step ", r.step,
                  ", rank 0 logs ", counts[0], " (a loss whose terms depend on the data cannot be averaged over ranks)");
    std::vector<double> v;
    for (const auto& [k, x] : iv.sums) v.push_back(x);
    v.push_back(iv.wait_s);
    v.push_back(iv.comm_s);
    auto t = torch::tensor(v, torch::kFloat64);
    r.dist->allreduce_sum({t}, "the metrics all-reduce");
    const double w = static_cast<double>(r.env.world_size);
    std::size_t i = 0;
    for (auto& [k, x] : iv.sums) x = t[static_cast<int64_t>(i++)].item<double>() / w;
    iv.wait_s = t[static_cast<int64_t>(i++)].item<double>() / w;
    iv.comm_s = t[static_cast<int64_t>(i)].item<double>() / w;
    iv.samples *= r.env.world_size;
  }
  const double rate = dt > 0 ? static_cast<double>(iv.samples) / dt : 0;
  const double done_here = static_cast<double>(r.step - first_step);
  const double eta = done_here > 0 ? static_cast<double>(end - r.step) * seconds_since(t_run) / done_here : 0;
  const double n = static_cast<double>(std::max<int64_t>(iv.steps, 1));
  json rec{{"step", r.step},
           {"epoch", static_cast<double>(r.step) / static_cast<double>(r.steps_per_epoch)},
           {"lr", lr},
           {"grad_norm", iv.grad_norm / n},
           {"samples_per_s", rate},
           {"data_wait", dt > 0 ? iv.wait_s / dt : 0.0},
           {"elapsed_s", seconds_since(r.t_start)}};
  if (r.dist) {
    rec["comm_wait"] = dt > 0 ? iv.comm_s / dt : 0.0;  // waiting for all-reduces, share of the wall time
    rec["world_size"] = r.env.world_size;
    if (r.reducer) rec["buckets"] = r.reducer->bucket_count();
  }
  for (const auto& [k, v] : iv.sums) rec[k] = v / n;
  r.last_metrics = rec;
  result.last_loss = iv.sums["loss"] / n;
  if (r.rank0) r.metrics->append(rec);
  if (!r.quiet) {
    std::string parts;
    for (const auto& [k, v] : iv.sums)
      if (k != "loss") parts += (parts.empty() ? "" : ", ") + (k.rfind("loss", 0) == 0 ? k.substr(5) : k) + " " + fmt(v / n);
    r.log << "bevkd-train  step " << r.step << "/" << r.total << "  epoch "
          << fmt(static_cast<double>(r.step) / static_cast<double>(r.steps_per_epoch), 3) << "/" << r.cfg.epochs
          << "  loss " << fmt(result.last_loss) << " (" << parts << ")  lr " << fmt(lr, 3) << "  "
          << fmt(rate, 3) << " samples/s  data wait " << fmt(dt > 0 ? 100 * iv.wait_s / dt : 0.0, 2) << "%"
          << (r.dist ? "  all-reduce wait " + fmt(dt > 0 ? 100 * iv.comm_s / dt : 0.0, 2) + "%" : std::string())
          << "  ETA " << Progress::format_duration(eta) << "\n";
  }
  iv = Interval{};
}

std::string tokens_of(const data::Batch& b) {
  std::string s;
  for (const auto& t : b.sample_tokens) s += (s.empty() ? "" : ", ") + t;
  return s;
}

// A non-finite loss or gradient (on any rank: every rank decides alike): the step is skipped,
// reported and counted; too many stop the run.
void bad_step(TrainRun& r, const std::string& samples, const std::vector<std::string>& tokens, const std::string& what,
              const json& terms) {
  ++r.bad_steps;
  r.bad_step_list.push_back(r.step);
  r.opt->zero_grad();
  if (r.rank0)
    r.metrics->append(json{{"event", "bad_step"}, {"step", r.step}, {"what", what}, {"terms", terms},
                           {"samples", tokens}});
  if (r.rank0)
    r.log << "bevkd-train: step " << r.step << ": " << what << " (terms " << terms.dump() << "; samples " << samples
          << "): step skipped (" << r.bad_steps << " of at most " << r.cfg.max_bad_steps << ")\n";
  if (r.bad_steps > r.cfg.max_bad_steps) {
    std::string steps;
    for (auto s : r.bad_step_list) steps += (steps.empty() ? "" : ", ") + std::to_string(s);
    BEVKD_FAIL("bevkd-train train: stopping after ", r.bad_steps, " non-finite steps (steps ", steps,
               "; --max-bad-steps ", r.cfg.max_bad_steps, "): the last at step ", r.step, " had ", what,
               ". Try a lower --lr (now ", r.cfg.schedule.lr, ") or --grad-clip; ", r.latest,
               " holds the last good state");
  }
}

json finite_terms(const std::map<std::string, torch::Tensor>& terms) {
  json j = json::object();
  for (const auto& [k, v] : terms) {
    const double x = v.item<double>();
    j[k] = std::isfinite(x) ? json(x) : json(std::isnan(x) ? "nan" : (x > 0 ? "inf" : "-inf"));
  }
  return j;
}

// The next batch of loader k; an epoch that ends early (skipped samples) moves on to the next.
data::Batch next_batch(TrainRun& r, std::size_t k) {
  auto& loader = *r.loaders[k];
  auto host = loader.next();
  if (!host) {
    const auto pos = loader.position();
    loader.seek({pos.epoch + 1, 0});
    host = loader.next();
    BEVKD_CHECK(host.has_value(), "bevkd-train train: epoch ", pos.epoch + 1, " of split ", r.cfg.train_split,
                " delivers no batch");
  }
  return std::move(*host);
}

// One micro-batch's forward pass and losses; the total (not yet backpropagated) and its terms.
torch::Tensor micro_batch_loss(TrainRun& r, const data::Batch& host, std::map<std::string, torch::Tensor>& terms) {
  const data::Batch b = host.to(r.device);
  const bool query = r.student_cfg.query();
  const auto targets = query ? std::vector<nn::TaskTargets>{} : batch_targets(host, r.student_cfg, r.device);
  student::StudentOutput out;
  {
    AutocastScope autocast(r.cfg.precision == "bf16");
    out = r.model->forward(b.cameras);
  }
  outputs_to_float32(out);
  torch::Tensor det_total;
  if (query) {  // the query head's Hungarian set loss, every decoder layer
    std::vector<torch::Tensor> codes, labels;
    for (const auto& g : b.gt) {
      codes.push_back(nn::encode_query_boxes(g.boxes));
      labels.push_back(g.labels);
    }
    torch::Tensor cls = torch::zeros({}, out.neck.options()), box = cls;
    for (std::size_t l = 0; l < out.query.codes.size(); ++l) {
      const auto ll = nn::query_layer_loss(out.query.cls_logits[l], out.query.codes[l], codes, labels,
                                           r.student_cfg.query_loss);
      cls = cls + ll.cls;
      box = box + ll.box;
    }
    terms["loss_cls"] = cls.detach();
    terms["loss_bbox"] = box.detach();
    det_total = cls + box;
  } else {
    const auto det = nn::center_head_loss(out.tasks, targets, r.student_cfg.loss);
    torch::Tensor hm = torch::zeros({}, out.head_shared.options()), bb = hm;
    for (const auto& t : det.heatmap) hm = hm + t;
    for (const auto& t : det.bbox) bb = bb + t;
    terms["loss_heatmap"] = hm.detach();
    terms["loss_bbox"] = bb.detach();
    det_total = det.total;
  }
  const auto depth = student::depth_loss(out.depth, b.depth.depth, r.student_cfg.depth_bins,
                                         r.student_cfg.depth_loss_weight);
  terms["loss_depth"] = depth.total.detach();
  torch::Tensor total = det_total + depth.total;
  const LossInputs in{out, b, targets, r.step};
  for (auto& l : r.losses) {
    const auto lt = l.module->terms(in);
    torch::Tensor sum = torch::zeros({}, total.options());
    for (const auto& [k, v] : lt) {
      sum = sum + v;
      terms["loss." + l.name + "." + k] = v.detach();
    }
    total = total + l.weight * sum;
    terms["loss." + l.name] = (l.weight * sum).detach();
  }
  terms["loss"] = total.detach();
  return total;
}

void discard_own_losses(TrainRun& r) {
  std::map<std::string, double> ignored;
  for (auto& l : r.losses) {
    (void)l.module->take_own_losses(ignored);
    l.module->take_metrics(ignored);
  }
}

// The losses' metrics of the step, and their own optimizers (X³KD's discriminator, FD3D's
// distillation head), after the student's step: their losses of the step's micro-batches,
// averaged, back-propagated into their own parameters only, all-reduced over the ranks and
// stepped. A non-finite own loss (on any rank) skips that optimizer's step and
// is logged; the student's step stands.
void own_steps(TrainRun& r, double lr_factor, std::map<std::string, double>& step_terms, Interval& iv) {
  for (auto& l : r.losses) {
    std::map<std::string, double> metrics;
    l.module->take_metrics(metrics);
    for (const auto& [k, v] : metrics) step_terms[k] += v;
    torch::optim::Optimizer* o = l.module->own_optimizer();
    if (!o) continue;
    std::map<std::string, double> logged;
    const auto ls = l.module->take_own_losses(logged);
    if (ls.empty()) continue;  // nothing saved this step (the same on every rank)
    l.module->set_own_lr(lr_factor);
    o->zero_grad();
    torch::Tensor sum;
    for (const auto& x : ls) sum = sum.defined() ? sum + x : x;
    bool finite = sum.defined() && std::isfinite(sum.item<double>());
    if (finite) {
      if (l.own_reducer) l.own_reducer->arm(false);
      (sum / static_cast<double>(ls.size())).backward();
    }
    if (r.dist) {
      const auto t = Clock::now();
      finite = !r.dist->any(!finite, "loss " + l.name + "'s own finite-loss check");
      if (finite) l.own_reducer->finish(static_cast<double>(r.env.world_size));
      iv.comm_s += seconds_since(t);
    }
    if (finite && l.module->own_grad_clip() > 0) {
      const double norm = nn::clip_grad_norm(l.module->own_parameters(), l.module->own_grad_clip());
      finite = std::isfinite(norm);  // the same gradients on every rank: the same decision
    }
    if (finite) {
      o->step();
    } else {
      o->zero_grad();
      if (r.rank0)
        r.metrics->append(json{{"event", "bad_own_step"}, {"step", r.step}, {"loss", l.name},
                               {"what", "a non-finite loss of its own optimizer: its step skipped"}});
    }
    for (const auto& [k, v] : logged) step_terms[k] += v;
  }
}

void train_steps(TrainRun& r, TrainResult& result) {
  const auto& cfg = r.cfg;
  const int64_t end = cfg.stop_after > 0 ? std::min(r.total, cfg.stop_after) : r.total;
  if (r.step >= end) return;
  if (!r.quiet)
    r.log << "bevkd-train: student " << r.student_cfg.preset << " (" << r.model->num_parameters()
          << " parameters, grid " << r.student_cfg.grid.H << "x" << r.student_cfg.grid.W << "), shards "
          << r.manifest_path << " split " << cfg.train_split << ": " << r.loaders.front()->samples_per_epoch() * r.parts
          << " samples, " << r.steps_per_epoch << " steps/epoch x " << cfg.epochs << " epochs, batch "
          << r.loader_cfg.batch_size
          << (r.parts > 1 ? " x " + std::to_string(r.parts) + " (world size x accumulate)" : std::string())
          << ", losses: detection, depth" << [&] {
               std::string s;
               for (const auto& l : r.losses) s += ", " + l.name + " x" + fmt(l.weight);
               return s;
             }()
          << ", device " << r.device.str() << (cfg.precision == "bf16" ? " (bf16 autocast)" : "") << "\n";
  r.model->train();
  for (auto& l : r.losses) l.module->train();
  std::vector<torch::Tensor> params = r.model->parameters();
  for (const auto& l : r.losses)
    for (const auto& p : l.module->student_parameters()) params.push_back(p);
  if (r.dist && !r.reducer)
    r.reducer = std::make_unique<GradReducer>(*r.dist, params, cfg.dist_bucket_mb, cfg.dist_overlap);
  if (r.dist)
    for (auto& l : r.losses)
      if (l.module->own_optimizer() && !l.own_reducer)  // after the student's step: nothing to overlap
        l.own_reducer = std::make_unique<GradReducer>(*r.dist, l.module->own_parameters(), cfg.dist_bucket_mb, false);
  const auto micro = static_cast<std::size_t>(cfg.accumulate);
  Interval iv;
  const auto t_run = Clock::now();
  const int64_t first_step = r.step;
  while (r.step < end) {
    const auto lp = nn::lr_at(cfg.schedule, r.step, r.total);
    nn::apply_lr(*r.opt, lp);
    r.opt->zero_grad();
    // The micro-batches: each backward adds into the gradients; the reducer all-reduces during
    // the last one. A non-finite loss skips its backward, and the step is dropped on every rank.
    std::map<std::string, double> step_terms;
    std::string bad_what, samples;
    std::vector<std::string> tokens;
    json bad_terms;
    int64_t step_samples = 0;
    for (std::size_t k = 0; k < micro; ++k) {
      const auto t_wait = Clock::now();
      data::Batch host = next_batch(r, k);
      iv.wait_s += seconds_since(t_wait);
      if (r.hooks.on_batch) r.hooks.on_batch(host);
      step_samples += host.size();
      samples += (samples.empty() ? "" : ", ") + tokens_of(host);
      tokens.insert(tokens.end(), host.sample_tokens.begin(), host.sample_tokens.end());
      // The forward pass's own randomness (dropout) from a generator keyed by (seed, step, part):
      // two ranks draw what one process accumulating their two micro-batches draws.
      torch::manual_seed(mix_keys(cfg.loader.seed, static_cast<uint64_t>(r.step),
                                  static_cast<uint64_t>(r.env.rank * cfg.accumulate) + k) >> 1);
      std::map<std::string, torch::Tensor> terms;
      torch::Tensor total = micro_batch_loss(r, host, terms);
      const double loss_v = total.item<double>();
      if (!std::isfinite(loss_v)) {
        if (bad_what.empty()) {
          bad_what = "a non-finite loss (" + fmt(loss_v) + ")";
          bad_terms = finite_terms(terms);
        }
        continue;
      }
      for (const auto& [key, v] : terms) step_terms[key] += v.item<double>() / static_cast<double>(micro);
      if (r.reducer) r.reducer->arm(k + 1 == micro);
      total.backward();
    }
    if (r.reducer) {
      iv.comm_s += r.reducer->finish(static_cast<double>(r.parts));
    } else if (micro > 1) {
      torch::NoGradGuard g;
      for (auto& p : params)
        if (p.grad().defined()) p.mutable_grad().div_(static_cast<double>(micro));
    }
    if (r.dist) {
      const auto t_flag = Clock::now();
      const bool any_bad = r.dist->any(!bad_what.empty(), "the step's finite-loss check");
      iv.comm_s += seconds_since(t_flag);
      if (any_bad && bad_what.empty()) bad_what = "a non-finite loss on another rank";
    }
    if (!bad_what.empty()) {
      discard_own_losses(r);
      bad_step(r, samples, tokens, bad_what, bad_terms);
      ++r.step;
      continue;
    }
    const double norm = nn::clip_grad_norm(params, cfg.grad_clip > 0 ? cfg.grad_clip : 0.0);
    if (!std::isfinite(norm)) {  // the gradients are the same on every rank: so is this decision
      json t = json::object();
      for (const auto& [k, v] : step_terms) t[k] = v;
      discard_own_losses(r);
      bad_step(r, samples, tokens, "a non-finite gradient norm (" + fmt(norm) + ")", t);
      ++r.step;
      continue;
    }
    r.opt->step();
    own_steps(r, lp.lr / cfg.schedule.lr, step_terms, iv);
    if (r.dist) {
      const auto t_buf = Clock::now();
      average_buffers(r);
      iv.comm_s += seconds_since(t_buf);
    }
    if (r.ema) r.ema->update(r.model, cfg.ema_decay, cfg.ema_ramp);

    for (const auto& [k, v] : step_terms) iv.sums[k] += v;
    iv.grad_norm += norm;
    ++iv.steps;
    iv.samples += step_samples;
    ++r.step;
    const bool epoch_end = r.step % r.steps_per_epoch == 0;
    if (r.step % cfg.log_every == 0 || r.step == end || epoch_end)
      log_interval(r, iv, end, first_step, lp.lr, t_run, result);
    if ((cfg.checkpoint_every > 0 && r.step % cfg.checkpoint_every == 0) || epoch_end || r.step == end) save_latest(r);
    if (cfg.eval_every > 0 && !cfg.val_split.empty() && r.step % cfg.eval_every == 0 && r.step < r.total) {
      if (r.rank0) run_eval(r, result);
      if (r.dist) {
        const std::string tag = "evaluation at step " + std::to_string(r.step);
        r.dist->rank0_done(tag);
        r.dist->wait_rank0(tag);
      }
    }
  }
  if (iv.steps > 0) log_interval(r, iv, end, first_step, nn::lr_at(cfg.schedule, r.step - 1, r.total).lr, t_run, result);
  if (r.rank0) {
    const auto st = r.loaders.front()->stats();
    r.metrics->append(json{{"event", "loader"}, {"step", r.step}, {"samples_per_s", st.samples_per_s()},
                           {"wait_fraction", st.wait_fraction()}, {"skipped_samples", st.skipped_samples},
                           {"skipped", st.skipped}});
    if (st.skipped_samples > 0 && !r.quiet)
      r.log << "bevkd-train: " << st.skipped_samples << " samples skipped for missing images (first: "
            << (st.skipped.empty() ? "" : st.skipped.front()) << ")\n";
  }
  save_latest(r);
}

void finish(TrainRun& r, TrainResult& result) {
  const auto& cfg = r.cfg;
  result.steps_done = r.step;
  result.total_steps = r.total;
  result.bad_steps = r.bad_steps;
  result.finished = r.step >= r.total;
  result.checkpoint = r.latest;
  if (!r.rank0) {  // rank 0 alone copies the final checkpoint, evaluates and plots
    if (result.finished) result.checkpoint = r.final_ckpt;
    return;
  }
  if (result.finished) {
    copy_file_atomic(r.latest, r.final_ckpt);
    result.checkpoint = r.final_ckpt;
    if (!cfg.val_split.empty()) run_eval(r, result);
  }
  if (cfg.plots) {
    const auto written = plot_metrics(r.metrics_path, cfg.out_dir + "/plots");
    if (!r.quiet && !written.empty()) r.log << "bevkd-train: loss curves in " << cfg.out_dir << "/plots/\n";
  }
}

}  // namespace

TrainResult train_student(const TrainConfig& cfg, std::ostream& log, const TrainHooks& hooks) {
  cfg.validate();
  TrainRun run{cfg, log, hooks};
  TrainResult result;
  try {
    setup(run);
    resume_or_start(run);
    if (run.dist) broadcast_state(run);
    train_steps(run, result);
    finish(run, result);
    if (run.dist) run.dist->final_barrier();
  } catch (const std::exception& e) {
    if (run.dist) run.dist->publish_failure(e.what());  // the other ranks' errors name this rank and why
    throw;
  }
  result.wall_s = seconds_since(run.t_start);
  result.rank = run.env.rank;
  return result;
}

StudentEvalResult evaluate_checkpoint(const EvalConfig& cfg, std::ostream& log) {
  cfg.validate();
  const auto ck = nn::read_checkpoint(cfg.checkpoint, kStudentCheckpointKind);
  const json meta = config::parse(ck.meta_json, "checkpoint " + cfg.checkpoint + " meta");
  BEVKD_CHECK(meta.contains("student"), "checkpoint ", cfg.checkpoint, " holds no student configuration");
  StudentConfig s;
  config::from_json(meta.at("student"), s, "checkpoint " + cfg.checkpoint + " student");
  s.validate();
  const std::string manifest_path = storage::Manifest::file_of(cfg.shards);
  const auto manifest = storage::Manifest::load(manifest_path);
  const auto al = student::align_student_grid(s.grid, manifest.grid());
  (void)al;
  const bool has_ema = ck.modules.count("ema") != 0;
  BEVKD_CHECK(cfg.weights != "ema" || has_ema, "bevkd-train eval: --weights ema, but ", cfg.checkpoint,
              " holds no EMA weights (the run had no --ema)");
  const std::string which = cfg.weights == "auto" ? (has_ema ? "ema" : "model") : cfg.weights;
  const torch::Device device(cfg.device);
  Student model(s);
  nn::load_module_state(*model, ck.module(which, cfg.checkpoint), "checkpoint " + cfg.checkpoint,
                        "student preset " + s.preset);
  model->to(device);
  const std::string out = cfg.out_dir.empty()
                              ? fs::path(cfg.checkpoint).parent_path().string() + "/eval/" + cfg.split
                              : cfg.out_dir;
  if (!cfg.quiet)
    log << "bevkd-train eval: " << cfg.checkpoint << " (step " << meta.value("step", int64_t{0}) << ", " << which
        << " weights) on " << manifest_path << " split " << cfg.split << "\n";
  return evaluate_student(model, s, manifest_path, cfg.dataroot, cfg.split, cfg.batch_size, cfg.threads, device, out,
                          which, cfg.plots, cfg.quiet, log);
}

std::vector<std::string> plot_metrics(const std::string& metrics_jsonl, const std::string& out_dir) {
  const auto records = nn::MetricsLog::read(metrics_jsonl);
  std::map<std::string, PlotSeries> loss;
  PlotSeries lr;
  lr.label = "lr";
  for (const auto& rec : records) {
    if (rec.contains("event") || !rec.contains("step")) continue;
    const double step = rec.at("step").get<double>();
    for (const auto& [k, v] : rec.items()) {
      if (k.rfind("loss", 0) != 0 || !v.is_number()) continue;
      if (std::count(k.begin(), k.end(), '.') > 1) continue;  // a loss's own terms: its total is plotted
      const double y = v.get<double>();
      if (!(y > 0)) continue;  // log scale
      auto& s = loss[k];
      s.label = k;
      s.x.push_back(step);
      s.y.push_back(y);
    }
    if (rec.contains("lr")) {
      lr.x.push_back(step);
      lr.y.push_back(rec.at("lr").get<double>());
    }
  }
  std::vector<std::string> written;
  if (loss.empty()) return written;
  make_dirs(out_dir);
  LinePlotOptions o;
  o.title = "training losses";
  o.x.label = "step";
  o.y.label = "loss";
  o.y.log = true;
  LinePlot plot(o);
  for (auto& [k, s] : loss) plot.add_series(s);
  written.push_back(out_dir + "/loss.png");
  plot.save_png(written.back());
  if (!lr.x.empty()) {
    LinePlotOptions lo;
    lo.title = "learning rate";
    lo.x.label = "step";
    lo.y.label = "lr";
    LinePlot lp(lo);
    lp.add_series(lr);
    written.push_back(out_dir + "/lr.png");
    lp.save_png(written.back());
  }
  return written;
}

void plot_compare(const std::vector<std::string>& metrics_jsonl, const std::vector<std::string>& labels,
                  const std::string& out_png) {
  BEVKD_CHECK(metrics_jsonl.size() == labels.size(), "plot_compare: ", metrics_jsonl.size(), " logs, ",
              labels.size(), " labels");
  LinePlotOptions o;
  o.title = "training loss: total and the detection classification term (heat map or queries)";
  o.x.label = "step";
  o.y.label = "loss";
  o.y.log = true;
  LinePlot plot(o);
  for (std::size_t i = 0; i < metrics_jsonl.size(); ++i) {
    PlotSeries total, det;
    total.label = labels[i] + " total";
    det.label = labels[i] + " heat map";
    for (const auto& rec : nn::MetricsLog::read(metrics_jsonl[i])) {
      if (rec.contains("event") || !rec.contains("loss")) continue;
      const double step = rec.at("step").get<double>();
      total.x.push_back(step);
      total.y.push_back(rec.at("loss").get<double>());
      det.x.push_back(step);
      det.y.push_back(rec.contains("loss_heatmap") ? rec.at("loss_heatmap").get<double>()
                                                   : rec.value("loss_cls", 0.0));  // a query head's
    }
    BEVKD_CHECK(!total.x.empty(), "plot_compare: ", metrics_jsonl[i], " holds no logged step");
    plot.add_series(total);
    plot.add_series(det);
  }
  const auto parent = fs::path(out_png).parent_path();
  if (!parent.empty()) make_dirs(parent.string());
  plot.save_png(out_png);
}

}  // namespace bevkd::train::trainer

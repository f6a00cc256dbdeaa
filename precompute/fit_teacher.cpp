#include "precompute/fit_teacher.h"

#include <tbb/parallel_for.h>
#include <tbb/task_arena.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <condition_variable>
#include <cstdio>
#include <deque>
#include <exception>
#include <fstream>
#include <iostream>
#include <mutex>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>

#include "base/error.h"
#include "base/fs.h"
#include "base/progress.h"
#include "core/json_config.h"
#include "precompute/builtin_teacher.h"
#include "precompute/checkpoint.h"
#include "precompute/lidar_frames.h"
#include "precompute/pointpillars.h"
#include "precompute/teacher_eval.h"

namespace bevkd::precompute {

namespace det = core::detection;

namespace {

constexpr double kPi = 3.14159265358979323846;

// splitmix64 finaliser: decorrelates (seed, epoch, position) into independent stream seeds.
uint64_t mix(uint64_t a, uint64_t b) {
  uint64_t z = a + 0x9E3779B97F4A7C15ull * (b + 1);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

// Fisher-Yates with the raw engine (std::shuffle's use of the engine is implementation-defined).
template <typename T>
void shuffle_with(std::vector<T>& v, std::mt19937_64& rng) {
  for (size_t i = v.size(); i > 1; --i) std::swap(v[i - 1], v[rng() % i]);
}

std::vector<int64_t> epoch_order(uint64_t seed, int64_t epoch, int64_t n) {
  std::vector<int64_t> order(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) order[static_cast<size_t>(i)] = i;
  std::mt19937_64 rng(mix(mix(seed, 0x5EED), static_cast<uint64_t>(epoch)));
  shuffle_with(order, rng);
  return order;
}

struct TrainBatch {
  PillarBatch pillars;
  std::vector<det::TaskTargets> targets;
  int64_t num_gt = 0;
  int64_t num_points = 0;
};

struct FitContext {
  const FitTeacherConfig& cfg;
  const TeacherModelConfig& model_cfg;
  const LidarFrameSource& source;
  int64_t steps_per_epoch;
};

// One training sample: frame -> valid GT -> augmentation -> point shuffle -> GT range filter.
void prepare_sample(const FitContext& ctx, int64_t epoch, int64_t position, int64_t index, torch::Tensor* points,
                    torch::Tensor* boxes, torch::Tensor* labels) {
  const auto& cfg = ctx.cfg;
  auto frame = ctx.source.frame(index);
  const auto keep = valid_gt_indices(frame);
  auto bx = frame.boxes.index_select(0, keep);
  auto lb = frame.labels.index_select(0, keep);
  auto pts = frame.points;
  std::mt19937_64 rng(mix(mix(cfg.seed, static_cast<uint64_t>(epoch)), static_cast<uint64_t>(position)));
  if (cfg.augment) {
    const auto t = cfg.augmentation.sample(rng);
    pts = t.apply_points(pts);
    bx = t.apply_boxes(bx);
  }
  if (cfg.shuffle_points && pts.size(0) > 1) {
    std::vector<int64_t> perm(static_cast<size_t>(pts.size(0)));
    for (size_t i = 0; i < perm.size(); ++i) perm[i] = static_cast<int64_t>(i);
    shuffle_with(perm, rng);
    pts = pts.index_select(0, torch::tensor(perm, torch::kInt64));
  }
  // mmdet3d ObjectRangeFilter: keep GT whose BEV centre lies inside the point-cloud range.
  const auto& r = ctx.model_cfg.pillars.point_cloud_range;
  if (bx.size(0) > 0) {
    const auto x = bx.select(1, 0), y = bx.select(1, 1);
    const auto in = x.gt(r[0]) & x.lt(r[3]) & y.gt(r[1]) & y.lt(r[4]);
    const auto idx = in.nonzero().squeeze(1);
    bx = bx.index_select(0, idx);
    lb = lb.index_select(0, idx);
  }
  *points = pts.contiguous();
  *boxes = bx.contiguous();
  *labels = lb.contiguous();
}

TrainBatch load_batch(const FitContext& ctx, tbb::task_arena& arena, int64_t step) {
  const int64_t n = ctx.source.size();
  const int64_t epoch = step / ctx.steps_per_epoch;
  const int64_t first = (step % ctx.steps_per_epoch) * ctx.cfg.batch_size;
  const int64_t count = std::min(ctx.cfg.batch_size, n - first);
  const auto order = epoch_order(ctx.cfg.seed, epoch, n);
  std::vector<torch::Tensor> points(static_cast<size_t>(count)), boxes(static_cast<size_t>(count)),
      labels(static_cast<size_t>(count));
  arena.execute([&] {
    tbb::parallel_for(int64_t{0}, count, [&](int64_t i) {
      const auto k = static_cast<size_t>(i);
      prepare_sample(ctx, epoch, first + i, order[static_cast<size_t>(first + i)], &points[k], &boxes[k], &labels[k]);
    });
  });
  TrainBatch b;
  b.pillars = pillarize_batch(points, ctx.model_cfg.pillars, /*training=*/true);
  b.targets = det::center_targets(boxes, labels, ctx.model_cfg.target_config());
  for (const auto& x : boxes) b.num_gt += x.size(0);
  for (const auto& p : points) b.num_points += p.size(0);
  return b;
}

// Produces the batches of steps [begin, end) in order on a background thread, at most
// `depth` ahead; a worker exception is re-thrown by next().
class BatchPrefetcher {
 public:
  BatchPrefetcher(const FitContext& ctx, int64_t begin, int64_t end, int64_t workers, size_t depth = 2)
      : ctx_(ctx), arena_(static_cast<int>(std::max<int64_t>(workers, 1))), depth_(depth) {
    thread_ = std::thread([this, begin, end] {
      for (int64_t s = begin; s < end; ++s) {
        Item item;
        try {
          item.batch = load_batch(ctx_, arena_, s);
        } catch (...) {
          item.error = std::current_exception();
        }
        std::unique_lock<std::mutex> lock(mu_);
        cv_.wait(lock, [this] { return stop_ || queue_.size() < depth_; });
        if (stop_) return;
        const bool failed = item.error != nullptr;
        queue_.push_back(std::move(item));
        cv_.notify_all();
        if (failed) return;
      }
    });
  }
  ~BatchPrefetcher() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stop_ = true;
    }
    cv_.notify_all();
    thread_.join();
  }
  TrainBatch next() {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait(lock, [this] { return !queue_.empty(); });
    Item item = std::move(queue_.front());
    queue_.pop_front();
    cv_.notify_all();
    if (item.error) std::rethrow_exception(item.error);
    return std::move(item.batch);
  }

 private:
  struct Item {
    TrainBatch batch;
    std::exception_ptr error;
  };
  const FitContext& ctx_;
  tbb::task_arena arena_;
  size_t depth_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Item> queue_;
  bool stop_ = false;
  std::thread thread_;
};

TeacherModelConfig resolve_model_config(const FitTeacherConfig& cfg) {
  if (cfg.model_config.empty()) return teacher_preset(cfg.preset);
  return TeacherModelConfig::from_json(read_file(cfg.model_config), cfg.model_config);
}

// Fields that must agree between a checkpoint's fit config and the current one for an exact resume.
void check_resume_compatible(const std::string& stored_json, const std::string& current_json,
                             const std::string& ckpt_path) {
  const auto a = core::parse_json(stored_json, ckpt_path + " fit_config");
  const auto b = core::parse_json(current_json, "current fit config");
  for (const char* key : {"version", "train_split", "num_sweeps", "model", "epochs", "batch_size", "lr",
                          "weight_decay", "schedule", "warmup_fraction", "div_factor", "final_div_factor",
                          "grad_clip", "augment", "augmentation", "shuffle_points", "seed"}) {
    const auto va = a.contains(key) ? a.at(key) : nlohmann::json();
    const auto vb = b.contains(key) ? b.at(key) : nlohmann::json();
    BEVKD_CHECK(va == vb, "cannot resume from ", ckpt_path, ": it was made with ", key, " = ",
                va.dump().substr(0, 200), ", this run has ", key, " = ", vb.dump().substr(0, 200),
                " (use another --out directory, or --no-resume to start over)");
  }
}

// Keeps the records of metrics.jsonl with step <= `step` (a resumed run rewrites what follows).
void truncate_metrics(const std::string& path, int64_t step) {
  if (!path_exists(path)) return;
  std::istringstream in(read_file(path));
  std::string line, kept;
  while (std::getline(in, line)) {
    if (line.empty()) continue;
    try {
      const auto j = nlohmann::json::parse(line);
      if (j.contains("step") && j.at("step").get<int64_t>() > step) continue;
    } catch (const nlohmann::json::exception&) {
      continue;  // a torn last line from a killed run
    }
    kept += line + "\n";
  }
  write_file_atomic(path, kept);
}

void append_line(const std::string& path, const std::string& line) {
  std::ofstream out(path, std::ios::app);
  BEVKD_CHECK(out.good(), "cannot append to ", path);
  out << line << "\n";
  out.flush();
}

std::string fmt(double v, int prec = 4) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*g", prec, v);
  return buf;
}

}  // namespace

void FitTeacherConfig::validate() const {
  const std::string w = "fit-teacher";
  BEVKD_CHECK(!dataroot.empty(), w, ": --dataroot is required");
  BEVKD_CHECK(!out_dir.empty(), w, ": --out is required");
  BEVKD_CHECK(!train_split.empty(), w, ": --train-split is empty");
  BEVKD_CHECK(num_sweeps >= 1, w, ": --sweeps must be >= 1, got ", num_sweeps);
  BEVKD_CHECK(epochs >= 1, w, ": --epochs must be >= 1, got ", epochs);
  BEVKD_CHECK(batch_size >= 1, w, ": --batch-size must be >= 1, got ", batch_size);
  BEVKD_CHECK(lr > 0 && std::isfinite(lr), w, ": --lr must be positive, got ", lr);
  BEVKD_CHECK(weight_decay >= 0, w, ": --weight-decay must be >= 0, got ", weight_decay);
  BEVKD_CHECK(schedule == "onecycle" || schedule == "cosine", w, ": --schedule is '", schedule,
              "', expected onecycle or cosine");
  BEVKD_CHECK(warmup_fraction >= 0 && warmup_fraction < 1, w, ": warmup_fraction must be in [0, 1), got ",
              warmup_fraction);
  BEVKD_CHECK(div_factor >= 1 && final_div_factor >= 1, w, ": div_factor and final_div_factor must be >= 1");
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
}

std::string FitTeacherConfig::to_json() const {
  nlohmann::json j;
  j["dataroot"] = dataroot;
  j["version"] = version;
  j["train_split"] = train_split;
  j["val_split"] = val_split;
  j["num_sweeps"] = num_sweeps;
  j["preset"] = preset;
  j["model_config"] = model_config;
  j["epochs"] = epochs;
  j["batch_size"] = batch_size;
  j["lr"] = lr;
  j["weight_decay"] = weight_decay;
  j["schedule"] = schedule;
  j["warmup_fraction"] = warmup_fraction;
  j["div_factor"] = div_factor;
  j["final_div_factor"] = final_div_factor;
  j["grad_clip"] = grad_clip;
  j["augment"] = augment;
  j["augmentation"] = {{"rotation_range", augmentation.rotation_range},
                       {"scale_range", augmentation.scale_range},
                       {"flip_x_prob", augmentation.flip_x_prob},
                       {"flip_y_prob", augmentation.flip_y_prob}};
  j["shuffle_points"] = shuffle_points;
  j["out_dir"] = out_dir;
  j["seed"] = seed;
  j["num_workers"] = num_workers;
  j["threads"] = threads;
  j["device"] = device;
  j["checkpoint_every"] = checkpoint_every;
  j["log_every"] = log_every;
  j["resume"] = resume;
  j["stop_after"] = stop_after;
  j["eval_batch_size"] = eval_batch_size;
  return j.dump(2);
}

LrPoint lr_at(const FitTeacherConfig& cfg, int64_t step, int64_t total) {
  const double t = total <= 1 ? 1.0 : static_cast<double>(step) / static_cast<double>(total - 1);
  const double peak = cfg.lr, start = cfg.lr / cfg.div_factor, end = cfg.lr / cfg.final_div_factor;
  auto cosine = [](double from, double to, double u) { return to + (from - to) * 0.5 * (1 + std::cos(kPi * u)); };
  const double w = cfg.warmup_fraction;
  if (cfg.schedule == "onecycle") {
    // mmdetection3d cyclic (target_ratio (10, 1e-4), step_ratio_up 0.4) with cyclic momentum
    // 0.95 -> 0.85 -> 0.95, expressed as torch's OneCycleLR (cosine annealing both ways).
    if (w > 0 && t < w) return {cosine(start, peak, t / w), cosine(0.95, 0.85, t / w)};
    const double u = w >= 1 ? 1.0 : (t - w) / (1 - w);
    return {cosine(peak, end, u), cosine(0.85, 0.95, u)};
  }
  if (w > 0 && t < w) return {start + (peak - start) * t / w, 0.9};
  const double u = w >= 1 ? 1.0 : (t - w) / (1 - w);
  return {cosine(peak, end, u), 0.9};
}

FitTeacherResult fit_teacher(const FitTeacherConfig& cfg) {
  cfg.validate();
  const auto t_start = std::chrono::steady_clock::now();
  const auto model_cfg = resolve_model_config(cfg);
  if (cfg.threads > 0) torch::set_num_threads(static_cast<int>(cfg.threads));
  const torch::Device device(cfg.device);

  make_dirs(cfg.out_dir);
  nlohmann::json resolved = nlohmann::json::parse(cfg.to_json());
  resolved["model"] = nlohmann::json::parse(model_cfg.to_json());
  const std::string fit_json = resolved.dump(2);
  write_file_atomic(cfg.out_dir + "/config.json", fit_json + "\n");
  const std::string latest = cfg.out_dir + "/checkpoint-latest.ckpt";
  const std::string final_ckpt = cfg.out_dir + "/teacher.ckpt";
  const std::string metrics_path = cfg.out_dir + "/metrics.jsonl";

  NuscenesFramesOptions fo;
  fo.dataroot = cfg.dataroot;
  fo.version = cfg.version;
  fo.split = cfg.train_split;
  fo.num_sweeps = cfg.num_sweeps;
  const auto source = open_nuscenes_frames(fo);
  BEVKD_CHECK(source->size() > 0, "fit-teacher: split ", cfg.train_split, " of ", cfg.dataroot, " has no samples");
  const int64_t steps_per_epoch = (source->size() + cfg.batch_size - 1) / cfg.batch_size;
  const int64_t total = steps_per_epoch * cfg.epochs;

  torch::manual_seed(cfg.seed);
  PointPillarsCenterPoint model(model_cfg);
  model->to(device);
  torch::optim::AdamW opt(model->parameters(), torch::optim::AdamWOptions(cfg.lr).weight_decay(cfg.weight_decay));

  int64_t step = 0;
  if (cfg.resume && path_exists(latest)) {
    const auto ck = read_checkpoint(latest);
    BEVKD_CHECK(ck.train.has_value(), "cannot resume from ", latest, ": it holds no training state");
    check_resume_compatible(ck.train->fit_config_json, fit_json, latest);
    load_module_state(*model, ck.model, "checkpoint " + latest, "preset " + model_cfg.preset);
    optimizer_from_bytes(opt, ck.train->optimizer_bytes, latest);
    step = ck.train->step;
    truncate_metrics(metrics_path, step);
    if (!cfg.quiet)
      std::cerr << "fit-teacher: resuming from " << latest << " at step " << step << "/" << total << "\n";
  } else {
    truncate_metrics(metrics_path, -1);
  }
  if (!cfg.quiet) {
    std::cerr << "fit-teacher: " << source->describe() << ", preset " << model_cfg.preset << ", "
              << steps_per_epoch << " steps/epoch x " << cfg.epochs << " epochs, batch " << cfg.batch_size
              << ", device " << device << "\n";
  }

  FitContext ctx{cfg, model_cfg, *source, steps_per_epoch};
  const int64_t end = cfg.stop_after > 0 ? std::min(total, cfg.stop_after) : total;
  FitTeacherResult result;
  result.total_steps = total;

  auto save_latest = [&](int64_t done, const std::string& metrics) {
    TeacherCheckpoint ck;
    ck.config_json = model_cfg.to_json();
    ck.model = module_state(*model);
    TrainState st;
    st.step = done;
    st.epoch = done / steps_per_epoch;
    st.fit_config_json = fit_json;
    st.optimizer_bytes = optimizer_to_bytes(opt);
    st.metrics_json = metrics;
    ck.train = st;
    save_checkpoint(latest, ck);
    return ck;
  };

  std::string last_metrics = "{}";
  if (step < end) {
    model->train();
    BatchPrefetcher prefetch(ctx, step, end, cfg.num_workers);
    double sum_loss = 0, sum_hm = 0, sum_box = 0, wait_s = 0;
    int64_t n_logged = 0, samples = 0;
    auto t_log = std::chrono::steady_clock::now();
    const auto t_run = t_log;
    const int64_t first_step = step;
    for (; step < end; ++step) {
      const auto t_wait = std::chrono::steady_clock::now();
      auto batch = prefetch.next();
      wait_s += std::chrono::duration<double>(std::chrono::steady_clock::now() - t_wait).count();
      const auto lp = lr_at(cfg, step, total);
      for (auto& group : opt.param_groups()) {
        auto& o = static_cast<torch::optim::AdamWOptions&>(group.options());
        o.lr(lp.lr);
        o.betas({lp.beta1, 0.999});
      }
      auto out = model->forward_pillars(batch.pillars);
      auto loss = det::center_head_loss(out.head.tasks, batch.targets, model_cfg.loss);
      const double loss_v = loss.total.item<double>();
      BEVKD_CHECK(std::isfinite(loss_v), "fit-teacher: the loss became ", loss_v, " at step ", step,
                  " (epoch ", step / steps_per_epoch, "); try a lower --lr");
      opt.zero_grad();
      loss.total.backward();
      if (cfg.grad_clip > 0) torch::nn::utils::clip_grad_norm_(model->parameters(), cfg.grad_clip);
      opt.step();

      double hm = 0, box = 0;
      for (const auto& t : loss.heatmap) hm += t.item<double>();
      for (const auto& t : loss.bbox) box += t.item<double>();
      sum_loss += loss_v;
      sum_hm += hm;
      sum_box += box;
      ++n_logged;
      samples += batch.pillars.batch_size;
      const int64_t done = step + 1;
      const bool epoch_end = done % steps_per_epoch == 0;
      if (done % cfg.log_every == 0 || done == end || epoch_end) {
        const auto now = std::chrono::steady_clock::now();
        const double dt = std::chrono::duration<double>(now - t_log).count();
        const double rate = dt > 0 ? static_cast<double>(samples) / dt : 0;
        const double elapsed = std::chrono::duration<double>(now - t_run).count();
        const double eta = static_cast<double>(end - done) * elapsed / static_cast<double>(done - first_step);
        nlohmann::json rec{{"step", done},
                           {"epoch", static_cast<double>(done) / static_cast<double>(steps_per_epoch)},
                           {"loss", sum_loss / static_cast<double>(n_logged)},
                           {"loss_heatmap", sum_hm / static_cast<double>(n_logged)},
                           {"loss_bbox", sum_box / static_cast<double>(n_logged)},
                           {"lr", lp.lr},
                           {"samples_per_s", rate},
                           {"data_wait", dt > 0 ? wait_s / dt : 0.0},
                           {"elapsed_s", std::chrono::duration<double>(now - t_start).count()}};
        last_metrics = rec.dump();
        append_line(metrics_path, last_metrics);
        result.last_loss = sum_loss / static_cast<double>(n_logged);
        if (!cfg.quiet) {
          std::cerr << "fit-teacher  step " << done << "/" << total << "  epoch "
                    << fmt(static_cast<double>(done) / static_cast<double>(steps_per_epoch), 3) << "/" << cfg.epochs
                    << "  loss " << fmt(result.last_loss) << " (heatmap " << fmt(sum_hm / static_cast<double>(n_logged))
                    << ", bbox " << fmt(sum_box / static_cast<double>(n_logged)) << ")  lr " << fmt(lp.lr, 3) << "  "
                    << fmt(rate, 3) << " samples/s  data wait " << fmt(dt > 0 ? 100 * wait_s / dt : 0.0, 2)
                    << "%  ETA " << Progress::format_duration(eta) << "\n";
        }
        sum_loss = sum_hm = sum_box = wait_s = 0;
        n_logged = samples = 0;
        t_log = now;
      }
      if ((cfg.checkpoint_every > 0 && done % cfg.checkpoint_every == 0) || epoch_end || done == end)
        save_latest(done, last_metrics);
    }
  }
  result.steps_done = step;
  result.finished = step >= total;
  result.checkpoint = latest;
  if (result.finished) {
    // The final checkpoint carries the training state too, so `teacher.ckpt` alone documents the run.
    auto ck = read_checkpoint(latest);
    save_checkpoint(final_ckpt, ck);
    result.checkpoint = final_ckpt;
    if (!cfg.val_split.empty()) {
      TeacherIdentity id;
      id.kind = "builtin";
      id.preset = model_cfg.preset;
      id.checkpoint = final_ckpt;
      id.checkpoint_hash = file_hash(final_ckpt);
      id.config_json = model_cfg.to_json();
      auto teacher = make_builtin_teacher(model, id);
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
      nlohmann::json rec{{"event", "eval"}, {"step", step}, {"split", cfg.val_split}, {"mAP", ev.map},
                         {"NDS", ev.nds}, {"metrics", ev.metrics_path}};
      append_line(metrics_path, rec.dump());
    }
  }
  result.wall_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t_start).count();
  return result;
}

}  // namespace bevkd::precompute

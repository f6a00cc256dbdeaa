// The headline benchmark: the same student training step (bevkd-train's train_student, the same
// losses, data, seed and device) fed with teacher outputs
//   offline  streamed from the shards (what bevkd-train does), or
//   online   computed in-process at every step from that step's LiDAR sweeps, as the reference
//            implementations (BEVDistill, TiG-BEV, ... in mmdetection3d) run their teacher: the
//            key frame + sweeps read from the dataroot, the view's BEV transform, voxelisation,
//            the teacher's forward pass (no grad, eval mode) and the post-processing into the
//            fields the losses read (precompute's own stages: precompute/run/stage_*.h), with
//            the loader reading no teacher dataset.
// Step time is the wall time per step from the trainer's metrics log (median after --warmup);
// peak memory the child process's peak RSS (and CUDA's max allocated on a GPU).
//
//   build/bench/bevkd-bench-offline-online --shards demo-out/shards --dataroot demo-out/synth
//       [--preset tiny] [--loss bevdistill_dense --loss bevdistill_box] [--steps 8] [--warmup 2]
//       [--batch 4] [--torch-threads 2] [--device cpu] [--dir /tmp/bevkd-bench-oo]
//
// The teacher is the shards' own (their manifest's producing configuration: checkpoint, sweeps,
// views, seed), so both modes give the losses the same values up to float16 storage rounding.
// Never linked into bevkd-train: this binary is the only place the trainer meets the teacher.
#include <CLI/CLI.hpp>

#include <sys/resource.h>
#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "base/cpu_runtime.h"
#include "base/config.h"
#include "base/error.h"
#include "base/fs.h"
#include "core/nn/metrics_log.h"
#include "core/nuscenes/key_frame.h"
#include "core/nuscenes/tables.h"
#include "precompute/run/run_batch.h"
#include "precompute/run/run_config.h"
#include "precompute/run/stage_infer.h"
#include "precompute/run/stage_postprocess.h"
#include "precompute/run/stage_read.h"
#include "precompute/run/stage_voxelize.h"
#include "precompute/teacher/teacher_factory.h"
#include "storage/manifest.h"
#include "train/data/loader.h"
#include "train/trainer/trainer.h"

#if defined(BEVKD_WITH_CUDA)
#include <c10/cuda/CUDACachingAllocator.h>
#endif

namespace {

using namespace bevkd;
using nlohmann::json;

double max_rss_mb() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return static_cast<double>(u.ru_maxrss) / 1024.0;
}

double cuda_max_allocated_mb(const std::string& device) {
#if defined(BEVKD_WITH_CUDA)
  if (torch::Device(device).is_cuda()) {
    const auto st = c10::cuda::CUDACachingAllocator::getDeviceStats(torch::Device(device).index() < 0 ? 0 : torch::Device(device).index());
    return static_cast<double>(st.allocated_bytes[0].peak) / (1024.0 * 1024.0);
  }
#endif
  (void)device;
  return 0;
}

// The shards' teacher, run in-process on each batch's samples and views.
class OnlineTeacher {
 public:
  OnlineTeacher(const storage::Manifest& m, const std::string& dataroot, const std::string& device) {
    config::from_json(m.to_json().at("config"), views_cfg_, "the shards' producing configuration (manifest config)");
    views_cfg_.dataroot = dataroot;
    views_cfg_.teacher.device = device;
    run_cfg_ = views_cfg_;
    run_cfg_.views = 1;  // one cloud per sample: the view the loader drew for it
    teacher_ = precompute::open_teacher(run_cfg_.teacher);
    BEVKD_CHECK(teacher_->grid().same_as(m.grid()), "offline-online: the teacher's grid ", teacher_->grid().describe(),
                " is not the shards' ", m.grid().describe());
    taps_ = teacher_->feature_taps();
    db_ = std::make_unique<core::nusc::NuScenes>(core::nusc::NuScenes::load(dataroot, views_cfg_.version));
    core::nusc::KeyFrameOptions o;  // LiDAR only: the student's loader reads the cameras
    o.nsweeps = static_cast<int>(views_cfg_.nsweeps);
    o.check_images = false;
    o.decode_images = false;
    o.drop_nonfinite_points = views_cfg_.drop_nonfinite_points;
    frames_ = std::make_unique<core::nusc::KeyFrameLoader>(*db_, o);
    post_ = std::make_unique<precompute::PostprocessStage>(
        precompute::PostprocessParams::from(run_cfg_, teacher_->grid(), taps_));
  }

  // Replaces the batch's teacher fields with the ones `requested` names, computed now.
  void fill(train::data::Batch& b, const train::data::LoaderConfig& requested) {
    precompute::BatchWork work;
    const precompute::VoxelizeStage voxelize(*teacher_);
    precompute::InferStage infer(*teacher_);
    for (std::size_t k = 0; k < b.sample_tokens.size(); ++k) {
      const std::string& token = b.sample_tokens[k];
      const std::uint32_t index = db_->find(core::nusc::Table::kSample, token);
      BEVKD_CHECK(index != core::nusc::kNone, "offline-online: sample ", token, " is not in the dataroot's tables");
      precompute::SampleWork s;
      s.sample = index;
      s.token = token;
      s.frame = frames_->load(s.sample);
      s.views = {precompute::sample_views(views_cfg_, token).at(static_cast<std::size_t>(b.views[k]))};
      voxelize.run(s);
      work.samples.push_back(std::move(s));
    }
    infer.run(work);
    std::vector<const storage::Sample*> records;
    for (std::size_t k = 0; k < work.samples.size(); ++k) {
      post_->run(work.samples[k], work.teacher, static_cast<int64_t>(k));
      records.push_back(&work.samples[k].record);
    }
    b.teacher_stored = train::data::stack_teacher(records, b.sample_tokens, requested);
  }

 private:
  precompute::RunConfig views_cfg_, run_cfg_;
  std::unique_ptr<precompute::Teacher> teacher_;
  std::vector<std::string> taps_;
  std::unique_ptr<core::nusc::NuScenes> db_;
  std::unique_ptr<core::nusc::KeyFrameLoader> frames_;
  std::unique_ptr<precompute::PostprocessStage> post_;
};

struct Options {
  std::string shards, dataroot, preset = "tiny", split = "mini_train", device = "cpu", dir = "/tmp/bevkd-bench-oo";
  std::vector<std::string> losses{"bevdistill_dense", "bevdistill_box"};
  int steps = 8, warmup = 2, batch = 4, torch_threads = 2, loader_threads = 2;
};

// One mode in this (child) process: prints one JSON line.
int child(const Options& o, const std::string& mode) {
  const std::string manifest_path = storage::Manifest::file_of(o.shards);
  const auto manifest = storage::Manifest::load(manifest_path);
  train::trainer::TrainConfig c;
  c.shards = manifest_path;
  c.dataroot = o.dataroot;
  c.train_split = o.split;
  c.preset = o.preset;
  c.loader.batch_size = o.batch;
  c.loader.threads = o.loader_threads;
  c.loader.seed = 1;
  c.epochs = 1000;
  c.stop_after = o.warmup + o.steps;
  c.log_every = 1;
  c.threads = o.torch_threads;
  c.device = o.device;
  c.plots = false;
  c.quiet = true;
  c.resume = false;
  c.out_dir = o.dir + "/" + mode;
  for (const auto& l : o.losses) c.losses.push_back(train::trainer::parse_loss_flag(l));
  std::filesystem::remove_all(c.out_dir);

  train::trainer::TrainHooks hooks;
  std::unique_ptr<OnlineTeacher> teacher;
  train::data::LoaderConfig requested;
  if (mode == "online") {
    teacher = std::make_unique<OnlineTeacher>(manifest, o.dataroot, o.device);
    hooks.loader_reads_teacher = false;
    hooks.on_setup = [&](const train::data::LoaderConfig& r) { requested = r; };
    hooks.on_batch = [&](train::data::Batch& b) {
      torch::NoGradGuard no_grad;
      teacher->fill(b, requested);
    };
  }
  std::ostringstream log;
  train::trainer::train_student(c, log, hooks);
  std::vector<double> steps;
  double last = -1;
  for (const auto& r : core::nn::MetricsLog::read(c.out_dir + "/metrics.jsonl")) {
    if (r.contains("event")) continue;
    const double t = r.at("elapsed_s").get<double>();
    if (last >= 0 && r.at("step").get<int64_t>() > o.warmup) steps.push_back(t - last);
    last = t;
  }
  BEVKD_CHECK(!steps.empty(), "offline-online: no timed step in ", c.out_dir);
  std::sort(steps.begin(), steps.end());
  const double median = steps[steps.size() / 2];
  json out{{"mode", mode},
           {"preset", o.preset},
           {"steps", steps.size()},
           {"median_step_s", median},
           {"max_rss_mb", max_rss_mb()},
           {"cuda_max_allocated_mb", cuda_max_allocated_mb(o.device)}};
  std::cout << out.dump() << std::endl;
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  bevkd::tune_cpu_runtime();
  CLI::App app{"offline (shards) vs online (teacher in-process) distillation: step time and peak memory"};
  Options o;
  std::string child_mode;
  app.add_option("--shards", o.shards, "manifest.json (or its directory) of shards a built-in teacher wrote")->required();
  app.add_option("--dataroot", o.dataroot, "the nuScenes-format dataroot of the shards (LiDAR sweeps, images)")->required();
  app.add_option("--preset", o.preset, "student preset (tiny, bevdepth-r50)");
  app.add_option("--split", o.split, "split to train on");
  app.add_option("--loss", o.losses, "distillation losses, the same in both modes (default: bevdistill_dense, bevdistill_box)");
  app.add_option("--steps", o.steps, "timed steps");
  app.add_option("--warmup", o.warmup, "untimed first steps");
  app.add_option("--batch", o.batch, "samples per step");
  app.add_option("--torch-threads", o.torch_threads, "LibTorch intra-op threads");
  app.add_option("--loader-threads", o.loader_threads, "loader threads");
  app.add_option("--device", o.device, "cpu, cuda");
  app.add_option("--dir", o.dir, "where the runs go");
  app.add_option("--child", child_mode, "(internal) run one mode: offline | online");
  CLI11_PARSE(app, argc, argv);
  return run_main("bevkd-bench-offline-online", [&] {
    if (!child_mode.empty()) return child(o, child_mode);
    make_dirs(o.dir);
    std::map<std::string, json> rows;
    for (const std::string mode : {"offline", "online"}) {
      std::string cmd = std::string(argv[0]) + " --child " + mode + " --shards '" + o.shards + "' --dataroot '" +
                        o.dataroot + "' --preset " + o.preset + " --split " + o.split + " --steps " +
                        std::to_string(o.steps) + " --warmup " + std::to_string(o.warmup) + " --batch " +
                        std::to_string(o.batch) + " --torch-threads " + std::to_string(o.torch_threads) +
                        " --loader-threads " + std::to_string(o.loader_threads) + " --device " + o.device +
                        " --dir '" + o.dir + "'";
      for (const auto& l : o.losses) cmd += " --loss " + l;
      FILE* f = popen(cmd.c_str(), "r");
      BEVKD_CHECK(f != nullptr, "cannot run ", cmd);
      std::string out;
      char buf[4096];
      while (fgets(buf, sizeof buf, f)) out += buf;
      BEVKD_CHECK(pclose(f) == 0, "the ", mode, " run failed: ", cmd, "\n", out);
      rows[mode] = json::parse(out.substr(out.rfind('{')));
      std::cerr << rows[mode].dump() << "\n";
    }
    std::string losses;
    for (const auto& l : o.losses) losses += (losses.empty() ? "" : " + ") + l;
    std::printf("bevkd-bench-offline-online: student %s, batch %d, losses %s, device %s, %d LibTorch threads, "
                "median of %d steps after %d warm-up\n",
                o.preset.c_str(), o.batch, losses.c_str(), o.device.c_str(), o.torch_threads, o.steps, o.warmup);
    const auto& off = rows.at("offline");
    const auto& on = rows.at("online");
    const bool cuda = torch::Device(o.device).is_cuda();
    std::printf("| teacher outputs | step s (median) | peak RSS MB |%s\n", cuda ? " CUDA max allocated MB |" : "");
    std::printf("|---|---|---|%s\n", cuda ? "---|" : "");
    for (const auto* r : {&off, &on})
      std::printf("| %s | %.3f | %.0f |%s\n",
                  (*r).at("mode") == "offline" ? "offline: streamed from the shards" : "online: teacher in-process",
                  (*r).at("median_step_s").get<double>(), (*r).at("max_rss_mb").get<double>(),
                  cuda ? (" " + std::to_string(static_cast<int>((*r).at("cuda_max_allocated_mb").get<double>())) + " |").c_str()
                       : "");
    std::printf("online / offline: step time x%.2f, peak RSS x%.2f\n",
                on.at("median_step_s").get<double>() / off.at("median_step_s").get<double>(),
                on.at("max_rss_mb").get<double>() / off.at("max_rss_mb").get<double>());
    return 0;
  });
}

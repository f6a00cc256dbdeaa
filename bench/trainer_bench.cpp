// bevkd-train's training step, measured through the real trainer (train_student) on synthetic
// shards + JPEGs: per preset (tiny, bevdepth-r50) and loader thread count, the step time
// (forward + backward + optimizer, the data wait taken out), the trainer's consumption
// (samples/s) beside the loader's own rate with nothing consuming (samples/s), the fraction of
// step time spent waiting for data, and the process's peak resident memory.
//
//   build/bench/bevkd-bench-trainer [--preset tiny|bevdepth-r50] [--threads 1,2] [--steps 12]
//       [--warmup 3] [--batch 4] [--torch-threads 2] [--loss NAME ...] [--device cpu|cuda] [--dir DIR]
//   build/bench/bevkd-bench-trainer --per-loss [--preset ...] [--threads 2] [--steps 6] ...
//
// --per-loss: per preset, the detection-only student and then every registered distillation loss
// alone (its defaults), side by side in one run: step time and peak memory, and their excess over
// detection-only (the first thread count only).
//
// Each configuration runs in a child process (this binary with --child), so its peak RSS is its
// own. The shards are tests/support's fixture on the preset's grid (neck [384] and head_shared
// [256] float16 teacher taps) with generated JPEGs of the preset's source size (tiny: synth's
// 640 x 360; bevdepth-r50: nuScenes' 1600 x 900). Steps are timed from the trainer's metrics log
// (log_every 1): the first --warmup steps are dropped.
#include <CLI/CLI.hpp>

#include <sys/resource.h>
#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "base/config.h"
#include "base/error.h"
#include "base/fs.h"
#include "core/nn/metrics_log.h"
#include "storage/manifest.h"
#include "tests/train/data/loader_fixture.h"
#include "train/data/loader.h"
#include "train/trainer/loss_registry.h"
#include "train/trainer/trainer.h"

namespace {

using namespace bevkd;
using nlohmann::json;
using Clock = std::chrono::steady_clock;

struct Preset {
  std::string name;
  int source_w, source_h;
};

double max_rss_mb() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return static_cast<double>(u.ru_maxrss) / 1024.0;
}

std::string load_average() {
  std::ifstream in("/proc/loadavg");
  std::string a, b, c;
  in >> a >> b >> c;
  return a + " " + b + " " + c;
}

// The dataset of a preset under dir (made once).
train::data::testing::LoaderDataset dataset(const Preset& p, const train::student::StudentConfig& s,
                                            const std::string& dir, int samples) {
  train::data::testing::LoaderDatasetSpec spec;
  spec.shard = storage::testing::FixtureSpec();
  spec.shard.grid = s.grid;
  spec.shard.num_views = 2;  // stored views drawn with the preset's ranges (the trainer checks them)
  spec.views_config = {{"count", 2}, {"augmentation", config::to_json(s.view_ranges)}};
  spec.shard.max_objects = 30;
  spec.shard_sizes = {samples / 2, samples - samples / 2};
  spec.image_width = p.source_w;
  spec.image_height = p.source_h;
  spec.focal = 0.78 * p.source_w;
  spec.points_per_camera = 400;
  return train::data::testing::make_loader_dataset(spec, dir);
}

// One configuration, in this (child) process: prints one JSON line.
int child(const std::string& preset, const std::string& dir, int threads, int steps, int warmup, int batch,
          int torch_threads, const std::vector<std::string>& losses, const std::string& device) {
  const Preset p = preset == "tiny" ? Preset{"tiny", 640, 360} : Preset{"bevdepth-r50", 1600, 900};
  const auto s = train::student::student_preset(preset);
  const auto data = dataset(p, s, dir + "/" + preset, std::max(2 * batch * (steps + warmup) / 3, 2 * batch));
  const auto manifest = storage::Manifest::load(data.manifest_path);

  // The loader alone: batches as fast as they come.
  train::trainer::TrainConfig c;
  c.shards = data.manifest_path;
  c.dataroot = data.dataroot;
  c.preset = preset;
  c.loader.batch_size = batch;
  c.loader.threads = threads;
  train::trainer::follow_student(c.loader, s);
  double loader_rate = 0;
  {
    train::data::LoaderSetup ls;
    ls.split = "train";
    train::data::Loader loader(manifest, data.dataroot, c.loader, ls);
    int64_t n = 0, b = 0;
    Clock::time_point t0;
    while (b < warmup + steps) {
      auto batch_opt = loader.next();
      if (!batch_opt) {
        loader.seek({loader.position().epoch + 1, 0});
        continue;
      }
      if (++b == warmup) t0 = Clock::now();
      if (b > warmup) n += batch_opt->size();
    }
    loader_rate = static_cast<double>(n) / std::chrono::duration<double>(Clock::now() - t0).count();
  }
  c.epochs = 1000;
  c.stop_after = warmup + steps;
  c.log_every = 1;
  c.threads = torch_threads;
  c.device = device;
  c.plots = false;
  c.quiet = true;
  c.resume = false;
  c.out_dir = dir + "/run-" + preset + "-" + std::to_string(threads);
  for (const auto& l : losses) c.losses.push_back(train::trainer::parse_loss_flag(l));
  std::filesystem::remove_all(c.out_dir);
  std::ostringstream log;
  train::trainer::train_student(c, log);
  double step_s = 0, wall_s = 0, wait = 0;
  int counted = 0;
  for (const auto& r : core::nn::MetricsLog::read(c.out_dir + "/metrics.jsonl")) {
    if (r.contains("event") || r.at("step").get<int64_t>() <= warmup) continue;
    const double wall = static_cast<double>(batch) / r.at("samples_per_s").get<double>();
    wall_s += wall;
    wait += r.at("data_wait").get<double>() * wall;
    step_s += wall * (1 - r.at("data_wait").get<double>());
    ++counted;
  }
  json out{{"preset", preset},
           {"threads", threads},
           {"batch", batch},
           {"steps", counted},
           {"step_ms", 1000 * step_s / counted},
           {"trainer_samples_per_s", counted * batch / wall_s},
           {"loader_samples_per_s", loader_rate},
           {"wait_fraction", wait / wall_s},
           {"max_rss_mb", max_rss_mb()}};
  std::cout << out.dump() << std::endl;
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"bevkd-train's training step: step time, consumption vs loader rate, wait fraction, peak memory"};
  std::vector<std::string> presets{"tiny"};
  std::vector<int> thread_counts{1, 2};
  std::vector<std::string> losses;
  int steps = 12, warmup = 3, batch = 4, torch_threads = 2, child_threads = 1;
  std::string dir = "/tmp/bevkd-bench-trainer", device = "cpu", child_preset;
  bool is_child = false, per_loss = false;
  app.add_option("--preset", presets, "presets: tiny, bevdepth-r50")->delimiter(',');
  app.add_option("--threads", thread_counts, "loader thread counts")->delimiter(',');
  app.add_option("--steps", steps, "timed steps");
  app.add_option("--warmup", warmup, "untimed first steps");
  app.add_option("--batch", batch, "samples per step");
  app.add_option("--torch-threads", torch_threads, "LibTorch intra-op threads");
  app.add_option("--loss", losses, "distillation losses to add (NAME or NAME:WEIGHT)");
  app.add_option("--device", device, "cpu, cuda");
  app.add_option("--dir", dir, "where the synthetic shards and runs go");
  app.add_flag("--per-loss", per_loss,
               "detection-only, then each registered loss alone (those of --loss when given): extra time and memory");
  app.add_flag("--child", is_child, "(internal) run one configuration");
  app.add_option("--child-preset", child_preset, "(internal)");
  app.add_option("--child-threads", child_threads, "(internal)");
  CLI11_PARSE(app, argc, argv);
  return run_main("bevkd-bench-trainer", [&] {
    if (is_child) return child(child_preset, dir, child_threads, steps, warmup, batch, torch_threads, losses, device);
    make_dirs(dir);
    auto run_child = [&](const std::string& p, int t, const std::vector<std::string>& with) {
      std::string cmd = std::string(argv[0]) + " --child --child-preset " + p + " --child-threads " +
                        std::to_string(t) + " --steps " + std::to_string(steps) + " --warmup " +
                        std::to_string(warmup) + " --batch " + std::to_string(batch) + " --torch-threads " +
                        std::to_string(torch_threads) + " --device " + device + " --dir " + dir;
      for (const auto& l : with) cmd += " --loss " + l;
      FILE* f = popen(cmd.c_str(), "r");
      BEVKD_CHECK(f != nullptr, "cannot run ", cmd);
      std::string out;
      char buf[4096];
      while (fgets(buf, sizeof buf, f)) out += buf;
      BEVKD_CHECK(pclose(f) == 0, "the child run failed: ", cmd, "\n", out);
      json row = json::parse(out.substr(out.rfind('{')));
      std::cerr << row.dump() << "\n";
      return row;
    };
    if (per_loss) {
      std::printf("bevkd-bench-trainer --per-loss: device %s, batch %d, %d timed steps after %d warm-up, %d LibTorch "
                  "threads, %d loader threads; each loss alone with its defaults\n",
                  device.c_str(), batch, steps, warmup, torch_threads, thread_counts.front());
      std::printf("| preset | losses | step ms | extra ms | x detection-only | peak RSS MB | extra MB |\n"
                  "|---|---|---|---|---|---|---|\n");
      for (const auto& p : presets) {
        const json base = run_child(p, thread_counts.front(), {});
        const double b_ms = base.at("step_ms").get<double>(), b_mb = base.at("max_rss_mb").get<double>();
        std::printf("| %s | detection + depth | %.0f | — | 1.00 | %.0f | — |\n", p.c_str(), b_ms, b_mb);
        std::fflush(stdout);
        for (const auto& e : train::trainer::loss_registry()) {
          if (!losses.empty() && std::find(losses.begin(), losses.end(), e.name) == losses.end()) continue;
          const json r = run_child(p, thread_counts.front(), {e.name});
          const double ms = r.at("step_ms").get<double>(), mb = r.at("max_rss_mb").get<double>();
          std::printf("| %s | + %s | %.0f | %+.0f | %.2f | %.0f | %+.0f |\n", p.c_str(), e.name.c_str(), ms, ms - b_ms,
                      ms / b_ms, mb, mb - b_mb);
          std::fflush(stdout);
        }
      }
      std::printf("load average %s\n", load_average().c_str());
      return 0;
    }
    std::vector<json> rows;
    for (const auto& p : presets)
      for (int t : thread_counts) rows.push_back(run_child(p, t, losses));
    std::printf("bevkd-bench-trainer: device %s, batch %d, %d timed steps after %d warm-up, %d LibTorch threads, "
                "losses: detection + depth%s; load average %s\n",
                device.c_str(), batch, steps, warmup, torch_threads, losses.empty() ? "" : " + distillation",
                load_average().c_str());
    std::printf("| preset | loader threads | step ms (fwd+bwd+opt) | trainer samples/s | loader alone samples/s | "
                "wait fraction | peak RSS MB |\n|---|---|---|---|---|---|---|\n");
    for (const auto& r : rows)
      std::printf("| %s | %d | %.0f | %.2f | %.1f | %.1f %% | %.0f |\n", r.at("preset").get<std::string>().c_str(),
                  r.at("threads").get<int>(), r.at("step_ms").get<double>(),
                  r.at("trainer_samples_per_s").get<double>(), r.at("loader_samples_per_s").get<double>(),
                  100 * r.at("wait_fraction").get<double>(), r.at("max_rss_mb").get<double>());
    return 0;
  });
}

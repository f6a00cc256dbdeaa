// Benchmark of the nuScenes detection evaluation on a val-sized result set: 6,019 samples with
// a few hundred predicted boxes each and GT of realistic counts (~35 annotations of the 10
// classes per sample before filtering, some without points, some bicycle racks).
//
// Phases, each timed, with the process's peak RSS after it:
//   write   results_json + write (in a child process, so its memory does not count below)
//   parse   load_results: read, parse (simdjson) and validate the results file
//   filter  align with the split, ego distances, range/points/bike-rack filters
//   accumulate  40 (class, threshold) matchings + metrics, 1 thread and N threads
//
//   bevkd-bench-eval [--samples 6019] [--boxes 300] [--gt 35] [--dir /tmp] [--threads 0]
//   bevkd-bench-eval --dataroot DIR [--version v1.0-trainval] [--split val] [--boxes 300]
//       GT from nuScenes tables (e.g. bevkd-synth --trainval-tables): adds loading the tables and
//       building the GT, the part of bevkd-eval the synthetic mode leaves out.
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <CLI/CLI.hpp>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <random>
#include <string>
#include <thread>

#include "base/error.h"
#include "base/fs.h"
#include "core/eval/evaluate.h"
#include "core/eval/gt_nuscenes.h"
#include "core/eval/results_io.h"
#include "core/nuscenes/tables.h"
#include "core/nuscenes_vocab.h"

namespace {

using namespace bevkd;
using namespace bevkd::core::eval;
namespace nusc = bevkd::core::nusc;

double now_s() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

// User + system CPU seconds of this process (all threads).
double cpu_s() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  return static_cast<double>(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) + 1e-6 * static_cast<double>(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec);
}

double peak_rss_mib() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  return static_cast<double>(ru.ru_maxrss) / 1024.0;  // ru_maxrss is in KiB on Linux
}

std::string token_of(int i) {
  char buf[40];
  std::snprintf(buf, sizeof buf, "%032x", static_cast<unsigned>(i * 2654435761u));
  return std::string(buf) + std::to_string(i);  // unique
}

// Class frequencies of nuScenes annotations mapped to the 10 classes (approximate).
int draw_label(std::mt19937_64& rng) {
  static const double kFreq[bevkd::core::kNumClasses] = {
      0.43, 0.07, 0.012, 0.015, 0.02, 0.13, 0.011, 0.01, 0.20, 0.09};  // kClassNames order
  std::discrete_distribution<int> d(std::begin(kFreq), std::end(kFreq));
  return d(rng);
}

EvalBox random_box(std::mt19937_64& rng, int label, double cx, double cy, double radius) {
  std::uniform_real_distribution<double> u(0, 1);
  EvalBox b;
  b.label = label;
  const double r = radius * std::sqrt(u(rng)), a = 2 * M_PI * u(rng);
  b.translation = {cx + r * std::cos(a), cy + r * std::sin(a), 1 + u(rng)};
  b.size = {0.5 + 2 * u(rng), 0.5 + 5 * u(rng), 0.8 + 2 * u(rng)};
  const double yaw = 2 * M_PI * u(rng);
  b.rotation = {std::cos(yaw / 2), 0, 0, std::sin(yaw / 2)};
  b.velocity = {4 * u(rng) - 2, 4 * u(rng) - 2};
  b.attribute = static_cast<int>(u(rng) * 9) - 1;
  return b;
}

GroundTruth make_gt(int samples, int gt_per_sample, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> u(0, 1);
  GroundTruth gt;
  gt.split_kind = SplitKind::kPredefined;
  gt.description = "synthetic val";
  for (int s = 0; s < samples; ++s) {
    SampleContext ctx;
    ctx.ego_translation = {300 + 1500 * u(rng), 300 + 1500 * u(rng), 0};
    std::vector<EvalBox> boxes;
    const int n = static_cast<int>(gt_per_sample * (0.5 + u(rng)));
    for (int i = 0; i < n; ++i) {
      EvalBox b = random_box(rng, draw_label(rng), ctx.ego_translation[0], ctx.ego_translation[1], 60);
      b.num_pts = u(rng) < 0.1 ? 0 : 1 + static_cast<int>(200 * u(rng));
      if (u(rng) < 0.05) b.velocity = {NAN, NAN};
      boxes.push_back(b);
    }
    if (u(rng) < 0.1) {  // a bicycle rack near the ego
      bevkd::core::NuscBox rack;
      rack.translation = {ctx.ego_translation[0] + 10, ctx.ego_translation[1] + 5, 1};
      rack.size = {2, 8, 1.5};
      ctx.bicycle_racks.push_back(rack);
    }
    gt.boxes.add_sample(token_of(s), std::move(boxes));
    gt.context.push_back(std::move(ctx));
  }
  return gt;
}

// Predictions: most GT found with noise and a high score, the rest false positives with low
// scores, `boxes_per_sample` per sample.
EvalBoxes make_predictions(const GroundTruth& gt, int boxes_per_sample, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> u(0, 1);
  std::normal_distribution<double> noise(0, 0.4);
  EvalBoxes out;
  for (std::size_t s = 0; s < gt.boxes.num_samples(); ++s) {
    std::vector<EvalBox> boxes;
    for (const EvalBox& g : gt.boxes.boxes(s)) {
      if (u(rng) > 0.7 || static_cast<int>(boxes.size()) >= boxes_per_sample) continue;
      EvalBox p = g;
      p.translation[0] += noise(rng);
      p.translation[1] += noise(rng);
      p.score = static_cast<float>(0.3 + 0.7 * u(rng));  // detector scores are float32
      p.num_pts = -1;
      boxes.push_back(p);
    }
    const auto& ego = gt.context[s].ego_translation;
    while (static_cast<int>(boxes.size()) < boxes_per_sample) {
      EvalBox p = random_box(rng, draw_label(rng), ego[0], ego[1], 55);
      const double v = u(rng);
      p.score = static_cast<float>(0.4 * v * v);
      boxes.push_back(p);
    }
    out.add_sample(gt.boxes.token(s), std::move(boxes));
  }
  return out;
}

void row(const std::string& phase, double seconds, double cpu, const std::string& note) {
  const std::string cpu_text = cpu < 0 ? "-" : cat(static_cast<int>(cpu * 1000) / 1000.0);
  std::printf("%-36s %8.3f %8s %12.0f   %s\n", phase.c_str(), seconds, cpu_text.c_str(), peak_rss_mib(), note.c_str());
}

}  // namespace

int main(int argc, char** argv) {
  return run_main("bevkd-bench-eval", [&] {
    CLI::App app{"Benchmark of the nuScenes detection evaluation on a val-sized result set"};
    int samples = 6019, boxes = 300, gt_per_sample = 35, threads = 0;
    std::string dir = "/tmp", dataroot, version = "v1.0-trainval", split = "val";
    app.add_option("--samples", samples, "samples (val: 6019)");
    app.add_option("--boxes", boxes, "predicted boxes per sample (<= 500)");
    app.add_option("--gt", gt_per_sample, "mean GT boxes per sample before filtering");
    app.add_option("--dir", dir, "where the results file is written (removed afterwards)");
    app.add_option("--threads", threads, "threads for the second accumulate run (0: all cores)");
    app.add_option("--dataroot", dataroot, "GT from these nuScenes tables instead of synthetic GT");
    app.add_option("--version", version, "with --dataroot: the version directory");
    app.add_option("--split", split, "with --dataroot: the split");
    try {
      app.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
      return app.exit(e);
    }
    const std::string path = dir + "/bevkd_eval_bench_results.json";
    std::printf("%-36s %8s %8s %12s   %s\n", "phase", "wall s", "CPU s", "peak RSS MiB", "notes");
    double t0 = now_s(), c0 = cpu_s();
    GroundTruth gt;
    if (dataroot.empty()) {
      gt = make_gt(samples, gt_per_sample, 1);
      row("generate GT", now_s() - t0, cpu_s() - c0, cat(samples, " samples, ", gt.boxes.total_boxes(), " GT boxes"));
    } else {
      const nusc::NuScenes db = nusc::NuScenes::load(dataroot, version);
      row("load nuScenes tables", now_s() - t0, cpu_s() - c0, cat(db.sample().size(), " samples, ",
                                                                  db.sample_annotation().size(), " annotations"));
      t0 = now_s();
      c0 = cpu_s();
      gt = nuscenes_ground_truth(db, split);
      row("GT of the split (adapter)", now_s() - t0, cpu_s() - c0,
          cat(gt.description, ": ", gt.boxes.num_samples(), " samples, ", gt.boxes.total_boxes(), " GT boxes"));
    }

    // Predictions and the JSON text live only in a child process.
    std::fflush(stdout);
    t0 = now_s();
    const pid_t pid = fork();
    BEVKD_CHECK(pid >= 0, "fork failed");
    if (pid == 0) {
      try {
        const EvalBoxes preds = make_predictions(gt, boxes, 2);
        const double tw = now_s();
        write_results_json(path, preds, ResultsMeta{true, false, false, false, false});
        std::printf("%-36s %8.3f %8s %12s   %s\n", "  results_json + write (child)", now_s() - tw, "-", "-",
                    cat(preds.total_boxes(), " boxes").c_str());
        std::fflush(stdout);
        _exit(0);
      } catch (const std::exception& e) {
        std::fprintf(stderr, "child: %s\n", e.what());
        _exit(1);
      }
    }
    int status = 0;
    waitpid(pid, &status, 0);
    BEVKD_CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0, "the child writing ", path, " failed");
    const double mib = static_cast<double>(file_size(path)) / (1024.0 * 1024.0);
    row("generate + write predictions (child)", now_s() - t0, 0, cat(mib, " MiB file"));

    double t_parse1 = 0;
    {
      t0 = now_s();
      c0 = cpu_s();
      const Results res1 = load_results(path, {500, 1, false});
      t_parse1 = now_s() - t0;
      row("parse + validate, 1 thread", t_parse1, cpu_s() - c0,
          cat(res1.boxes.total_boxes(), " boxes, ", mib / t_parse1, " MiB/s"));
    }
    t0 = now_s();
    c0 = cpu_s();
    const Results res = load_results(path, {500, threads, false});
    const double t_parse = now_s() - t0;
    const int used = threads > 0 ? threads : static_cast<int>(std::thread::hardware_concurrency());
    row(cat("parse + validate, ", used, " threads"), t_parse, cpu_s() - c0,
        cat(mib / t_parse, " MiB/s, speed-up ", t_parse1 / t_parse, "x"));
    std::remove(path.c_str());

    EvalOptions one;
    one.num_threads = 1;
    one.predictions_name = path;
    c0 = cpu_s();
    const EvalResult r1 = evaluate(gt, res.boxes, DetectionConfig::cvpr_2019(), res.meta, one);
    const double cpu1 = cpu_s() - c0;
    row("filter (GT + predictions)", r1.seconds_filter, -1,
        cat(r1.pred_filter.after_bike_racks, " predictions, ", r1.gt_filter.after_bike_racks, " GT kept"));
    row("accumulate + metrics, 1 thread", r1.seconds_accumulate, -1, cat("NDS ", r1.metrics.nd_score, ", mAP ", r1.metrics.mean_ap));
    row("evaluate(), 1 thread", r1.seconds_filter + r1.seconds_accumulate, cpu1, "filter + accumulate + metrics");
    EvalOptions many;
    many.num_threads = threads;
    c0 = cpu_s();
    t0 = now_s();
    const EvalResult rn = evaluate(gt, res.boxes, DetectionConfig::cvpr_2019(), res.meta, many);
    const double t_eval = now_s() - t0;
    row(cat("evaluate(), ", used, " threads"), t_eval, cpu_s() - c0,
        cat("accumulate speed-up ", r1.seconds_accumulate / rn.seconds_accumulate, "x; same NDS: ",
            rn.metrics.nd_score == r1.metrics.nd_score ? "yes" : "NO"));
    row("total: load_results + evaluate", t_parse + t_eval, -1,
        cat(used, " threads, as bevkd-eval runs them"));
    return rn.metrics.nd_score == r1.metrics.nd_score ? 0 : 1;
  });
}

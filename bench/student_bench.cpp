// bevkd-bench-student: the camera student's forward pass per stage (train/student/), for each
// preset on random inputs of the preset's image size with a six-camera ring: evaluation (cached
// lift-splat geometry), training-mode forward (geometry prepared per batch) and forward + backward.
// Median of --reps runs after --warmup untimed runs per mode (one is not enough on the CPU: the
// first timed block came out twice as slow); the GPU is synchronised before every reading.
//
//   build/bench/bevkd-bench-student [--preset tiny|bevdepth-r50|all] [--batch 1] [--cameras 6]
//                                   [--warmup 3] [--reps 5] [--threads N] [--device cpu|cuda] [--no-mkldnn]
//                                   [--flush-denormal]
#include <ATen/Context.h>
#include <ATen/Parallel.h>
#include <torch/cuda.h>
#include <torch/torch.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

#include "base/cpu_runtime.h"
#include "base/error.h"
#include "base/math.h"
#include "train/student/student.h"

namespace bevkd {
namespace {

using train::student::Student;
using train::student::StudentConfig;
using train::student::StudentTimings;

train::data::CameraBatch ring_batch(const StudentConfig& cfg, int64_t B, int64_t N, const torch::Device& dev) {
  train::data::CameraBatch cam;
  const double H = static_cast<double>(cfg.image_height), W = static_cast<double>(cfg.image_width);
  cam.images = torch::randn({B, N, 3, cfg.image_height, cfg.image_width});
  const auto K = torch::tensor({0.8 * W, 0.0, (W - 1) / 2, 0.0, 0.8 * W, (H - 1) / 2, 0.0, 0.0, 1.0}).view({3, 3});
  std::vector<torch::Tensor> c2e;
  for (int64_t n = 0; n < N; ++n) {
    const double yaw = 2 * kPi * static_cast<double>(n) / static_cast<double>(N), c = std::cos(yaw), s = std::sin(yaw);
    c2e.push_back(torch::tensor({s, 0.0, c, 0.0, -c, 0.0, s, 0.0, 0.0, -1.0, 0.0, 1.6, 0.0, 0.0, 0.0, 1.0}).view({4, 4}));
  }
  cam.intrinsics = K.expand({B, N, 3, 3}).contiguous();
  cam.img_aug = torch::eye(3).expand({B, N, 3, 3}).contiguous();
  cam.cam2ego = torch::stack(c2e).to(torch::kFloat32).expand({B, N, 4, 4}).contiguous();
  cam.bda = torch::eye(3).expand({B, 3, 3}).contiguous();
  cam.images = cam.images.to(dev);
  cam.intrinsics = cam.intrinsics.to(dev);
  cam.img_aug = cam.img_aug.to(dev);
  cam.cam2ego = cam.cam2ego.to(dev);
  cam.bda = cam.bda.to(dev);
  return cam;
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

struct Row {
  std::vector<double> backbone, neck, depth, geometry, prepare, pool, bev, head, total;
  void add(const StudentTimings& t) {
    backbone.push_back(t.image_backbone_ms);
    neck.push_back(t.image_neck_ms);
    depth.push_back(t.depth_net_ms);
    geometry.push_back(t.lift_splat.geometry_ms);
    prepare.push_back(t.lift_splat.prepare_ms);
    pool.push_back(t.lift_splat.pool_ms);
    bev.push_back(t.bev_encoder_ms);
    head.push_back(t.head_ms);
    total.push_back(t.total_ms);
  }
  void print(const char* mode, double backward_ms) const {
    std::printf("| %-14s | %9.1f | %7.1f | %9.1f | %8.2f | %8.2f | %7.2f | %8.1f | %7.1f | %9.1f | %9s |\n", mode,
                median(backbone), median(neck), median(depth), median(geometry), median(prepare), median(pool),
                median(bev), median(head), median(total),
                backward_ms > 0 ? std::to_string(static_cast<int>(std::lround(backward_ms))).c_str() : "-");
  }
};

void bench_preset(const std::string& name, int64_t B, int64_t N, int warmup, int reps, const torch::Device& dev) {
  auto cfg = train::student::student_preset(name);
  Student model(cfg);
  model->to(dev);
  const auto batch = ring_batch(cfg, B, N, dev);
  int64_t params = model->num_parameters();
  std::printf("\n%s: %lld parameters, images %lldx%lld, %lld depth bins, grid %s, batch %lld x %lld cameras, %s\n",
              name.c_str(), static_cast<long long>(params), static_cast<long long>(cfg.image_height),
              static_cast<long long>(cfg.image_width), static_cast<long long>(cfg.depth_bins.count()),
              cfg.grid.describe().c_str(), static_cast<long long>(B), static_cast<long long>(N), dev.str().c_str());
  std::printf("| %-14s | %9s | %7s | %9s | %8s | %8s | %7s | %8s | %7s | %9s | %9s |\n", "mode (ms)", "backbone", "neck",
              "depth net", "geometry", "prepare", "pool", "BEV enc", "head", "forward", "+backward");
  std::printf("|%s|\n", std::string(129, '-').c_str());
  int64_t kept = 0;
  {
    model->eval();
    torch::NoGradGuard ng;
    Row r;
    StudentTimings t;
    for (int i = 0; i < warmup; ++i) model->forward(batch, &t);  // also fills the geometry cache
    for (int i = 0; i < reps; ++i) {
      model->forward(batch, &t);
      r.add(t);
    }
    kept = t.lift_splat.kept_points;
    r.print("eval (cached)", 0);
  }
  {
    model->train();
    Row r;
    std::vector<double> step;
    StudentTimings t;
    for (int i = 0; i < warmup + reps; ++i) {
      const auto t0 = std::chrono::steady_clock::now();
      auto out = model->forward(batch, &t);
      auto loss = out.tasks[0].heatmap.sigmoid().mean() + out.depth.mean();
      loss.backward();
      if (dev.is_cuda()) torch::cuda::synchronize();
      const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
      model->zero_grad();
      if (i < warmup) continue;
      r.add(t);
      step.push_back(ms);
    }
    r.print("train", median(step));
  }
  std::printf("lift-splat keeps %lld of %lld frustum points\n", static_cast<long long>(kept),
              static_cast<long long>(B * N * cfg.depth_bins.count() * (cfg.image_height / cfg.depth_stride) *
                                     (cfg.image_width / cfg.depth_stride)));
}

}  // namespace
}  // namespace bevkd

int main(int argc, char** argv) {
  bevkd::tune_cpu_runtime();
  return bevkd::run_main("bevkd-bench-student", [&] {
    CLI::App app{"bevkd-bench-student: the camera student's forward/backward per stage"};
    std::string preset = "all", device = "cpu";
    int64_t batch = 1, cameras = 6;
    int warmup = 3, reps = 5, threads = 0;
    bool no_mkldnn = false, flush_denormal = false;
    app.add_option("--preset", preset, "tiny, bevdepth-r50 or all");
    app.add_option("--batch", batch, "samples per batch");
    app.add_option("--cameras", cameras, "cameras per sample");
    app.add_option("--warmup", warmup, "untimed runs per mode first (>= 1)")->check(CLI::PositiveNumber);
    app.add_option("--reps", reps, "timed runs per mode (median)")->check(CLI::PositiveNumber);
    app.add_option("--threads", threads, "intra-op threads (0: LibTorch's default)");
    app.add_option("--device", device, "cpu or cuda");
    app.add_flag("--no-mkldnn", no_mkldnn, "disable LibTorch's oneDNN (mkldnn) CPU convolutions");
    app.add_flag("--flush-denormal", flush_denormal, "flush denormal floats to zero on the CPU");
    try {
      app.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
      return app.exit(e);
    }
    if (threads > 0) at::set_num_threads(threads);
    if (no_mkldnn) at::globalContext().setUserEnabledMkldnn(false);
    if (flush_denormal) BEVKD_CHECK(at::globalContext().setFlushDenormal(true), "--flush-denormal: not supported on this CPU");
    const torch::Device dev(device);
    BEVKD_CHECK(!dev.is_cuda() || torch::cuda::is_available(), "--device cuda: no GPU visible");
    std::printf("threads %d, oneDNN %s\n", at::get_num_threads(), at::globalContext().userEnabledMkldnn() ? "on" : "off");
    torch::manual_seed(0);
    std::vector<std::string> presets =
        preset == "all" ? bevkd::train::student::student_preset_names() : std::vector<std::string>{preset};
    for (const auto& p : presets) bevkd::bench_preset(p, batch, cameras, warmup, reps, dev);
    return 0;
  });
}

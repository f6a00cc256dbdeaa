// Precompute benchmark: samples/s of `bevkd-precompute run` with the nuscenes-pillar02 teacher
// (CenterPoint pillar 0.2: 512x512 pillars, SECONDFPN 384 x 128 x 128 neck) on synthetic
// frames, with the time of each stage and the share of wall time that is teacher inference.
//
//   build/bench/bevkd-bench-precompute [--scenes 3] [--samples 4] [--sweeps 3] [--views 1]
//                                      [--threads 0] [--dir DIR]
//
// The teacher has random-initialised weights (torch::manual_seed(0)): the cost of a forward pass
// does not depend on the weights, but the number of decoded boxes does (a random head fires
// everywhere, so NMS and the box fields are at their box limit: a pessimistic post-process). The
// head's size branch is zeroed (1 m boxes): random log sizes overflow exp().
// The same run is timed twice side by side: pipelined (TBB parallel_pipeline, 4 batches in
// flight) and with the stages one after another (1 batch in flight), each into a fresh directory.
#include <CLI/CLI.hpp>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <sstream>
#include <string>
#include <thread>
#include <unistd.h>

#include "base/error.h"
#include "core/synth/synth.h"
#include "precompute/teacher/builtin_teacher.h"
#include "precompute/teacher/pointpillars.h"
#include "precompute/run/run_pipeline.h"
#include "precompute/teacher/teacher_config.h"

namespace {

namespace fs = std::filesystem;
using bevkd::precompute::RunResult;
using bevkd::precompute::StageClock;

}  // namespace

int main(int argc, char** argv) {
  return bevkd::run_main("bevkd-bench-precompute", [&]() -> int {
    CLI::App app{"bevkd-precompute run throughput with the nuscenes-pillar02 teacher on synthetic frames"};
    int scenes = 3, samples = 4, sweeps = 3, views = 1, threads = 0, batch = 2;
    std::string dir = (fs::temp_directory_path() / ("bevkd_precompute_bench_" + std::to_string(::getpid()))).string();
    app.add_option("--scenes", scenes, "synthetic scenes")->capture_default_str();
    app.add_option("--samples", samples, "samples per scene")->capture_default_str();
    app.add_option("--sweeps", sweeps, "LiDAR frames per sample, key frame included")->capture_default_str();
    app.add_option("--views", views, "stored views per sample")->capture_default_str();
    app.add_option("--batch-size", batch, "samples per teacher call")->capture_default_str();
    app.add_option("--threads", threads, "threads (0 = all cores)")->capture_default_str();
    app.add_option("--dir", dir, "working directory (removed at the end)")->capture_default_str();
    CLI11_PARSE(app, argc, argv);

    fs::remove_all(dir);
    bevkd::core::synth::SynthConfig sc;
    sc.out_dir = dir + "/synth";
    sc.scenes = scenes;
    sc.samples_per_scene = samples;
    sc.lidar_sweeps = std::max(1, sweeps - 1);
    sc.image_width = 320;
    sc.image_height = 180;
    sc.show_progress = false;
    const auto stats = bevkd::core::synth::generate(sc);

    torch::manual_seed(0);
    bevkd::precompute::PointPillarsCenterPoint model(bevkd::precompute::teacher_preset("nuscenes-pillar02"));
    {
      // A random head's log-size outputs overflow exp() (the teacher refuses non-finite boxes):
      // zero the size branch so that every decoded box is 1 m on a side.
      torch::NoGradGuard no_grad;
      for (auto& p : model->named_parameters())
        if (p.key().find(".dim.") != std::string::npos) p.value().zero_();
    }
    const std::string ckpt = dir + "/nuscenes-pillar02-random.ckpt";
    bevkd::precompute::save_teacher_model(model, ckpt);

    std::cout << "precompute benchmark: " << stats.samples << " synthetic samples (" << scenes << " scenes), "
              << sweeps << " LiDAR frames per sample, " << views
              << " view(s), batch " << batch << ", teacher nuscenes-pillar02 (random-initialised weights), threads "
              << (threads > 0 ? std::to_string(threads) : "all (" + std::to_string(std::thread::hardware_concurrency()) + ")")
              << "\n\n";

    auto run = [&](const std::string& name, int64_t in_flight) {
      bevkd::precompute::RunConfig c;
      c.dataroot = sc.out_dir;
      c.splits = {"mini_train", "mini_val"};
      c.nsweeps = sweeps;
      c.teacher.checkpoint = ckpt;
      c.views = views;
      c.batch_size = batch;
      c.samples_per_shard = 8;
      c.threads = threads;
      c.max_batches_in_flight = in_flight;
      c.quiet = true;
      c.out_dir = dir + "/" + name;
      std::ostringstream log;
      return bevkd::precompute::run_precompute(c, log);
    };
    const RunResult pipelined = run("pipelined", 4);
    const RunResult serial = run("serial", 1);

    std::printf("%-14s %12s %12s\n", "stage (s)", "pipelined", "serial");
    for (int i = 0; i < StageClock::kNumStages; ++i)
      std::printf("%-14s %12.2f %12.2f\n", StageClock::name(static_cast<StageClock::Stage>(i)),
                  pipelined.stage_s[static_cast<size_t>(i)], serial.stage_s[static_cast<size_t>(i)]);
    auto sum = [](const RunResult& r) {
      double s = 0;
      for (double x : r.stage_s) s += x;
      return s;
    };
    std::printf("%-14s %12.2f %12.2f\n", "sum of stages", sum(pipelined), sum(serial));
    std::printf("%-14s %12.2f %12.2f\n", "wall", pipelined.wall_s, serial.wall_s);
    std::printf("%-14s %12lld %12lld\n", "samples", static_cast<long long>(pipelined.samples_written),
                static_cast<long long>(serial.samples_written));
    std::printf("%-14s %12.3f %12.3f\n", "samples/s", pipelined.samples_written / pipelined.wall_s,
                serial.samples_written / serial.wall_s);
    std::printf("%-14s %11.1f%% %11.1f%%\n", "inference/wall", 100.0 * pipelined.stage_s[StageClock::kInfer] / pipelined.wall_s,
                100.0 * serial.stage_s[StageClock::kInfer] / serial.wall_s);
    std::printf("\npipelined / serial throughput: %.2fx\n", serial.wall_s / pipelined.wall_s);
    std::printf("(read, voxelize, inference, post-process: wall time of each batch in the stage, summed; compress:\n"
                " CPU time of the shard writer's zstd and checksum tasks; write: HDF5 chunk I/O, fsync, rename)\n");
    fs::remove_all(dir);
    return 0;
  });
}

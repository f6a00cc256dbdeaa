// The shard-fed loader alone (train/data/loader.h): samples/s with 1 and 2 decoding threads at the
// tiny and bevdepth-r50 image sizes, the consumer taking batches as fast as they come.
//
//   build/bench/bevkd-bench-loader [--samples 24] [--batches 12] [--threads 1,2] [--taps neck] [--dir DIR]
//   build/bench/bevkd-bench-loader --shards OUT/manifest.json --dataroot DATA --split mini_train
//
// Without --shards it writes, per preset, synthetic shards (tests/storage/shard_fixture: a
// 128 x 128 teacher grid with neck [384] and head_shared [256] float16 taps) whose camera fields
// point at generated JPEGs of the preset's source size (tiny: bevkd-synth's 640 x 360, read at
// 96 x 256; bevdepth-r50: nuScenes' 1600 x 900, read at 256 x 704), ~2000 LiDAR points per camera.
// Training mode: drawn views, resize / crop / flip / rotation drawn per camera, depth targets at
// stride 16, GT, and the teacher taps given by --taps (none by default). Every configuration
// runs --warmup untimed batches (queues and the buffer pool fill), then --batches timed ones,
// epoch after epoch; the table is printed at the end, after a one-camera breakdown (JPEG decode
// at 1/1 and at the DCT factor the resize allows, warp + normalise).
#include <tbb/info.h>

#include <CLI/CLI.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <string>
#include <thread>
#include <sys/resource.h>
#include <unistd.h>
#include <vector>

#include "base/error.h"
#include "base/fs.h"
#include "core/nuscenes/jpeg.h"
#include "storage/manifest.h"
#include "storage/shard_reader.h"
#include "tests/train/data/loader_fixture.h"
#include "train/data/image_aug.h"
#include "train/data/image_source.h"
#include "train/data/loader.h"

namespace {

using namespace bevkd;
using namespace bevkd::train::data;
using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

std::string load_average() {
  std::ifstream in("/proc/loadavg");
  std::string a, b, c;
  in >> a >> b >> c;
  return a + " " + b + " " + c;
}

// User + system CPU time of the whole process so far.
double cpu_seconds() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return static_cast<double>(u.ru_utime.tv_sec + u.ru_stime.tv_sec) + 1e-6 * static_cast<double>(u.ru_utime.tv_usec + u.ru_stime.tv_usec);
}

struct Preset {
  std::string name;
  int source_w, source_h;
  std::array<std::int64_t, 2> final_size;
  std::array<double, 2> resize_range;
};

struct Row {
  std::string preset, source;
  int threads;
  std::int64_t samples;
  double seconds, cpu_seconds, wait_fraction;
  std::int64_t skipped;
};

Row measure(const Preset& p, const std::string& source, const storage::Manifest& manifest, const std::string& dataroot,
            const std::string& split, int threads, int warmup, int batches, const std::vector<std::string>& taps) {
  LoaderConfig cfg;
  cfg.batch_size = 4;
  cfg.image.final_size = p.final_size;
  cfg.image.resize_range = p.resize_range;
  cfg.threads = threads;
  cfg.teacher_taps = taps;
  cfg.skip_missing_images = true;
  LoaderSetup setup;
  setup.split = split;
  Loader loader(manifest, dataroot, cfg, setup);
  // Epochs follow each other as in training (seek to the next at an epoch's end).
  auto next = [&] {
    for (;;) {
      if (auto b = loader.next()) return std::move(*b);
      loader.seek({loader.position().epoch + 1, 0});
    }
  };
  for (int b = 0; b < warmup; ++b) next();  // fills the queues and the buffer pool
  const LoaderStats before = loader.stats();
  std::int64_t samples = 0;
  const double cpu0 = cpu_seconds();
  const auto t0 = Clock::now();
  for (int b = 0; b < batches; ++b) samples += next().size();
  const double cpu = cpu_seconds() - cpu0;
  const double s = seconds_since(t0);
  const LoaderStats after = loader.stats();
  return Row{p.name, source, threads, samples, s, cpu, (after.wait_s - before.wait_s) / s, after.skipped_samples};
}

// One camera of one sample: decode at 1/1 and at the DCT factor, warp + normalise.
void breakdown(const Preset& p, const std::string& jpeg_file) {
  ImageAugConfig aug;
  aug.final_size = p.final_size;
  const ImageRef ref{"bench", "CAM_FRONT", jpeg_file};
  const CameraJpeg jpeg = read_camera_jpeg(jpeg_file, ref);
  const ImageAugParams params = draw_image_aug(aug, jpeg.width, jpeg.height, nullptr);
  auto time = [&](auto&& f) {  // best of 15 (a shared machine only ever slows a run down)
    double best = 1e30;
    for (int i = 0; i < 15; ++i) {
      const auto t0 = Clock::now();
      f();
      best = std::min(best, 1e3 * seconds_since(t0));
    }
    return best;
  };
  DecodedImage full, dec;
  const double full_ms = time([&] { decode_camera_jpeg(jpeg, 1.0, ref, jpeg_file, &full); });
  const double dct_ms = time([&] { decode_camera_jpeg(jpeg, params.resize, ref, jpeg_file, &dec); });
  const Affine2 A = image_aug_matrix(params, aug);
  std::vector<float> out(static_cast<std::size_t>(3 * p.final_size[0] * p.final_size[1]));
  const Affine2 src = Affine2::scale_about_pixel_centres(dec.scale.value()) * A.inverse();
  const double warp_ms = time([&] {
    warp_normalize(dec.image.rgb.data(), dec.image.width, dec.image.height, src, p.final_size[0], p.final_size[1],
                   aug.mean, aug.std, out.data());
  });
  std::printf("  %-13s %4dx%-4d -> %3lldx%-3lld  resize %.3f  decode 1/1 %6.2f ms  decode %d/%d %6.2f ms  "
              "warp+normalise %5.2f ms  (per camera, one thread, best of 15)\n",
              p.name.c_str(), jpeg.width, jpeg.height, static_cast<long long>(p.final_size[0]),
              static_cast<long long>(p.final_size[1]), params.resize, full_ms, dec.scale.num, dec.scale.denom, dct_ms,
              warp_ms);
}

int run(int argc, char** argv) {
  CLI::App app("bevkd-bench-loader: samples/s of the shard-fed loader alone");
  int samples = 24, batches = 12, warmup = 4;
  std::vector<int> thread_counts{1, 2};
  std::vector<std::string> taps;
  std::string dir, shards, dataroot, split, only;
  app.add_option("--samples", samples, "synthetic samples per preset")->capture_default_str();
  app.add_option("--batches", batches, "timed batches (of 4) per configuration")->capture_default_str();
  app.add_option("--warmup", warmup, "untimed batches first")->capture_default_str();
  app.add_option("--threads", thread_counts, "decoding thread counts")->delimiter(',')->capture_default_str();
  app.add_option("--taps", taps, "teacher taps to load (e.g. neck)")->delimiter(',');
  app.add_option("--dir", dir, "where synthetic data is written and kept, reused when present (default: a temporary "
                 "directory, removed)");
  app.add_option("--preset", only, "only this preset (tiny | bevdepth-r50)");
  app.add_option("--shards", shards, "manifest.json of real shards instead of synthetic ones");
  app.add_option("--dataroot", dataroot, "the dataroot of --shards");
  app.add_option("--split", split, "split of --shards");
  CLI11_PARSE(app, argc, argv);

  const std::vector<Preset> presets = {{"tiny", 640, 360, {96, 256}, {0.35, 0.5}},
                                       {"bevdepth-r50", 1600, 900, {256, 704}, {0.386, 0.55}}};
  std::printf("bevkd-bench-loader: %u hardware threads, load average %s\n", std::thread::hardware_concurrency(),
              load_average().c_str());
  std::vector<Row> rows;
  std::vector<std::pair<Preset, std::string>> jpegs;
  if (!shards.empty()) {
    BEVKD_CHECK(!dataroot.empty(), "--shards needs --dataroot");
    const storage::Manifest m = storage::Manifest::load(shards);
    for (const Preset& p : presets)
      if (only.empty() || p.name == only)
        for (int t : thread_counts) rows.push_back(measure(p, shards, m, dataroot, split, t, warmup, batches, taps));
  } else {
    const bool temporary = dir.empty();
    if (temporary) dir = cat("/tmp/bevkd-bench-loader-", ::getpid());
    for (const Preset& p : presets) {
      testing::LoaderDatasetSpec spec;
      spec.shard = storage::testing::FixtureSpec();  // 128 x 128 grid, neck 384 + head_shared 256 float16
      spec.shard.max_objects = 40;
      spec.shard_sizes = {samples / 2, samples - samples / 2};
      spec.image_width = p.source_w;
      spec.image_height = p.source_h;
      spec.focal = 1266.0 * p.source_w / 1600.0;
      spec.points_per_camera = 2000;
      spec.marker_radius = 0;
      spec.views_config["count"] = 1;
      if (!only.empty() && p.name != only) continue;
      const std::string pdir = cat(dir, "/", p.name);
      testing::LoaderDataset data;
      if (!temporary && path_exists(pdir + "/shards/manifest.json")) {  // reuse a kept --dir
        data.dataroot = pdir + "/dataroot";
        data.manifest_path = pdir + "/shards/manifest.json";
      } else {
        const auto t0 = Clock::now();
        data = testing::make_loader_dataset(spec, pdir);
        std::printf("  wrote %d synthetic samples (%dx%d JPEGs) for %s in %.1f s\n", samples, p.source_w,
                    p.source_h, p.name.c_str(), seconds_since(t0));
      }
      const storage::Manifest m = storage::Manifest::load(data.manifest_path);
      for (int t : thread_counts) rows.push_back(measure(p, "synthetic", m, data.dataroot, "train", t, warmup, batches, taps));
      const storage::ShardReader first(m.shard_path(m.shards().front()));
      jpegs.push_back({p, data.dataroot + "/" + first.read_field(0, "cams/image_path").string_at(0)});
    }
    std::printf("\n");
    for (const auto& [p, file] : jpegs) breakdown(p, file);
    if (temporary) std::filesystem::remove_all(dir);
  }
  std::printf("\nloader alone (batch 4, training augmentation, depth targets, GT%s%s):\n",
              taps.empty() ? "" : ", teacher taps ", taps.empty() ? "" : cat(taps.size(), " loaded").c_str());
  std::printf("  %-13s %-10s %7s %8s %10s %10s %14s %6s\n", "preset", "data", "threads", "samples", "samples/s",
              "ms/sample", "CPU ms/sample", "wait");
  for (const Row& r : rows)
    std::printf("  %-13s %-10s %7d %8lld %10.1f %10.1f %14.1f %5.0f%%\n", r.preset.c_str(),
                r.source == "synthetic" ? "synthetic" : "shards", r.threads, static_cast<long long>(r.samples),
                static_cast<double>(r.samples) / r.seconds, 1e3 * r.seconds / static_cast<double>(r.samples),
                1e3 * r.cpu_seconds / static_cast<double>(r.samples), 100 * r.wait_fraction);
  std::printf("(CPU: the whole process, every thread; wait: the share of the consumer's time inside next(), which\n"
              " is all of it here: the consumer does nothing else)\n");
  return 0;
}

}  // namespace

int main(int argc, char** argv) { return bevkd::run_main("bevkd-bench-loader", [&] { return run(argc, argv); }); }

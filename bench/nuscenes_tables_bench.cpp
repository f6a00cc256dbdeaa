// Loading the 13 nuScenes tables of a trainval-sized dataset: seconds and peak memory (getrusage)
// against the size of the JSON, side by side with plainly reading the same bytes from disk.
//
//   bevkd-synth --out /tmp/tv --trainval-tables        # 850 scenes, 34k samples, ~1.2M annotations
//   bevkd-bench-nuscenes-tables /tmp/tv v1.0-trainval
#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <thread>
#include <cstdio>
#include <iostream>
#include <string>
#include <vector>

#include "base/error.h"
#include "base/fs.h"
#include "core/nuscenes/tables.h"

namespace {

double peak_rss_mib() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  return static_cast<double>(ru.ru_maxrss) / 1024.0;  // ru_maxrss is in KiB on Linux
}

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

}  // namespace

int main(int argc, char** argv) {
  return bevkd::run_main("bevkd-bench-nuscenes-tables", [&]() {
    BEVKD_CHECK(argc == 3, "usage: bevkd-bench-nuscenes-tables <dataroot> <version>   (make one with: bevkd-synth --out "
                           "<dataroot> --trainval-tables)");
    using namespace bevkd::core::nusc;
    const std::string root = argv[1], version = argv[2];
    double json_bytes = 0, largest = 0;
    for (int t = 0; t < kNumTables; ++t) {
      const double b = static_cast<double>(bevkd::file_size(root + "/" + version + "/" + std::string(table_name(static_cast<Table>(t))) + ".json"));
      json_bytes += b;
      largest = std::max(largest, b);
    }
    const double rss0 = peak_rss_mib();
    // One parser thread first (its peak RSS is the figure reported), then the default threads.
    auto t0 = std::chrono::steady_clock::now();
    double load1_s = 0, held_mib = 0;
    std::string summary;
    std::size_t anns = 0, sds = 0, samples = 0;
    {
      LoadOptions one;
      one.threads = 1;
      const NuScenes db = NuScenes::load(root, version, one);
      load1_s = seconds_since(t0);
      held_mib = static_cast<double>(db.memory_bytes()) / (1024.0 * 1024.0);
      summary = db.summary();
      anns = db.sample_annotation().size();
      sds = db.sample_data().size();
      samples = db.sample().size();
    }
    const double peak = peak_rss_mib();
    // The pipelined load: one reading thread + parser workers on the other cores (at least one).
    const int threads = std::max(2, static_cast<int>(std::thread::hardware_concurrency()));
    t0 = std::chrono::steady_clock::now();
    {
      LoadOptions many;
      many.threads = threads;
      const NuScenes db = NuScenes::load(root, version, many);
    }
    const double load_s = seconds_since(t0);
    // Baseline: only reading the same 13 files, in 4 MiB blocks as the loader does.
    t0 = std::chrono::steady_clock::now();
    std::vector<char> block(4u << 20);
    double read_bytes = 0;
    for (int t = 0; t < kNumTables; ++t) {
      const std::string path = root + "/" + version + "/" + std::string(table_name(static_cast<Table>(t))) + ".json";
      std::FILE* f = std::fopen(path.c_str(), "rb");
      BEVKD_CHECK(f != nullptr, "cannot open ", path);
      std::size_t got;
      while ((got = std::fread(block.data(), 1, block.size(), f)) > 0) read_bytes += static_cast<double>(got);
      std::fclose(f);
    }
    const double read_s = seconds_since(t0);
    BEVKD_CHECK(read_bytes == json_bytes, "read ", read_bytes, " bytes, expected ", json_bytes);
    const double mib = json_bytes / (1024.0 * 1024.0);
    std::printf("nuScenes tables: %s/%s\n%s\n\n", root.c_str(), version.c_str(), summary.c_str());
    std::printf("%-44s %12s\n", "figure", "value");
    std::printf("%-44s %12.1f\n", "JSON size of the 13 tables (MiB)", mib);
    std::printf("%-44s %12.1f\n", "largest table (MiB)", largest / (1024.0 * 1024.0));
    std::printf("%-44s %12zu\n", "samples", samples);
    std::printf("%-44s %12zu\n", "sample_data records", sds);
    std::printf("%-44s %12zu\n", "sample_annotation records", anns);
    std::printf("%-44s %12.2f\n", "load on 1 thread: parse + index + joins (s)", load1_s);
    std::printf("%-44s %12.2f\n", bevkd::cat("load on ", threads, " threads (s)").c_str(), load_s);
    std::printf("%-44s %12.2f\n", "speed-up of the threads", load1_s / load_s);
    std::printf("%-44s %12.2f\n", "baseline: read the same bytes only (s)", read_s);
    std::printf("%-44s %12d\n", "hardware concurrency", static_cast<int>(std::thread::hardware_concurrency()));
    std::printf("%-44s %12.2f\n", "load (1 thread) / read", load1_s / read_s);
    std::printf("%-44s %12.0f\n", "load throughput, 1 thread (MiB/s of JSON)", mib / load1_s);
    std::printf("%-44s %12.1f\n", "memory held by the loaded tables (MiB)", held_mib);
    std::printf("%-44s %12.2f\n", "held / JSON size", held_mib / mib);
    std::printf("%-44s %12.1f\n", "peak RSS before the load (MiB, libraries)", rss0);
    std::printf("%-44s %12.1f\n", "peak RSS after the 1-thread load (MiB)", peak);
    std::printf("%-44s %12.2f\n", "peak RSS increase / JSON size", (peak - rss0) / mib);
    return 0;
  });
}

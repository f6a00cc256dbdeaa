// What the integrity measures of issue 16 cost (README "Integrity", schemas/SHARD_FORMAT.md):
//
//   build/bench/bevkd-bench-integrity [--samples 12] [--rounds 3] [--dir DIR]
//
// One run measures side by side, in rounds that alternate between the contenders (the best
// round of each is reported, so a busy machine hurts all of them alike), on shards of realistic
// samples (tests/support/shard_fixture: 384 + 256 float16 teacher channels on a 128 x 128 grid,
// heat maps, masks, boxes, cameras, depth):
//   * write: the 1.1 layout (dense link/attribute storage, variable-length string attributes:
//     what the writer wrote before) against the 1.2 layout (compact, fixed-length: every
//     metadata byte under an HDF5 checksum) — ShardWriter append + close, MB/s of decoded data;
//   * open: ShardReader on a 1.1 shard the old way (attributes read in-process), the new way
//     (attributes read by a forked child), on a 1.2 shard, and a 1.2 shard with the manifest's
//     whole-file XXH64 checked first; the fork again with 1 GiB more resident memory;
//   * read: every field of every sample decoded on one thread, 1.1 and 1.2 (MB/s decoded), and
//     the whole-file XXH64 of the shard (MB/s of file, page cache warm);
//   * ShardStream, 2 threads, one epoch per stream (a new stream opens every shard once):
//     without and with check_file_hash;
//   * the precompute read stage's JPEG check on a 1600 x 900 image: header only (before),
//     check_jpeg (complete decode at 1/8 scale, after), full RGB decode (for scale).
#include <tbb/info.h>

#include <CLI/CLI.hpp>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iostream>
#include <string>
#include <unistd.h>
#include <vector>

#include "base/error.h"
#include "core/nuscenes/jpeg.h"
#include "storage/codec.h"
#include "storage/manifest.h"
#include "storage/shard_reader.h"
#include "storage/shard_stream.h"
#include "storage/shard_writer.h"
#include "tests/support/shard_fixture.h"

namespace {

using namespace bevkd;
using namespace bevkd::storage;
using Clock = std::chrono::steady_clock;

double since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

std::string load_average() {
  std::ifstream in("/proc/loadavg");
  std::string a, b, c;
  in >> a >> b >> c;
  return a + " " + b + " " + c;
}

std::string fmt(double v, int digits = 1) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", digits, v);
  return buf;
}

// Best (smallest) time of `rounds` calls of each contender, the contenders interleaved.
std::vector<double> best_times(int rounds, const std::vector<std::function<void()>>& fs) {
  std::vector<double> best(fs.size(), 1e300);
  for (int r = 0; r < rounds; ++r)
    for (std::size_t k = 0; k < fs.size(); ++k) {
      const auto t0 = Clock::now();
      fs[k]();
      best[k] = std::min(best[k], since(t0));
    }
  return best;
}

void row(const std::string& what, const std::string& value, const std::string& note = "") {
  std::printf("  %-58s %14s  %s\n", what.c_str(), value.c_str(), note.c_str());
}

}  // namespace

int main(int argc, char** argv) {
  int samples = 12, rounds = 3, opens = 20;
  std::string dir;
  CLI::App app{"The cost of the shard integrity measures"};
  app.add_option("--samples", samples, "samples per shard");
  app.add_option("--rounds", rounds, "measurement rounds (best is reported)");
  app.add_option("--opens", opens, "opens per open measurement");
  app.add_option("--dir", dir, "where to write the shards (default: a temporary directory)");
  CLI11_PARSE(app, argc, argv);

  return run_main("bevkd-bench-integrity", [&] {
    if (dir.empty()) dir = (std::filesystem::temp_directory_path() / ("bevkd-bench-integrity-" + std::to_string(getpid()))).string();
    std::filesystem::create_directories(dir);
    std::cout << "bevkd integrity benchmark  (" << tbb::info::default_concurrency() << " hardware threads, load "
              << load_average() << ")\n";
    testing::FixtureSpec spec;  // 128 x 128, neck 384 + head_shared 256 float16
    const SchemaVersion v11{1, 1}, v12 = Schema::current().version();
    std::vector<Sample> data;
    std::size_t raw = 0;
    for (int i = 0; i < samples; ++i) {
      data.push_back(testing::make_sample(spec, i));
      for (const auto& [n, a] : data.back().fields()) raw += a.nbytes();
    }
    std::cout << samples << " samples, " << fmt(raw / 1e6) << " MB decoded\n\n";

    // ---- write ----
    auto write = [&](SchemaVersion v, const std::string& path) {
      WriterOptions o;
      o.schema_version = v;
      o.created_utc = "2024-01-01T00:00:00Z";
      testing::FixtureSpec s = spec;
      s.schema_version = v;
      ShardWriter w(path, testing::make_meta(s), o);
      for (const Sample& x : data) w.append(x);
      return w.close();
    };
    const std::string p11 = dir + "/train/v11.h5", p12 = dir + "/train/v12.h5";
    ShardInfo i11, i12;
    const auto tw = best_times(rounds, {[&] { i11 = write(v11, p11); }, [&] { i12 = write(v12, p12); }});
    std::cout << "write (ShardWriter append + close, incl. the whole-file XXH64 for the manifest)\n";
    row("layout 1.1 (before: dense links, global-heap attributes)", fmt(raw / tw[0] / 1e6) + " MB/s",
        fmt(i11.bytes / 1e6) + " MB file");
    row("layout 1.2 (after: compact, fixed-length, all checksummed)", fmt(raw / tw[1] / 1e6) + " MB/s",
        fmt(i12.bytes / 1e6) + " MB file (" + fmt(100.0 * (tw[1] / tw[0] - 1), 1) + " % time)");

    // ---- open ----
    OpenOptions direct;
    direct.legacy_attributes_in_child = false;
    Manifest m(testing::make_meta(spec));
    m.add(i12, dir);
    m.set_dir(dir);
    const OpenOptions hashed = m.open_options(m.shards()[0], true);
    auto open_n = [&](const std::string& p, const OpenOptions& o) {
      for (int k = 0; k < opens; ++k) ShardReader r(p, o);
    };
    // A reopened 1.1 shard reuses the texts its child read (per process and unchanged file), so
    // the fork is measured on fresh files: `opens` copies per round.
    int copy = 0;
    auto open_fresh_copies = [&](const OpenOptions& o) {
      std::vector<std::string> copies;
      for (int k = 0; k < opens; ++k) {
        copies.push_back(cat(dir, "/copy-", copy++, ".h5"));
        std::filesystem::copy_file(p11, copies.back());
      }
      const auto t0 = Clock::now();
      for (const auto& c : copies) ShardReader r(c, o);
      const double dt = since(t0);
      for (const auto& c : copies) std::filesystem::remove(c);
      return dt;
    };
    std::vector<double> child_best(2, 1e300);
    for (int r = 0; r < rounds; ++r) {
      child_best[0] = std::min(child_best[0], open_fresh_copies(direct));
      child_best[1] = std::min(child_best[1], open_fresh_copies(OpenOptions{}));
    }
    const auto to = best_times(rounds, {[&] { open_n(p11, OpenOptions{}); }, [&] { open_n(p12, OpenOptions{}); },
                                        [&] { open_n(p12, hashed); }});
    const std::vector<double> t_open = {child_best[0], child_best[1], to[1], to[2]};
    std::cout << "\nopen (ShardReader: validation of every attribute and dataset, offsets, checksum table)\n";
    row("1.1 shard, attributes read in-process (before)", fmt(1e3 * t_open[0] / opens, 2) + " ms");
    row("1.1 shard, attributes read by a forked child (after; first open)", fmt(1e3 * t_open[1] / opens, 2) + " ms",
        "+" + fmt(1e3 * (t_open[1] - t_open[0]) / opens, 2) + " ms per open");
    row("1.1 shard reopened (child's texts reused)", fmt(1e3 * to[0] / opens, 2) + " ms");
    row("1.2 shard (after)", fmt(1e3 * t_open[2] / opens, 2) + " ms");
    row("1.2 shard + the manifest's whole-file XXH64 first", fmt(1e3 * t_open[3] / opens, 2) + " ms",
        fmt(i12.bytes / 1e6 / ((t_open[3] - t_open[2]) / opens)) + " MB/s hashed");
    {
      // fork() copies page tables: the child costs more in a process with more resident memory.
      std::vector<char> ballast(std::size_t{1} << 30);
      for (std::size_t k = 0; k < ballast.size(); k += 4096) ballast[k] = static_cast<char>(k);
      std::vector<double> tb(2, 1e300);
      for (int r = 0; r < rounds; ++r) {
        tb[0] = std::min(tb[0], open_fresh_copies(direct));
        tb[1] = std::min(tb[1], open_fresh_copies(OpenOptions{}));
      }
      row("1.1 shard, child, with 1 GiB more resident memory", fmt(1e3 * tb[1] / opens, 2) + " ms",
          "+" + fmt(1e3 * (tb[1] - tb[0]) / opens, 2) + " ms per open");
      if (ballast[4096] == 42) std::cout << "";
    }

    // ---- read ----
    auto read_all = [&](const std::string& p) {
      const ShardReader r(p);
      std::size_t n = 0;
      for (std::int64_t i = 0; i < r.num_samples(); ++i) {
        const Sample s = r.read(i);
        for (const auto& [name, a] : s.fields()) n += a.nbytes();
      }
      return n;
    };
    std::uint64_t h = 0;
    const auto tr = best_times(rounds, {[&] { read_all(p11); }, [&] { read_all(p12); },
                                        [&] { h ^= xxh64_file(p12); }});
    std::cout << "\nread (every field of every sample, 1 thread)\n";
    row("1.1 shard", fmt(raw / tr[0] / 1e6) + " MB/s");
    row("1.2 shard", fmt(raw / tr[1] / 1e6) + " MB/s");
    row("whole-file XXH64 of the 1.2 shard (page cache warm)", fmt(i12.bytes / tr[2] / 1e6) + " MB/s",
        fmt(100.0 * tr[2] / tr[1], 1) + " % of a full read");

    // ---- ShardStream ----
    m.save(dir + "/" + Manifest::kFileName);
    const Manifest loaded = Manifest::load(dir + "/" + Manifest::kFileName);
    auto epoch = [&](bool check) {
      StreamOptions o;
      o.num_threads = 2;
      o.check_file_hash = check;
      ShardStream s(loaded, o);
      while (auto it = s.next()) {
      }
    };
    const auto ts = best_times(rounds, {[&] { epoch(false); }, [&] { epoch(true); }});
    std::cout << "\nShardStream, 2 threads, one epoch over the 1.2 shard (a fresh stream: the shard is opened once)\n";
    row("check_file_hash off", fmt(samples / ts[0]) + " samples/s", fmt(raw / ts[0] / 1e6) + " MB/s");
    row("check_file_hash on", fmt(samples / ts[1]) + " samples/s",
        "+" + fmt(100.0 * (ts[1] / ts[0] - 1), 1) + " % per epoch");

    // ---- JPEG ----
    const int W = 1600, H = 900;
    std::vector<std::uint8_t> rgb(static_cast<std::size_t>(W) * H * 3);
    for (int y = 0; y < H; ++y)
      for (int x = 0; x < W; ++x)
        for (int c = 0; c < 3; ++c) {
          const double v = 128 + 60 * std::sin(0.013 * x * (c + 1) + 0.021 * y) + 30 * std::sin(0.31 * x * y / (c + 3.0));
          rgb[(static_cast<std::size_t>(y) * W + x) * 3 + c] = static_cast<std::uint8_t>(std::clamp(v, 0.0, 255.0));
        }
    const std::string jpg = dir + "/cam.jpg";
    {
      const std::string bytes = core::nusc::encode_jpeg(rgb.data(), W, H, 90);
      std::ofstream(jpg, std::ios::binary).write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    }
    const int n = 20;
    const auto tj = best_times(rounds, {[&] { for (int k = 0; k < n; ++k) core::nusc::read_jpeg_info(jpg); },
                                        [&] { for (int k = 0; k < n; ++k) core::nusc::check_jpeg(jpg); },
                                        [&] { for (int k = 0; k < n; ++k) core::nusc::decode_jpeg(jpg); }});
    std::cout << "\nJPEG check per camera image (1600 x 900, quality 90, " << std::filesystem::file_size(jpg) / 1024
              << " KiB), 1 thread\n";
    row("header only (before)", fmt(1e3 * tj[0] / n, 3) + " ms");
    row("check_jpeg: complete decode at 1/8 scale (after)", fmt(1e3 * tj[1] / n, 2) + " ms",
        "x6 cameras: " + fmt(6e3 * tj[1] / n, 1) + " ms per sample");
    row("full RGB decode (for scale)", fmt(1e3 * tj[2] / n, 2) + " ms");
    std::filesystem::remove_all(dir);
    if (h == 42) std::cout << "";
    return 0;
  });
}

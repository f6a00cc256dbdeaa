// Shard store benchmark: does ShardStream decode teacher tensors in parallel, or does HDF5's
// global lock serialise it?
//
//   build/bench/bevkd-bench-shard-stream [--samples 24] [--channels 384] [--grid 128] [--dir DIR]
//
// Writes one shard of realistic samples (tests/storage/shard_fixture: a ReLU'd 384 x 128 x 128
// float16 BEV neck per sample, heat maps, masks, boxes, cameras, depth), then measures side by
// side, in rounds that alternate between the contenders (best round of each is reported, so a
// busy machine hurts all of them alike):
//   * the single-core zstd decompression rate of the very chunk bytes of teacher/features/neck
//     (ZSTD_decompressDCtx on one thread, data already in memory);
//   * ShardStream reading teacher/features/neck with 1 and 2 decoding threads (HDF5 direct
//     chunk reads + zstd (+ unshuffle) into the sample buffer, shuffled order, default prefetch);
//   * ShardStream reading whole samples with 2 threads;
// plus the stored bytes per sample against raw float32 and float16, and the compression
// level / shuffle variants (ratio, single-core compression and decompression rates).
// The goal (issue 2): 2 threads reach >= 1.7x the single-core zstd rate.
#include <hdf5.h>
#include <tbb/info.h>

#include <CLI/CLI.hpp>

#include <algorithm>
#include <atomic>
#include <thread>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <string>
#include <unistd.h>
#include <vector>

#include "base/error.h"
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

double seconds_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

std::string load_average() {
  std::ifstream in("/proc/loadavg");
  std::string a, b, c;
  in >> a >> b >> c;
  return a + " " + b + " " + c;
}

// The stored chunks (bytes + filter mask) of one dataset, read raw from the file.
// Also returns, in *locked_s, the time spent in the two HDF5 calls per chunk (both run under
// HDF5's global lock in the reader).
std::vector<EncodedChunk> read_raw_chunks(const std::string& path, const std::string& dataset, std::int64_t n,
                                          std::int64_t views, double* locked_s) {
  const hid_t f = H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT);
  const hid_t d = H5Dopen2(f, dataset.c_str(), H5P_DEFAULT);
  BEVKD_CHECK(f >= 0 && d >= 0, "bench: cannot open ", path, " ", dataset);
  std::vector<EncodedChunk> out;
  std::vector<std::byte> buf;  // reused, as the reader's per-thread buffer is
  *locked_s = 0;
  for (std::int64_t i = 0; i < n; ++i)
    for (std::int64_t v = 0; v < views; ++v) {
      const hsize_t off[5] = {static_cast<hsize_t>(i), static_cast<hsize_t>(v), 0, 0, 0};
      hsize_t size = 0;
      EncodedChunk c;
      H5Dget_chunk_storage_size(d, off, &size);
      buf.resize(std::max<std::size_t>(buf.size(), size));
      const auto t0 = Clock::now();
      H5Dget_chunk_storage_size(d, off, &size);
      H5Dread_chunk(d, H5P_DEFAULT, off, &c.filter_mask, buf.data());
      *locked_s += seconds_since(t0);
      c.bytes.assign(buf.begin(), buf.begin() + static_cast<std::ptrdiff_t>(size));
      out.push_back(std::move(c));
    }
  H5Dclose(d);
  H5Fclose(f);
  return out;
}

// Decoded MB/s of zstd alone over the chunks on `threads` plain std::threads (each decoding
// whole chunks into its own buffer), for at least `min_s` seconds. With 1 thread this is the
// reference rate of the goal; with 2 it is the most parallelism this machine gives the process
// right now (on a shared machine other processes may hold the second core).
double zstd_rate(const std::vector<EncodedChunk>& chunks, std::size_t chunk_bytes, double min_s, int threads = 1) {
  for (const auto& c : chunks) BEVKD_CHECK(c.filter_mask == 0, "bench: a chunk was stored uncompressed");
  std::atomic<std::size_t> bytes{0};
  std::atomic<bool> stop{false};
  const auto t0 = Clock::now();
  std::vector<std::thread> pool;
  for (int t = 0; t < threads; ++t)
    pool.emplace_back([&, t] {
      std::vector<std::byte> out(chunk_bytes);
      for (std::size_t k = static_cast<std::size_t>(t); !stop; k = (k + 1) % chunks.size()) {
        const auto& c = chunks[k];
        bytes += zstd_decompress(c.bytes.data(), c.bytes.size(), out.data(), out.size());
        if (t == 0 && seconds_since(t0) >= min_s) stop = true;
      }
    });
  for (auto& th : pool) th.join();
  return bytes / seconds_since(t0) / 1e6;
}

// ShardReader::read_field on the calling thread (no stream, no prefetch).
double reader_rate(const std::string& shard, std::int64_t n, double min_s) {
  const ShardReader r(shard);
  std::size_t bytes = 0;
  const auto t0 = Clock::now();
  do {
    for (std::int64_t i = 0; i < n; ++i) bytes += r.read_field(i, "teacher/features/neck").nbytes();
  } while (seconds_since(t0) < min_s);
  return bytes / seconds_since(t0) / 1e6;
}

struct StreamRate {
  double mb_per_s = 0;
  double samples_per_s = 0;
};

// ShardStream over the manifest for at least `min_s` seconds (whole epochs).
StreamRate stream_rate(const Manifest& m, int threads, const std::vector<std::string>& fields, double min_s) {
  StreamOptions o;
  o.num_threads = threads;
  o.fields = fields;
  o.seed = 1;
  ShardStream s(m, o);
  std::size_t bytes = 0, items = 0;
  std::uint64_t sink = 0;
  std::int64_t epoch = 0;
  const auto t0 = Clock::now();
  while (seconds_since(t0) < min_s) {
    s.seek({epoch++, 0});
    while (auto item = s.next()) {
      for (const auto& [name, a] : item->sample.fields()) {
        bytes += a.nbytes();
        if (a.nbytes() > 0) sink += static_cast<std::uint8_t>(a.bytes()[a.nbytes() / 2]);
      }
      ++items;
    }
  }
  const double dt = seconds_since(t0);
  if (sink == 42) std::cerr << "";
  return StreamRate{bytes / dt / 1e6, items / dt};
}

std::string fmt(double v, int digits = 1) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", digits, v);
  return buf;
}

}  // namespace

int main(int argc, char** argv) {
  int samples = 24, channels = 384, grid = 128, rounds = 3;
  double min_s = 1.0;
  std::string dir = "";
  bool keep = false;
  CLI::App app{"ShardStream decoding throughput vs single-core zstd"};
  app.add_option("--samples", samples, "samples in the shard");
  app.add_option("--channels", channels, "channels of teacher/features/neck");
  app.add_option("--grid", grid, "BEV grid size (H = W)");
  app.add_option("--rounds", rounds, "measurement rounds (best is reported)");
  app.add_option("--min-seconds", min_s, "minimum time per measurement");
  app.add_option("--dir", dir, "where to write the shard (default: a temporary directory)");
  app.add_flag("--keep", keep, "keep the shard");
  CLI11_PARSE(app, argc, argv);

  return run_main("bevkd-bench-shard-stream", [&] {
    if (dir.empty()) dir = (std::filesystem::temp_directory_path() / ("bevkd-bench-" + std::to_string(getpid()))).string();
    testing::FixtureSpec spec;
    const double cell = 102.4 / grid;
    spec.grid = BevGrid::make({-51.2, -51.2, -5.0, 51.2, 51.2, 3.0}, cell, cell);
    spec.taps = {{"neck", channels, DType::kFloat16}};
    const std::string shard = dir + "/train/shard-00000.h5";

    std::cout << "bevkd shard store benchmark  (" << tbb::info::default_concurrency() << " hardware threads, load "
              << load_average() << ")\n";
    std::cout << "writing " << samples << " samples: teacher/features/neck float16 [1, " << channels << ", " << grid
              << ", " << grid << "] + heat map, mask, boxes, cameras, depth ...\n";
    const ShardMeta meta = testing::make_meta(spec);
    Manifest manifest(meta);
    std::vector<Sample> kept;  // a few raw samples for the codec variants
    // Generate first (kept in memory), then time the writer alone: append + close, with zstd on
    // TBB's threads overlapping the HDF5 writes of earlier samples.
    double gen_s = 0, write_s = 0;
    std::int64_t zeros = 0, elems = 0;
    std::vector<Sample> generated;
    std::size_t raw_input = 0;
    {
      const auto t0 = Clock::now();
      for (int i = 0; i < samples; ++i) {
        generated.push_back(testing::make_sample(spec, i));
        const Array& neck = generated.back().get("teacher/features/neck");
        for (std::int64_t k = 0; k < neck.numel(); ++k) zeros += neck.data<std::uint16_t>()[k] == 0;
        elems += neck.numel();
        raw_input += generated.back().nbytes();
        if (kept.size() < 4) kept.push_back(generated.back().clone());
      }
      gen_s = seconds_since(t0);
    }
    {
      const auto t0 = Clock::now();
      ShardWriter w(shard, meta);
      for (Sample& s : generated) w.append(std::move(s));
      manifest.add(w.close(), dir);
      write_s = seconds_since(t0);
      generated.clear();
    }
    manifest.save(dir + "/" + Manifest::kFileName);
    manifest = Manifest::load(dir + "/" + Manifest::kFileName);
    const DatasetStats st = ShardReader(shard).dataset_stats("teacher/features/neck");
    const std::size_t chunk_bytes = static_cast<std::size_t>(channels) * grid * grid * 2;
    std::cout << "  generated in " << fmt(gen_s) << " s; neck zero share " << fmt(100.0 * zeros / elems) << " %\n"
              << "  ShardWriter (zstd 3, TBB, " << tbb::info::default_concurrency() << " threads): " << fmt(write_s, 2)
              << " s = " << fmt(samples / write_s, 1) << " samples/s, " << fmt(raw_input / write_s / 1e6, 0)
              << " MB/s of raw input; file " << fmt(manifest.shards()[0].bytes / 1e6) << " MB\n\n";

    double locked_s = 0;
    read_raw_chunks(shard, "teacher/features/neck", samples, 1, &locked_s);  // warm the page cache
    const auto chunks = read_raw_chunks(shard, "teacher/features/neck", samples, 1, &locked_s);
    double best_zstd = 0;
    double best_reader = 0, best_zstd2 = 0;
    StreamRate best1, best2, best_all;
    for (int r = 0; r < rounds; ++r) {
      best_zstd = std::max(best_zstd, zstd_rate(chunks, chunk_bytes, min_s));
      best_zstd2 = std::max(best_zstd2, zstd_rate(chunks, chunk_bytes, min_s, 2));
      best_reader = std::max(best_reader, reader_rate(shard, samples, min_s));
      const StreamRate s1 = stream_rate(manifest, 1, {"teacher/features/neck"}, min_s);
      const StreamRate s2 = stream_rate(manifest, 2, {"teacher/features/neck"}, min_s);
      const StreamRate sa = stream_rate(manifest, 2, {}, min_s);
      if (s1.mb_per_s > best1.mb_per_s) best1 = s1;
      if (s2.mb_per_s > best2.mb_per_s) best2 = s2;
      if (sa.mb_per_s > best_all.mb_per_s) best_all = sa;
    }
    const double per_sample_stored = double(st.stored_bytes) / samples;
    const double raw16 = double(chunk_bytes), raw32 = 2.0 * chunk_bytes;
    std::cout << "decoding teacher/features/neck (" << fmt(raw16 / 1e6) << " MB float16 per sample), best of " << rounds
              << " rounds:\n";
    std::cout << "  contender                                   decoded MB/s   samples/s   vs zstd 1 core\n";
    auto row = [&](const std::string& name, double mbs, double sps) {
      char buf[200];
      std::snprintf(buf, sizeof buf, "  %-44s %12.0f %11.1f %13.2fx\n", name.c_str(), mbs, sps, mbs / best_zstd);
      std::cout << buf;
    };
    row("zstd alone, 1 core (same chunk bytes)", best_zstd, best_zstd * 1e6 / raw16);
    row("zstd alone, 2 std::threads (machine ceiling)", best_zstd2, best_zstd2 * 1e6 / raw16);
    row("ShardReader::read_field, calling thread", best_reader, best_reader * 1e6 / raw16);
    row("ShardStream, 1 thread", best1.mb_per_s, best1.samples_per_s);
    row("ShardStream, 2 threads", best2.mb_per_s, best2.samples_per_s);
    row("ShardStream, 2 threads, whole samples", best_all.mb_per_s, best_all.samples_per_s);
    const double lock_share = locked_s / (locked_s + samples * raw16 / (best_zstd * 1e6));
    std::cout << "  under HDF5's lock (H5Dget_chunk_storage_size + H5Dread_chunk): " << fmt(1e3 * locked_s / samples, 2)
              << " ms per sample = " << fmt(100 * lock_share, 1) << " % of a sample's read+decode time\n";
    const double speedup = best2.mb_per_s / best_zstd;
    std::cout << "  goal: 2 threads >= 1.70x single-core zstd -> " << fmt(speedup, 2) << "x "
              << (speedup >= 1.7 ? "(met)" : "(NOT met)") << "; 2 threads / 1 thread = "
              << fmt(best2.mb_per_s / best1.mb_per_s, 2) << "x; 2 threads / zstd on 2 std::threads = "
              << fmt(best2.mb_per_s / best_zstd2, 2) << "x\n";
    if (best_zstd2 < 1.7 * best_zstd)
      std::cout << "  note: plain zstd on 2 std::threads reaches only " << fmt(best_zstd2 / best_zstd, 2)
                << "x of 1 thread here: the machine does not give this process two free cores right now\n";
    std::cout << "\n";

    std::cout << "bytes per sample, teacher/features/neck:\n";
    std::cout << "  raw float32 " << fmt(raw32 / 1e6, 2) << " MB, raw float16 " << fmt(raw16 / 1e6, 2)
              << " MB, stored " << fmt(per_sample_stored / 1e6, 2) << " MB  (" << fmt(raw32 / per_sample_stored, 2)
              << "x vs float32, " << fmt(raw16 / per_sample_stored, 2) << "x vs float16); whole sample stored "
              << fmt(manifest.shards()[0].bytes / 1e6 / samples, 2) << " MB\n\n";

    std::cout << "codec variants on " << kept.size() << " samples of teacher/features/neck (1 core each):\n";
    std::cout << "  level  shuffle   MB/sample   vs f32   vs f16   compress MB/s   decode MB/s (zstd+unshuffle)\n";
    for (int level : {1, 3, 6, 9})
      for (bool shuffle : {false, true}) {
        CodecOptions o;
        o.level = level;
        o.shuffle = shuffle;
        std::vector<EncodedChunk> enc(kept.size());
        auto t0 = Clock::now();
        for (std::size_t k = 0; k < kept.size(); ++k) {
          const Array& a = kept[k].get("teacher/features/neck");
          encode_chunk(a.bytes(), a.nbytes(), 2, shuffle, o, &enc[k]);
        }
        const double cs = seconds_since(t0);
        std::size_t stored = 0;
        for (const auto& e : enc) stored += e.bytes.size();
        std::vector<std::byte> out(chunk_bytes);
        std::size_t decoded = 0;
        t0 = Clock::now();
        do {
          for (const auto& e : enc) {
            decode_chunk(e.bytes.data(), e.bytes.size(), e.filter_mask, shuffle, 2, out.data(), out.size());
            decoded += out.size();
          }
        } while (seconds_since(t0) < 0.3);
        const double ds = seconds_since(t0);
        const double per = double(stored) / kept.size();
        char buf[200];
        std::snprintf(buf, sizeof buf, "  %5d  %-7s %11.2f %8.2fx %7.2fx %15.0f %13.0f\n", level, shuffle ? "yes" : "no",
                      per / 1e6, raw32 / per, raw16 / per, kept.size() * raw16 / cs / 1e6, decoded / ds / 1e6);
        std::cout << buf;
      }
    std::cout << "\n(load after the run: " << load_average() << ")\n";
    if (!keep) std::filesystem::remove_all(dir);
    return 0;
  });
}

// bevkd-inspect: look at shards without writing code.
//
//   bevkd-inspect summary PATH [--json]      schema, producer, teacher, grid, samples; per field:
//                                            dtype, shape, stored vs decoded bytes, filters; for a
//                                            manifest every shard is opened and a damaged one is
//                                            listed as CORRUPT (exit 2) while the others are summarised
//   bevkd-inspect verify PATH [--json]       schema + root attributes + every sample's checksums
//                                            (+ the files' checksums against a manifest); exit 2
//                                            listing each bad shard and sample when something is wrong
//   bevkd-inspect dump SHARD --sample I      one sample as JSON: small arrays in full, large
//                                            ones as statistics; exit 2 when a field fails to
//                                            decode or fails its checksum
//   bevkd-inspect render SHARD --sample I -o out.png
//                                            BEV feature energy of a tap, foreground mask, GT and
//                                            teacher boxes, legend and scale
//   bevkd-inspect storage PATH [--frames N] [--json]
//                                            bytes per sample of every field (stored and decoded,
//                                            summed over all shards), which grow with the stored
//                                            views, and the projected size of N frames (default
//                                            28,130: nuScenes train) for 1-4 stored views
//
// PATH is a shard (.h5), a manifest.json, or a directory holding manifest.json. The main only
// parses arguments; run() does the work.
#pragma once

#include <cstdint>
#include <iosfwd>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "base/canvas.h"
#include "storage/shard_reader.h"

namespace bevkd::storage::inspect {

inline constexpr int kExitOk = 0;
inline constexpr int kExitError = 1;    // could not run (bad arguments, unreadable input)
inline constexpr int kExitBadData = 2;  // verify found corrupt or inconsistent data

struct RenderOptions {
  std::string tap;          // teacher tap for the energy map ("" = neck if present, else the first)
  int view = 0;
  int cell_px = 4;          // pixels per BEV cell
  double score_min = 0.3;   // teacher boxes below this score are not drawn

  template <class V>
  void fields(V& v) {
    v("tap", tap);
    v("view", view);
    v("cell_px", cell_px);
    v("score_min", score_min);
  }
};

struct Config {
  std::string command;                 // summary | verify | dump | render | storage
  std::string path;
  bool json = false;                   // summary / verify
  int threads = 2;                     // verify
  std::int64_t sample = 0;             // dump / render
  std::vector<std::string> selectors;  // dump: field selectors (empty = all)
  std::int64_t full_max = 1024;        // dump: arrays up to this many elements are printed in full
  std::string out;                     // render: PNG path
  RenderOptions render;
  std::int64_t frames = 28130;         // storage: frames of the projection (nuScenes train)

  // Configuration as data (base/config.h): every subcommand takes --config FILE with these keys.
  template <class V>
  void fields(V& v) {
    v("path", path);
    v("json", json);
    v("threads", threads);
    v("sample", sample);
    v("fields", selectors);
    v("full_max", full_max);
    v("out", out);
    v.nested("render", render);
    v("frames", frames);
  }
};

// Runs one command, printing to `out`; returns the exit code. Throws bevkd::Error when the
// command cannot run at all (missing file, unreadable shard for summary/dump/render).
int run(const Config& cfg, std::ostream& out);

// `storage`: per field the stored and decoded bytes per sample over every shard of PATH, whether
// the field grows with the stored views, and the projected bytes of `frames` frames for 1-4 views
// (HDF5's overhead scaled with the files' size). JSON as `storage --json` prints it.
nlohmann::json storage_report(const std::string& path, std::int64_t frames);

// The building blocks, for tests and other tools.
nlohmann::json summarize_shard(const ShardReader& reader);
// {"ok": bool, "shards": [{"path", "num_samples", "ok", "file_checksum", "problems": [
//   {"sample", "sample_token", "field", "message"}]}], "unfinished": [...], "bad_samples": n}
nlohmann::json verify(const std::string& path, int threads);
nlohmann::json dump_sample(const ShardReader& reader, std::int64_t sample, const std::vector<std::string>& fields,
                           std::int64_t full_max);
Canvas render_sample(const ShardReader& reader, std::int64_t sample, const RenderOptions& opts);

}  // namespace bevkd::storage::inspect

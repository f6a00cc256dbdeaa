// bevkd-inspect: summary, verify, dump, render and storage for shards (see storage/inspect.h).
// Thin main: parse, run(cfg), map errors to exit codes (0 ok, 1 error, 2 verify found bad data).
#include <CLI/CLI.hpp>

#include <iostream>

#include "base/config_cli.h"
#include "base/error.h"
#include "storage/inspect.h"

int main(int argc, char** argv) {
  namespace insp = bevkd::storage::inspect;
  insp::Config cfg;
  CLI::App app{"bevkd-inspect: summarise, verify, dump and picture bevkd HDF5 shards"};
  app.require_subcommand(1);

  auto* summary = app.add_subcommand("summary", "schema, producer, teacher, grid, samples and per-field sizes");
  summary->add_option("path", cfg.path, "shard (.h5), manifest.json, or a directory with manifest.json");
  summary->add_flag("--json", cfg.json, "machine-readable output");

  auto* verify = app.add_subcommand("verify", "check the schema and every sample's checksums (exit 2 on bad data)");
  verify->add_option("path", cfg.path, "shard (.h5), manifest.json, or a directory with manifest.json");
  verify->add_flag("--json", cfg.json, "machine-readable output");
  verify->add_option("--threads", cfg.threads, "decoding threads")->check(CLI::Range(1, 256));

  auto* dump = app.add_subcommand("dump", "one sample as JSON (small arrays in full, large ones as statistics)");
  dump->add_option("shard", cfg.path, "shard (.h5)");
  dump->add_option("--sample", cfg.sample, "sample index (default 0)");
  dump->add_option("--fields", cfg.selectors, "field selectors, e.g. gt/* teacher/features/neck (default: all)");
  dump->add_option("--full-max", cfg.full_max, "print arrays with at most this many elements in full");

  auto* render = app.add_subcommand("render", "PNG of one sample: feature energy, fg mask, GT and teacher boxes");
  render->add_option("shard", cfg.path, "shard (.h5)");
  render->add_option("--sample", cfg.sample, "sample index (default 0)");
  render->add_option("-o,--out", cfg.out, "output PNG");
  render->add_option("--tap", cfg.render.tap, "teacher tap (default: neck, else the first)");
  render->add_option("--view", cfg.render.view, "stored view");
  render->add_option("--cell-px", cfg.render.cell_px, "pixels per BEV cell")->check(CLI::Range(1, 32));
  render->add_option("--score-min", cfg.render.score_min, "draw teacher boxes with at least this score");

  auto* storage = app.add_subcommand("storage", "bytes per sample of each field and the projected size of a split");
  storage->add_option("path", cfg.path, "shard (.h5), manifest.json, or a directory with manifest.json");
  storage->add_option("--frames", cfg.frames, "frames to project (default 28130: nuScenes train)");
  storage->add_flag("--json", cfg.json, "machine-readable output");

  for (CLI::App* sub : {summary, verify, dump, render, storage}) {
    bevkd::config::bind_config_option(sub);
    bevkd::config::preload(sub, cfg, argc, argv);
  }
  CLI11_PARSE(app, argc, argv);
  cfg.command = app.get_subcommands().front()->get_name();
  return bevkd::run_main("bevkd-inspect", [&] { return insp::run(cfg, std::cout); });
}

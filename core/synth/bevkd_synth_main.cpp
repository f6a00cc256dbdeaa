// bevkd-synth: writes a synthetic dataset in the exact nuScenes v1.0 layout (core/synth/synth.h).
//
//   bevkd-synth --out data/synth                       # 10 scenes x 10 samples, v1.0-mini
//   bevkd-synth --out /tmp/tv --trainval-tables        # trainval-sized tables only (benchmarks)
//   bevkd-synth --config data/synth/synth_config.json  # the saved configuration of a dataset again
#include <CLI/CLI.hpp>

#include <iostream>
#include <sstream>

#include "base/config_cli.h"
#include "base/error.h"
#include "base/fs.h"
#include "core/synth/synth.h"

namespace {

struct SynthArgs {
  bevkd::core::synth::SynthConfig synth;
  std::string image_size;  // WxH, sets synth.image_width / image_height
  bool trainval_tables = false;
  bool quiet = false;
  template <class V>
  void fields(V& v) {
    v.nested("synth", synth, "");
    v("image_size", image_size, "--image-size", "camera image size WxH (default 640x360)");
    v("trainval_tables", trainval_tables, "--trainval-tables",
      "table-only trainval-sized dataset (850 scenes x 40 samples, real sweep rates) for loader benchmarks; "
      "other size options are ignored");
    v("quiet", quiet, "-q,--quiet", "no progress line");
  }
};

}  // namespace

int main(int argc, char** argv) {
  return bevkd::run_main("bevkd-synth", [&]() {
    namespace config = bevkd::config;
    using bevkd::core::synth::SynthConfig;
    SynthArgs args;
    CLI::App app{"Writes a synthetic dataset in the exact nuScenes v1.0 format (tables, LiDAR, cameras, radars)."};
    config::bind(&app, args);
    config::preload(&app, args, argc, argv);
    try {
      app.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
      return app.exit(e);
    }
    SynthConfig& cfg = args.synth;
    BEVKD_CHECK(!cfg.out_dir.empty(), "--out (config key synth.out_dir) is required");
    if (args.trainval_tables) {
      SynthConfig tv = bevkd::core::synth::trainval_tables_config(cfg.out_dir);
      tv.seed = cfg.seed;
      tv.threads = cfg.threads;
      cfg = tv;
    }
    if (!args.image_size.empty()) {
      int w = 0, h = 0;
      char x = 0;
      std::istringstream is(args.image_size);
      BEVKD_CHECK((is >> w >> x >> h) && x == 'x' && is.eof(), "--image-size: expected WxH such as 640x360, found '",
                  args.image_size, "'");
      cfg.image_width = w;
      cfg.image_height = h;
      args.image_size.clear();  // resolved into synth.image_width / image_height
    }
    cfg.show_progress = !args.quiet;
    cfg.validate();
    std::cout << "bevkd-synth configuration:\n" << cfg.describe() << std::flush;
    const auto summary = bevkd::core::synth::generate(cfg);
    args.trainval_tables = false;  // resolved into the synth fields
    bevkd::write_file_atomic(cfg.out_dir + "/synth_config.json", config::to_json(args).dump(2) + "\n");
    std::cout << "wrote " << cfg.out_dir << ": " << summary.describe() << "\n";
    return 0;
  });
}

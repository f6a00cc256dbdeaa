// bevkd-synth: writes a synthetic dataset in the exact nuScenes v1.0 layout (core/synth/synth.h).
//
//   bevkd-synth --out data/synth                       # 10 scenes x 10 samples, v1.0-mini
//   bevkd-synth --out /tmp/tv --trainval-tables        # trainval-sized tables only (benchmarks)
#include <CLI/CLI.hpp>

#include <iostream>

#include "base/error.h"
#include "core/synth/synth.h"

int main(int argc, char** argv) {
  return bevkd::run_main("bevkd-synth", [&]() {
    using bevkd::core::synth::SynthConfig;
    SynthConfig cfg;
    bool trainval_tables = false, quiet = false;
    std::string image_size;
    CLI::App app{"Writes a synthetic dataset in the exact nuScenes v1.0 format (tables, LiDAR, cameras, radars)."};
    app.add_option("-o,--out", cfg.out_dir, "output dataroot")->required();
    app.add_option("--version", cfg.version, "version directory (ending in mini, trainval or test)")->capture_default_str();
    app.add_option("--seed", cfg.seed, "random seed (same seed: byte-identical dataset)")->capture_default_str();
    app.add_option("--scenes", cfg.scenes, "number of scenes")->capture_default_str();
    app.add_option("--samples", cfg.samples_per_scene, "key frames (samples) per scene, 2 Hz")->capture_default_str();
    app.add_option("--lidar-sweeps", cfg.lidar_sweeps, "LIDAR_TOP sweeps between key frames (9 = 20 Hz)")->capture_default_str();
    app.add_option("--camera-sweeps", cfg.camera_sweeps, "camera sweeps between key frames")->capture_default_str();
    app.add_option("--radar-sweeps", cfg.radar_sweeps, "radar sweeps between key frames")->capture_default_str();
    app.add_option("--image-size", image_size, "camera image size WxH (default 640x360)");
    app.add_option("--beams", cfg.beams, "LiDAR beams")->capture_default_str();
    app.add_option("--azimuth-steps", cfg.azimuth_steps, "LiDAR rays per beam and revolution")->capture_default_str();
    app.add_option("--objects", cfg.objects_per_scene, "annotated instances per scene")->capture_default_str();
    app.add_option("--jpeg-quality", cfg.jpeg_quality, "JPEG quality 1..100")->capture_default_str();
    app.add_option("--threads", cfg.threads, "worker threads (0: all cores)")->capture_default_str();
    app.add_flag("--tables-only", cfg.tables_only, "write the 13 tables only, no sensor files");
    app.add_flag("--trainval-tables", trainval_tables,
                 "table-only trainval-sized dataset (850 scenes x 40 samples, real sweep rates) for loader benchmarks; "
                 "other size options are ignored");
    app.add_flag("-q,--quiet", quiet, "no progress line");
    try {
      app.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
      return app.exit(e);
    }
    if (trainval_tables) {
      SynthConfig tv = bevkd::core::synth::trainval_tables_config(cfg.out_dir);
      tv.seed = cfg.seed;
      tv.threads = cfg.threads;
      cfg = tv;
    }
    if (!image_size.empty()) {
      int w = 0, h = 0;
      char x = 0;
      std::istringstream is(image_size);
      BEVKD_CHECK((is >> w >> x >> h) && x == 'x' && is.eof(), "--image-size: expected WxH such as 640x360, found '",
                  image_size, "'");
      cfg.image_width = w;
      cfg.image_height = h;
    }
    cfg.show_progress = !quiet;
    cfg.validate();
    std::cout << "bevkd-synth configuration:\n" << cfg.describe() << std::flush;
    const auto summary = bevkd::core::synth::generate(cfg);
    std::cout << "wrote " << cfg.out_dir << ": " << summary.describe() << "\n";
    return 0;
  });
}

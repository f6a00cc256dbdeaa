// bevkd-synth: writes a synthetic dataset in the exact nuScenes v1.0 layout
// (spec/nuscenes.md §(a), §(b)) that the devkit's NuScenes class and bevkd's reader load
// unchanged:
//
//   <out>/<version>/{category,attribute,visibility,instance,sensor,calibrated_sensor,ego_pose,
//                    log,scene,sample,sample_data,sample_annotation,map}.json, splits.json
//   <out>/maps/<hash>.png
//   <out>/samples/<CHANNEL>/<logfile>__<CHANNEL>__<timestamp>.{pcd.bin,jpg,pcd}   key frames
//   <out>/sweeps/<CHANNEL>/...                                                      sweeps
//
// Each scene is a stretch of road (straight or a gentle arc) with lanes, parking strips,
// sidewalks, buildings, poles and trees. Tracked instances move plausibly: cars, trucks, buses
// and motorcycles drive along lanes (same speed per lane, so they never collide), parked
// vehicles, walking/standing/sitting pedestrians, cyclists, a construction zone with barriers,
// cones, a construction vehicle and a worker, bicycle racks with parked bicycles inside, and
// ignored categories (animals, pushable/pullable objects, debris, strollers). All 10 detection
// classes appear with realistic sizes; attributes follow the motion; visibility is measured in
// the rendered images; num_lidar_pts / num_radar_pts are counted in the generated clouds.
//
// Sensors: LIDAR_TOP ray-cast at 2 * (lidar_sweeps + 1) Hz (20 Hz by default) with the real
// rig's ~-90 deg yaw (32 beams from -30.67 to +10.67 deg, ground plane + objects with
// occlusion, intensity, ring); six OpenCV cameras with the real intrinsics scaled to the image
// size, rendered by a z-buffer rasteriser (shaded, class-coloured solids over road and sky);
// five radars as binary PCD v0.7 with the trailing newline the devkit's reader needs.
//
// Scene names reuse real ones so the devkit's predefined splits select them: with a version
// ending in "mini" the first scenes are the real mini_train (scene-0061, ...) and mini_val
// (scene-0103, scene-0916) names; with "trainval" they come from the train and val lists.
// About 20 % of the scenes are validation scenes. splits.json adds the custom splits
// synth_train, synth_val and synth_all over all scenes.
//
// Deterministic: the same configuration (seed included) gives byte-identical files, whatever
// the thread count. tables_only writes the tables alone (no sensor files; num_lidar_pts and
// visibility are then estimated from distance and size), e.g. trainval-sized tables for the
// loader benchmark (trainval_tables_config()).
#pragma once

#include <cstdint>
#include <string>

namespace bevkd::core::synth {

struct SynthConfig {
  std::string out_dir;                // the dataroot to write
  std::string version = "v1.0-mini";  // version directory
  std::uint64_t seed = 0;
  int scenes = 10;
  int samples_per_scene = 10;   // key frames per scene (2 Hz)
  int lidar_sweeps = 9;         // LIDAR_TOP sweeps between key frames (9: 20 Hz as in real data)
  int camera_sweeps = 1;        // camera sweeps between key frames (real data: 5, 12 Hz)
  int radar_sweeps = 1;         // radar sweeps between key frames (real data: ~5, 13 Hz)
  int image_width = 640;        // pixels; intrinsics are the real 1600x900 ones scaled
  int image_height = 360;
  int beams = 32;               // LiDAR beams over the vertical FOV -30.67 .. +10.67 deg
  int azimuth_steps = 1084;     // LiDAR rays per beam and revolution
  int objects_per_scene = 60;   // annotated instances per scene (all classes, incl. ignored ones)
  int jpeg_quality = 90;
  bool tables_only = false;     // write the 13 tables only (no sensor files)
  int threads = 0;              // worker threads (0: hardware concurrency)
  bool show_progress = true;    // a Progress line on stderr

  // Throws bevkd::Error naming the first invalid option.
  void validate() const;
  // One line per option (printed by bevkd-synth and written to <out>/synth_config.txt).
  std::string describe() const;

  // A dataset for tests: 3 scenes (scene-0061 and scene-0553 fall in mini_train, scene-0103 in
  // mini_val) x 3 samples, one LiDAR sweep between key frames, 64x36 images, 30 objects a scene.
  static SynthConfig tiny();

  template <class V>
  void fields(V& v) {
    v("out_dir", out_dir, "-o,--out", "output dataroot");
    v("version", version, "--version", "version directory (ending in mini, trainval or test)");
    v("seed", seed, "--seed", "random seed (same seed: byte-identical dataset)");
    v("scenes", scenes, "--scenes", "number of scenes");
    v("samples_per_scene", samples_per_scene, "--samples", "key frames (samples) per scene, 2 Hz");
    v("lidar_sweeps", lidar_sweeps, "--lidar-sweeps", "LIDAR_TOP sweeps between key frames (9 = 20 Hz)");
    v("camera_sweeps", camera_sweeps, "--camera-sweeps", "camera sweeps between key frames");
    v("radar_sweeps", radar_sweeps, "--radar-sweeps", "radar sweeps between key frames");
    v("image_width", image_width);
    v("image_height", image_height);
    v("beams", beams, "--beams", "LiDAR beams");
    v("azimuth_steps", azimuth_steps, "--azimuth-steps", "LiDAR rays per beam and revolution");
    v("objects_per_scene", objects_per_scene, "--objects", "annotated instances per scene");
    v("jpeg_quality", jpeg_quality, "--jpeg-quality", "JPEG quality 1..100");
    v("tables_only", tables_only, "--tables-only", "write the 13 tables only, no sensor files");
    v("threads", threads, "--threads", "worker threads (0: all cores)");
    v("show_progress", show_progress);
  }
};

// The table-only configuration of a trainval-sized dataset: 850 scenes (the 700 train and
// 150 val names) x 40 samples, real sweep rates (9 LiDAR, 5 camera, 5 radar sweeps between
// key frames), ~1.2 M annotations.
SynthConfig trainval_tables_config(const std::string& out_dir);

struct SynthSummary {
  std::int64_t scenes = 0, samples = 0, sample_data = 0, annotations = 0, instances = 0;
  std::int64_t lidar_points = 0;  // over all LIDAR_TOP frames
  std::int64_t files = 0;         // sensor files written
  std::int64_t table_bytes = 0;   // size of the 13 JSON tables
  double seconds = 0;
  std::string describe() const;
};

// Writes the dataset. Throws bevkd::Error (bad configuration, I/O). Existing files of the
// same names are replaced; files are written under temporary names and renamed into place.
SynthSummary generate(const SynthConfig& cfg);

}  // namespace bevkd::core::synth

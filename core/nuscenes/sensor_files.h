// nuScenes sensor files (spec/nuscenes.md §(b)): LIDAR_TOP .pcd.bin and radar PCD v0.7.
//
// LIDAR_TOP `.pcd.bin`: raw little-endian float32, 5 values per point — x, y, z (m, lidar
// frame: x right, y forward, z up for the real rig), intensity, ring (beam index). No header;
// the point count is file size / 20, and a size that is not a multiple of 20 is an error.
//
// Radar `.pcd`: an ASCII header of exactly 11 lines (the devkit parses them by position:
// line 3 SIZE, 4 TYPE, 5 COUNT, 6 WIDTH, 7 HEIGHT, 10 DATA) followed by WIDTH packed binary
// points. nuScenes radars have 18 fields / 43 bytes per point (kRadarFieldNames). The devkit's
// reader needs at least one byte after the last point, so writers append "\n"; an empty cloud
// is stored as one all-NaN point. RadarFilter::devkit_default() is the devkit's default
// filter (invalid_state == 0, dyn_prop in 0..6, ambig_state == 3).
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace bevkd::core::nusc {

inline constexpr int kLidarBinFields = 5;  // x, y, z, intensity, ring

// Reads a .pcd.bin. Returns [P, 5] float32 row-major (x, y, z in m, lidar frame; intensity;
// ring). Throws bevkd::Error naming the file if it is missing, unreadable, or its size is not a
// multiple of 20 bytes.
std::vector<float> read_lidar_bin(const std::string& path);
// Writes [n, 5] float32 points as a .pcd.bin (atomically: temporary file + rename).
void write_lidar_bin(const std::string& path, const float* points, std::size_t n);

inline constexpr int kRadarFields = 18;
inline constexpr int kRadarPointBytes = 43;
inline constexpr std::array<std::string_view, kRadarFields> kRadarFieldNames = {
    "x",       "y",       "z",                "dyn_prop",    "id",    "rcs",           "vx",   "vy",     "vx_comp",
    "vy_comp", "is_quality_valid", "ambig_state", "x_rms", "y_rms", "invalid_state", "pdh0", "vx_rms", "vy_rms"};

// One radar detection with nuScenes' field types (F4 / I1 / I2).
struct RadarPoint {
  float x = 0, y = 0, z = 0;  // m, radar frame (x forward, y left)
  std::int8_t dyn_prop = 0;   // 0 moving, 1 stationary, 2 oncoming, 3 stationary candidate, ...
  std::int16_t id = 0;
  float rcs = 0;              // radar cross-section, dBsm
  float vx = 0, vy = 0;       // m/s, radar frame, relative to the radar
  float vx_comp = 0, vy_comp = 0;  // ego-motion compensated
  std::int8_t is_quality_valid = 1, ambig_state = 3, x_rms = 0, y_rms = 0, invalid_state = 0, pdh0 = 0,
              vx_rms = 0, vy_rms = 0;
};

// Which points read_radar_pcd keeps (positions as in the devkit: dyn_prop = field 3,
// ambig_state = field 11, invalid_state = field F-4).
struct RadarFilter {
  bool enabled = true;
  std::vector<int> invalid_states{0};
  std::vector<int> dynprop_states{0, 1, 2, 3, 4, 5, 6};
  std::vector<int> ambig_states{3};

  static RadarFilter devkit_default() { return {}; }
  // Whether the filter keeps a point (always true when disabled).
  bool keeps(const RadarPoint& p) const;
  static RadarFilter none() {  // the devkit's disable_filters()
    RadarFilter f;
    f.enabled = false;
    return f;
  }
};

struct RadarCloud {
  std::vector<std::string> fields;  // field names from the header (18 for nuScenes radars)
  std::vector<float> points;        // [P, fields.size()] float32 row-major, after the filter
  std::size_t size() const { return fields.empty() ? 0 : points.size() / fields.size(); }
};

// Reads a radar .pcd (binary PCD v0.7, any F/I/U field types). Throws bevkd::Error naming the
// file and the header line for a malformed header, and naming the sizes for a short binary block.
RadarCloud read_radar_pcd(const std::string& path, const RadarFilter& filter = RadarFilter::devkit_default());
// The bytes of a nuScenes radar .pcd holding `points` (18 fields, trailing "\n"; an empty
// list becomes one all-NaN point, as in real data).
std::string encode_radar_pcd(const std::vector<RadarPoint>& points);

}  // namespace bevkd::core::nusc

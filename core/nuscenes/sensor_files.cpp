#include "core/nuscenes/sensor_files.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <sstream>

#include "base/error.h"
#include "base/fs.h"

namespace bevkd::core::nusc {

std::vector<float> read_lidar_bin(const std::string& path) {
  BEVKD_CHECK(path_exists(path), "LiDAR file ", path, " does not exist");
  const std::string bytes = read_file(path);
  constexpr std::size_t kPointBytes = kLidarBinFields * sizeof(float);
  BEVKD_CHECK(bytes.size() % kPointBytes == 0, "LiDAR file ", path, " has ", bytes.size(),
              " bytes, which is not a multiple of 20 (5 float32 per point: x, y, z, intensity, ring)");
  std::vector<float> out(bytes.size() / sizeof(float));
  if (!bytes.empty()) std::memcpy(out.data(), bytes.data(), bytes.size());
  return out;
}

void write_lidar_bin(const std::string& path, const float* points, std::size_t n) {
  write_file_atomic(path, std::string_view(reinterpret_cast<const char*>(points), n * kLidarBinFields * sizeof(float)));
}

namespace {

std::vector<std::string> split_ws(const std::string& line) {
  std::istringstream is(line);
  std::vector<std::string> out;
  std::string w;
  while (is >> w) out.push_back(w);
  return out;
}

template <typename T>
double load_as(const char* p) {
  T v;
  std::memcpy(&v, p, sizeof(T));
  return static_cast<double>(v);
}

bool contains(const std::vector<int>& set, double v) {
  for (int s : set)
    if (static_cast<double>(s) == v) return true;
  return false;
}

}  // namespace

bool RadarFilter::keeps(const RadarPoint& p) const {
  return !enabled || (contains(invalid_states, p.invalid_state) && contains(dynprop_states, p.dyn_prop) &&
                      contains(ambig_states, p.ambig_state));
}

RadarCloud read_radar_pcd(const std::string& path, const RadarFilter& filter) {
  BEVKD_CHECK(path_exists(path), "radar file ", path, " does not exist");
  const std::string bytes = read_file(path);
  // The header: lines up to and including the one starting with DATA.
  std::vector<std::string> meta;
  std::size_t pos = 0;
  while (pos < bytes.size()) {
    std::size_t eol = bytes.find('\n', pos);
    BEVKD_CHECK(eol != std::string::npos, "radar file ", path, ": header ends before a DATA line");
    std::string line = bytes.substr(pos, eol - pos);
    while (!line.empty() && (line.back() == '\r' || line.back() == ' ')) line.pop_back();
    meta.push_back(line);
    pos = eol + 1;
    if (line.rfind("DATA", 0) == 0) break;
  }
  BEVKD_CHECK(meta.size() == 11, "radar file ", path, ": expected an 11-line PCD v0.7 header ending in DATA, found ",
              meta.size(), " lines");
  BEVKD_CHECK(!meta[0].empty() && meta[0][0] == '#', "radar file ", path, ": line 1 must be a comment, found '",
              meta[0], "'");
  BEVKD_CHECK(meta[1].rfind("VERSION", 0) == 0, "radar file ", path, ": line 2 must be VERSION, found '", meta[1], "'");
  auto row = [&](int i, std::string_view key) {
    std::vector<std::string> w = split_ws(meta[i]);
    BEVKD_CHECK(!w.empty() && w[0] == key, "radar file ", path, ": header line ", i + 1, " must start with ", key,
                ", found '", meta[i], "'");
    w.erase(w.begin());
    return w;
  };
  const std::vector<std::string> fields = row(2, "FIELDS"), sizes = row(3, "SIZE"), types = row(4, "TYPE"),
                                 counts = row(5, "COUNT"), width = row(6, "WIDTH"), height = row(7, "HEIGHT"),
                                 data = row(10, "DATA");
  const std::size_t nf = types.size();
  BEVKD_CHECK(nf > 0 && sizes.size() == nf && counts.size() == nf && fields.size() == nf, "radar file ", path,
              ": FIELDS, SIZE, TYPE and COUNT have ", fields.size(), ", ", sizes.size(), ", ", nf, " and ",
              counts.size(), " entries");
  for (const std::string& c : counts)
    BEVKD_CHECK(c == "1", "radar file ", path, ": COUNT ", c, " is not supported (expected 1 per field)");
  BEVKD_CHECK(width.size() == 1 && height.size() == 1 && data.size() == 1, "radar file ", path,
              ": malformed WIDTH/HEIGHT/DATA lines");
  const long n_points = std::strtol(width[0].c_str(), nullptr, 10);
  BEVKD_CHECK(n_points > 0, "radar file ", path, ": WIDTH is ", width[0], " (expected > 0)");
  BEVKD_CHECK(height[0] == "1", "radar file ", path, ": HEIGHT is ", height[0], " (expected 1)");
  BEVKD_CHECK(data[0] == "binary", "radar file ", path, ": DATA is ", data[0], " (expected binary)");
  std::vector<int> sz(nf);
  std::size_t point_bytes = 0;
  for (std::size_t f = 0; f < nf; ++f) {
    sz[f] = std::atoi(sizes[f].c_str());
    const std::string& t = types[f];
    const bool ok = (t == "F" && (sz[f] == 4 || sz[f] == 8)) ||
                    ((t == "I" || t == "U") && (sz[f] == 1 || sz[f] == 2 || sz[f] == 4 || sz[f] == 8));
    BEVKD_CHECK(ok, "radar file ", path, ": field ", fields[f], " has unsupported TYPE ", t, " SIZE ", sizes[f]);
    point_bytes += static_cast<std::size_t>(sz[f]);
  }
  const std::size_t need = point_bytes * static_cast<std::size_t>(n_points);
  BEVKD_CHECK(bytes.size() - pos >= need, "radar file ", path, ": binary block has ", bytes.size() - pos,
              " bytes, WIDTH ", n_points, " x ", point_bytes, " bytes per point needs ", need);

  RadarCloud cloud;
  cloud.fields = fields;
  std::vector<double> p(nf);
  const int i_dyn = 3, i_ambig = 11, i_invalid = static_cast<int>(nf) - 4;
  const bool can_filter = nf > 11;
  const char* src = bytes.data() + pos;
  for (long i = 0; i < n_points; ++i) {
    for (std::size_t f = 0; f < nf; ++f) {
      const std::string& t = types[f];
      double v = 0;
      if (t == "F") v = sz[f] == 4 ? load_as<float>(src) : load_as<double>(src);
      else if (t == "I") v = sz[f] == 1 ? load_as<std::int8_t>(src) : sz[f] == 2 ? load_as<std::int16_t>(src)
                           : sz[f] == 4 ? load_as<std::int32_t>(src) : load_as<std::int64_t>(src);
      else v = sz[f] == 1 ? load_as<std::uint8_t>(src) : sz[f] == 2 ? load_as<std::uint16_t>(src)
             : sz[f] == 4 ? load_as<std::uint32_t>(src) : load_as<std::uint64_t>(src);
      p[f] = v;
      src += sz[f];
    }
    // A NaN in the first point marks an empty cloud (devkit).
    if (i == 0 && std::any_of(p.begin(), p.end(), [](double v) { return std::isnan(v); })) return cloud;
    if (filter.enabled && can_filter &&
        !(contains(filter.invalid_states, p[i_invalid]) && contains(filter.dynprop_states, p[i_dyn]) &&
          contains(filter.ambig_states, p[i_ambig])))
      continue;
    for (double v : p) cloud.points.push_back(static_cast<float>(v));
  }
  return cloud;
}

std::string encode_radar_pcd(const std::vector<RadarPoint>& points) {
  std::vector<RadarPoint> pts = points;
  if (pts.empty()) {
    RadarPoint nan_point;
    const float nan = std::numeric_limits<float>::quiet_NaN();
    nan_point.x = nan_point.y = nan_point.z = nan_point.rcs = nan_point.vx = nan_point.vy = nan_point.vx_comp =
        nan_point.vy_comp = nan;
    pts.push_back(nan_point);
  }
  std::string out = cat(
      "# .PCD v0.7 - Point Cloud Data file format\n"
      "VERSION 0.7\n"
      "FIELDS x y z dyn_prop id rcs vx vy vx_comp vy_comp is_quality_valid ambig_state x_rms y_rms invalid_state "
      "pdh0 vx_rms vy_rms\n"
      "SIZE 4 4 4 1 2 4 4 4 4 4 1 1 1 1 1 1 1 1\n"
      "TYPE F F F I I F F F F F I I I I I I I I\n"
      "COUNT 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1\n"
      "WIDTH ",
      pts.size(),
      "\n"
      "HEIGHT 1\n"
      "VIEWPOINT 0 0 0 1 0 0 0\n"
      "POINTS ",
      pts.size(), "\nDATA binary\n");
  const std::size_t header = out.size();
  out.resize(header + pts.size() * kRadarPointBytes);
  char* dst = out.data() + header;
  auto put = [&dst](const auto& v) {
    std::memcpy(dst, &v, sizeof(v));
    dst += sizeof(v);
  };
  for (const RadarPoint& p : pts) {
    put(p.x), put(p.y), put(p.z), put(p.dyn_prop), put(p.id), put(p.rcs), put(p.vx), put(p.vy), put(p.vx_comp),
        put(p.vy_comp);
    put(p.is_quality_valid), put(p.ambig_state), put(p.x_rms), put(p.y_rms), put(p.invalid_state), put(p.pdh0),
        put(p.vx_rms), put(p.vy_rms);
  }
  out.push_back('\n');  // the devkit's reader needs a byte after the last point
  return out;
}

}  // namespace bevkd::core::nusc

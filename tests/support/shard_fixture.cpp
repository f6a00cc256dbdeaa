#include "tests/support/shard_fixture.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdio>
#include <random>

#include "base/math.h"
#include "base/rng.h"
#include "storage/codec.h"
#include "storage/half.h"
#include "storage/quantize.h"

namespace bevkd::storage::testing {
namespace {

// Class sizes (l, w, h) in DESIGN.md's class order: car, truck, construction_vehicle, bus,
// trailer, barrier, motorcycle, bicycle, pedestrian, traffic_cone.
constexpr float kSizes[10][3] = {{4.6f, 1.9f, 1.7f}, {6.9f, 2.5f, 2.8f}, {6.4f, 2.8f, 3.2f}, {11.0f, 2.9f, 3.5f},
                                 {12.3f, 2.9f, 3.9f}, {0.5f, 2.5f, 1.0f}, {2.1f, 0.8f, 1.5f}, {1.7f, 0.6f, 1.3f},
                                 {0.7f, 0.7f, 1.8f}, {0.4f, 0.4f, 1.1f}};
const char* const kClassNames[10] = {"car", "truck", "construction_vehicle", "bus", "trailer",
                                     "barrier", "motorcycle", "bicycle", "pedestrian", "traffic_cone"};
const char* const kCameras[6] = {"CAM_FRONT", "CAM_FRONT_RIGHT", "CAM_FRONT_LEFT",
                                 "CAM_BACK", "CAM_BACK_LEFT", "CAM_BACK_RIGHT"};
constexpr double kCameraYawDeg[6] = {0, -55, 55, 180, 110, -110};

// The project's seeded generator (base/rng.h): the same fixture on every platform.
using bevkd::Rng;

std::uint64_t mix(std::uint64_t a, std::uint64_t b) { return mix_keys(a, b); }

struct Object {
  int label;
  float box[9];  // x y z l w h yaw vx vy
};

// bda = R(theta) * flip * scale as a 3x3 row-major matrix.
std::array<float, 9> make_bda(Rng& rng) {
  const double th = rng.uniform(-0.39, 0.39), s = rng.uniform(0.95, 1.05);
  const double fx = rng.uniform() < 0.5 ? -1 : 1, fy = rng.uniform() < 0.5 ? -1 : 1;
  const double c = std::cos(th), sn = std::sin(th);
  return {float(s * c * fx), float(-s * sn * fy), 0, float(s * sn * fx), float(s * c * fy), 0, 0, 0, float(s)};
}

std::array<float, 9> transform_box(const float* b, const std::array<float, 9>& m) {
  std::array<float, 9> o;
  o[0] = m[0] * b[0] + m[1] * b[1];
  o[1] = m[3] * b[0] + m[4] * b[1];
  o[2] = m[8] * b[2];
  const double hx = m[0] * std::cos(b[6]) + m[1] * std::sin(b[6]);
  const double hy = m[3] * std::cos(b[6]) + m[4] * std::sin(b[6]);
  const float s = m[8];
  o[3] = b[3] * s;
  o[4] = b[4] * s;
  o[5] = b[5] * s;
  o[6] = static_cast<float>(std::atan2(hy, hx));
  o[7] = m[0] * b[7] + m[1] * b[8];
  o[8] = m[3] * b[7] + m[4] * b[8];
  return o;
}

// Sum of unit-peak Gaussians of the objects of each class on the grid: [K, H, W].
std::vector<float> class_blobs(const std::vector<Object>& objs, const BevGrid& g, double sigma_scale) {
  const std::int64_t H = g.H, W = g.W;
  std::vector<float> out(static_cast<std::size_t>(10 * H * W), 0.f);
  for (const Object& o : objs) {
    const double cj = (o.box[0] - g.range[0]) / g.dx - 0.5, ci = (o.box[1] - g.range[1]) / g.dy - 0.5;
    const double sigma = std::max(0.8, sigma_scale * 0.5 * std::hypot(o.box[3], o.box[4]) / g.dx);
    const int r = static_cast<int>(std::ceil(3 * sigma));
    for (int i = static_cast<int>(ci) - r; i <= static_cast<int>(ci) + r; ++i)
      for (int j = static_cast<int>(cj) - r; j <= static_cast<int>(cj) + r; ++j) {
        if (i < 0 || j < 0 || i >= H || j >= W) continue;
        const double d2 = (i - ci) * (i - ci) + (j - cj) * (j - cj);
        out[(o.label * H + i) * W + j] += static_cast<float>(std::exp(-d2 / (2 * sigma * sigma)));
      }
  }
  return out;
}

// A ReLU'd BEV feature map [C, H, W] (float): per-channel mixes of the class blobs, a
// low-frequency "road structure" term and noise, minus a bias, through a ReLU. About 70-85% of
// the cells end up exactly zero, like a real CenterPoint neck.
std::vector<float> relu_features(const std::vector<float>& blobs, const BevGrid& g, std::int64_t C,
                                 std::uint64_t seed) {
  const std::int64_t H = g.H, W = g.W, HW = H * W;
  Rng rng(seed);
  std::vector<float> out(static_cast<std::size_t>(C * HW));
  std::vector<float> w(10);
  std::uint64_t noise_state = seed | 1;
  for (std::int64_t c = 0; c < C; ++c) {
    for (auto& x : w) x = static_cast<float>(rng.uniform(-0.6, 1.6));
    const double fx = rng.uniform(0.02, 0.2), fy = rng.uniform(0.02, 0.2);
    const double px = rng.uniform(0, 2 * kPi), py = rng.uniform(0, 2 * kPi);
    const float amp = static_cast<float>(rng.uniform(0.2, 0.6)), bias = static_cast<float>(rng.uniform(0.05, 0.45));
    const float gain = static_cast<float>(rng.uniform(0.5, 3.0));
    std::vector<float> sx(static_cast<std::size_t>(W)), sy(static_cast<std::size_t>(H));
    for (std::int64_t j = 0; j < W; ++j) sx[j] = static_cast<float>(std::sin(fx * j + px));
    for (std::int64_t i = 0; i < H; ++i) sy[i] = static_cast<float>(std::cos(fy * i + py));
    float* o = out.data() + c * HW;
    for (std::int64_t i = 0; i < H; ++i)
      for (std::int64_t j = 0; j < W; ++j) {
        const std::int64_t k = i * W + j;
        float v = amp * sx[j] * sy[i] - bias;
        for (int cls = 0; cls < 10; ++cls) v += w[cls] * blobs[cls * HW + k];
        noise_state ^= noise_state << 13;
        noise_state ^= noise_state >> 7;
        noise_state ^= noise_state << 17;
        v += 0.12f * (static_cast<float>(noise_state >> 40) * (1.0f / 16777216.0f) - 0.5f);
        o[k] = v > 0 ? v * gain : 0.f;
      }
  }
  return out;
}

Array half_array(std::vector<std::int64_t> shape, const std::vector<float>& v) {
  Array a(DType::kFloat16, std::move(shape));
  float_to_half(v.data(), a.data<std::uint16_t>(), v.size());
  return a;
}

Array ragged_f32(std::int64_t cols, const std::vector<float>& flat, std::vector<std::int64_t> segments) {
  const std::int64_t rows = cols > 0 ? static_cast<std::int64_t>(flat.size()) / cols : 0;
  Array a = cols == 1 ? Array::of<float>({rows}, flat) : Array::of<float>({rows, cols}, flat);
  a.segments = std::move(segments);
  return a;
}

template <typename T>
Array ragged(const std::vector<T>& v, std::vector<std::int64_t> segments) {
  Array a = Array::of<T>({static_cast<std::int64_t>(v.size())}, v);
  a.segments = std::move(segments);
  return a;
}

}  // namespace

FixtureSpec small_spec() {
  FixtureSpec s;
  s.grid = BevGrid::make({-12.8, -12.8, -5.0, 12.8, 12.8, 3.0}, 1.6, 1.6);  // 16 x 16
  s.num_views = 2;
  s.taps = {{"neck", 8, DType::kFloat16}, {"head_shared", 4, DType::kInt8}};
  s.max_objects = 6;
  s.false_positives = 3;
  s.depth_points = 5;
  return s;
}

FixtureSpec small_spec(SchemaVersion version) {
  FixtureSpec s = small_spec();
  s.schema_version = version;
  if (version == SchemaVersion{1, 0}) s.fd3d_points = 4;
  return s;
}

std::string make_token(std::uint64_t seed, std::int64_t index, std::uint64_t salt) {
  char buf[33];
  const std::uint64_t a = mix(mix(seed, static_cast<std::uint64_t>(index)), salt);
  const std::uint64_t b = mix(a, salt + 1);
  std::snprintf(buf, sizeof buf, "%016llx%016llx", static_cast<unsigned long long>(a), static_cast<unsigned long long>(b));
  return buf;
}

ShardMeta make_meta(const FixtureSpec& spec) {
  ShardMeta m;
  m.split = spec.split;
  m.grid = spec.grid;
  m.num_views = spec.num_views;
  m.taps = spec.taps;
  m.fd3d_points = spec.fd3d_points;
  m.camera_names.assign(std::begin(kCameras), std::end(kCameras));
  m.class_names.assign(std::begin(kClassNames), std::end(kClassNames));
  m.producer = producer_info("storage-fixture");
  m.teacher = {{"name", "fixture-centerpoint-pillar"}, {"checkpoint_xxh64", "00112233445566ff"}};
  m.config = {{"fixture_seed", spec.seed}, {"max_objects", spec.max_objects}, {"gamma", 0.5}};
  return m;
}

Sample make_sample(const FixtureSpec& spec, std::int64_t index) {
  const BevGrid& g = spec.grid;
  const std::int64_t H = g.H, W = g.W, V = spec.num_views;
  Rng rng(mix(spec.seed, static_cast<std::uint64_t>(index)));
  const bool empty = index % 5 == 3;
  Sample s;

  s.set("sample_token", Array::strings({}, {make_token(spec.seed, index, 1)}, 32));
  s.set("scene_token", Array::strings({}, {make_token(spec.seed, index / 40, 2)}, 32));
  const std::int64_t ts = 1531883530412470 + index * 500000;
  s.set("timestamp", Array::scalar<std::int64_t>(ts));
  {
    const double yaw = rng.uniform(-kPi, kPi), c = std::cos(yaw), sn = std::sin(yaw);
    s.set("ego2global", Array::of<double>({4, 4}, {c, -sn, 0, 411.3 + index, sn, c, 0, 1180.9 - 0.5 * index, 0, 0,
                                                   1, 0, 0, 0, 0, 1}));
  }

  // Objects in the key-frame ego frame.
  std::vector<Object> objects;
  const int n_obj = empty ? 0 : 1 + rng.below(std::max(1, spec.max_objects));
  for (int k = 0; k < n_obj; ++k) {
    Object o;
    o.label = rng.below(10);
    const float* sz = kSizes[o.label];
    const double x = rng.uniform(g.range[0] + 1, g.range[3] - 1), y = rng.uniform(g.range[1] + 1, g.range[4] - 1);
    const double yaw = rng.uniform(-kPi, kPi);
    const bool moving = o.label <= 4 && rng.uniform() < 0.5;
    const float v = moving ? static_cast<float>(rng.uniform(1, 12)) : 0.f;
    o.box[0] = static_cast<float>(x);
    o.box[1] = static_cast<float>(y);
    o.box[2] = static_cast<float>(rng.uniform(-2.0, 0.5));
    o.box[3] = sz[0] * static_cast<float>(rng.uniform(0.9, 1.1));
    o.box[4] = sz[1] * static_cast<float>(rng.uniform(0.9, 1.1));
    o.box[5] = sz[2] * static_cast<float>(rng.uniform(0.9, 1.1));
    o.box[6] = static_cast<float>(yaw);
    o.box[7] = static_cast<float>(v * std::cos(yaw));
    o.box[8] = static_cast<float>(v * std::sin(yaw));
    objects.push_back(o);
  }

  // GT (ragged per sample).
  {
    std::vector<float> boxes;
    std::vector<std::int16_t> labels, attrs;
    std::vector<std::int32_t> lidar, radar;
    std::vector<std::uint8_t> vvalid;
    for (std::size_t k = 0; k < objects.size(); ++k) {
      Object o = objects[k];
      const bool valid = rng.uniform() < 0.85;
      if (!valid) o.box[7] = o.box[8] = 0.f;
      boxes.insert(boxes.end(), o.box, o.box + 9);
      labels.push_back(static_cast<std::int16_t>(o.label));
      attrs.push_back(static_cast<std::int16_t>(o.label == 5 || o.label == 9 ? -1 : rng.below(8)));
      lidar.push_back(k % 7 == 6 ? 0 : 1 + rng.below(400));
      radar.push_back(rng.below(6));
      vvalid.push_back(valid ? 1 : 0);
    }
    const std::int64_t G = static_cast<std::int64_t>(objects.size());
    s.set("gt/boxes", ragged_f32(9, boxes, {G}));
    s.set("gt/labels", ragged(labels, {G}));
    s.set("gt/attributes", ragged(attrs, {G}));
    s.set("gt/num_lidar_pts", ragged(lidar, {G}));
    s.set("gt/num_radar_pts", ragged(radar, {G}));
    s.set("gt/velocity_valid", ragged(vvalid, {G}));
    std::vector<float> racks;
    const int n_racks = empty ? 0 : rng.below(3);
    for (int k = 0; k < n_racks; ++k) {
      const float r[9] = {static_cast<float>(rng.uniform(-10, 10)), static_cast<float>(rng.uniform(-10, 10)), -1.f,
                          3.f, 1.2f, 1.f, static_cast<float>(rng.uniform(-kPi, kPi)), 0.f, 0.f};
      racks.insert(racks.end(), r, r + 9);
    }
    s.set("gt/rack_boxes", ragged_f32(9, racks, {n_racks}));
  }

  // Views: BEV augmentation, teacher outputs and masks per view.
  std::vector<std::array<float, 9>> bdas;
  for (std::int64_t v = 0; v < V; ++v)
    bdas.push_back(v == 0 ? std::array<float, 9>{1, 0, 0, 0, 1, 0, 0, 0, 1} : make_bda(rng));
  {
    std::vector<float> flat;
    for (const auto& b : bdas) flat.insert(flat.end(), b.begin(), b.end());
    s.set("view/bda", Array::of<float>({V, 3, 3}, flat));
  }
  std::vector<std::vector<Object>> view_objects(static_cast<std::size_t>(V));
  for (std::int64_t v = 0; v < V; ++v)
    for (const Object& o : objects) {
      Object t = o;
      const auto b = transform_box(o.box, bdas[v]);
      std::copy(b.begin(), b.end(), t.box);
      view_objects[v].push_back(t);
    }

  for (const TapSpec& tap : spec.taps) {
    std::vector<float> all;
    for (std::int64_t v = 0; v < V; ++v) {
      const std::vector<float> blobs = class_blobs(view_objects[v], g, 1.0);
      const std::vector<float> f =
          relu_features(blobs, g, tap.channels, mix(mix(spec.seed, xxh64(tap.name.data(), tap.name.size())), static_cast<std::uint64_t>(index * 16 + v)));
      all.insert(all.end(), f.begin(), f.end());
    }
    const std::string name = "teacher/features/" + tap.name;
    if (tap.dtype == DType::kInt8) {
      Array q(DType::kInt8, {V, tap.channels, H, W});
      Array scale(DType::kFloat32, {V, tap.channels});
      for (std::int64_t v = 0; v < V; ++v)
        quantize_int8(all.data() + v * tap.channels * H * W, tap.channels, H * W,
                      q.data<std::int8_t>() + v * tap.channels * H * W, scale.data<float>() + v * tap.channels);
      s.set(name, std::move(q));
      s.set("teacher/feature_scales/" + tap.name, std::move(scale));
    } else {
      s.set(name, half_array({V, tap.channels, H, W}, all));
    }
  }
  {
    std::vector<float> heat, mask;
    for (std::int64_t v = 0; v < V; ++v) {
      const std::vector<float> peaks = class_blobs(view_objects[v], g, 0.5);
      for (std::int64_t k = 0; k < 10 * H * W; ++k) {
        const double bg = 1.0 / (1.0 + std::exp(5.5 + rng.normal()));
        heat.push_back(static_cast<float>(std::min(0.97, bg + 0.92 * std::min(1.0f, peaks[k]))));
      }
      for (std::int64_t k = 0; k < H * W; ++k) {
        float m = 0.f;
        for (int cls = 0; cls < 10; ++cls) m = std::max(m, std::min(1.0f, peaks[cls * H * W + k]));
        mask.push_back(m < 0.01f ? 0.f : m);
      }
    }
    s.set("teacher/heatmap", half_array({V, 10, H, W}, heat));
    s.set("fg_mask", half_array({V, H, W}, mask));
  }

  // Teacher boxes (ragged per sample and view): jittered GT plus false positives.
  {
    std::vector<float> boxes, scores, quality;
    std::vector<std::int16_t> labels;
    std::vector<std::int64_t> seg;
    for (std::int64_t v = 0; v < V; ++v) {
      std::int64_t n = 0;
      if (!empty) {
        for (const Object& o : view_objects[v]) {
          if (rng.uniform() < 0.1) continue;  // missed
          float b[9];
          std::copy(o.box, o.box + 9, b);
          b[0] += static_cast<float>(0.2 * rng.normal());
          b[1] += static_cast<float>(0.2 * rng.normal());
          b[6] += static_cast<float>(0.05 * rng.normal());
          boxes.insert(boxes.end(), b, b + 9);
          const float c = static_cast<float>(rng.uniform(0.4, 0.95));
          scores.push_back(c);
          labels.push_back(static_cast<std::int16_t>(o.label));
          quality.push_back(std::sqrt(c) * static_cast<float>(std::sqrt(rng.uniform(0.5, 0.95))));
          ++n;
        }
        for (int k = 0; k < spec.false_positives; ++k) {
          const int label = rng.below(10);
          const float b[9] = {static_cast<float>(rng.uniform(g.range[0], g.range[3])),
                              static_cast<float>(rng.uniform(g.range[1], g.range[4])), -1.f, kSizes[label][0],
                              kSizes[label][1], kSizes[label][2], static_cast<float>(rng.uniform(-kPi, kPi)), 0.f, 0.f};
          boxes.insert(boxes.end(), b, b + 9);
          scores.push_back(static_cast<float>(rng.uniform(0.05, 0.35)));
          labels.push_back(static_cast<std::int16_t>(label));
          quality.push_back(0.f);
          ++n;
        }
      }
      seg.push_back(n);
    }
    s.set("teacher/boxes", ragged_f32(9, boxes, seg));
    s.set("teacher/scores", ragged_f32(1, scores, seg));
    s.set("teacher/labels", ragged(labels, seg));
    s.set("teacher/quality", ragged_f32(1, quality, seg));
    if (SchemaVersion{1, 1} <= spec.schema_version) {
      // Class probabilities at the peak: the box's own class has its score, the others less
      // (a fixed fraction per (sample, box, class); no draws from rng, so the other fields stay
      // what they were before class_probs existed).
      std::vector<float> probs;
      for (std::size_t m = 0; m < scores.size(); ++m)
        for (int k = 0; k < 10; ++k) {
          const double frac = static_cast<double>(mix(mix(spec.seed, static_cast<std::uint64_t>(index)), m * 10 + k) >> 11) /
                              9007199254740992.0;
          probs.push_back(k == labels[m] ? scores[m] : static_cast<float>(scores[m] * 0.9 * frac));
        }
      Array p = half_array({static_cast<std::int64_t>(scores.size()), 10}, probs);
      p.segments = seg;
      s.set("teacher/class_probs", std::move(p));
    }
  }

  // Cameras.
  {
    std::vector<std::string> paths;
    std::vector<float> K, T;
    for (int c = 0; c < 6; ++c) {
      paths.push_back(std::string("samples/") + kCameras[c] + "/n015-2018-07-18-11-07-57+0800__" + kCameras[c] + "__" +
                      std::to_string(ts + 12000 * c) + ".jpg");
      const float f = static_cast<float>(1260 + 10 * c);
      const float k9[9] = {f, 0, 800.f, 0, f, 450.f, 0, 0, 1};
      K.insert(K.end(), k9, k9 + 9);
      // camera (x right, y down, z forward) -> ego, looking along yaw.
      const double yaw = kCameraYawDeg[c] * kPi / 180, cy = std::cos(yaw), sy = std::sin(yaw);
      const float t16[16] = {static_cast<float>(sy), 0, static_cast<float>(cy), static_cast<float>(1.5 * cy),
                             static_cast<float>(-cy), 0, static_cast<float>(sy), static_cast<float>(1.5 * sy),
                             0, -1, 0, 1.6f,
                             0, 0, 0, 1};
      T.insert(T.end(), t16, t16 + 16);
    }
    s.set("cams/image_path", Array::strings({6}, paths, 256));
    s.set("cams/intrinsics", Array::of<float>({6, 3, 3}, K));
    s.set("cams/cam2ego", Array::of<float>({6, 4, 4}, T));
  }

  // Depth points per camera.
  {
    std::vector<float> uvd;
    std::vector<std::int32_t> ids;
    std::vector<std::int64_t> seg;
    for (int c = 0; c < 6; ++c) {
      const int n = (index % 4 == 1 && c == 2) ? 0 : spec.depth_points + rng.below(std::max(1, spec.depth_points / 4));
      for (int k = 0; k < n; ++k) {
        uvd.push_back(static_cast<float>(rng.uniform(0, 1600)));
        uvd.push_back(static_cast<float>(rng.uniform(250, 900)));
        uvd.push_back(static_cast<float>(rng.uniform(1, 60)));
        ids.push_back(objects.empty() || rng.uniform() < 0.8 ? -1 : rng.below(static_cast<int>(objects.size())));
      }
      seg.push_back(n);
    }
    s.set("depth/uvd", ragged_f32(3, uvd, seg));
    s.set("depth/box_id", ragged(ids, seg));
  }

  // FD3D focal queries per view.
  if (spec.fd3d_points > 0) {
    const std::int64_t Q = spec.fd3d_points;
    std::vector<float> boxes, scores, points;
    std::vector<std::int16_t> labels;
    std::vector<std::int64_t> seg;
    for (std::int64_t v = 0; v < V; ++v) {
      std::int64_t n = 0;
      for (const Object& o : view_objects[v]) {
        if (rng.uniform() < 0.3) continue;
        boxes.insert(boxes.end(), o.box, o.box + 9);
        scores.push_back(static_cast<float>(rng.uniform(0.3, 0.9)));
        labels.push_back(static_cast<std::int16_t>(o.label));
        for (std::int64_t q = 0; q < Q; ++q) {
          points.push_back(o.box[0] + static_cast<float>(rng.normal()));
          points.push_back(o.box[1] + static_cast<float>(rng.normal()));
        }
        ++n;
      }
      seg.push_back(n);
    }
    s.set("fd3d/boxes", ragged_f32(9, boxes, seg));
    s.set("fd3d/scores", ragged_f32(1, scores, seg));
    s.set("fd3d/labels", ragged(labels, seg));
    Array p = Array::of<float>({static_cast<std::int64_t>(scores.size()), Q, 2}, points);
    p.segments = seg;
    s.set("fd3d/sampling_points", std::move(p));
  }
  return s;
}

}  // namespace bevkd::storage::testing

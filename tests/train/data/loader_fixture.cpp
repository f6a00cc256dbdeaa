#include "tests/train/data/loader_fixture.h"

#include <cmath>
#include <filesystem>

#include "base/error.h"
#include "base/fs.h"
#include "base/rng.h"
#include "core/nuscenes/jpeg.h"
#include "storage/manifest.h"
#include "storage/shard_writer.h"

namespace bevkd::train::data::testing {

using storage::Array;

std::array<float, 9> dataset_intrinsics(const LoaderDatasetSpec& spec) {
  const auto f = static_cast<float>(spec.focal);
  return {f, 0, 0.5f * static_cast<float>(spec.image_width - 1), 0, f, 0.5f * static_cast<float>(spec.image_height - 1),
          0, 0, 1};
}

std::vector<std::uint8_t> textured_image(int width, int height, std::uint64_t seed,
                                         const std::vector<std::array<double, 2>>& centres, int radius) {
  Rng rng(seed);
  const double fx = rng.uniform(0.25, 0.4), fy = rng.uniform(0.25, 0.4), ph = rng.uniform(0, 6.28);
  const double tint[3] = {rng.uniform(0.7, 1.0), rng.uniform(0.7, 1.0), rng.uniform(0.7, 1.0)};
  std::vector<std::uint8_t> rgb(static_cast<std::size_t>(width) * static_cast<std::size_t>(height) * 3);
  for (int y = 0; y < height; ++y)
    for (int x = 0; x < width; ++x) {
      const double v = 80 + 25 * std::sin(fx * x + ph) + 25 * std::cos(fy * y + 0.5 * ph);
      for (int c = 0; c < 3; ++c)
        rgb[(static_cast<std::size_t>(y) * width + x) * 3 + c] = static_cast<std::uint8_t>(std::lround(v * tint[c]));
    }
  for (const auto& p : centres) {
    const int cx = static_cast<int>(std::lround(p[0])), cy = static_cast<int>(std::lround(p[1]));
    for (int y = cy - radius; y <= cy + radius; ++y)
      for (int x = cx - radius; x <= cx + radius; ++x) {
        if (x < 0 || y < 0 || x >= width || y >= height) continue;
        if ((x - p[0]) * (x - p[0]) + (y - p[1]) * (y - p[1]) > radius * radius) continue;
        for (int c = 0; c < 3; ++c) rgb[(static_cast<std::size_t>(y) * width + x) * 3 + c] = 255;
      }
  }
  return rgb;
}

storage::Sample make_loader_sample(const LoaderDatasetSpec& spec, int shard, std::int64_t index, SampleTruth* truth) {
  const std::int64_t global = 1000 * shard + index;
  storage::Sample s = storage::testing::make_sample(spec.shard, global);
  const std::array<float, 9> K = dataset_intrinsics(spec);
  std::vector<float> k_all;
  for (int c = 0; c < 6; ++c) k_all.insert(k_all.end(), K.begin(), K.end());
  s.set("cams/intrinsics", Array::of<float>({6, 3, 3}, k_all));
  const Array& T = s.get("cams/cam2ego");
  const std::int64_t num_gt = s.get("gt/boxes").dim(0);

  Rng rng(mix_keys(spec.shard.seed, static_cast<std::uint64_t>(global), 0xDE97));
  SampleTruth t;
  t.shard = shard;
  t.index = index;
  std::vector<float> uvd;
  std::vector<std::int32_t> ids;
  std::vector<std::int64_t> seg;
  // Points on a jittered grid of cells, one per cell: ~ (W / cols) px apart.
  const int cols = std::max(1, static_cast<int>(std::lround(std::sqrt(spec.points_per_camera * 16.0 / 9.0))));
  const int rows = std::max(1, (spec.points_per_camera + cols - 1) / cols);
  for (int c = 0; c < 6; ++c) {
    CameraPoints cam;
    const float* tm = T.data<float>() + 16 * c;
    for (int k = 0; k < spec.points_per_camera; ++k) {
      const double cw = static_cast<double>(spec.image_width) / cols, ch = static_cast<double>(spec.image_height) / rows;
      const double u = (k % cols + rng.uniform(0.3, 0.7)) * cw - 0.5, v = (k / cols + rng.uniform(0.3, 0.7)) * ch - 0.5;
      // A few points nearer than BEVDepth's 2 m and beyond 58 m.
      const double d = k % 11 == 5 ? rng.uniform(1.0, 1.9) : k % 13 == 7 ? rng.uniform(60, 70) : rng.uniform(3, 50);
      const double q[3] = {(u - K[2]) / K[0] * d, (v - K[5]) / K[4] * d, d};
      std::array<double, 3> p;
      for (int r = 0; r < 3; ++r) p[r] = tm[4 * r] * q[0] + tm[4 * r + 1] * q[1] + tm[4 * r + 2] * q[2] + tm[4 * r + 3];
      cam.ego.push_back(p);
      // The stored projection, recomputed from the ego point as precompute would.
      double qc[3];
      for (int r = 0; r < 3; ++r)
        qc[r] = tm[r] * (p[0] - tm[3]) + tm[4 + r] * (p[1] - tm[7]) + tm[8 + r] * (p[2] - tm[11]);
      cam.uvd.push_back(static_cast<float>(K[0] * qc[0] / qc[2] + K[2]));
      cam.uvd.push_back(static_cast<float>(K[4] * qc[1] / qc[2] + K[5]));
      cam.uvd.push_back(static_cast<float>(qc[2]));
      cam.box_id.push_back(num_gt > 0 && rng.chance(0.5) ? static_cast<std::int32_t>(rng.below(num_gt)) : -1);
    }
    uvd.insert(uvd.end(), cam.uvd.begin(), cam.uvd.end());
    ids.insert(ids.end(), cam.box_id.begin(), cam.box_id.end());
    seg.push_back(spec.points_per_camera);
    t.cameras.push_back(std::move(cam));
  }
  Array a = Array::of<float>({static_cast<std::int64_t>(uvd.size() / 3), 3}, uvd);
  a.segments = seg;
  s.set("depth/uvd", std::move(a));
  Array b = Array::of<std::int32_t>({static_cast<std::int64_t>(ids.size())}, ids);
  b.segments = seg;
  s.set("depth/box_id", std::move(b));
  if (truth != nullptr) *truth = std::move(t);
  return s;
}

LoaderDataset make_loader_dataset(const LoaderDatasetSpec& spec, const std::string& dir) {
  LoaderDataset out;
  out.dataroot = dir + "/dataroot";
  const std::string shards = dir + "/shards";
  make_dirs(out.dataroot);
  make_dirs(shards);
  storage::ShardMeta meta = storage::testing::make_meta(spec.shard);
  meta.config["views"] = spec.views_config;
  storage::Manifest manifest(meta);
  manifest.set_schema_version(spec.shard.schema_version);
  storage::WriterOptions wo;
  wo.schema_version = spec.shard.schema_version;  // the fixture's version (older minors for compatibility tests)
  for (int sh = 0; sh < static_cast<int>(spec.shard_sizes.size()); ++sh) {
    storage::ShardWriter w(cat(shards, "/", spec.shard.split, "/shard-0000", sh, ".h5"), meta, wo);
    for (std::int64_t i = 0; i < spec.shard_sizes[static_cast<std::size_t>(sh)]; ++i) {
      SampleTruth truth;
      storage::Sample s = make_loader_sample(spec, sh, i, &truth);
      const std::string token = s.get("sample_token").string_at(0);
      const Array& paths = s.get("cams/image_path");
      for (int c = 0; c < 6; ++c) {
        const std::string file = out.dataroot + "/" + paths.string_at(c);
        make_dirs(std::filesystem::path(file).parent_path().string());
        std::vector<std::array<double, 2>> centres;
        const auto& uvd = truth.cameras[static_cast<std::size_t>(c)].uvd;
        if (spec.marker_radius > 0)
          for (std::size_t k = 0; k + 2 < uvd.size(); k += 3) centres.push_back({uvd[k], uvd[k + 1]});
        const auto rgb = textured_image(spec.image_width, spec.image_height,
                                        mix_keys(key_of(token), static_cast<std::uint64_t>(c)), centres,
                                        spec.marker_radius);
        write_file_atomic(file, core::nusc::encode_jpeg(rgb.data(), spec.image_width, spec.image_height,
                                                        spec.jpeg_quality));
        truth.image_files.push_back(file);
      }
      if (spec.customize) spec.customize(s, sh, i);
      w.append(std::move(s));
      out.samples[token] = std::move(truth);
    }
    manifest.add(w.close(), shards);
  }
  out.manifest_path = shards + "/" + storage::Manifest::kFileName;
  manifest.save(out.manifest_path);
  return out;
}

}  // namespace bevkd::train::data::testing

// The files are standard HDF5: h5py + hdf5plugin read exactly the values bevkd wrote.
#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

#include "storage/shard_layout.h"
#include "tests/storage/test_util.h"

namespace bevkd::storage {
namespace {

using nlohmann::json;

std::string npy_descr(const FieldLayout& f) {
  if (f.kind == FieldKind::kString) return cat("|S", f.itemsize);
  switch (f.dtype) {
    case DType::kUInt8: return "|u1";
    case DType::kInt8: return "|i1";
    case DType::kInt16: return "<i2";
    case DType::kInt32: return "<i4";
    case DType::kInt64: return "<i8";
    case DType::kUInt64: return "<u8";
    case DType::kFloat16: return "<f2";
    case DType::kFloat32: return "<f4";
    case DType::kFloat64: return "<f8";
    case DType::kString: break;
  }
  return "?";
}

// NumPy .npy version 1.0.
void write_npy(const std::string& path, const std::string& descr, const std::vector<std::int64_t>& shape,
               const std::string& bytes) {
  std::string dims;
  for (std::int64_t d : shape) dims += cat(d, ",");
  if (shape.size() > 1) dims.pop_back();
  std::string header = cat("{'descr': '", descr, "', 'fortran_order': False, 'shape': (", dims, "), }");
  while ((10 + header.size() + 1) % 64 != 0) header += ' ';
  header += '\n';
  std::ofstream out(path, std::ios::binary);
  out.write("\x93NUMPY\x01\x00", 8);
  const std::uint16_t n = static_cast<std::uint16_t>(header.size());
  out.write(reinterpret_cast<const char*>(&n), 2);
  out << header << bytes;
}

TEST(Interop, H5pyWithHdf5pluginReadsTheSameValues) {
  testing::TempDir dir;
  testing::FixtureSpec spec = testing::small_spec();
  spec.depth_points = 3000;  // depth/uvd spans two ragged chunks
  const std::int64_t n = 6;
  const std::string shard = dir / "shard.h5";
  WriterOptions shuffled;
  shuffled.codec.shuffle = true;  // HDF5 itself must undo the byte shuffle
  testing::write_fixture_shard(shard, spec, n, shuffled);

  // The expected content of every dataset, assembled from the fixture (not from bevkd's reader).
  const ShardLayout layout = ShardLayout::make(testing::make_meta(spec));
  std::vector<Sample> samples;
  for (std::int64_t i = 0; i < n; ++i) samples.push_back(testing::make_sample(spec, i));
  json index{{"datasets", json::object()}, {"shuffled", json::object()}};
  int file_no = 0;
  for (const FieldLayout& f : layout.fields()) {
    std::string bytes;
    std::int64_t rows = 0;
    for (const Sample& s : samples) {
      const Array& a = s.get(f.name);
      bytes.append(reinterpret_cast<const char*>(a.raw()), a.nbytes());
      rows += f.kind == FieldKind::kRagged ? a.dim(0) : 1;
    }
    const std::string npy = cat("d", file_no++, ".npy");
    write_npy(dir / npy, npy_descr(f), f.dataset_shape(rows), bytes);
    index["datasets"][f.name] = npy;
    index["schema_version"] = Schema::current().version().str();
    index["config"] = testing::make_meta(spec).config;
    index["shuffled"][f.name] = f.shuffled(true);
  }
  for (const GroupLayout& g : layout.groups()) {
    std::vector<std::int64_t> off{0};
    for (const Sample& s : samples)
      for (std::int64_t k : s.get(layout.fields()[g.fields.front()].name).segments) off.push_back(off.back() + k);
    const std::string npy = cat("d", file_no++, ".npy");
    write_npy(dir / npy, "<i8", {static_cast<std::int64_t>(off.size())},
              std::string(reinterpret_cast<const char*>(off.data()), off.size() * 8));
    index["datasets"][g.offsets] = npy;
  }
  std::ofstream(dir / "index.json") << index.dump();

  // Only bevkd's plugin on the path: Debian 12 ships no zstd HDF5 plugin, and the default plugin
  // directory holds a liblzf_filter.so that fails to load (undefined symbol H5E_CALLBACK_g).
  const std::string plugin_path = cat("HDF5_PLUGIN_PATH=", BEVKD_BINARY_DIR, "/hdf5-plugins ");
  auto res = testing::run_command(cat(plugin_path, BEVKD_PYTHON, " ", BEVKD_SOURCE_DIR,
                                      "/tests/storage/h5py_interop.py ", shard, " ", dir.path()));
  EXPECT_EQ(res.status, 0) << res.output;
  EXPECT_NE(res.output.find("interop OK: " + std::to_string(index["datasets"].size()) + " datasets"),
            std::string::npos)
      << res.output;

  // h5dump (hdf5-tools) through the same plugin.
  res = testing::run_command(cat(plugin_path, "h5dump -d /gt/labels -y -w 0 ", shard));
  ASSERT_EQ(res.status, 0) << res.output;
  const std::size_t open = res.output.find("DATA {"), close = res.output.find('}', open);
  ASSERT_NE(open, std::string::npos) << res.output;
  std::vector<int> dumped;
  std::string text = res.output.substr(open + 6, close - open - 6);
  for (char& ch : text)
    if (ch == ',') ch = ' ';
  std::istringstream in(text);
  for (int v; in >> v;) dumped.push_back(v);
  std::vector<int> want;
  for (const Sample& s : samples)
    for (std::int64_t k = 0; k < s.get("gt/labels").numel(); ++k) want.push_back(s.get("gt/labels").data<std::int16_t>()[k]);
  EXPECT_EQ(dumped, want);
}

}  // namespace
}  // namespace bevkd::storage

#include "tests/storage/test_util.h"

#include <hdf5.h>

#include <array>
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sys/wait.h>
#include <unistd.h>

#include "base/error.h"

namespace bevkd::storage::testing {
namespace {

hid_t open_rw(const std::string& path) {
  H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr);
  const hid_t f = H5Fopen(path.c_str(), H5F_ACC_RDWR, H5P_DEFAULT);
  BEVKD_CHECK(f >= 0, "test: cannot open ", path, " for writing");
  return f;
}
}  // namespace

ShardInfo write_fixture_shard(const std::string& path, const FixtureSpec& spec, std::int64_t n, WriterOptions opts) {
  ShardWriter w(path, make_meta(spec), opts);
  for (std::int64_t i = 0; i < n; ++i) w.append(make_sample(spec, i));
  return w.close();
}

void flip_bytes(const std::string& path, std::uint64_t offset, int count) {
  std::fstream f(path, std::ios::in | std::ios::out | std::ios::binary);
  BEVKD_CHECK(f.good(), "test: cannot open ", path);
  for (int k = 0; k < count; ++k) {
    f.seekg(static_cast<std::streamoff>(offset + k));
    char c;
    f.get(c);
    f.seekp(static_cast<std::streamoff>(offset + k));
    f.put(static_cast<char>(c ^ 0xFF));
  }
}

ChunkLocation locate_chunk(const std::string& path, const std::string& dataset, const std::vector<std::uint64_t>& coord) {
  H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr);
  const hid_t f = H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT);
  BEVKD_CHECK(f >= 0, "test: cannot open ", path);
  const hid_t d = H5Dopen2(f, dataset.c_str(), H5P_DEFAULT);
  std::vector<hsize_t> off(coord.begin(), coord.end());
  unsigned mask = 0;
  haddr_t addr = 0;
  hsize_t size = 0;
  const herr_t rc = H5Dget_chunk_info_by_coord(d, off.data(), &mask, &addr, &size);
  H5Dclose(d);
  H5Fclose(f);
  BEVKD_CHECK(rc >= 0, "test: no chunk info for ", dataset);
  return ChunkLocation{addr, size};
}

void set_string_attribute(const std::string& path, const std::string& name, const std::string& value) {
  const hid_t f = open_rw(path);
  if (H5Aexists(f, name.c_str()) > 0) H5Adelete(f, name.c_str());
  const hid_t t = H5Tcopy(H5T_C_S1);
  H5Tset_size(t, H5T_VARIABLE);
  const hid_t s = H5Screate(H5S_SCALAR);
  const hid_t a = H5Acreate2(f, name.c_str(), t, s, H5P_DEFAULT, H5P_DEFAULT);
  const char* p = value.c_str();
  H5Awrite(a, t, &p);
  H5Aclose(a);
  H5Sclose(s);
  H5Tclose(t);
  H5Fclose(f);
}

void delete_attribute(const std::string& path, const std::string& name) {
  const hid_t f = open_rw(path);
  H5Adelete(f, name.c_str());
  H5Fclose(f);
}

void delete_dataset(const std::string& path, const std::string& dataset) {
  const hid_t f = open_rw(path);
  BEVKD_CHECK(H5Ldelete(f, dataset.c_str(), H5P_DEFAULT) >= 0, "test: cannot delete ", dataset);
  H5Fclose(f);
}

void create_dataset(const std::string& path, const std::string& dataset, const std::string& dtype,
                    const std::vector<std::uint64_t>& shape) {
  const hid_t f = open_rw(path);
  if (H5Lexists(f, dataset.c_str(), H5P_DEFAULT) > 0) H5Ldelete(f, dataset.c_str(), H5P_DEFAULT);
  hid_t t;
  if (dtype == "int32") t = H5Tcopy(H5T_STD_I32LE);
  else if (dtype == "int16") t = H5Tcopy(H5T_STD_I16LE);
  else if (dtype == "int64") t = H5Tcopy(H5T_STD_I64LE);
  else if (dtype == "float32") t = H5Tcopy(H5T_IEEE_F32LE);
  else if (dtype == "float64") t = H5Tcopy(H5T_IEEE_F64LE);
  else BEVKD_FAIL("test: unsupported dtype ", dtype);
  std::vector<hsize_t> dims(shape.begin(), shape.end());
  std::vector<hsize_t> chunk = dims;
  chunk[0] = 1;
  for (auto& c : chunk) c = std::max<hsize_t>(c, 1);
  const hid_t s = H5Screate_simple(static_cast<int>(dims.size()), dims.data(), nullptr);
  const hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE);
  H5Pset_chunk(dcpl, static_cast<int>(chunk.size()), chunk.data());
  const hid_t lcpl = H5Pcreate(H5P_LINK_CREATE);
  H5Pset_create_intermediate_group(lcpl, 1);
  const hid_t d = H5Dcreate2(f, dataset.c_str(), t, s, lcpl, dcpl, H5P_DEFAULT);
  BEVKD_CHECK(d >= 0, "test: cannot create ", dataset);
  H5Dclose(d);
  H5Pclose(lcpl);
  H5Pclose(dcpl);
  H5Sclose(s);
  H5Tclose(t);
  H5Fclose(f);
}

}  // namespace bevkd::storage::testing

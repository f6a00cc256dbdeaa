// Damaged shards never crash a reader (schemas/SHARD_FORMAT.md "Integrity"): the 1.2 layout puts
// every metadata byte under an HDF5 checksum, the reader lists groups without HDF5's link table
// (the libhdf5 1.10.8 abort), reads a 1.0/1.1 shard's global-heap attributes in a child process,
// and checks the manifest's file hash before HDF5 sees a file. The damaged inputs are made here,
// from fixture shards, by the mutations that crashed or hung the reader before (found by
// tests/fuzz/shard_fuzz.cpp).
#include <gtest/gtest.h>

#include <hdf5.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <thread>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "base/fs.h"
#include "storage/codec.h"
#include "storage/manifest.h"
#include "storage/shard_reader.h"
#include "storage/shard_stream.h"
#include "storage/shard_writer.h"
#include "tests/storage/test_util.h"

namespace bevkd::storage {
namespace {

using testing::TempDir;
namespace fs = std::filesystem;

const SchemaVersion k10{1, 0}, k11{1, 1};

ShardInfo write_version(const std::string& path, SchemaVersion v, std::int64_t n = 4) {
  WriterOptions o;
  o.schema_version = v;
  o.created_utc = "2024-01-01T00:00:00Z";
  return testing::write_fixture_shard(path, testing::small_spec(v), n, o);
}

std::string bytes_of(const std::string& path) { return read_file(path); }
void put_bytes(const std::string& path, const std::string& b) {
  std::ofstream(path, std::ios::binary | std::ios::trunc).write(b.data(), static_cast<std::streamsize>(b.size()));
}

// Offsets of every occurrence of a 4-byte HDF5 structure signature ("FHDB", "GCOL", ...).
std::vector<std::size_t> find_all(const std::string& bytes, const std::string& sig) {
  std::vector<std::size_t> out;
  for (std::size_t p = bytes.find(sig); p != std::string::npos; p = bytes.find(sig, p + 1)) out.push_back(p);
  return out;
}

// Byte ranges of raw dataset storage (chunks, contiguous data); the rest of the file is metadata.
std::vector<std::pair<std::uint64_t, std::uint64_t>> raw_ranges(const std::string& path) {
  std::vector<std::pair<std::uint64_t, std::uint64_t>> out;
  H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr);
  const hid_t f = H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT);
  std::vector<std::string> names;
  H5Ovisit2(
      f, H5_INDEX_NAME, H5_ITER_NATIVE,
      [](hid_t, const char* name, const H5O_info_t* info, void* data) -> herr_t {
        if (info->type == H5O_TYPE_DATASET) static_cast<std::vector<std::string>*>(data)->push_back(name);
        return 0;
      },
      &names, H5O_INFO_BASIC);
  for (const auto& n : names) {
    const hid_t d = H5Dopen2(f, n.c_str(), H5P_DEFAULT);
    const hid_t dcpl = H5Dget_create_plist(d);
    if (H5Pget_layout(dcpl) == H5D_CHUNKED) {
      const hid_t space = H5Dget_space(d);
      hsize_t count = 0;
      H5Dget_num_chunks(d, space, &count);
      for (hsize_t k = 0; k < count; ++k) {
        hsize_t off[32];
        unsigned mask = 0;
        haddr_t addr = 0;
        hsize_t size = 0;
        if (H5Dget_chunk_info(d, space, k, off, &mask, &addr, &size) >= 0) out.emplace_back(addr, addr + size);
      }
      H5Sclose(space);
    } else {
      out.emplace_back(H5Dget_offset(d), H5Dget_offset(d) + H5Dget_storage_size(d));
    }
    H5Pclose(dcpl);
    H5Dclose(d);
  }
  H5Fclose(f);
  return out;
}

// Runs `f` in a forked child; returns its wait status (for "does plain HDF5 crash on this?").
template <typename F>
int in_child(F f) {
  const pid_t pid = fork();
  if (pid == 0) {
    alarm(30);
    std::_Exit(f());
  }
  int status = 0;
  waitpid(pid, &status, 0);
  return status;
}

bool libhdf5_is_1_10() {
  unsigned maj = 0, min = 0, rel = 0;
  H5get_libversion(&maj, &min, &rel);
  return maj == 1 && min == 10;
}

// What the old reader did to read a string attribute of a 1.0 shard: H5Aread from the global heap.
int read_schema_name(const std::string& path) {
  H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr);
  const hid_t f = H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT);
  if (f < 0) return 1;
  const hid_t a = H5Aopen(f, "schema_name", H5P_DEFAULT);
  const hid_t t = H5Tcopy(H5T_C_S1);
  H5Tset_size(t, H5T_VARIABLE);
  H5Tset_cset(t, H5T_CSET_UTF8);
  char* p = nullptr;
  H5Aread(a, t, &p);
  return 0;
}

// What the old reader did to list a shard's datasets: H5Lvisit in name order.
int visit_links_by_name(const std::string& path) {
  H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr);
  const hid_t f = H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT);
  if (f < 0) return 1;
  H5Lvisit(
      f, H5_INDEX_NAME, H5_ITER_INC, [](hid_t, const char*, const H5L_info_t*, void*) -> herr_t { return 0; },
      nullptr);
  H5Fclose(f);
  return 0;
}

// ---- the 1.2 layout -----------------------------------------------------------------------

TEST(Integrity, CurrentLayoutKeepsEveryMetadataByteUnderAnHdf5Checksum) {
  TempDir dir;
  const std::string now = dir / "v12.h5", old = dir / "v10.h5";
  testing::write_fixture_shard(now, testing::small_spec(), 4);
  write_version(old, k10);

  auto inspect = [](const std::string& path, int* dense_groups, int* vlen_attrs, std::uint64_t* attr_heap) {
    H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr);
    const hid_t f = H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT);
    *dense_groups = 0;
    std::vector<std::string> groups{"/"};
    H5Ovisit2(
        f, H5_INDEX_NAME, H5_ITER_NATIVE,
        [](hid_t, const char* name, const H5O_info_t* info, void* data) -> herr_t {
          if (info->type == H5O_TYPE_GROUP) static_cast<std::vector<std::string>*>(data)->push_back(name);
          return 0;
        },
        &groups, H5O_INFO_BASIC);
    for (const auto& g : groups) {
      H5G_info_t gi;
      H5Gget_info_by_name(f, g.c_str(), &gi, H5P_DEFAULT);
      if (gi.storage_type != H5G_STORAGE_TYPE_COMPACT) ++*dense_groups;
    }
    H5O_info_t oi;
    H5Oget_info2(f, &oi, H5O_INFO_META_SIZE);
    *attr_heap = oi.meta_size.attr.heap_size + oi.meta_size.attr.index_size;
    *vlen_attrs = 0;
    for (hsize_t i = 0; i < 64; ++i) {
      const hid_t a = H5Aopen_by_idx(f, ".", H5_INDEX_NAME, H5_ITER_NATIVE, i, H5P_DEFAULT, H5P_DEFAULT);
      if (a < 0) break;
      const hid_t t = H5Aget_type(a);
      if (H5Tget_class(t) == H5T_STRING && H5Tis_variable_str(t) > 0) ++*vlen_attrs;
      H5Tclose(t);
      H5Aclose(a);
    }
    H5Fclose(f);
  };
  int dense = -1, vlen = -1;
  std::uint64_t heap = 1;
  inspect(now, &dense, &vlen, &heap);
  EXPECT_EQ(dense, 0) << "schema 1.2: every group's links in its object header";
  EXPECT_EQ(vlen, 0) << "schema 1.2: fixed-length string attributes";
  EXPECT_EQ(heap, 0u) << "schema 1.2: the root's attributes in its object header";
  EXPECT_TRUE(find_all(bytes_of(now), "GCOL").empty()) << "no HDF5 global heap in a 1.2 shard";
  EXPECT_TRUE(find_all(bytes_of(now), "FHDB").empty()) << "no fractal heap in a 1.2 shard";

  // The 1.0 writer's layout, which this build still writes for compatibility tests.
  inspect(old, &dense, &vlen, &heap);
  EXPECT_GT(dense, 0);
  EXPECT_GT(vlen, 0);
  EXPECT_GT(heap, 0u);
  EXPECT_FALSE(find_all(bytes_of(old), "GCOL").empty());
}

TEST(Integrity, NoMetadataByteFlipOfA12ShardGoesUnnoticed) {
  // Flip metadata bytes one at a time (an even spread of ~800 of them): the reader either
  // refuses the file naming it, or reads exactly the written samples (the byte was unused). A
  // flip that opens and changes data or the header would be silent corruption.
  TempDir dir;
  const std::string path = dir / "shard.h5";
  const testing::FixtureSpec spec = testing::small_spec();
  const std::int64_t n = 3;
  testing::write_fixture_shard(path, spec, n);
  const std::string original = bytes_of(path);
  std::vector<char> is_raw(original.size(), 0);
  for (const auto& [a, b] : raw_ranges(path))
    for (std::uint64_t k = a; k < b && k < original.size(); ++k) is_raw[k] = 1;
  std::vector<std::size_t> meta;
  for (std::size_t k = 0; k < original.size(); ++k)
    if (!is_raw[k]) meta.push_back(k);
  ASSERT_GT(meta.size(), 5000u);
  std::vector<Sample> want;
  for (std::int64_t i = 0; i < n; ++i) want.push_back(testing::make_sample(spec, i));
  const ShardReader good(path);
  const std::string flipped = dir / "flipped.h5";
  int refused = 0, unused = 0;
  const std::size_t step = meta.size() / 800 + 1;
  for (std::size_t m = 0; m < meta.size(); m += step) {
    std::string b = original;
    b[meta[m]] = static_cast<char>(b[meta[m]] ^ 0x5A);
    put_bytes(flipped, b);
    try {
      const ShardReader r(flipped);
      EXPECT_EQ(r.header().meta.identity_json(), good.header().meta.identity_json()) << "byte " << meta[m];
      EXPECT_EQ(r.header().created_utc, good.header().created_utc) << "byte " << meta[m];
      for (std::int64_t i = 0; i < n; ++i) {
        ReadOptions v;
        v.verify = true;
        const Sample s = r.read(i, {}, v);
        for (const auto& [name, a] : want[i].fields())
          ASSERT_TRUE(s.get(name).same_as(a)) << "flipping metadata byte " << meta[m] << " silently changed " << name;
      }
      ++unused;
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(flipped), std::string::npos) << e.what();
      ++refused;
    }
  }
  EXPECT_GT(refused, 10 * unused) << refused << " refused, " << unused << " unused bytes";
}

// ---- crashes of the old reader, regenerated ---------------------------------------------

TEST(Integrity, DamagedDenseLinkStorageIsRefusedNotAnAbortInLibhdf5) {
  // A 1.0 shard keeps the links of its larger groups in HDF5's dense storage: a fractal heap
  // ("FHDB" direct blocks) indexed by a v2 B-tree ("BTLF" leaves), both checksummed. Damage to
  // one of them stops HDF5's link table halfway; listing the links by name (H5Lvisit, what
  // the reader did) then frees the table's uninitialised entries: free(): invalid pointer.
  TempDir dir;
  const std::string path = dir / "v10.h5";
  write_version(path, k10);
  const std::string original = bytes_of(path);
  std::vector<std::size_t> blocks = find_all(original, "FHDB");
  for (std::size_t p : find_all(original, "BTLF")) blocks.push_back(p);
  ASSERT_GE(blocks.size(), 2u);
  const std::string bad = dir / "bad.h5";
  int plain_hdf5_crashed = 0;
  for (std::size_t p : blocks)
    for (std::size_t off : {std::size_t{20}, std::size_t{40}}) {
      std::string b = original;
      for (std::size_t k = 0; k < 8; ++k) b[p + off + k] = static_cast<char>(0xA5 + 13 * k);
      put_bytes(bad, b);
      const int st = in_child([&] { return visit_links_by_name(bad); });
      if (WIFSIGNALED(st)) ++plain_hdf5_crashed;
      EXPECT_ERROR_WITH(ShardReader r(bad), "shard " + bad, "corrupt");
    }
  // The inputs still trigger the libhdf5 bug they were made for (1.10.8 frees garbage most of the
  // time; which entries are garbage depends on the heap, so not every time).
  std::cout << "[ note ] plain H5Lvisit crashed on " << plain_hdf5_crashed << " of " << 2 * blocks.size()
            << " damaged dense-storage blocks\n";
  if (libhdf5_is_1_10()) {
    EXPECT_GT(plain_hdf5_crashed, 0);
  }
}

TEST(Integrity, DamagedGlobalHeapOfA10ShardIsRefusedNotACrashOrAHang) {
  // A 1.0/1.1 shard keeps its string attributes in HDF5's global heap ("GCOL"), which has no
  // checksum. A wrong object size makes libhdf5 1.10 read out of bounds (SIGSEGV in
  // H5HG_read) or loop forever in the heap's parser; the reader reads these attributes in a
  // child process with a time limit and reports the file as corrupt.
  TempDir dir;
  const std::string path = dir / "v10.h5";
  write_version(path, k10);
  const std::string original = bytes_of(path);
  const std::vector<std::size_t> heaps = find_all(original, "GCOL");
  ASSERT_FALSE(heaps.empty());
  const std::size_t g = heaps.front();
  // GCOL layout: signature(4) version(1) reserved(3) collection size(8), then objects: index(2)
  // refcount(2) reserved(4) size(8) data. Object 1's size field is at +24; setting its 4th byte
  // to 35 (what the fuzzer found) makes it ~587 MB: HDF5 copies that much out of a 4 KiB heap.
  const std::string bad = dir / "bad.h5";
  {
    std::string b = original;
    b[g + 27] = 35;
    put_bytes(bad, b);
    const int st = in_child([&] { return read_schema_name(bad); });
    if (libhdf5_is_1_10()) {
      EXPECT_TRUE(WIFSIGNALED(st)) << "plain H5Aread no longer crashes on this input";
    }
    EXPECT_ERROR_WITH(ShardReader r(bad), "shard " + bad, "the file is corrupt", "variable-length string attributes",
                      "child process failed", "global heap");
  }
  {
    std::string b = original;
    std::memset(&b[g + 16], 0, 16);  // object 1: index 0, size 0 — the parser never moves on
    put_bytes(bad, b);
    OpenOptions quick;
    quick.legacy_attribute_timeout_s = 2;
    EXPECT_ERROR_WITH(ShardReader r(bad, quick), "shard " + bad, "the file is corrupt", "child process failed");
  }
  // The undamaged file reads the same attributes through the child.
  const ShardReader r(path);
  EXPECT_FALSE(r.attributes_checksummed());
  EXPECT_EQ(r.header().meta.teacher, testing::make_meta(testing::small_spec(k10)).teacher);
  // Reopening reuses what the child read, but only for the unchanged file: damage done later
  // (same size, new modification time) is read by a new child and reported.
  EXPECT_NO_THROW(ShardReader again(path));
  std::this_thread::sleep_for(std::chrono::milliseconds(50));  // a later modification time (coarse clocks)
  std::string b = original;
  b[g + 27] = 35;
  put_bytes(path, b);
  EXPECT_ERROR_WITH(ShardReader damaged(path), "shard " + path, "child process failed");
}

TEST(Integrity, ManifestSizeAndHashAreCheckedBeforeHdf5OpensTheFile) {
  TempDir dir;
  Manifest m(testing::make_meta(testing::small_spec()));
  m.add(testing::write_fixture_shard(dir / "train/shard-00000.h5", testing::small_spec(), 3), dir.path());
  const ManifestShard entry = m.shards()[0];
  const std::string path = dir / entry.path;
  m.set_dir(dir.path());
  EXPECT_NO_THROW(ShardReader(path, m.open_options(entry, true)));
  const testing::ChunkLocation c = testing::locate_chunk(path, "timestamp", {1});
  testing::flip_bytes(path, c.address, 1);  // stored raw: HDF5 and zstd cannot notice
  EXPECT_NO_THROW(ShardReader(path, m.open_options(entry, false)));
  EXPECT_ERROR_WITH(ShardReader(path, m.open_options(entry, true)), "shard " + path, "the file's XXH64 is",
                    "the manifest says " + hex64(entry.xxh64), "the file is corrupt");
  fs::resize_file(path, entry.bytes - 10);
  EXPECT_ERROR_WITH(ShardReader(path, m.open_options(entry, false)), "shard " + path,
                    cat("the file has ", entry.bytes - 10, " bytes, the manifest says ", entry.bytes));
}

// ---- every 1.x stays readable -----------------------------------------------------------

TEST(Compat, ShardsOfEveryMinorVersionReadBack) {
  TempDir dir;
  for (const SchemaVersion v : writable_schema_versions()) {
    SCOPED_TRACE(v.str());
    const std::string path = dir / cat("v", v.str(), ".h5");
    const testing::FixtureSpec spec = testing::small_spec(v);
    write_version(path, v, 4);
    const ShardReader r(path);
    EXPECT_EQ(r.header().version, v);
    EXPECT_EQ(r.attributes_checksummed(), Schema::current().compact_layout_since() <= v);
    EXPECT_EQ(r.header().meta.fd3d_points, v == k10 ? 4 : 0);
    EXPECT_EQ(r.layout().find("teacher/class_probs") >= 0, k11 <= v);
    EXPECT_EQ(r.layout().find("fd3d/sampling_points") >= 0, v == k10);
    for (std::int64_t i = 0; i < 4; ++i) {
      const Sample want = testing::make_sample(spec, i);
      ReadOptions verify;
      verify.verify = true;
      const Sample got = r.read(i, {}, verify);
      ASSERT_EQ(got.size(), want.size());
      for (const auto& [name, a] : want.fields()) EXPECT_TRUE(got.get(name).same_as(a)) << name;
    }
  }
}

TEST(Compat, TheWriterRefusesWhatItsVersionDoesNotHave) {
  TempDir dir;
  // The fd3d group exists in 1.0 only.
  EXPECT_ERROR_WITH(ShardWriter(dir / "a.h5", testing::make_meta(testing::small_spec(k10))), "fd3d_points is 4",
                    "schema " + Schema::current().version().str() + " has no fd3d group", "1.0 only");
  WriterOptions o;
  o.schema_version = SchemaVersion{1, 9};
  EXPECT_ERROR_WITH(ShardWriter(dir / "b.h5", testing::make_meta(testing::small_spec()), o),
                    "cannot write schema version 1.9", "this build writes 1.0, 1.1, 1.2");
  // A sample without class_probs (what a 1.0 producer made) does not fit a 1.2 shard.
  ShardWriter w(dir / "c.h5", testing::make_meta(testing::small_spec()));
  Sample old = testing::make_sample(testing::small_spec(), 0);
  old.take("teacher/class_probs");
  EXPECT_ERROR_WITH(w.append(std::move(old)), "sample 0", "field teacher/class_probs is missing");
  // An attribute that would not fit the checksummed object header is refused by name.
  ShardMeta big = testing::make_meta(testing::small_spec());
  big.config["notes"] = std::string(70000, 'x');
  EXPECT_ERROR_WITH(ShardWriter(dir / "d.h5", big), "attribute config has", "at most 60000");
  EXPECT_FALSE(fs::exists(dir / "d.h5.partial"));
}

TEST(Compat, ClassProbsOfA10ShardAreRefusedByNameWithTheVersionThatWritesThem) {
  TempDir dir;
  const std::string path = dir / "train/shard-00000.h5";
  Manifest m(testing::make_meta(testing::small_spec(k10)));
  const ShardInfo info = write_version(path, k10, 3);
  const ShardReader r(path);
  EXPECT_NO_THROW(r.read(0, {"teacher/*"}));  // a 1.0 shard reads fine
  const std::vector<std::string> parts{"shard " + path, "field teacher/class_probs",
                                       "not in shards of schema version 1.0", "came with schema 1.1",
                                       "bevkd-precompute run writes it"};
  try {
    r.read_field(0, "teacher/class_probs");
    ADD_FAILURE() << "read_field of class_probs on a 1.0 shard";
  } catch (const Error& e) {
    for (const auto& p : parts) EXPECT_NE(std::string(e.what()).find(p), std::string::npos) << e.what();
  }
  EXPECT_ERROR_WITH(r.read(0, {"gt/*", "teacher/class_probs"}), "field teacher/class_probs", "schema 1.1");
  EXPECT_ERROR_WITH(r.field_shape(0, "teacher/class_probs"), "field teacher/class_probs", "schema 1.1");
  // An unknown name is still just unknown.
  EXPECT_ERROR_WITH(r.read_field(0, "teacher/probs"), "no field \"teacher/probs\"");

  // A stream over 1.0 shards refuses the field when it is built, naming it.
  Manifest man(testing::make_meta(testing::small_spec(k10)));
  man.set_schema_version(k10);
  man.add(info, dir.path());
  man.save(dir / Manifest::kFileName);
  const Manifest loaded = Manifest::load(dir / Manifest::kFileName);
  EXPECT_EQ(loaded.schema_version(), k10);
  StreamOptions so;
  so.fields = {"teacher/class_probs"};
  EXPECT_ERROR_WITH(ShardStream(loaded, so), "ShardStream", "field teacher/class_probs", "schema version 1.0",
                    "came with schema 1.1");
  so.fields = {"teacher/*"};
  ShardStream ok(loaded, so);
  EXPECT_TRUE(ok.next().has_value());
}

TEST(Compat, StreamOverLegacyShardsWithTwoThreadsForksSafely) {
  // Opening a 1.0 shard forks a child for its attributes while the other decoding thread reads
  // chunks of another shard: the fork waits until no thread is inside HDF5.
  TempDir dir;
  Manifest m(testing::make_meta(testing::small_spec(k10)));
  m.set_schema_version(k10);
  for (int s = 0; s < 6; ++s) m.add(write_version(dir / cat("train/shard-0000", s, ".h5"), k10, 5), dir.path());
  m.set_dir(dir.path());
  StreamOptions so;
  so.num_threads = 2;
  so.block_samples = 1;
  so.max_open_shards = 1;  // reopen (and fork) often
  so.seed = 3;
  so.verify = true;
  so.check_legacy_file_hash = false;  // the child process instead of the hash (the default)
  ShardStream stream(m, so);
  int items = 0;
  while (auto it = stream.next()) {
    EXPECT_TRUE(it->sample.has("fd3d/boxes"));
    ++items;
  }
  EXPECT_EQ(items, 30);
}

}  // namespace
}  // namespace bevkd::storage

#include "storage/shard_reader.h"

#include <sys/stat.h>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <filesystem>
#include <map>
#include <mutex>
#include <set>

#include "base/error.h"
#include "base/fs.h"
#include "storage/codec.h"
#include "storage/h5.h"
#include "storage/shard_writer.h"

namespace bevkd::storage {
namespace {

std::atomic<std::uint64_t> g_next_uid{1};

bool ends_with(const std::string& s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// The expected dataset shape with its symbols: "[N=12, V=1, C_tap=384, H=128, W=128]".
std::string symbolic(const FieldLayout& f, std::int64_t n) {
  std::string s = cat("[", f.spec->shape[0].symbol, "=", n);
  for (std::size_t i = 0; i < f.item_shape.size(); ++i) {
    const SchemaDim& d = f.spec->shape[i + 1];
    s += cat(", ", d.is_symbol() ? cat(d.symbol, "=", f.item_shape[i]) : std::to_string(f.item_shape[i]));
  }
  return s + "]";
}

// A few decoded ragged chunks per thread: consecutive samples share chunks.
struct ChunkCache {
  struct Entry {
    std::uint64_t uid = 0;
    int field = -1;
    std::int64_t chunk = -1;
    std::uint64_t last_use = 0;
    std::vector<std::byte> data;
  };
  static constexpr int kEntries = 4;
  Entry entries[kEntries];
  std::uint64_t clock = 0;

  const std::vector<std::byte>* find(std::uint64_t uid, int field, std::int64_t chunk) {
    for (auto& e : entries)
      if (e.uid == uid && e.field == field && e.chunk == chunk) {
        e.last_use = ++clock;
        return &e.data;
      }
    return nullptr;
  }
  Entry& victim() {
    Entry* v = &entries[0];
    for (auto& e : entries)
      if (e.last_use < v->last_use) v = &e;
    v->uid = 0;  // invalid until filled
    v->last_use = ++clock;
    return *v;
  }
};

ChunkCache& thread_cache() {
  thread_local ChunkCache cache;
  return cache;
}

// The global-heap attribute texts of 1.0/1.1 shards read by a child process, per unchanged file
// (device, inode, size, modification time): a reopened shard (ShardStream's LRU of readers)
// forks once per process, not once per open.
struct LegacyAttributeCache {
  std::mutex mu;
  std::map<std::string, std::map<std::string, std::string, std::less<>>> texts;
};

LegacyAttributeCache& legacy_attribute_cache() {
  static LegacyAttributeCache c;
  return c;
}

std::string file_identity(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return "";
  return cat(st.st_dev, ":", st.st_ino, ":", st.st_size, ":", st.st_mtim.tv_sec, ".", st.st_mtim.tv_nsec);
}

// HDF5's error stack as the reason a read failed. In a file that opened, a failing HDF5 call
// means damage HDF5 noticed (a metadata checksum, a wrong signature, an impossible size).
std::string corrupt_because(const std::string& hdf5_errors) {
  return cat("the file is corrupt: HDF5 says: ", hdf5_errors.empty() ? std::string("(no details)") : hdf5_errors);
}

}  // namespace

struct ReaderField {
  h5::Handle dset;
  bool shuffle = false;
  std::int64_t rows = 0;         // dim 0
  std::int64_t chunk_rows = 0;   // ragged: rows per chunk in this file
  std::string filters;
  int checksum_column = -1;
};

struct ShardReader::Impl {
  std::string path;
  OpenOptions open_opts;
  std::uint64_t uid = g_next_uid++;
  h5::Handle file;
  bool hash_checked = false;  // the whole file matched the manifest's XXH64 before HDF5 opened it
  // Variable-length string attributes (schema 1.0/1.1: HDF5's global heap), read ahead of
  // read_header() — in a child process unless the file's hash was checked. Key: attribute
  // name, or "<dataset>@<attribute>".
  std::map<std::string, std::string, std::less<>> vlen_values;
  std::vector<std::string> vlen_names;
  ShardHeader header;
  ShardLayout layout;
  std::vector<ReaderField> fields;
  std::vector<std::vector<std::int64_t>> offsets;  // per group
  std::vector<std::uint64_t> checksums;
  std::int64_t checksum_columns = 0;
  std::vector<std::string> ignored;

  std::string where() const { return cat("shard ", path); }
  std::string where(std::int64_t i, const std::string& field) const {
    return cat("shard ", path, ": dataset ", field, ", sample ", i);
  }

  void open();                 // check_file + open_file + read_vlen_attributes + load
  void check_file();
  void open_file();            // under a SerialGuard
  void find_vlen_attributes();  // under a SerialGuard
  void read_vlen_attributes();  // without a SerialGuard (it may fork)
  void load();                 // under a SerialGuard
  bool read_string(hid_t obj, const std::string& key, const char* name, std::string* out, std::string* why) const;
  void read_header();
  void discover_meta(const std::vector<std::string>& datasets);
  void validate_fields(const std::vector<std::string>& datasets);
  void read_offsets();
  void read_checksums();

  void check_sample(std::int64_t i) const {
    BEVKD_CHECK(i >= 0 && i < header.num_samples, where(), ": sample ", i, " out of range (the shard has ",
                header.num_samples, " samples)");
  }
  bool per_view(const FieldLayout& f) const;
  std::pair<std::int64_t, std::int64_t> segment_range(const FieldLayout& f, std::int64_t i, int view) const;
  FieldShape shape_of(int fi, std::int64_t i, int view) const;
  void read_chunk(int fi, const std::vector<hsize_t>& offset, std::byte* dst, std::size_t nbytes, std::int64_t i) const;
  FieldShape read_into(int fi, std::int64_t i, std::byte* dst, std::size_t capacity, const ReadOptions& opts) const;
};

void ShardReader::Impl::open() {
  check_file();
  {
    const h5::SerialGuard guard;
    open_file();
    find_vlen_attributes();
  }
  read_vlen_attributes();
  const h5::SerialGuard guard;
  load();
}

void ShardReader::Impl::check_file() {
  if (ends_with(path, kPartialSuffix))
    BEVKD_FAIL(where(), " is an unfinished shard: its writer was stopped before close() (killed or crashed). "
               "No manifest lists it and no reader accepts it; rerunning the producer for this shard replaces "
               "it, or delete it.");
  BEVKD_CHECK(path_exists(path), where(), ": no such file");
  const std::uint64_t size = file_size(path);
  BEVKD_CHECK(size > 0, where(), ": the file is empty");
  if (open_opts.expected_bytes > 0)
    BEVKD_CHECK(size == open_opts.expected_bytes, where(), ": the file has ", size, " bytes, the manifest says ",
                open_opts.expected_bytes, " (replaced or truncated after the manifest was written)");
  if (open_opts.hash_verified_by_caller) hash_checked = true;
  if (open_opts.check_hash && open_opts.expected_xxh64 && !hash_checked) {
    const std::uint64_t h = xxh64_file(path);
    BEVKD_CHECK(h == *open_opts.expected_xxh64, where(), ": the file's XXH64 is ", hex64(h), ", the manifest says ",
                hex64(*open_opts.expected_xxh64), ": the file is corrupt (it changed after it was written)");
    hash_checked = true;
  }
}

void ShardReader::Impl::open_file() {
  h5::enter();
  const std::uint64_t size = file_size(path);
  if (H5Fis_hdf5(path.c_str()) <= 0) {
    h5::take_errors();
    BEVKD_FAIL(where(), ": not an HDF5 file (no HDF5 superblock signature in its ", size, " bytes)");
  }
  // Default file-access properties, so that other code in the process can open the same file.
  file = h5::file(H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT));
  if (!file) {
    const std::string err = h5::take_errors();
    // HDF5 says "truncated file: eof = <size>, sblock->base_addr = 0, stored_eof = <expected>".
    const std::size_t t = err.find("truncated file: eof = ");
    const std::size_t e = err.find("stored_eof = ", t == std::string::npos ? 0 : t);
    if (t != std::string::npos && e != std::string::npos) {
      const auto number_at = [&](std::size_t pos) { return err.substr(pos, err.find_first_not_of("0123456789", pos) - pos); };
      BEVKD_FAIL(where(), ": the file is truncated: it has ", number_at(t + 22), " bytes, its HDF5 superblock says ",
                 number_at(e + 13), " (an interrupted copy or a damaged disk); rewrite or re-copy the shard");
    }
    if (err.find("already open for write") != std::string::npos)
      BEVKD_FAIL(where(), ": the file was not closed by its writer (HDF5 marks it open for write); "
                 "it is incomplete — rewrite the shard");
    if (err.find("checksum") != std::string::npos)
      BEVKD_FAIL(where(), ": the file is corrupt: its HDF5 metadata fails its checksum (", err, ")");
    BEVKD_FAIL(where(), ": HDF5 cannot open the file: it is corrupt or not a shard (", err, ")");
  }
}

void ShardReader::Impl::find_vlen_attributes() {
  const Schema& schema = Schema::current();
  for (const AttributeSpec& a : schema.attributes())
    if ((a.type == "string" || a.type == "json") && h5::has_attr(file.get(), a.name.c_str()) &&
        h5::is_vlen_string_attr(file.get(), a.name.c_str()))
      vlen_names.push_back(a.name);
  const std::string& cs = schema.checksum_dataset();
  if (h5::exists(file.get(), cs)) {
    h5::Handle d = h5::dataset(H5Dopen2(file.get(), cs.c_str(), H5P_DEFAULT));
    const char* attr = schema.checksum_columns_attribute().c_str();
    if (d.valid() && h5::has_attr(d.get(), attr) && h5::is_vlen_string_attr(d.get(), attr))
      vlen_names.push_back(cat(cs, "@", attr));
  }
  h5::take_errors();
}

void ShardReader::Impl::read_vlen_attributes() {
  if (vlen_names.empty()) return;
  // Reads every name into `values`; false + why on the first failure.
  const auto read_all = [this](std::map<std::string, std::string, std::less<>>* values, std::string* why) {
    for (const std::string& key : vlen_names) {
      const std::size_t at = key.find('@');
      h5::Handle d;
      hid_t obj = file.get();
      if (at != std::string::npos) {
        d = h5::dataset(H5Dopen2(file.get(), key.substr(0, at).c_str(), H5P_DEFAULT));
        if (!d) {
          *why = cat("cannot open dataset ", key.substr(0, at), " (", h5::take_errors(), ")");
          return false;
        }
        obj = d.get();
      }
      const std::string name = at == std::string::npos ? key : key.substr(at + 1);
      std::string v, w;
      if (!h5::read_string_attr(obj, name.c_str(), &v, &w)) {
        (*values)[key + "\n!error"] = w;  // reported by read_header for this attribute
        continue;
      }
      (*values)[key] = v;
    }
    return true;
  };
  if (hash_checked || !open_opts.legacy_attributes_in_child) {
    const h5::SerialGuard guard;
    std::string why;
    BEVKD_CHECK(read_all(&vlen_values, &why), where(), ": ", why);
    return;
  }
  // HDF5 1.10 reads variable-length strings from its global heap, which has no checksum; a
  // damaged heap makes the library read out of bounds (a crash in H5HG_read). A child process
  // reads them and sends the texts back: a crash costs only the child.
  const std::string id = file_identity(path);
  {
    LegacyAttributeCache& cache = legacy_attribute_cache();
    std::lock_guard<std::mutex> lock(cache.mu);
    if (auto it = cache.texts.find(id); !id.empty() && it != cache.texts.end()) {
      vlen_values = it->second;
      return;
    }
  }
  std::string payload, why;
  const bool ok = h5::fork_and_read(
      [&](std::string* out, std::string* w) {
        h5::enter();
        std::map<std::string, std::string, std::less<>> values;
        if (!read_all(&values, w)) return false;
        for (const auto& [k, v] : values) out->append(cat(k.size(), ":", k, v.size(), ":", v));
        return true;
      },
      &payload, &why, open_opts.legacy_attribute_timeout_s);
  BEVKD_CHECK(ok, where(), ": the file is corrupt: reading its variable-length string attributes (",
              [&] {
                std::string n;
                for (const auto& k : vlen_names) n += cat(n.empty() ? "" : ", ", k);
                return n;
              }(),
              ") in a child process failed: ", why,
              ". (Schema 1.0/1.1 shards keep them in HDF5's global heap, which has no checksum; a damaged heap "
              "crashes libhdf5 1.10.)");
  // Decode "<len>:<key><len>:<value>..." records.
  std::size_t p = 0;
  const auto take = [&](std::string* out) {
    const std::size_t colon = payload.find(':', p);
    BEVKD_ASSERT(colon != std::string::npos, "vlen attribute record");
    const std::size_t n = std::stoull(payload.substr(p, colon - p));
    *out = payload.substr(colon + 1, n);
    p = colon + 1 + n;
  };
  while (p < payload.size()) {
    std::string k, v;
    take(&k);
    take(&v);
    vlen_values[k] = v;
  }
  if (!id.empty() && id == file_identity(path)) {  // unchanged while the child read it
    LegacyAttributeCache& cache = legacy_attribute_cache();
    std::lock_guard<std::mutex> lock(cache.mu);
    cache.texts[id] = vlen_values;
  }
}

bool ShardReader::Impl::read_string(hid_t obj, const std::string& key, const char* name, std::string* out,
                                    std::string* why) const {
  if (std::find(vlen_names.begin(), vlen_names.end(), key) == vlen_names.end())
    return h5::read_string_attr(obj, name, out, why);
  if (auto e = vlen_values.find(key + "\n!error"); e != vlen_values.end()) {
    *why = e->second;
    return false;
  }
  auto it = vlen_values.find(key);
  BEVKD_ASSERT(it != vlen_values.end(), "variable-length attribute ", key, " was not read");
  *out = it->second;
  return true;
}

void ShardReader::Impl::load() {
  read_header();
  const std::vector<std::string> datasets = h5::list_datasets(file.get(), where());
  discover_meta(datasets);
  validate_fields(datasets);
  read_offsets();
  read_checksums();
}

void ShardReader::Impl::read_header() {
  const Schema& schema = Schema::current();
  const hid_t root = file.get();
  std::map<std::string, std::string, std::less<>> strings;
  std::map<std::string, std::vector<std::int64_t>, std::less<>> ints;
  std::map<std::string, std::vector<double>, std::less<>> floats;
  std::map<std::string, std::string, std::less<>> jsons;  // JSON text, parsed by apply_json_attributes

  // Schema name and version first: a file of another major version may have other attributes.
  std::string why, name, version;
  const auto exists = [&](const char* n) {
    const htri_t e = H5Aexists(root, n);
    BEVKD_CHECK(e >= 0, where(), ": HDF5 cannot look up attribute ", n, ": ", corrupt_because(h5::take_errors()));
    return e > 0;
  };
  BEVKD_CHECK(exists("schema_name") && read_string(root, "schema_name", "schema_name", &name, &why),
              where(), ": not a bevkd shard (no readable schema_name attribute", why.empty() ? "" : cat(": ", why), ")");
  BEVKD_CHECK(name == schema.name(), where(), ": schema_name is \"", name, "\", expected \"", schema.name(), "\"");
  BEVKD_CHECK(read_string(root, "schema_version", "schema_version", &version, &why), where(),
              ": attribute schema_version ", why);
  header.version = SchemaVersion::parse(version, where());
  schema.check_readable(header.version, where());

  BEVKD_CHECK(exists("num_samples"), where(),
              ": the shard is incomplete: attribute num_samples is missing (close() writes it last; the writer "
              "was stopped) — rewrite the shard");
  for (const AttributeSpec& a : schema.attributes()) {
    const char* n = a.name.c_str();
    if (!exists(n)) {
      BEVKD_CHECK(!a.required, where(), ": required attribute ", a.name, " is missing (", a.doc, ")");
      continue;
    }
    if (a.type == "string" || a.type == "json") {
      std::string v;
      BEVKD_CHECK(read_string(root, a.name, n, &v, &why), where(), ": attribute ", a.name, " ", why);
      if (a.type == "json") {
        jsons[a.name] = v;
      } else {
        BEVKD_CHECK(a.value.empty() || v == a.value, where(), ": attribute ", a.name, " is \"", v, "\", expected \"",
                    a.value, "\"");
        strings[a.name] = v;
      }
    } else if (a.type == "int64") {
      std::vector<std::int64_t> v;
      BEVKD_CHECK(h5::read_i64_attr(root, n, &v, &why), where(), ": attribute ", a.name, " ", why);
      const std::size_t want = a.shape.empty() ? 1 : static_cast<std::size_t>(a.shape[0]);
      BEVKD_CHECK(v.size() == want, where(), ": attribute ", a.name, " has ", v.size(), " values, expected ", want);
      ints[a.name] = v;
    } else {
      std::vector<double> v;
      BEVKD_CHECK(h5::read_f64_attr(root, n, &v, &why), where(), ": attribute ", a.name, " ", why);
      const std::size_t want = a.shape.empty() ? 1 : static_cast<std::size_t>(a.shape[0]);
      BEVKD_CHECK(v.size() == want, where(), ": attribute ", a.name, " has ", v.size(), " values, expected ", want);
      floats[a.name] = v;
    }
  }
  header.num_samples = ints.at("num_samples")[0];
  BEVKD_CHECK(header.num_samples >= 0, where(), ": num_samples is ", header.num_samples);
  ShardMeta& meta = header.meta;
  meta.num_views = ints.at("num_views")[0];
  std::copy(floats.at("bev_range").begin(), floats.at("bev_range").end(), meta.grid.range.begin());
  meta.grid.dx = floats.at("bev_cell_size")[0];
  meta.grid.dy = floats.at("bev_cell_size")[1];
  meta.grid.H = ints.at("bev_shape")[0];
  meta.grid.W = ints.at("bev_shape")[1];
  meta.split = strings.at("split");
  apply_json_attributes(jsons, schema, where(), &meta, &header.compression);
  header.created_utc = strings.at("created_utc");
}

void ShardReader::Impl::discover_meta(const std::vector<std::string>& datasets) {
  const Schema& schema = Schema::current();
  const DatasetSpec& features = schema.dataset("teacher/features/{tap}");
  ShardMeta& meta = header.meta;
  bool fd3d = false;
  for (const std::string& d : datasets) {
    std::string tap;
    if (features.matches(d, &tap)) {
      h5::Handle ds = h5::dataset(H5Dopen2(file.get(), d.c_str(), H5P_DEFAULT));
      BEVKD_CHECK(ds.valid(), where(), ": cannot open dataset ", d, ": ", corrupt_because(h5::take_errors()));
      const auto dims = h5::dims(ds.get());
      BEVKD_CHECK(dims.size() == 5, where(), ": dataset ", d, " has shape ", shape_str(dims),
                  ", expected [N, V, C_tap, H, W]");
      h5::Handle t = h5::type(H5Dget_type(ds.get()));
      TapSpec spec;
      spec.name = tap;
      spec.channels = dims[2];
      std::size_t itemsize = 0;
      std::string what;
      BEVKD_CHECK(h5::describe_type(t.get(), &spec.dtype, &itemsize, &what) && features.accepts_dtype(spec.dtype),
                  where(), ": dataset ", d, " has dtype ", h5::type_name(t.get()), ", the schema says float16 (or int8 "
                  "with teacher/feature_scales/", tap, ")");
      meta.taps.push_back(spec);
    }
    if (d.rfind("fd3d/", 0) == 0) fd3d = true;
  }
  if (fd3d) {
    const std::string q = "fd3d/sampling_points";
    BEVKD_CHECK(h5::exists(file.get(), q), where(), ": dataset ", q,
                " is missing (the optional fd3d group is present, so all of it is required)");
    h5::Handle ds = h5::dataset(H5Dopen2(file.get(), q.c_str(), H5P_DEFAULT));
    const auto dims = h5::dims(ds.get());
    BEVKD_CHECK(dims.size() == 3 && dims[1] > 0, where(), ": dataset ", q, " has shape ", shape_str(dims),
                ", expected [F, Q, 2] with Q > 0");
    meta.fd3d_points = dims[1];
  }
  BEVKD_CHECK(!meta.taps.empty(), where(), ": no teacher feature dataset (teacher/features/<tap>; the schema needs at "
              "least one, e.g. teacher/features/neck)");
  meta.validate(where());
  // An older minor version has that version's datasets; a newer one is read as this build's.
  const SchemaVersion v = header.version < schema.version() ? header.version : schema.version();
  try {
    layout = ShardLayout::make(meta, schema, v);
  } catch (const Error& e) {
    BEVKD_FAIL(where(), ": ", e.what());
  }
}

void ShardReader::Impl::validate_fields(const std::vector<std::string>& datasets) {
  const Schema& schema = Schema::current();
  const std::int64_t n = header.num_samples;
  fields.resize(layout.fields().size());
  std::set<std::string> known;
  for (std::size_t fi = 0; fi < layout.fields().size(); ++fi) {
    const FieldLayout& f = layout.fields()[fi];
    ReaderField& rf = fields[fi];
    known.insert(f.name);
    BEVKD_CHECK(h5::exists(file.get(), f.name), where(), ": dataset ", f.name, " is missing (schema ", schema.name(),
                " ", layout.version().str(), ": ", f.spec->doc, ")");
    h5::Handle dapl = h5::plist(H5Pcreate(H5P_DATASET_ACCESS));
    H5Pset_chunk_cache(dapl.get(), 0, 0, 1.0);
    rf.dset = h5::dataset(H5Dopen2(file.get(), f.name.c_str(), dapl.get()));
    BEVKD_CHECK(rf.dset.valid(), where(), ": cannot open dataset ", f.name, ": ", corrupt_because(h5::take_errors()));
    h5::Handle t = h5::type(H5Dget_type(rf.dset.get()));
    DType dt;
    std::size_t itemsize = 0;
    std::string what;
    const bool known_type = h5::describe_type(t.get(), &dt, &itemsize, &what);
    const std::string expected_type =
        f.kind == FieldKind::kString ? cat("string(", f.itemsize, ")") : std::string(dtype_name(f.dtype));
    BEVKD_CHECK(known_type && dt == f.dtype && itemsize == f.itemsize, where(), ": dataset ", f.name, " has dtype ",
                h5::type_name(t.get()), ", the schema says ", expected_type);
    const auto dims = h5::dims(rf.dset.get());
    rf.rows = dims.empty() ? 0 : dims[0];
    const bool item_ok = dims.size() == 1 + f.item_shape.size() &&
                         std::equal(f.item_shape.begin(), f.item_shape.end(), dims.begin() + 1);
    const bool n_ok = f.kind == FieldKind::kRagged || rf.rows == n;
    BEVKD_CHECK(item_ok && n_ok, where(), ": dataset ", f.name, " has shape ", shape_str(dims), ", expected ",
                f.kind == FieldKind::kRagged ? symbolic(f, rf.rows) : symbolic(f, n));
    const auto chunk = h5::chunk_dims(rf.dset.get());
    BEVKD_CHECK(!chunk.empty(), where(), ": dataset ", f.name, " is not chunked (the schema stores ",
                f.kind == FieldKind::kRagged ? "fixed-row chunks" : "one chunk per sample", ")");
    if (f.kind == FieldKind::kRagged) {
      const bool ok = chunk.size() == dims.size() && chunk[0] > 0 &&
                      std::equal(chunk.begin() + 1, chunk.end(), f.item_shape.begin());
      BEVKD_CHECK(ok, where(), ": dataset ", f.name, " has chunks of ", shape_str(chunk), ", expected [rows, ",
                  shape_str(f.item_shape).substr(1));
      rf.chunk_rows = chunk[0];
      // HDF5 limits a chunk to 4 GiB; a larger one is a damaged layout, not an allocation to try.
      BEVKD_CHECK(static_cast<double>(rf.chunk_rows) * static_cast<double>(f.item_bytes()) < 4294967296.0, where(),
                  ": dataset ", f.name, " has chunks of ", rf.chunk_rows, " rows of ", f.item_bytes(),
                  " bytes, more than HDF5's 4 GiB per chunk");
    } else {
      BEVKD_CHECK(chunk == f.chunk_shape(), where(), ": dataset ", f.name, " has chunks of ", shape_str(chunk),
                  ", the schema says ", shape_str(f.chunk_shape()),
                  f.per_view_chunks ? " (one per sample and view)" : " (one per sample)");
      BEVKD_CHECK(static_cast<double>(shape_numel(f.chunk_shape())) * static_cast<double>(f.itemsize) < 4294967296.0,
                  where(), ": dataset ", f.name, " has chunks of ", shape_str(f.chunk_shape()),
                  ", more than HDF5's 4 GiB per chunk");
    }
    const auto filters = h5::filters(rf.dset.get());
    std::string names;
    for (std::size_t k = 0; k < filters.size(); ++k) {
      const h5::Filter& flt = filters[k];
      const bool allowed = std::any_of(schema.allowed_filters().begin(), schema.allowed_filters().end(),
                                       [&](const FilterSpec& s) { return s.id == flt.id; });
      BEVKD_CHECK(allowed, where(), ": dataset ", f.name, " uses HDF5 filter ", flt.id, " (", flt.name,
                  "); bevkd decodes only shuffle (2) followed by zstd (32015)");
      if (flt.id == kShuffleFilterId) {
        BEVKD_CHECK(k == 0, where(), ": dataset ", f.name, " applies shuffle after zstd; expected shuffle first");
        rf.shuffle = true;
        names += "shuffle+";
      } else {
        names += cat("zstd(", flt.cd_values.empty() ? std::string("?") : std::to_string(static_cast<int>(flt.cd_values[0])),
                     ")");
      }
    }
    BEVKD_CHECK(!filters.empty() && filters.back().id == kZstdFilterId, where(), ": dataset ", f.name,
                " does not declare the zstd filter (32015) as the last filter");
    rf.filters = names;
  }
  for (const auto& g : layout.groups()) known.insert(g.offsets);
  known.insert(schema.checksum_dataset());
  for (const std::string& d : datasets) {
    if (known.count(d)) continue;
    BEVKD_CHECK(header.version.minor > schema.version().minor, where(), ": dataset ", d, " is not part of schema ",
                schema.name(), " ", layout.version().str(), " (the shard says version ", header.version.str(),
                "; unknown datasets are accepted only from a newer minor version)");
    ignored.push_back(d);
  }
}

void ShardReader::Impl::read_offsets() {
  const std::int64_t n = header.num_samples;
  offsets.resize(layout.groups().size());
  for (std::size_t g = 0; g < layout.groups().size(); ++g) {
    const GroupLayout& gl = layout.groups()[g];
    const std::string& name = gl.offsets;
    BEVKD_CHECK(h5::exists(file.get(), name), where(), ": dataset ", name, " (offsets of the ragged group ", gl.name,
                ") is missing");
    h5::Handle d = h5::dataset(H5Dopen2(file.get(), name.c_str(), H5P_DEFAULT));
    h5::Handle t = h5::type(H5Dget_type(d.get()));
    DType dt;
    std::size_t size;
    std::string what;
    BEVKD_CHECK(h5::describe_type(t.get(), &dt, &size, &what) && dt == DType::kInt64, where(), ": dataset ", name,
                " has dtype ", h5::type_name(t.get()), ", expected int64");
    const auto dims = h5::dims(d.get());
    const std::int64_t want = n * gl.segments_per_sample + 1;
    BEVKD_CHECK(dims.size() == 1 && dims[0] == want, where(), ": dataset ", name, " has shape ", shape_str(dims),
                ", expected [", want, "] (N * ", gl.segments_per_sample, " + 1)");
    auto& off = offsets[g];
    off.resize(static_cast<std::size_t>(want));
    BEVKD_CHECK(H5Dread(d.get(), H5T_NATIVE_INT64, H5S_ALL, H5S_ALL, H5P_DEFAULT, off.data()) >= 0, where(),
                ": cannot read dataset ", name, ": ", corrupt_because(h5::take_errors()));
    BEVKD_CHECK(off[0] == 0, where(), ": dataset ", name, "[0] is ", off[0], ", expected 0");
    for (std::size_t k = 1; k < off.size(); ++k)
      BEVKD_CHECK(off[k] >= off[k - 1], where(), ": dataset ", name, " decreases at entry ", k, " (", off[k - 1],
                  " -> ", off[k], "), sample ", (k - 1) / gl.segments_per_sample);
    for (int fi : gl.fields)
      BEVKD_CHECK(fields[fi].rows == off.back(), where(), ": dataset ", layout.fields()[fi].name, " has ",
                  fields[fi].rows, " rows, its offsets (", name, ") end at ", off.back());
  }
}

void ShardReader::Impl::read_checksums() {
  const Schema& schema = Schema::current();
  const std::string& name = schema.checksum_dataset();
  BEVKD_CHECK(h5::exists(file.get(), name), where(), ": dataset ", name, " is missing");
  h5::Handle d = h5::dataset(H5Dopen2(file.get(), name.c_str(), H5P_DEFAULT));
  std::string cols_text, why;
  BEVKD_CHECK(read_string(d.get(), cat(name, "@", schema.checksum_columns_attribute()),
                          schema.checksum_columns_attribute().c_str(), &cols_text, &why),
              where(), ": dataset ", name, ": attribute ", schema.checksum_columns_attribute(), " ", why);
  const std::vector<std::string> cols =
      parse_string_list(cols_text, where(), cat("dataset ", name, ": attribute ", schema.checksum_columns_attribute()));
  const auto dims = h5::dims(d.get());
  BEVKD_CHECK(dims.size() == 2 && dims[0] == header.num_samples && dims[1] == static_cast<std::int64_t>(cols.size()),
              where(), ": dataset ", name, " has shape ", shape_str(dims), ", expected [", header.num_samples, ", ",
              cols.size(), "]");
  checksum_columns = dims[1];
  for (std::size_t c = 0; c < cols.size(); ++c) {
    const int fi = layout.find(cols[c]);
    if (fi >= 0) fields[fi].checksum_column = static_cast<int>(c);
  }
  for (std::size_t fi = 0; fi < fields.size(); ++fi)
    BEVKD_CHECK(fields[fi].checksum_column >= 0, where(), ": dataset ", name, " has no checksum column for ",
                layout.fields()[fi].name);
  checksums.resize(static_cast<std::size_t>(dims[0] * dims[1]));
  if (!checksums.empty())
    BEVKD_CHECK(H5Dread(d.get(), H5T_NATIVE_UINT64, H5S_ALL, H5S_ALL, H5P_DEFAULT, checksums.data()) >= 0, where(),
                ": cannot read dataset ", name, ": ", corrupt_because(h5::take_errors()));
}

bool ShardReader::Impl::per_view(const FieldLayout& f) const {
  if (f.kind == FieldKind::kRagged) {
    const auto& per = layout.schema().group(f.spec->group).per;
    return per.size() == 2 && per[1] == "V";
  }
  return f.spec->shape.size() >= 2 && f.spec->shape[1].symbol == "V";
}

std::pair<std::int64_t, std::int64_t> ShardReader::Impl::segment_range(const FieldLayout& f, std::int64_t i,
                                                                       int view) const {
  const std::int64_t s = layout.groups()[f.group].segments_per_sample;
  if (view >= 0 && per_view(f)) return {i * s + view, i * s + view + 1};
  return {i * s, (i + 1) * s};
}

FieldShape ShardReader::Impl::shape_of(int fi, std::int64_t i, int view) const {
  const FieldLayout& f = layout.fields()[fi];
  check_sample(i);
  if (view >= 0)
    BEVKD_CHECK(view < header.meta.num_views, where(), ": view ", view, " out of range (V = ",
                header.meta.num_views, ")");
  FieldShape s;
  s.dtype = f.dtype;
  s.itemsize = f.itemsize;
  if (f.kind != FieldKind::kRagged) {
    s.shape = f.item_shape;
    if (view >= 0 && per_view(f)) s.shape[0] = 1;
    return s;
  }
  const auto& off = offsets[f.group];
  const auto [s0, s1] = segment_range(f, i, view);
  for (std::int64_t k = s0; k < s1; ++k) s.segments.push_back(off[k + 1] - off[k]);
  s.shape = {off[s1] - off[s0]};
  s.shape.insert(s.shape.end(), f.item_shape.begin(), f.item_shape.end());
  return s;
}

void ShardReader::Impl::read_chunk(int fi, const std::vector<hsize_t>& offset, std::byte* dst, std::size_t nbytes,
                                   std::int64_t i) const {
  const FieldLayout& f = layout.fields()[fi];
  const ReaderField& rf = fields[fi];
  thread_local std::vector<std::byte> stored;
  hsize_t size = 0;
  std::uint32_t mask = 0;
  {
    h5::enter();
    const h5::SerialGuard guard;
    // Both calls take HDF5's global lock; decoding below runs without it.
    if (H5Dget_chunk_storage_size(rf.dset.get(), offset.data(), &size) < 0)
      BEVKD_FAIL(where(i, f.name), ": HDF5 cannot locate the chunk at row ", offset[0], ": ",
                 corrupt_because(h5::take_errors()));
    BEVKD_CHECK(size > 0, where(i, f.name), ": the chunk at row ", offset[0], " is missing from the file");
    stored.resize(size);
    if (H5Dread_chunk(rf.dset.get(), H5P_DEFAULT, offset.data(), &mask, stored.data()) < 0)
      BEVKD_FAIL(where(i, f.name), ": HDF5 cannot read the chunk at row ", offset[0], ": ",
                 corrupt_because(h5::take_errors()));
  }
  try {
    decode_chunk(stored.data(), size, mask, rf.shuffle, f.itemsize, dst, nbytes);
  } catch (const Error& e) {
    BEVKD_FAIL(where(i, f.name), ": ", e.what());
  }
}

FieldShape ShardReader::Impl::read_into(int fi, std::int64_t i, std::byte* dst, std::size_t capacity,
                                        const ReadOptions& opts) const {
  const FieldLayout& f = layout.fields()[fi];
  const ReaderField& rf = fields[fi];
  if (opts.verify && opts.view >= 0 && per_view(f)) {
    // The checksum covers every view: decode all, verify, then keep the one view.
    ReadOptions all = opts;
    all.view = -1;
    const FieldShape full = shape_of(fi, i, -1);
    Array tmp = Array::uninitialized(full.dtype, full.shape, full.dtype == DType::kString ? full.itemsize : 0);
    read_into(fi, i, tmp.bytes(), tmp.nbytes(), all);
    const FieldShape one = shape_of(fi, i, opts.view);
    BEVKD_CHECK(capacity >= one.nbytes(), where(i, f.name), ": destination holds ", capacity, " bytes, need ",
                one.nbytes());
    std::size_t start = 0;
    if (f.kind == FieldKind::kRagged) {
      for (int v = 0; v < opts.view; ++v) start += static_cast<std::size_t>(full.segments[v]) * f.item_bytes();
    } else {
      start = static_cast<std::size_t>(opts.view) * one.nbytes();
    }
    std::memcpy(dst, tmp.bytes() + start, one.nbytes());
    return one;
  }
  const FieldShape s = shape_of(fi, i, opts.view);
  const std::size_t nbytes = s.nbytes();
  BEVKD_CHECK(capacity >= nbytes, where(i, f.name), ": destination holds ", capacity, " bytes, need ", nbytes);
  if (f.kind != FieldKind::kRagged) {
    const std::size_t cb = f.chunk_bytes();
    std::vector<hsize_t> offset(f.item_shape.size() + 1, 0);
    offset[0] = static_cast<hsize_t>(i);
    if (f.per_view_chunks) {
      const int v0 = opts.view >= 0 ? opts.view : 0;
      const int v1 = opts.view >= 0 ? opts.view + 1 : static_cast<int>(f.item_shape[0]);
      for (int v = v0; v < v1; ++v) {
        offset[1] = static_cast<hsize_t>(v);
        read_chunk(fi, offset, dst + static_cast<std::size_t>(v - v0) * cb, cb, i);
      }
    } else if (opts.view >= 0 && per_view(f)) {
      // A per-view field stored in one chunk per sample (view/bda): decode all, keep one.
      std::vector<std::byte> tmp(cb);
      read_chunk(fi, offset, tmp.data(), cb, i);
      std::memcpy(dst, tmp.data() + static_cast<std::size_t>(opts.view) * nbytes, nbytes);
    } else {
      read_chunk(fi, offset, dst, cb, i);
    }
  } else if (nbytes > 0) {
    const auto& off = offsets[f.group];
    const auto [s0, s1] = segment_range(f, i, opts.view);
    const std::int64_t r0 = off[s0], r1 = off[s1];
    const std::int64_t R = rf.chunk_rows;
    const std::size_t row_bytes = f.item_bytes();
    ChunkCache& cache = thread_cache();
    std::vector<hsize_t> offset(f.item_shape.size() + 1, 0);
    for (std::int64_t c = r0 / R; c <= (r1 - 1) / R; ++c) {
      const std::vector<std::byte>* chunk = cache.find(uid, fi, c);
      if (chunk == nullptr) {
        ChunkCache::Entry& e = cache.victim();
        e.data.resize(static_cast<std::size_t>(R) * row_bytes);
        offset[0] = static_cast<hsize_t>(c * R);
        read_chunk(fi, offset, e.data.data(), e.data.size(), i);
        e.uid = uid;
        e.field = fi;
        e.chunk = c;
        chunk = &e.data;
      }
      const std::int64_t a = std::max(r0, c * R), b = std::min(r1, (c + 1) * R);
      std::memcpy(dst + static_cast<std::size_t>(a - r0) * row_bytes,
                  chunk->data() + static_cast<std::size_t>(a - c * R) * row_bytes,
                  static_cast<std::size_t>(b - a) * row_bytes);
    }
  }
  if (opts.verify) {
    const std::uint64_t stored = checksums[static_cast<std::size_t>(i * checksum_columns + rf.checksum_column)];
    const std::uint64_t got = xxh64(dst, nbytes);
    BEVKD_CHECK(stored == got, where(i, f.name), ": checksum mismatch (stored xxh64 ", hex64(stored),
                ", decoded data ", hex64(got), "): the sample's data is corrupt");
  }
  return s;
}

ShardReader::ShardReader(const std::string& path, const OpenOptions& opts) : impl_(std::make_unique<Impl>()) {
  impl_->path = path;
  impl_->open_opts = opts;
  impl_->open();
}

ShardReader::~ShardReader() {
  if (impl_) {
    h5::enter();
    const h5::SerialGuard guard;
    for (auto& f : impl_->fields) f.dset.reset();
    impl_->file.reset();
    h5::take_errors();
  }
}

const std::string& ShardReader::path() const { return impl_->path; }
std::int64_t ShardReader::num_samples() const { return impl_->header.num_samples; }
const ShardHeader& ShardReader::header() const { return impl_->header; }
const ShardLayout& ShardReader::layout() const { return impl_->layout; }
const std::vector<std::string>& ShardReader::ignored_datasets() const { return impl_->ignored; }
bool ShardReader::file_hash_checked() const { return impl_->hash_checked; }
bool ShardReader::attributes_checksummed() const { return impl_->vlen_names.empty(); }

std::vector<int> ShardReader::select(const std::vector<std::string>& selectors) const {
  for (const std::string& sel : selectors)
    if (impl_->layout.find(sel) < 0) {
      const std::string m = Schema::current().missing_field_message(sel, impl_->header.version, impl_->where());
      if (!m.empty()) BEVKD_FAIL(m);
    }
  return impl_->layout.select(selectors, impl_->where());
}

Sample ShardReader::read(std::int64_t i, const std::vector<std::string>& selectors, const ReadOptions& opts) const {
  return read_fields(i, select(selectors), opts);
}

Sample ShardReader::read_fields(std::int64_t i, const std::vector<int>& fields, const ReadOptions& opts) const {
  Sample s;
  for (int fi : fields) {
    BEVKD_ASSERT(fi >= 0 && fi < static_cast<int>(impl_->layout.fields().size()), "field index ", fi);
    const FieldLayout& f = impl_->layout.fields()[fi];
    const FieldShape fs = impl_->shape_of(fi, i, opts.view);
    Array a = Array::uninitialized(fs.dtype, fs.shape, fs.dtype == DType::kString ? fs.itemsize : 0);
    impl_->read_into(fi, i, a.bytes(), a.nbytes(), opts);
    a.segments = fs.segments;
    s.set(f.name, std::move(a));
  }
  return s;
}

namespace {

int find_field(const ShardLayout& layout, std::string_view field, SchemaVersion version, const std::string& where) {
  const int fi = layout.find(field);
  if (fi >= 0) return fi;
  const std::string m = Schema::current().missing_field_message(field, version, where);
  if (!m.empty()) BEVKD_FAIL(m);
  BEVKD_FAIL(where, ": no field \"", field, "\" (fields: ", layout.field_list(), ")");
}

}  // namespace

Array ShardReader::read_field(std::int64_t i, std::string_view field, const ReadOptions& opts) const {
  const int fi = find_field(impl_->layout, field, impl_->header.version, impl_->where());
  return read_fields(i, {fi}, opts).take(field);
}

FieldShape ShardReader::field_shape(std::int64_t i, std::string_view field, int view) const {
  const int fi = find_field(impl_->layout, field, impl_->header.version, impl_->where());
  return impl_->shape_of(fi, i, view);
}

FieldShape ShardReader::read_field_into(std::int64_t i, std::string_view field, void* dst, std::size_t capacity,
                                        const ReadOptions& opts) const {
  const int fi = find_field(impl_->layout, field, impl_->header.version, impl_->where());
  return impl_->read_into(fi, i, static_cast<std::byte*>(dst), capacity, opts);
}

std::uint64_t ShardReader::stored_checksum(std::int64_t i, std::string_view field) const {
  const int fi = impl_->layout.find(field);
  BEVKD_CHECK(fi >= 0, impl_->where(), ": no field \"", field, "\"");
  impl_->check_sample(i);
  return impl_->checksums[static_cast<std::size_t>(i * impl_->checksum_columns + impl_->fields[fi].checksum_column)];
}

std::vector<SampleProblem> ShardReader::verify_sample(std::int64_t i) const {
  impl_->check_sample(i);
  std::vector<SampleProblem> problems;
  ReadOptions opts;
  opts.verify = true;
  for (std::size_t fi = 0; fi < impl_->layout.fields().size(); ++fi) {
    const FieldLayout& f = impl_->layout.fields()[fi];
    try {
      const FieldShape fs = impl_->shape_of(static_cast<int>(fi), i, -1);
      Array a = Array::uninitialized(fs.dtype, fs.shape, fs.dtype == DType::kString ? fs.itemsize : 0);
      impl_->read_into(static_cast<int>(fi), i, a.bytes(), a.nbytes(), opts);
    } catch (const Error& e) {
      problems.push_back(SampleProblem{i, f.name, e.what()});
    }
  }
  return problems;
}

DatasetStats ShardReader::dataset_stats(std::string_view field) const {
  const int fi = impl_->layout.find(field);
  BEVKD_CHECK(fi >= 0, impl_->where(), ": no field \"", field, "\"");
  h5::enter();
  const h5::SerialGuard guard;
  const ReaderField& rf = impl_->fields[fi];
  DatasetStats s;
  s.shape = h5::dims(rf.dset.get());
  s.stored_bytes = H5Dget_storage_size(rf.dset.get());
  s.raw_bytes = static_cast<std::uint64_t>(shape_numel(s.shape)) * impl_->layout.fields()[fi].itemsize;
  s.filters = rf.filters;
  return s;
}

std::vector<std::string> find_partial_shards(const std::string& dir) {
  std::vector<std::string> out;
  std::error_code ec;
  if (!std::filesystem::is_directory(dir, ec)) return out;
  for (auto it = std::filesystem::recursive_directory_iterator(dir, ec);
       !ec && it != std::filesystem::recursive_directory_iterator(); it.increment(ec)) {
    if (it->is_regular_file(ec) && ends_with(it->path().string(), kPartialSuffix)) out.push_back(it->path().string());
  }
  std::sort(out.begin(), out.end());
  return out;
}

}  // namespace bevkd::storage

#include "storage/shard_writer.h"

#include <tbb/task_group.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstring>
#include <ctime>
#include <deque>
#include <filesystem>
#include <mutex>

#include "base/error.h"
#include "base/fs.h"
#include "storage/h5.h"
#include "storage/half.h"

namespace bevkd::storage {
namespace {

std::string utc_now() {
  const std::time_t t = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

// "[V=2, C_tap=384, H=128, W=128]": the expected per-sample shape with its symbols.
std::string symbolic_shape(const FieldLayout& f) {
  std::string s = "[";
  const auto& dims = f.spec->shape;
  for (std::size_t i = 0; i < f.item_shape.size(); ++i) {
    const SchemaDim& d = dims[i + 1];
    s += cat(i ? ", " : "", d.is_symbol() ? cat(d.symbol, "=", f.item_shape[i]) : std::to_string(f.item_shape[i]));
  }
  return s + "]";
}

// Number of non-finite elements of a float array and the first one's flat index.
std::int64_t count_nonfinite(const Array& a, std::int64_t* first) {
  std::int64_t bad = 0;
  *first = -1;
  auto scan = [&](auto* p, auto is_bad) {
    for (std::int64_t i = 0; i < a.numel(); ++i)
      if (is_bad(p[i])) {
        if (bad++ == 0) *first = i;
      }
  };
  switch (a.dtype()) {
    case DType::kFloat16:
      scan(static_cast<const std::uint16_t*>(a.raw()), [](std::uint16_t h) { return !half_is_finite(h); });
      break;
    case DType::kFloat32:
      scan(static_cast<const float*>(a.raw()), [](float x) { return !std::isfinite(x); });
      break;
    case DType::kFloat64:
      scan(static_cast<const double*>(a.raw()), [](double x) { return !std::isfinite(x); });
      break;
    default:
      break;
  }
  return bad;
}

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

// A double accumulated from several threads.
struct AtomicSeconds {
  std::atomic<double> v{0};
  void add(double s) {
    double cur = v.load();
    while (!v.compare_exchange_weak(cur, cur + s)) {
    }
  }
};

// Compact storage (schema 1.2 on): a group keeps up to this many links, and an object this many
// attributes, in its object header before HDF5 would move them to dense storage (a fractal heap
// and a v2 B-tree). No shard group comes near it; the reader refuses dense groups in such files.
constexpr unsigned kMaxCompact = 4096;
constexpr unsigned kMinDense = 4000;
// The largest string attribute that fits one object-header message (64 KiB with its header).
constexpr std::size_t kMaxCompactAttributeBytes = 60000;

// Creates the groups above dataset `name` ("teacher/features/neck": teacher, teacher/features)
// that do not exist yet, without modification times (reproducible bytes, see
// WriterOptions::created_utc; groups made by H5Pset_create_intermediate_group would carry them),
// with compact link storage when `compact`.
void create_parent_groups(hid_t file, const std::string& name, bool compact) {
  for (std::size_t p = name.find('/'); p != std::string::npos; p = name.find('/', p + 1)) {
    const std::string g = name.substr(0, p);
    if (H5Lexists(file, g.c_str(), H5P_DEFAULT) > 0) continue;
    h5::Handle gcpl = h5::plist(H5Pcreate(H5P_GROUP_CREATE));
    H5Pset_obj_track_times(gcpl.get(), 0);
    if (compact) H5Pset_link_phase_change(gcpl.get(), kMaxCompact, kMinDense);
    h5::Handle grp = h5::group(H5Gcreate2(file, g.c_str(), H5P_DEFAULT, gcpl.get(), H5P_DEFAULT));
    BEVKD_CHECK(grp.valid(), "cannot create group ", g, " (", h5::take_errors(), ")");
  }
}

}  // namespace

std::string partial_path(const std::string& shard_path) { return shard_path + kPartialSuffix; }

const std::vector<SchemaVersion>& writable_schema_versions() { return Schema::current().versions(); }

// One chunk waiting for compression and its HDF5 write.
struct ChunkTask {
  int field = 0;
  std::vector<hsize_t> offset;
  const std::byte* raw = nullptr;   // into the job's sample (fixed fields)
  std::vector<std::byte> owned;     // or owned rows (ragged fields)
  std::size_t nbytes = 0;
  EncodedChunk encoded;
  const std::byte* data() const { return raw != nullptr ? raw : owned.data(); }
};

// One appended sample in flight.
struct SampleJob {
  std::int64_t index = 0;
  Sample sample;
  std::vector<const Array*> arrays;       // per layout field
  std::vector<ChunkTask> chunks;
  std::vector<std::uint64_t> checksums;   // per layout field
  std::mutex mu;
  std::string error;                      // first error of a task
  std::atomic<int> remaining{0};
  tbb::task_group tasks;

  void fail(const std::string& msg) {
    std::lock_guard<std::mutex> lock(mu);
    if (error.empty()) error = msg;
  }
};

struct FieldState {
  h5::Handle dset;
  std::int64_t extent = 0;                // current dim 0
  std::vector<std::byte> pending;         // ragged: rows not yet in a full chunk
  std::int64_t rows_chunked = 0;          // ragged: rows already written as full chunks
  std::int64_t total_rows = 0;            // ragged
  std::uint64_t stored_bytes = 0;
};

struct ShardWriter::Impl {
  std::string path;
  std::string temp;
  ShardMeta meta;
  WriterOptions opts;
  ShardLayout layout;
  h5::Handle file;
  std::vector<FieldState> fields;
  std::vector<std::vector<std::int64_t>> offsets;  // per group, prod(per) * N + 1 entries
  std::vector<std::uint64_t> checksums;            // N x fields, row-major
  std::deque<std::unique_ptr<SampleJob>> jobs;
  std::int64_t appended = 0;
  std::uint64_t raw_bytes = 0;
  bool closed = false;
  std::string failed;  // set after an error: the writer refuses further work
  AtomicSeconds encode_s, checksum_s, write_s;

  std::string where() const { return cat("shard ", path); }
  std::string where(std::int64_t i) const { return cat("shard ", path, ": sample ", i); }
  // Schema 1.2 on: compact links and attributes, fixed-length string attributes.
  bool compact() const { return layout.schema().compact_layout_since() <= layout.version(); }
  void string_attr(hid_t obj, const char* name, const std::string& value) {
    if (compact())
      BEVKD_CHECK(value.size() <= kMaxCompactAttributeBytes, where(), ": attribute ", name, " has ", value.size(),
                  " bytes, at most ", kMaxCompactAttributeBytes, " fit the file's checksummed object header");
    h5::write_string_attr(obj, name, value, compact());
  }

  void create();
  void create_dataset(const FieldLayout& f, FieldState& st);
  void validate(std::int64_t index, Sample& s, std::vector<const Array*>& arrays);
  void submit(std::unique_ptr<SampleJob> job);
  void drain(bool all);
  void write_job(SampleJob& job);
  void write_chunk(int field, const std::vector<hsize_t>& offset, const EncodedChunk& c, std::int64_t extent);
  void flush_ragged_tails();
  void write_index_datasets();
  void wait_all_quietly();
  void remove_temp();
};

void ShardWriter::Impl::create() {
  h5::enter();
  meta.validate(where());
  const std::filesystem::path parent = std::filesystem::path(path).parent_path();
  if (!parent.empty()) make_dirs(parent.string());
  if (path_exists(temp)) {
    // A .partial left by a killed or crashed writer of this shard: it is never valid, replace it.
    std::error_code ec;
    std::filesystem::remove(temp, ec);
    BEVKD_CHECK(!ec, where(), ": cannot remove the stale unfinished file ", temp, " (", ec.message(), ")");
  }
  h5::Handle fapl = h5::plist(H5Pcreate(H5P_FILE_ACCESS));
  H5Pset_libver_bounds(fapl.get(), H5F_LIBVER_V110, H5F_LIBVER_V110);
  H5Pset_fclose_degree(fapl.get(), H5F_CLOSE_STRONG);
  h5::Handle fcpl = h5::plist(H5Pcreate(H5P_FILE_CREATE));
  H5Pset_obj_track_times(fcpl.get(), 0);  // the root group: no modification times
  if (compact()) {
    // Every metadata byte under an HDF5 checksum (schemas/SHARD_FORMAT.md, Integrity): links and
    // attributes of the root stay in its (checksummed) object header.
    H5Pset_link_phase_change(fcpl.get(), kMaxCompact, kMinDense);
    H5Pset_attr_phase_change(fcpl.get(), kMaxCompact, kMinDense);
  }
  file = h5::file(H5Fcreate(temp.c_str(), H5F_ACC_TRUNC, fcpl.get(), fapl.get()));
  BEVKD_CHECK(file.valid(), where(), ": cannot create ", temp, " (", h5::take_errors(), ")");

  const Schema& schema = layout.schema();
  const hid_t root = file.get();
  string_attr(root, "schema_name", schema.name());
  string_attr(root, "schema_version", layout.version().str());
  h5::write_i64_attr(root, "num_views", {meta.num_views}, true);
  h5::write_f64_attr(root, "bev_range", std::vector<double>(meta.grid.range.begin(), meta.grid.range.end()));
  h5::write_f64_attr(root, "bev_cell_size", {meta.grid.dx, meta.grid.dy});
  h5::write_i64_attr(root, "bev_shape", {meta.grid.H, meta.grid.W}, false);
  string_attr(root, "split", meta.split);
  for (const auto& [name, text] : json_attributes(meta)) string_attr(root, name.c_str(), text);
  string_attr(root, "compression", codec_json(opts.codec.level, opts.codec.shuffle, opts.codec.frame_checksum));
  string_attr(root, "created_utc", opts.created_utc.empty() ? utc_now() : opts.created_utc);

  fields.resize(layout.fields().size());
  for (std::size_t i = 0; i < layout.fields().size(); ++i) create_dataset(layout.fields()[i], fields[i]);
  offsets.resize(layout.groups().size(), std::vector<std::int64_t>{0});
}

void ShardWriter::Impl::create_dataset(const FieldLayout& f, FieldState& st) {
  h5::Handle type = h5::make_type(f.dtype, f.itemsize);
  const std::vector<std::int64_t> shape = f.dataset_shape(0);
  std::vector<hsize_t> dims(shape.begin(), shape.end());
  std::vector<hsize_t> maxdims = dims;
  maxdims[0] = H5S_UNLIMITED;
  const std::vector<std::int64_t> chunk = f.chunk_shape();
  const std::vector<hsize_t> cdims(chunk.begin(), chunk.end());
  h5::Handle space = h5::space(H5Screate_simple(static_cast<int>(dims.size()), dims.data(), maxdims.data()));
  h5::Handle dcpl = h5::plist(H5Pcreate(H5P_DATASET_CREATE));
  H5Pset_obj_track_times(dcpl.get(), 0);  // reproducible bytes (see WriterOptions::created_utc)
  H5Pset_chunk(dcpl.get(), static_cast<int>(cdims.size()), cdims.data());
  if (f.shuffled(opts.codec.shuffle)) H5Pset_shuffle(dcpl.get());
  const unsigned level = static_cast<unsigned>(opts.codec.level);
  H5Pset_filter(dcpl.get(), kZstdFilterId, H5Z_FLAG_OPTIONAL, 1, &level);
  h5::Handle lcpl = h5::plist(H5Pcreate(H5P_LINK_CREATE));
  H5Pset_create_intermediate_group(lcpl.get(), 1);
  h5::Handle dapl = h5::plist(H5Pcreate(H5P_DATASET_ACCESS));
  H5Pset_chunk_cache(dapl.get(), 0, 0, 1.0);  // chunks bypass HDF5's cache (direct chunk I/O)
  create_parent_groups(file.get(), f.name, compact());
  st.dset = h5::dataset(
      H5Dcreate2(file.get(), f.name.c_str(), type.get(), space.get(), lcpl.get(), dcpl.get(), dapl.get()));
  BEVKD_CHECK(st.dset.valid(), where(), ": cannot create dataset ", f.name, " (", h5::take_errors(), ")");
}

void ShardWriter::Impl::validate(std::int64_t index, Sample& s, std::vector<const Array*>& arrays) {
  const std::string w = where(index);
  for (const auto& [name, a] : s.fields())
    BEVKD_CHECK(layout.find(name) >= 0, w, ": unknown field \"", name, "\" (this shard's fields: ",
                layout.field_list(), ")");
  arrays.assign(layout.fields().size(), nullptr);
  std::vector<const std::vector<std::int64_t>*> group_segments(layout.groups().size(), nullptr);
  std::vector<std::string> group_first(layout.groups().size());
  for (std::size_t fi = 0; fi < layout.fields().size(); ++fi) {
    const FieldLayout& f = layout.fields()[fi];
    BEVKD_CHECK(s.has(f.name), w, ": field ", f.name, " is missing (", field_kind_name(f.kind), " ",
                f.kind == FieldKind::kString ? cat("string(", f.itemsize, ")") : std::string(dtype_name(f.dtype)),
                " ", f.kind == FieldKind::kRagged ? cat("[rows, ", shape_str(f.item_shape).substr(1)) : symbolic_shape(f),
                ")");
    Array& a = s.get(f.name);
    if (f.kind == FieldKind::kString) {
      BEVKD_CHECK(a.dtype() == DType::kString, w, ": field ", f.name, " has dtype ", dtype_name(a.dtype()),
                  ", expected strings of at most ", f.itemsize, " bytes");
      BEVKD_CHECK(a.shape() == f.item_shape, w, ": field ", f.name, " has shape ", shape_str(a.shape()),
                  ", expected ", symbolic_shape(f));
      if (a.itemsize() != f.itemsize) {  // re-pad to the schema's fixed length
        Array padded(DType::kString, a.shape(), f.itemsize);
        for (std::int64_t i = 0; i < a.numel(); ++i) {
          const std::string v = a.string_at(i);
          BEVKD_CHECK(v.size() <= f.itemsize, w, ": field ", f.name, "[", i, "] \"", v, "\" has ", v.size(),
                      " bytes, the schema allows at most ", f.itemsize);
          padded.set_string(i, v);
        }
        a = std::move(padded);
      }
      if (f.spec->exact_length)
        for (std::int64_t i = 0; i < a.numel(); ++i) {
          const std::string v = a.string_at(i);
          BEVKD_CHECK(v.size() == f.itemsize, w, ": field ", f.name, "[", i, "] \"", v, "\" has ", v.size(),
                      " characters, expected exactly ", f.itemsize);
        }
    } else {
      BEVKD_CHECK(a.dtype() == f.dtype, w, ": field ", f.name, " has dtype ", dtype_name(a.dtype()), ", expected ",
                  dtype_name(f.dtype));
    }
    if (f.kind == FieldKind::kFixed) {
      BEVKD_CHECK(a.shape() == f.item_shape, w, ": field ", f.name, " has shape ", shape_str(a.shape()),
                  ", expected ", symbolic_shape(f));
      BEVKD_CHECK(a.segments.empty(), w, ": field ", f.name, " is a fixed-shape field but has ragged segments");
    } else if (f.kind == FieldKind::kRagged) {
      const GroupLayout& g = layout.groups()[f.group];
      const bool rank_ok = a.shape().size() == 1 + f.item_shape.size() &&
                           std::equal(f.item_shape.begin(), f.item_shape.end(), a.shape().begin() + 1);
      BEVKD_CHECK(rank_ok, w, ": field ", f.name, " has shape ", shape_str(a.shape()), ", expected [",
                  f.spec->shape[0].symbol, "=rows", f.item_shape.empty() ? "" : ", ",
                  symbolic_shape(f).substr(1));
      if (a.segments.empty() && g.segments_per_sample == 1) a.segments = {a.dim(0)};
      BEVKD_CHECK(static_cast<std::int64_t>(a.segments.size()) == g.segments_per_sample, w, ": field ", f.name,
                  " has ", a.segments.size(), " ragged segments, the group ", g.name, " has ", g.segments_per_sample,
                  " per sample (", cat(f.spec->group == "depth" ? "one per camera" : "one per view"), ")");
      std::int64_t sum = 0;
      for (std::int64_t n : a.segments) {
        BEVKD_CHECK(n >= 0, w, ": field ", f.name, " has a negative segment length ", n);
        sum += n;
      }
      BEVKD_CHECK(sum == a.dim(0), w, ": field ", f.name, " has ", a.dim(0), " rows but its segments sum to ", sum);
      if (group_segments[f.group] == nullptr) {
        group_segments[f.group] = &a.segments;
        group_first[f.group] = f.name;
      } else {
        BEVKD_CHECK(*group_segments[f.group] == a.segments, w, ": field ", f.name, " has segments ",
                    shape_str(a.segments), " but ", group_first[f.group], " (same ragged group ", g.name, ") has ",
                    shape_str(*group_segments[f.group]));
      }
    }
    arrays[fi] = &a;
  }
}

void ShardWriter::Impl::submit(std::unique_ptr<SampleJob> job) {
  SampleJob* j = job.get();
  const std::int64_t i = j->index;
  // Chunks: fixed fields straight from the sample's arrays; ragged rows through the pending
  // buffer of their dataset, cut into full chunks of chunk_rows rows.
  for (std::size_t fi = 0; fi < layout.fields().size(); ++fi) {
    const FieldLayout& f = layout.fields()[fi];
    const Array& a = *j->arrays[fi];
    FieldState& st = fields[fi];
    if (f.kind != FieldKind::kRagged) {
      const std::int64_t n = f.chunks_per_sample();
      const std::size_t bytes = f.chunk_bytes();
      for (std::int64_t v = 0; v < n; ++v) {
        ChunkTask c;
        c.field = static_cast<int>(fi);
        c.offset.assign(f.item_shape.size() + 1, 0);
        c.offset[0] = static_cast<hsize_t>(i);
        if (f.per_view_chunks) c.offset[1] = static_cast<hsize_t>(v);
        c.raw = a.bytes() + static_cast<std::size_t>(v) * bytes;
        c.nbytes = bytes;
        j->chunks.push_back(std::move(c));
      }
      continue;
    }
    const std::size_t row_bytes = f.item_bytes();
    st.pending.insert(st.pending.end(), a.bytes(), a.bytes() + a.nbytes());
    st.total_rows += a.dim(0);
    const std::size_t chunk_bytes = static_cast<std::size_t>(f.chunk_rows) * row_bytes;
    std::size_t consumed = 0;
    while (st.pending.size() - consumed >= chunk_bytes && chunk_bytes > 0) {
      ChunkTask c;
      c.field = static_cast<int>(fi);
      c.offset.assign(f.item_shape.size() + 1, 0);
      c.offset[0] = static_cast<hsize_t>(st.rows_chunked);
      c.owned.assign(st.pending.begin() + consumed, st.pending.begin() + consumed + chunk_bytes);
      c.nbytes = chunk_bytes;
      consumed += chunk_bytes;
      st.rows_chunked += f.chunk_rows;
      j->chunks.push_back(std::move(c));
    }
    st.pending.erase(st.pending.begin(), st.pending.begin() + consumed);
  }
  for (std::size_t g = 0; g < layout.groups().size(); ++g) {
    const Array& a = *j->arrays[layout.groups()[g].fields.front()];
    for (std::int64_t n : a.segments) offsets[g].push_back(offsets[g].back() + n);
  }

  j->checksums.assign(layout.fields().size(), 0);
  j->remaining = static_cast<int>(j->chunks.size() + layout.fields().size());
  const bool shuffle = opts.codec.shuffle;
  for (ChunkTask& c : j->chunks) {
    const FieldLayout& f = layout.fields()[c.field];
    j->tasks.run([this, j, &c, &f, shuffle] {
      const auto t0 = std::chrono::steady_clock::now();
      try {
        encode_chunk(c.data(), c.nbytes, f.itemsize, f.shuffled(shuffle), opts.codec, &c.encoded);
      } catch (const std::exception& e) {
        j->fail(cat(where(j->index), ": field ", f.name, ": ", e.what()));
      }
      encode_s.add(seconds_since(t0));
      --j->remaining;
    });
  }
  for (std::size_t fi = 0; fi < layout.fields().size(); ++fi) {
    j->tasks.run([this, j, fi] {
      const auto t0 = std::chrono::steady_clock::now();
      const FieldLayout& f = layout.fields()[fi];
      const Array& a = *j->arrays[fi];
      j->checksums[fi] = xxh64(a.raw(), a.nbytes());
      if (opts.check_finite && dtype_is_float(a.dtype())) {
        std::int64_t first = -1;
        const std::int64_t bad = count_nonfinite(a, &first);
        if (bad > 0)
          j->fail(cat(where(j->index), ": field ", f.name, " has ", bad, " NaN/inf value", bad > 1 ? "s" : "",
                      " (first at flat index ", first, " of ", a.describe(), ")"));
      }
      checksum_s.add(seconds_since(t0));
      --j->remaining;
    });
  }
  jobs.push_back(std::move(job));
}

void ShardWriter::Impl::write_chunk(int field, const std::vector<hsize_t>& offset, const EncodedChunk& c,
                                    std::int64_t extent) {
  const FieldLayout& f = layout.fields()[field];
  FieldState& st = fields[field];
  if (st.extent < extent) {
    const std::vector<std::int64_t> shape = f.dataset_shape(extent);
    const std::vector<hsize_t> dims(shape.begin(), shape.end());
    BEVKD_CHECK(H5Dset_extent(st.dset.get(), dims.data()) >= 0, where(), ": dataset ", f.name,
                ": cannot extend to ", shape_str(shape), " (", h5::take_errors(), ")");
    st.extent = extent;
  }
  BEVKD_CHECK(H5Dwrite_chunk(st.dset.get(), H5P_DEFAULT, c.filter_mask, offset.data(), c.bytes.size(),
                             c.bytes.data()) >= 0,
              where(), ": dataset ", f.name, ": cannot write the chunk at row ", offset[0], " (",
              h5::take_errors(), ")");
  st.stored_bytes += c.bytes.size();
}

void ShardWriter::Impl::write_job(SampleJob& job) {
  job.tasks.wait();
  if (!job.error.empty()) BEVKD_FAIL(job.error);
  const auto t0 = std::chrono::steady_clock::now();
  for (const ChunkTask& c : job.chunks) {
    const FieldLayout& f = layout.fields()[c.field];
    const std::int64_t extent = f.kind == FieldKind::kRagged
                                    ? static_cast<std::int64_t>(c.offset[0]) + f.chunk_rows
                                    : job.index + 1;
    write_chunk(c.field, c.offset, c.encoded, extent);
  }
  checksums.insert(checksums.end(), job.checksums.begin(), job.checksums.end());
  for (const Array* a : job.arrays) raw_bytes += a->nbytes();
  write_s.add(seconds_since(t0));
}

void ShardWriter::Impl::drain(bool all) {
  while (!jobs.empty()) {
    SampleJob& front = *jobs.front();
    const bool must = all || static_cast<int>(jobs.size()) > std::max(1, opts.max_pending_samples);
    if (!must && front.remaining.load() > 0) break;
    try {
      write_job(front);
    } catch (...) {
      jobs.pop_front();
      throw;
    }
    jobs.pop_front();
  }
}

void ShardWriter::Impl::flush_ragged_tails() {
  std::vector<ChunkTask> tails;
  for (std::size_t fi = 0; fi < layout.fields().size(); ++fi) {
    const FieldLayout& f = layout.fields()[fi];
    FieldState& st = fields[fi];
    if (f.kind != FieldKind::kRagged || st.pending.empty()) continue;
    ChunkTask c;
    c.field = static_cast<int>(fi);
    c.offset.assign(f.item_shape.size() + 1, 0);
    c.offset[0] = static_cast<hsize_t>(st.rows_chunked);
    c.owned = std::move(st.pending);
    c.owned.resize(static_cast<std::size_t>(f.chunk_rows) * f.item_bytes());  // zero padding past the extent
    c.nbytes = c.owned.size();
    tails.push_back(std::move(c));
  }
  std::vector<std::string> errors(tails.size());
  tbb::task_group tg;
  for (std::size_t t = 0; t < tails.size(); ++t)
    tg.run([&, t] {
      ChunkTask& c = tails[t];
      const FieldLayout& f = layout.fields()[c.field];
      try {
        encode_chunk(c.data(), c.nbytes, f.itemsize, f.shuffled(opts.codec.shuffle), opts.codec, &c.encoded);
      } catch (const std::exception& e) {
        errors[t] = cat(where(), ": field ", f.name, ": ", e.what());
      }
    });
  tg.wait();
  for (const auto& e : errors) BEVKD_CHECK(e.empty(), e);
  for (const ChunkTask& c : tails) write_chunk(c.field, c.offset, c.encoded, fields[c.field].total_rows);
}

void ShardWriter::Impl::write_index_datasets() {
  auto write_contiguous = [&](const std::string& name, hid_t file_type, hid_t mem_type,
                              const std::vector<hsize_t>& dims, const void* data) {
    h5::Handle space = h5::space(H5Screate_simple(static_cast<int>(dims.size()), dims.data(), nullptr));
    h5::Handle lcpl = h5::plist(H5Pcreate(H5P_LINK_CREATE));
    H5Pset_create_intermediate_group(lcpl.get(), 1);
    h5::Handle dcpl = h5::plist(H5Pcreate(H5P_DATASET_CREATE));
    H5Pset_obj_track_times(dcpl.get(), 0);
    create_parent_groups(file.get(), name, compact());
    h5::Handle d = h5::dataset(
        H5Dcreate2(file.get(), name.c_str(), file_type, space.get(), lcpl.get(), dcpl.get(), H5P_DEFAULT));
    BEVKD_CHECK(d.valid(), where(), ": cannot create dataset ", name, " (", h5::take_errors(), ")");
    hsize_t n = 1;
    for (hsize_t x : dims) n *= x;
    if (n > 0)
      BEVKD_CHECK(H5Dwrite(d.get(), mem_type, H5S_ALL, H5S_ALL, H5P_DEFAULT, data) >= 0, where(),
                  ": cannot write dataset ", name, " (", h5::take_errors(), ")");
    return d;
  };
  for (std::size_t g = 0; g < layout.groups().size(); ++g) {
    const auto& off = offsets[g];
    write_contiguous(layout.groups()[g].offsets, H5T_STD_I64LE, H5T_NATIVE_INT64, {off.size()}, off.data());
  }
  const Schema& schema = layout.schema();
  h5::Handle d = write_contiguous(schema.checksum_dataset(), H5T_STD_U64LE, H5T_NATIVE_UINT64,
                                  {static_cast<hsize_t>(appended), layout.fields().size()}, checksums.data());
  std::vector<std::string> columns;
  for (const auto& f : layout.fields()) columns.push_back(f.name);
  string_attr(d.get(), schema.checksum_columns_attribute().c_str(), string_list_json(columns));
}

void ShardWriter::Impl::wait_all_quietly() {
  for (auto& j : jobs) {
    try {
      j->tasks.wait();
    } catch (...) {
    }
  }
  jobs.clear();
}

void ShardWriter::Impl::remove_temp() {
  for (auto& st : fields) st.dset.reset();
  file.reset();
  h5::take_errors();
  std::error_code ec;
  std::filesystem::remove(temp, ec);
}

ShardWriter::ShardWriter(std::string path, ShardMeta meta, WriterOptions opts) : impl_(std::make_unique<Impl>()) {
  impl_->path = std::move(path);
  impl_->temp = partial_path(impl_->path);
  impl_->opts = opts;
  // Taps in name order: the order a reader finds the datasets in.
  std::sort(meta.taps.begin(), meta.taps.end(), [](const TapSpec& a, const TapSpec& b) { return a.name < b.name; });
  const auto& writable = writable_schema_versions();
  BEVKD_CHECK(std::find(writable.begin(), writable.end(), opts.schema_version) != writable.end(), "shard ",
              impl_->path, ": cannot write schema version ", opts.schema_version.str(), " (this build writes ",
              [&] {
                std::string v;
                for (const auto& w : writable) v += cat(v.empty() ? "" : ", ", w.str());
                return v;
              }(),
              ")");
  impl_->layout = ShardLayout::make(meta, Schema::current(), opts.schema_version);
  impl_->meta = std::move(meta);
  const h5::SerialGuard guard;
  try {
    impl_->create();
  } catch (...) {
    impl_->remove_temp();
    throw;
  }
}

ShardWriter::~ShardWriter() {
  if (impl_ && !impl_->closed) abandon();
}

void ShardWriter::append(const Sample& sample) { append(sample.clone()); }

void ShardWriter::append(Sample&& sample) {
  Impl& m = *impl_;
  BEVKD_CHECK(!m.closed, m.where(), ": append() after close()");
  BEVKD_CHECK(m.failed.empty(), m.where(), ": append() after an earlier error (", m.failed, ")");
  h5::enter();
  const h5::SerialGuard guard;
  try {
    auto job = std::make_unique<SampleJob>();
    job->index = m.appended;
    job->sample = std::move(sample);
    m.validate(job->index, job->sample, job->arrays);
    m.submit(std::move(job));
    ++m.appended;
    m.drain(false);
  } catch (const std::exception& e) {
    m.failed = e.what();
    throw;
  }
}

ShardInfo ShardWriter::close() {
  Impl& m = *impl_;
  BEVKD_CHECK(!m.closed, m.where(), ": close() called twice");
  BEVKD_CHECK(m.failed.empty(), m.where(), ": close() after an earlier error (", m.failed, ")");
  h5::enter();
  const h5::SerialGuard guard;
  try {
    m.drain(true);
    const auto t0 = std::chrono::steady_clock::now();
    m.flush_ragged_tails();
    m.write_index_datasets();
    h5::write_i64_attr(m.file.get(), "num_samples", {m.appended}, true);  // last: marks completeness
    bool ok = true;
    for (auto& st : m.fields) ok = st.dset.reset() && ok;
    ok = H5Fflush(m.file.get(), H5F_SCOPE_GLOBAL) >= 0 && ok;
    ok = m.file.reset() && ok;
    BEVKD_CHECK(ok, m.where(), ": HDF5 failed to flush and close ", m.temp, " (", h5::take_errors(), ")");
    fsync_file(m.temp);
    rename_durable(m.temp, m.path);
    m.write_s.add(seconds_since(t0));
  } catch (const std::exception& e) {
    m.failed = e.what();
    throw;
  }
  m.closed = true;
  ShardInfo info;
  info.path = m.path;
  info.split = m.meta.split;
  info.num_samples = m.appended;
  info.bytes = file_size(m.path);
  info.xxh64 = xxh64_file(m.path);
  info.raw_bytes = m.raw_bytes;
  return info;
}

void ShardWriter::abandon() {
  Impl& m = *impl_;
  if (m.closed) return;
  m.wait_all_quietly();
  const h5::SerialGuard guard;
  m.remove_temp();
  m.closed = true;
}

std::int64_t ShardWriter::num_samples() const { return impl_->appended; }
WriterStats ShardWriter::stats() const {
  return WriterStats{impl_->encode_s.v.load(), impl_->checksum_s.v.load(), impl_->write_s.v.load()};
}
const std::string& ShardWriter::path() const { return impl_->path; }
const ShardMeta& ShardWriter::meta() const { return impl_->meta; }
const ShardLayout& ShardWriter::layout() const { return impl_->layout; }

}  // namespace bevkd::storage

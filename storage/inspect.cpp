#include "storage/inspect.h"

#include <tbb/parallel_for.h>
#include <tbb/task_arena.h>

#include <algorithm>
#include <charconv>
#include <cstdlib>
#include <cmath>
#include <filesystem>
#include <iomanip>
#include <map>
#include <mutex>
#include <ostream>
#include <set>
#include <sstream>

#include "base/error.h"
#include "schemas/shard_names.h"
#include "base/fs.h"
#include "base/progress.h"
#include "storage/codec.h"
#include "storage/manifest.h"

namespace bevkd::storage::inspect {

namespace ds = schemas::ds;
namespace {

using nlohmann::json;
namespace fs = std::filesystem;

bool ends_with(const std::string& s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// A manifest path for a directory or a .json file; empty for a shard.
std::string manifest_path_of(const std::string& path) {
  std::error_code ec;
  if (fs::is_directory(path, ec)) return Manifest::file_of(path);
  return ends_with(path, ".json") ? path : std::string();
}

std::string human_bytes(double b) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  int u = 0;
  while (b >= 1024.0 && u < 4) {
    b /= 1024.0;
    ++u;
  }
  std::ostringstream os;
  os << std::fixed << std::setprecision(u == 0 ? 0 : 1) << b << " " << units[u];
  return os.str();
}

std::string fixed(double v, int digits) {
  std::ostringstream os;
  os << std::fixed << std::setprecision(digits) << v;
  return os.str();
}

std::string pad(std::string s, std::size_t n) {
  if (s.size() < n) s.append(n - s.size(), ' ');
  return s;
}

std::string sample_token(const ShardReader& r, std::int64_t i) {
  try {
    return r.read_field(i, ds::kSampleToken).string_at(0);
  } catch (const std::exception&) {
    return "";
  }
}

// The values of an array as nested JSON lists following its shape.
json nested(const Array& a, std::size_t dim, std::int64_t& flat) {
  if (dim == a.shape().size()) {
    const std::int64_t i = flat++;
    if (a.dtype() == DType::kString) return a.string_at(i);
    const double v = a.value_as_double(i);
    if (!std::isfinite(v)) return nullptr;
    if (a.dtype() == DType::kFloat16 || a.dtype() == DType::kFloat32) {
      // The shortest decimal that reads back as the same float (not the double's 17 digits).
      char buf[32];
      const auto res = std::to_chars(buf, buf + sizeof buf, static_cast<float>(v));
      return std::strtod(std::string(buf, res.ptr).c_str(), nullptr);
    }
    if (dtype_is_float(a.dtype())) return v;
    return static_cast<std::int64_t>(v);
  }
  json list = json::array();
  for (std::int64_t k = 0; k < a.shape()[dim]; ++k) list.push_back(nested(a, dim + 1, flat));
  return list;
}

json stats(const Array& a) {
  double lo = INFINITY, hi = -INFINITY, sum = 0, sum2 = 0;
  std::int64_t zeros = 0, nonfinite = 0, finite = 0;
  for (std::int64_t i = 0; i < a.numel(); ++i) {
    const double v = a.value_as_double(i);
    if (!std::isfinite(v)) {
      ++nonfinite;
      continue;
    }
    ++finite;
    lo = std::min(lo, v);
    hi = std::max(hi, v);
    sum += v;
    sum2 += v * v;
    if (v == 0) ++zeros;
  }
  json s{{"count", a.numel()}, {"nonfinite", nonfinite}};
  if (finite > 0) {
    const double mean = sum / static_cast<double>(finite);
    s["min"] = lo;
    s["max"] = hi;
    s["mean"] = mean;
    s["std"] = std::sqrt(std::max(0.0, sum2 / static_cast<double>(finite) - mean * mean));
    s["zero_fraction"] = static_cast<double>(zeros) / static_cast<double>(a.numel());
  }
  return s;
}

// JSON with objects indented and arrays of scalars kept on one line (boxes stay readable).
void print_json(const json& j, std::ostream& out, int indent = 0) {
  const std::string pad_in(static_cast<std::size_t>(indent + 2), ' '), pad_out(static_cast<std::size_t>(indent), ' ');
  if (j.is_object()) {
    if (j.empty()) {
      out << "{}";
      return;
    }
    out << "{\n";
    std::size_t k = 0;
    for (auto it = j.begin(); it != j.end(); ++it, ++k) {
      out << pad_in << json(it.key()).dump() << ": ";
      print_json(it.value(), out, indent + 2);
      out << (k + 1 < j.size() ? ",\n" : "\n");
    }
    out << pad_out << "}";
  } else if (j.is_array() && std::any_of(j.begin(), j.end(), [](const json& e) { return e.is_structured(); })) {
    out << "[\n";
    for (std::size_t k = 0; k < j.size(); ++k) {
      out << pad_in;
      print_json(j[k], out, indent + 2);
      out << (k + 1 < j.size() ? ",\n" : "\n");
    }
    out << pad_out << "]";
  } else {
    out << j.dump();
  }
}

json summarize_manifest(const std::string& manifest_path) {
  const Manifest m = Manifest::load(manifest_path);
  json j = m.to_json();
  j["manifest"] = manifest_path;
  j["num_samples"] = m.num_samples();
  std::uint64_t bytes = 0;
  for (const auto& s : m.shards()) bytes += s.bytes;
  j["total_bytes"] = bytes;
  j["unfinished"] = find_partial_shards(m.dir());
  // Every shard is opened (metadata only): a damaged one is reported by name and the others
  // are still summarised.
  json corrupt = json::array();
  for (const auto& e : m.shards()) {
    try {
      const ShardReader r(m.shard_path(e), m.open_options(e, false));
      m.check_shard(r.header(), e, cat("shard ", m.shard_path(e)));
      if (!j.contains("first_shard")) {
        j["first_shard"] = summarize_shard(r);
        j["first_shard_path"] = e.path;
      }
    } catch (const Error& err) {
      corrupt.push_back({{"path", e.path}, {"message", err.what()}});
    }
  }
  j["corrupt_shards"] = corrupt;
  return j;
}

void print_fields(const json& s, std::ostream& out) {
  std::size_t w = 8;
  for (const json& f : s.at("fields")) w = std::max(w, f.at("name").get<std::string>().size() + 2);
  out << "  " << pad("field", w) << pad("kind", 8) << pad("dtype", 12) << pad("shape", 26) << pad("stored", 12)
      << pad("decoded", 12) << pad("ratio", 8) << "filters\n";
  for (const json& f : s.at("fields")) {
    const double stored = f.at("stored_bytes").get<double>(), raw = f.at("raw_bytes").get<double>();
    out << "  " << pad(f.at("name").get<std::string>(), w) << pad(f.at("kind").get<std::string>(), 8)
        << pad(f.at("dtype").get<std::string>(), 12) << pad(f.at("shape").dump(), 26) << pad(human_bytes(stored), 12)
        << pad(human_bytes(raw), 12) << pad(stored > 0 ? fixed(raw / stored, 2) : std::string("-"), 8)
        << f.at("filters").get<std::string>() << "\n";
  }
}

void print_shard_header(const json& s, std::ostream& out) {
  const json& g = s.at("bev_grid");
  out << "  schema       " << s.at("schema").get<std::string>() << " " << s.at("schema_version").get<std::string>()
      << "\n"
      << "  producer     " << s.at("producer").dump() << "\n"
      << "  teacher      " << s.at("teacher").dump() << "\n"
      << "  grid         range " << g.at("range").dump() << ", cell " << g.at("cell_size").dump() << " m, shape "
      << g.at("shape").dump() << " (HxW; row i <-> y, column j <-> x)\n"
      << "  views        " << s.at("num_views") << "\n"
      << "  cameras      " << s.at("camera_names").dump() << "\n"
      << "  classes      " << s.at("class_names").dump() << "\n";
}

void print_summary(const json& j, std::ostream& out) {
  if (j.contains("manifest")) {
    out << "manifest " << j.at("manifest").get<std::string>() << "\n";
    print_shard_header(json{{"schema", j.at("schema")},
                            {"schema_version", j.at("schema_version")},
                            {"producer", j.at("producer")},
                            {"teacher", j.at("teacher")},
                            {"bev_grid", j.at("bev_grid")},
                            {"num_views", j.at("num_views")},
                            {"camera_names", j.at("camera_names")},
                            {"class_names", j.at("class_names")}},
                       out);
    out << "  taps         " << j.at("taps").dump() << "\n"
        << "  samples      " << j.at("num_samples") << " in " << j.at("shards").size() << " shards, "
        << human_bytes(j.at("total_bytes").get<double>()) << "; per split " << j.at("splits").dump() << "\n"
        << "  config       " << j.at("config").dump().substr(0, 200) << (j.at("config").dump().size() > 200 ? "..." : "")
        << "\n  shards:\n";
    for (const json& s : j.at("shards"))
      out << "    " << pad(s.at("path").get<std::string>(), 34) << pad(s.at("split").get<std::string>(), 12)
          << pad(cat(s.at("num_samples").get<std::int64_t>(), " samples"), 14)
          << pad(human_bytes(s.at("bytes").get<double>()), 12) << "xxh64 " << s.at("xxh64").get<std::string>() << "\n";
    for (const json& u : j.at("unfinished"))
      out << "  warning: unfinished shard " << u.get<std::string>()
          << " (its writer was stopped before close(); not in the manifest; a rerun replaces it)\n";
    for (const json& c : j.at("corrupt_shards"))
      out << "  CORRUPT shard " << c.at("path").get<std::string>() << ": " << c.at("message").get<std::string>()
          << "\n";
    if (j.contains("first_shard")) {
      out << "  fields of " << j.at("first_shard_path").get<std::string>() << ":\n";
      print_fields(j.at("first_shard"), out);
    }
    return;
  }
  out << "shard " << j.at("path").get<std::string>() << "\n";
  print_shard_header(j, out);
  out << "  split        " << j.at("split").get<std::string>() << "\n"
      << "  samples      " << j.at("num_samples") << "\n"
      << "  created      " << j.at("created_utc").get<std::string>() << "\n"
      << "  compression  " << j.at("compression").dump() << "\n"
      << "  file         " << human_bytes(j.at("file_bytes").get<double>()) << "\n";
  for (const json& d : j.at("ignored_datasets"))
    out << "  ignored      " << d.get<std::string>() << " (from a newer minor version of the schema)\n";
  print_fields(j, out);
}

void print_verify(const json& j, std::ostream& out) {
  std::int64_t samples = 0, shards_bad = 0;
  for (const json& s : j.at("shards")) {
    samples += s.value("num_samples", std::int64_t{0});
    const bool ok = s.at("ok").get<bool>();
    shards_bad += ok ? 0 : 1;
    out << (ok ? "OK   " : "BAD  ") << s.at("path").get<std::string>() << "  " << s.value("num_samples", 0)
        << " samples, file checksum " << s.at("file_checksum").get<std::string>()
        << (s.contains("attributes") ? cat(", attributes ", s.at("attributes").get<std::string>()) : std::string())
        << "\n";
    for (const json& p : s.at("problems")) {
      out << "     ";
      if (!p.at("sample").is_null()) {
        out << "sample " << p.at("sample");
        if (!p.value("sample_token", "").empty()) out << " (token " << p.at("sample_token").get<std::string>() << ")";
        out << ", " << p.at("field").get<std::string>() << ": ";
      }
      out << p.at("message").get<std::string>() << "\n";
    }
  }
  for (const json& u : j.at("unfinished"))
    out << "warning: unfinished shard " << u.get<std::string>()
        << " (its writer was stopped before close(); not in the manifest; a rerun replaces it)\n";
  const std::int64_t bad = j.at("bad_samples").get<std::int64_t>();
  if (j.at("ok").get<bool>())
    out << "verify: OK, " << j.at("shards").size() << " shard(s), " << samples << " samples, every checksum matches\n";
  else
    out << "verify: FAILED, " << bad << " bad sample(s) in " << shards_bad << " of " << j.at("shards").size()
        << " shard(s); " << samples - bad << " of " << samples << " samples OK\n";
}

json verify_one(const std::string& path, const Manifest* m, const ManifestShard* entry, int threads) {
  bool file_ok = false;
  json s{{"path", entry ? entry->path : path},
         {"ok", true},
         {"opened", false},
         {"problems", json::array()},
         {"file_checksum", "not checked"}};
  auto problem = [&](json sample, const std::string& field, const std::string& token, const std::string& msg) {
    s["problems"].push_back({{"sample", sample}, {"sample_token", token}, {"field", field}, {"message", msg}});
    s["ok"] = false;
  };
  if (entry != nullptr) {
    s["num_samples"] = entry->num_samples;
    if (!path_exists(path)) {
      problem(nullptr, "", "", cat("shard ", path, " is listed in the manifest but missing"));
      return s;
    }
    const std::uint64_t size = file_size(path);
    const std::uint64_t h = xxh64_file(path);
    if (size == entry->bytes && h == entry->xxh64) {
      s["file_checksum"] = "ok";
      file_ok = true;
    } else {
      s["file_checksum"] = "MISMATCH";
      problem(nullptr, "", "",
              cat("shard ", path, ": the file has ", size, " bytes and xxh64 ", hex64(h), ", the manifest says ",
                  entry->bytes, " bytes and ", hex64(entry->xxh64), " (modified after it was written)"));
    }
  }
  std::unique_ptr<ShardReader> r;
  try {
    OpenOptions oo;
    oo.hash_verified_by_caller = file_ok;
    r = std::make_unique<ShardReader>(path, oo);
  } catch (const Error& e) {
    problem(nullptr, "", "", e.what());
    return s;
  }
  s["num_samples"] = r->num_samples();
  s["opened"] = true;
  // The root attributes (teacher, config, ...): a 1.2 shard keeps them in its object header,
  // whose HDF5 checksum the open just verified; a 1.0/1.1 shard keeps its string attributes in
  // HDF5's global heap, which has no checksum — only the manifest's file hash covers them.
  if (r->attributes_checksummed())
    s["attributes"] = "ok (HDF5 object-header checksum)";
  else if (file_ok)
    s["attributes"] = "ok (the manifest's file checksum)";
  else
    s["attributes"] = cat("not checked: a schema ", r->header().version.str(),
                          " shard keeps its string attributes in HDF5's global heap, which has no checksum; verify "
                          "it through its manifest (file checksum) or rewrite it with this bevkd");
  if (m != nullptr && entry != nullptr) {
    try {
      m->check_shard(r->header(), *entry, cat("shard ", path));
    } catch (const Error& e) {
      problem(nullptr, "", "", e.what());
    }
  }
  std::mutex mu;
  std::vector<SampleProblem> found;
  ProgressOptions po;
  po.unit = "samples";
  Progress progress(cat("verify ", entry ? entry->path : path), r->num_samples(), po);
  tbb::task_arena arena(std::max(1, threads));
  arena.execute([&] {
    tbb::parallel_for(std::int64_t{0}, r->num_samples(), [&](std::int64_t i) {
      std::vector<SampleProblem> p = r->verify_sample(i);
      progress.advance();
      if (p.empty()) return;
      std::lock_guard<std::mutex> lock(mu);
      found.insert(found.end(), p.begin(), p.end());
    });
  });
  progress.finish();
  std::sort(found.begin(), found.end(), [&](const SampleProblem& a, const SampleProblem& b) {
    return a.sample != b.sample ? a.sample < b.sample : r->layout().find(a.field) < r->layout().find(b.field);
  });
  for (const SampleProblem& p : found) problem(p.sample, p.field, sample_token(*r, p.sample), p.message);
  return s;
}

}  // namespace

json summarize_shard(const ShardReader& r) {
  const ShardHeader& h = r.header();
  json fields = json::array();
  for (const FieldLayout& f : r.layout().fields()) {
    const DatasetStats st = r.dataset_stats(f.name);
    fields.push_back({{"name", f.name},
                      {"kind", std::string(field_kind_name(f.kind))},
                      {"dtype", f.kind == FieldKind::kString ? cat("string(", f.itemsize, ")")
                                                             : std::string(dtype_name(f.dtype))},
                      {"shape", st.shape},
                      {"stored_bytes", st.stored_bytes},
                      {"raw_bytes", st.raw_bytes},
                      {"filters", st.filters}});
  }
  return json{{"path", r.path()},
              {"schema", Schema::current().name()},
              {"schema_version", h.version.str()},
              {"num_samples", h.num_samples},
              {"split", h.meta.split},
              {"created_utc", h.created_utc},
              {"producer", h.meta.producer},
              {"teacher", h.meta.teacher},
              {"config", h.meta.config},
              {"bev_grid", h.meta.grid.to_json()},
              {"num_views", h.meta.num_views},
              {"camera_names", h.meta.camera_names},
              {"class_names", h.meta.class_names},
              {"compression", h.compression},
              {"file_bytes", file_size(r.path())},
              {"ignored_datasets", r.ignored_datasets()},
              {"fields", fields}};
}

// Per field: stored (compressed) and decoded bytes summed over every shard, per sample, whether
// it grows with the stored views, and the projection to `frames` frames per stored view.
json storage_report(const std::string& path, std::int64_t frames) {
  std::vector<std::string> paths;
  const std::string mpath = manifest_path_of(path);
  if (mpath.empty()) {
    paths.push_back(path);
  } else {
    const Manifest m = Manifest::load(mpath);
    for (const auto& e : m.shards()) paths.push_back(m.shard_path(e));
  }
  BEVKD_CHECK(!paths.empty(), "bevkd-inspect storage: ", path, " lists no shard");
  const Schema& schema = Schema::current();
  auto group_per_view = [&](const std::string& group) {
    for (const auto& g : schema.groups())
      if (g.name == group) return std::find(g.per.begin(), g.per.end(), "V") != g.per.end();
    return false;
  };
  struct Acc {
    std::string dtype;
    double stored = 0, raw = 0;
    bool per_view = false;
  };
  std::map<std::string, Acc> acc;
  std::vector<std::string> order;
  std::int64_t samples = 0, views = -1;
  double file_bytes = 0;
  json taps = json::array();
  for (const auto& p : paths) {
    const ShardReader r(p);
    const auto& h = r.header();
    BEVKD_CHECK(views < 0 || views == h.meta.num_views, "bevkd-inspect storage: shard ", p, " stores ",
                h.meta.num_views, " views, the earlier shards ", views);
    views = h.meta.num_views;
    samples += h.num_samples;
    file_bytes += static_cast<double>(file_size(p));
    if (taps.empty())
      for (const auto& t : h.meta.taps) taps.push_back({{"name", t.name}, {"channels", t.channels}, {"dtype", std::string(dtype_name(t.dtype))}});
    for (const FieldLayout& f : r.layout().fields()) {
      const DatasetStats st = r.dataset_stats(f.name);
      if (!acc.count(f.name)) order.push_back(f.name);
      auto& a = acc[f.name];
      a.dtype = f.kind == FieldKind::kString ? cat("string(", f.itemsize, ")") : std::string(dtype_name(f.dtype));
      a.stored += static_cast<double>(st.stored_bytes);
      a.raw += static_cast<double>(st.raw_bytes);
      if (f.kind == FieldKind::kRagged && f.group >= 0)
        a.per_view = group_per_view(r.layout().groups()[static_cast<std::size_t>(f.group)].name);
      else
        a.per_view = f.spec != nullptr && f.spec->shape.size() > 1 && f.spec->shape[1].symbol == "V";
    }
  }
  const double n = static_cast<double>(std::max<std::int64_t>(samples, 1));
  const double v = static_cast<double>(std::max<std::int64_t>(views, 1));
  json fields = json::array();
  double per_view_bytes = 0, fixed_bytes = 0;
  for (const auto& name : order) {
    const auto& a = acc.at(name);
    fields.push_back({{"name", name}, {"dtype", a.dtype}, {"per_view", a.per_view},
                      {"stored_bytes_per_sample", a.stored / n}, {"decoded_bytes_per_sample", a.raw / n}});
    (a.per_view ? per_view_bytes : fixed_bytes) += a.stored / n;
  }
  // Projection: the view-independent fields once, the per-view ones once per stored view; HDF5's
  // own overhead (headers, offsets of chunks, attributes) scales with the file bytes.
  const double datasets = fixed_bytes + per_view_bytes;
  const double overhead = datasets > 0 ? (file_bytes / n) / datasets : 1.0;
  json projection = json::array();
  for (int k = 1; k <= 4; ++k) {
    const double per_sample = (fixed_bytes + per_view_bytes / v * k) * overhead;
    projection.push_back({{"views", k}, {"bytes_per_sample", per_sample},
                          {"bytes", per_sample * static_cast<double>(frames)}});
  }
  return json{{"path", path},
              {"shards", paths.size()},
              {"samples", samples},
              {"views", views},
              {"taps", taps},
              {"file_bytes_per_sample", file_bytes / n},
              {"per_view_bytes_per_sample", per_view_bytes},
              {"view_independent_bytes_per_sample", fixed_bytes},
              {"fields", fields},
              {"frames", frames},
              {"projection", projection}};
}

static void print_storage(const json& j, std::ostream& out) {
  const double v = std::max(1.0, j.at("views").get<double>());
  out << "storage " << j.at("path").get<std::string>() << ": " << j.at("samples") << " samples in " << j.at("shards")
      << " shards, " << j.at("views") << " stored view(s), taps " << j.at("taps").dump() << "\n";
  out << "  " << pad("field", 30) << pad("dtype", 12) << pad("per view", 10) << pad("stored/sample", 15)
      << pad("decoded/sample", 16) << "stored/sample/view\n";
  for (const auto& f : j.at("fields")) {
    const bool pv = f.at("per_view").get<bool>();
    const double st = f.at("stored_bytes_per_sample").get<double>();
    out << "  " << pad(f.at("name").get<std::string>(), 30) << pad(f.at("dtype").get<std::string>(), 12)
        << pad(pv ? "yes" : "no", 10) << pad(human_bytes(st), 15)
        << pad(human_bytes(f.at("decoded_bytes_per_sample").get<double>()), 16) << (pv ? human_bytes(st / v) : "-")
        << "\n";
  }
  out << "  per sample: " << human_bytes(j.at("file_bytes_per_sample").get<double>()) << " on disk ("
      << human_bytes(j.at("per_view_bytes_per_sample").get<double>()) << " per-view fields over " << j.at("views")
      << " view(s), " << human_bytes(j.at("view_independent_bytes_per_sample").get<double>())
      << " view-independent)\n";
  out << "  projected for " << j.at("frames") << " frames:";
  for (const auto& p : j.at("projection"))
    out << "  " << p.at("views") << " view" << (p.at("views").get<int>() > 1 ? "s " : " ")
        << human_bytes(p.at("bytes").get<double>());
  out << "\n";
}

json verify(const std::string& path, int threads) {
  json j{{"path", path}, {"shards", json::array()}, {"unfinished", json::array()}};
  const std::string mpath = manifest_path_of(path);
  if (!mpath.empty()) {
    const Manifest m = Manifest::load(mpath);
    for (const auto& e : m.shards()) j["shards"].push_back(verify_one(m.shard_path(e), &m, &e, threads));
    j["unfinished"] = find_partial_shards(m.dir());
  } else {
    j["shards"].push_back(verify_one(path, nullptr, nullptr, threads));
  }
  bool ok = true;
  std::int64_t bad = 0;
  for (const json& s : j["shards"]) {
    ok = ok && s.at("ok").get<bool>();
    std::set<std::int64_t> samples;
    for (const json& p : s.at("problems"))
      if (!p.at("sample").is_null()) samples.insert(p.at("sample").get<std::int64_t>());
    // A shard that cannot be opened has no readable sample.
    bad += s.at("opened").get<bool>() ? static_cast<std::int64_t>(samples.size()) : s.value("num_samples", std::int64_t{0});
  }
  j["ok"] = ok;
  j["bad_samples"] = bad;
  return j;
}

json dump_sample(const ShardReader& r, std::int64_t sample, const std::vector<std::string>& selectors,
                 std::int64_t full_max) {
  BEVKD_CHECK(sample >= 0 && sample < r.num_samples(), "shard ", r.path(), ": sample ", sample,
              " out of range (the shard has ", r.num_samples(), " samples)");
  json fields = json::object();
  for (int fi : r.select(selectors)) {
    const FieldLayout& f = r.layout().fields()[fi];
    json e{{"kind", std::string(field_kind_name(f.kind))}};
    try {
      ReadOptions opts;
      opts.verify = true;
      const Array a = r.read_fields(sample, {fi}, opts).take(f.name);
      e["dtype"] = f.kind == FieldKind::kString ? cat("string(", f.itemsize, ")") : std::string(dtype_name(a.dtype()));
      e["shape"] = a.shape();
      if (!a.segments.empty()) e["segments"] = a.segments;
      e["checksum"] = "ok";
      if (a.numel() <= full_max || a.dtype() == DType::kString) {
        std::int64_t flat = 0;
        e["values"] = nested(a, 0, flat);
      } else {
        e["stats"] = stats(a);
      }
    } catch (const Error& err) {
      e["error"] = err.what();
    }
    fields[f.name] = e;
  }
  return json{{"shard", r.path()}, {"sample", sample}, {"fields", fields}};
}

int run(const Config& cfg, std::ostream& out) {
  BEVKD_CHECK(!cfg.path.empty(), "bevkd-inspect ", cfg.command,
              ": no shard or manifest given (the positional argument, or config key path)");
  BEVKD_CHECK(cfg.command != "render" || !cfg.out.empty(), "bevkd-inspect render: no output PNG given (-o/--out)");
  if (cfg.command == "summary") {
    const std::string mpath = manifest_path_of(cfg.path);
    const json j = mpath.empty() ? summarize_shard(ShardReader(cfg.path)) : summarize_manifest(mpath);
    if (cfg.json) out << j.dump(2) << "\n";
    else print_summary(j, out);
    return j.contains("corrupt_shards") && !j.at("corrupt_shards").empty() ? kExitBadData : kExitOk;
  }
  if (cfg.command == "storage") {
    BEVKD_CHECK(cfg.frames >= 1, "bevkd-inspect storage: --frames must be >= 1, got ", cfg.frames);
    const json j = storage_report(cfg.path, cfg.frames);
    if (cfg.json) out << j.dump(2) << "\n";
    else print_storage(j, out);
    return kExitOk;
  }
  if (cfg.command == "verify") {
    const json j = verify(cfg.path, cfg.threads);
    if (cfg.json) out << j.dump(2) << "\n";
    else print_verify(j, out);
    return j.at("ok").get<bool>() ? kExitOk : kExitBadData;
  }
  if (cfg.command == "dump") {
    const ShardReader r(cfg.path);
    const json j = dump_sample(r, cfg.sample, cfg.selectors, cfg.full_max);
    print_json(j, out);
    out << "\n";
    // A field that failed to decode or its checksum: the dump shows the error; the exit code says so.
    for (const auto& [name, f] : j.at("fields").items())
      if (f.contains("error")) return kExitBadData;
    return kExitOk;
  }
  if (cfg.command == "render") {
    BEVKD_CHECK(!cfg.out.empty(), "render: an output PNG path is required (-o out.png)");
    const ShardReader r(cfg.path);
    const Canvas c = render_sample(r, cfg.sample, cfg.render);
    c.save_png(cfg.out);
    out << "wrote " << cfg.out << " (" << c.width() << "x" << c.height() << " px)\n";
    return kExitOk;
  }
  BEVKD_FAIL("unknown command \"", cfg.command, "\" (expected summary, verify, dump, render or storage)");
}

}  // namespace bevkd::storage::inspect

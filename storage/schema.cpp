#include "storage/schema.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <set>

#include "base/error.h"
#include "schemas/embedded.h"

namespace bevkd::storage {
namespace {

using nlohmann::json;

constexpr std::string_view kTapPlaceholder = "{tap}";

// Typed access to a JSON object with errors that name the schema file and the key path.
class Obj {
 public:
  Obj(const json& j, std::string where) : j_(j), where_(std::move(where)) {
    BEVKD_CHECK(j_.is_object(), where_, ": expected a JSON object, found ", j_.type_name());
  }
  bool has(const char* key) const { return j_.contains(key); }
  const json& at(const char* key) const {
    BEVKD_CHECK(j_.contains(key), where_, ": missing key \"", key, "\"");
    return j_.at(key);
  }
  std::string str(const char* key) const {
    const json& v = at(key);
    BEVKD_CHECK(v.is_string(), where_, ".", key, ": expected a string, found ", v.type_name());
    return v.get<std::string>();
  }
  std::string str_or(const char* key, const std::string& dflt) const { return has(key) ? str(key) : dflt; }
  std::int64_t i64(const char* key) const {
    const json& v = at(key);
    BEVKD_CHECK(v.is_number_integer(), where_, ".", key, ": expected an integer, found ", v.type_name());
    return v.get<std::int64_t>();
  }
  std::int64_t i64_or(const char* key, std::int64_t dflt) const { return has(key) ? i64(key) : dflt; }
  bool boolean_or(const char* key, bool dflt) const {
    if (!has(key)) return dflt;
    const json& v = at(key);
    BEVKD_CHECK(v.is_boolean(), where_, ".", key, ": expected true/false, found ", v.type_name());
    return v.get<bool>();
  }
  std::vector<std::string> strings_or_empty(const char* key) const {
    std::vector<std::string> out;
    if (!has(key)) return out;
    const json& v = at(key);
    BEVKD_CHECK(v.is_array(), where_, ".", key, ": expected an array, found ", v.type_name());
    for (const json& e : v) {
      BEVKD_CHECK(e.is_string(), where_, ".", key, ": expected strings, found ", e.type_name());
      out.push_back(e.get<std::string>());
    }
    return out;
  }
  const std::string& where() const { return where_; }

 private:
  const json& j_;
  std::string where_;
};

// Whether `c` is in a character set written as ranges and single characters: "a-z0-9_".
bool in_charset(char c, const std::string& set) {
  for (std::size_t i = 0; i < set.size(); ++i) {
    if (i + 2 < set.size() && set[i + 1] == '-') {
      if (c >= set[i] && c <= set[i + 2]) return true;
      i += 2;
    } else if (c == set[i]) {
      return true;
    }
  }
  return false;
}

bool valid_tap_name(std::string_view tap, const DatasetSpec& spec) {
  if (tap.empty()) return false;
  if (spec.tap_first.empty()) return tap.find('/') == std::string_view::npos;
  if (spec.tap_max_length > 0 && tap.size() > spec.tap_max_length) return false;
  if (!in_charset(tap[0], spec.tap_first)) return false;
  return std::all_of(tap.begin() + 1, tap.end(), [&](char c) { return in_charset(c, spec.tap_rest); });
}

}  // namespace

std::string SchemaVersion::str() const { return cat(major, ".", minor); }

SchemaVersion SchemaVersion::parse(std::string_view text, std::string_view where) {
  const std::size_t dot = text.find('.');
  const auto digits = [](std::string_view d) {
    return !d.empty() && d.size() <= 4 && d.find_first_not_of("0123456789") == std::string_view::npos;
  };
  BEVKD_CHECK(dot != std::string_view::npos && digits(text.substr(0, dot)) && digits(text.substr(dot + 1)), where,
              ": schema version \"", text, "\" is not of the form <major>.<minor>");
  return SchemaVersion{std::stoi(std::string(text.substr(0, dot))), std::stoi(std::string(text.substr(dot + 1)))};
}

std::string VersionRange::str() const {
  if (!has_until) return cat(since.str(), " and later");
  if (until == since) return cat(since.str(), " only");
  return cat(since.str(), " to ", until.str());
}

std::string SchemaDim::str() const { return is_symbol() ? symbol : std::to_string(value); }

std::string_view field_kind_name(FieldKind k) {
  switch (k) {
    case FieldKind::kFixed: return "fixed";
    case FieldKind::kString: return "string";
    case FieldKind::kRagged: return "ragged";
  }
  return "?";
}

bool DatasetSpec::is_pattern() const { return name.find(kTapPlaceholder) != std::string::npos; }

std::string DatasetSpec::instantiate(std::string_view tap) const {
  std::string out = name;
  const auto pos = out.find(kTapPlaceholder);
  if (pos != std::string::npos) out.replace(pos, kTapPlaceholder.size(), tap);
  return out;
}

bool DatasetSpec::matches(std::string_view dataset, std::string* tap) const {
  if (!is_pattern()) return dataset == name;
  const auto pos = name.find(kTapPlaceholder);
  const std::string_view prefix = std::string_view(name).substr(0, pos);
  const std::string_view suffix = std::string_view(name).substr(pos + kTapPlaceholder.size());
  if (dataset.size() <= prefix.size() + suffix.size()) return false;
  if (dataset.substr(0, prefix.size()) != prefix) return false;
  if (dataset.substr(dataset.size() - suffix.size()) != suffix) return false;
  const std::string_view t = dataset.substr(prefix.size(), dataset.size() - prefix.size() - suffix.size());
  if (!valid_tap_name(t, *this)) return false;
  if (tap) *tap = std::string(t);
  return true;
}

std::string DatasetSpec::tap_rule() const {
  if (tap_first.empty()) return "any name without '/'";
  return cat("first character ", tap_first, ", then ", tap_rest,
             tap_max_length > 0 ? cat(", at most ", tap_max_length, " characters") : std::string());
}

bool DatasetSpec::accepts_dtype(DType t) const {
  return t == dtype || std::find(alt_dtypes.begin(), alt_dtypes.end(), t) != alt_dtypes.end();
}

const Schema& Schema::current() {
  static const Schema schema = parse(schemas::shard_v1_json(), schemas::kShardV1Source);
  return schema;
}

Schema Schema::parse(std::string_view json_text, std::string_view source) {
  Schema s;
  s.source_ = std::string(source);
  json root;
  try {
    root = json::parse(json_text.begin(), json_text.end());
  } catch (const json::exception& e) {
    BEVKD_FAIL(source, ": not valid JSON (", e.what(), ")");
  }
  const Obj top(root, s.source_);
  s.name_ = top.str("schema");
  {
    const Obj v(top.at("version"), cat(source, ".version"));
    s.version_ = SchemaVersion{static_cast<int>(v.i64("major")), static_cast<int>(v.i64("minor"))};
  }
  // A "since"/"until" pair of an entry; versions must be of this major and not newer than it.
  const auto version_range = [&](const Obj& o, const VersionRange* inherited) {
    VersionRange r = inherited != nullptr ? *inherited : VersionRange{};
    if (inherited == nullptr) r.since = SchemaVersion{s.version_.major, 0};
    const auto parse = [&](const char* key) {
      const SchemaVersion v = SchemaVersion::parse(o.str(key), cat(o.where(), ".", key));
      BEVKD_CHECK(v.major == s.version_.major && v <= s.version_, o.where(), ".", key, ": version ", v.str(),
                  " is not a version of this schema (", s.version_.str(), ")");
      return v;
    };
    if (o.has("since")) r.since = parse("since");
    if (o.has("until")) {
      r.has_until = true;
      r.until = parse("until");
      BEVKD_CHECK(r.since <= r.until, o.where(), ": until ", r.until.str(), " is before since ", r.since.str());
    }
    return r;
  };
  if (top.has("history")) {
    for (const json& h : top.at("history")) {
      const Obj o(h, cat(source, ".history"));
      s.versions_.push_back(SchemaVersion::parse(o.str("version"), o.where()));
    }
    BEVKD_CHECK(!s.versions_.empty() && s.versions_.back() == s.version_, source,
                ".history must end with the schema's version ", s.version_.str());
  } else {
    s.versions_.push_back(s.version_);
  }
  s.compact_since_ = SchemaVersion{s.version_.major, s.version_.minor + 1};  // none unless stated
  if (top.has("layout")) {
    const Obj l(top.at("layout"), cat(source, ".layout"));
    s.compact_since_ = SchemaVersion::parse(l.str("compact_since"), cat(l.where(), ".compact_since"));
  }

  const json& dims = top.at("dims");
  BEVKD_CHECK(dims.is_object(), source, ".dims: expected an object");
  for (const auto& [name, val] : dims.items()) {
    const Obj d(val, cat(source, ".dims.", name));
    DimSpec spec;
    spec.name = name;
    spec.doc = d.str_or("doc", "");
    spec.min = d.i64_or("min", 0);
    if (d.has("value")) {
      spec.from = DimSpec::From::kValue;
      spec.value = d.i64("value");
    } else {
      const std::string from = d.str("from");
      if (from == "attribute") {
        spec.from = DimSpec::From::kAttribute;
        spec.attribute = d.str("attribute");
        spec.index = static_cast<int>(d.i64_or("index", -1));
      } else if (from == "dataset") {
        spec.from = DimSpec::From::kDataset;
      } else if (from == "ragged") {
        spec.from = DimSpec::From::kRagged;
      } else {
        BEVKD_FAIL(d.where(), ".from: unknown source \"", from, "\" (expected attribute, dataset or ragged)");
      }
    }
    s.dims_[name] = spec;
  }

  for (const json& a : top.at("attributes")) {
    const Obj o(a, cat(source, ".attributes[", s.attributes_.size(), "]"));
    AttributeSpec spec;
    spec.name = o.str("name");
    spec.type = o.str("type");
    BEVKD_CHECK(spec.type == "string" || spec.type == "int64" || spec.type == "float64" || spec.type == "json",
                o.where(), ": attribute ", spec.name, " has unknown type \"", spec.type, "\"");
    if (o.has("shape"))
      for (const json& d : o.at("shape")) spec.shape.push_back(d.get<std::int64_t>());
    spec.required = o.boolean_or("required", true);
    spec.value = o.str_or("value", "");
    spec.required_keys = o.strings_or_empty("required_keys");
    spec.doc = o.str_or("doc", "");
    s.attributes_.push_back(std::move(spec));
  }

  {
    const Obj f(top.at("filters"), cat(source, ".filters"));
    for (const json& e : f.at("allowed")) {
      const Obj o(e, cat(f.where(), ".allowed"));
      s.filters_.push_back(FilterSpec{static_cast<int>(o.i64("id")), o.str("name")});
    }
  }
  {
    const Obj c(top.at("checksums"), cat(source, ".checksums"));
    s.checksum_dataset_ = c.str("dataset");
    s.checksum_columns_attr_ = c.str("columns_attribute");
  }

  for (const json& g : top.at("ragged_groups")) {
    const Obj o(g, cat(source, ".ragged_groups[", s.groups_.size(), "]"));
    RaggedGroupSpec spec;
    spec.name = o.str("name");
    spec.offsets = o.str("offsets");
    spec.per = o.strings_or_empty("per");
    spec.rows = o.str("rows");
    spec.required = o.boolean_or("required", true);
    spec.doc = o.str_or("doc", "");
    spec.versions = version_range(o, nullptr);
    BEVKD_CHECK(!spec.per.empty() && spec.per[0] == "N", o.where(), ": \"per\" must start with N");
    for (const auto& p : spec.per)
      BEVKD_CHECK(s.dims_.count(p), o.where(), ": \"per\" names unknown dimension ", p);
    BEVKD_CHECK(s.dims_.count(spec.rows), o.where(), ": unknown rows dimension ", spec.rows);
    s.groups_.push_back(std::move(spec));
  }

  std::set<std::string> names;
  for (const json& d : top.at("datasets")) {
    const Obj o(d, cat(source, ".datasets[", s.datasets_.size(), "]"));
    DatasetSpec spec;
    spec.name = o.str("name");
    const std::string where = cat(source, ": dataset ", spec.name);
    BEVKD_CHECK(names.insert(spec.name).second, where, " is defined twice");
    const std::string kind = o.str("kind");
    if (kind == "fixed") spec.kind = FieldKind::kFixed;
    else if (kind == "string") spec.kind = FieldKind::kString;
    else if (kind == "ragged") spec.kind = FieldKind::kRagged;
    else BEVKD_FAIL(where, ": unknown kind \"", kind, "\" (expected fixed, string or ragged)");

    if (spec.kind == FieldKind::kString) {
      spec.dtype = DType::kString;
      spec.string_length = static_cast<std::size_t>(o.i64("length"));
      spec.exact_length = o.boolean_or("exact_length", false);
      BEVKD_CHECK(spec.string_length > 0, where, ": length must be > 0");
    } else {
      spec.dtype = dtype_from_name(o.str("dtype"), where);
      for (const auto& n : o.strings_or_empty("alt_dtypes")) spec.alt_dtypes.push_back(dtype_from_name(n, where));
    }
    for (const json& e : o.at("shape")) {
      SchemaDim dim;
      if (e.is_string()) {
        dim.symbol = e.get<std::string>();
        BEVKD_CHECK(s.dims_.count(dim.symbol), where, ": shape names unknown dimension ", dim.symbol);
      } else {
        BEVKD_CHECK(e.is_number_integer() && e.get<std::int64_t>() > 0, where,
                    ": shape entries must be dimension names or positive integers");
        dim.value = e.get<std::int64_t>();
      }
      spec.shape.push_back(dim);
    }
    BEVKD_CHECK(!spec.shape.empty(), where, ": empty shape");
    spec.required = o.boolean_or("required", true);
    spec.min_count = o.i64_or("min_count", 0);
    if (o.has("tap_name")) {
      const Obj t(o.at("tap_name"), cat(where, ".tap_name"));
      spec.tap_first = t.str("first");
      spec.tap_rest = t.str("rest");
      spec.tap_max_length = static_cast<std::size_t>(t.i64_or("max_length", 0));
    }
    spec.known_taps = o.strings_or_empty("known_taps");
    spec.present_iff = o.str_or("present_iff", "");
    spec.doc = o.str_or("doc", "");
    spec.units = o.str_or("units", "");
    spec.frame = o.str_or("frame", "");
    spec.written_by = o.str_or("written_by", "");
    if (spec.kind == FieldKind::kRagged) {
      spec.chunk = ChunkKind::kRows;
      spec.group = o.str("group");
      spec.chunk_rows = o.i64("chunk_rows");
      BEVKD_CHECK(spec.chunk_rows > 0, where, ": chunk_rows must be > 0");
      const auto g = std::find_if(s.groups_.begin(), s.groups_.end(),
                                  [&](const RaggedGroupSpec& r) { return r.name == spec.group; });
      BEVKD_CHECK(g != s.groups_.end(), where, ": unknown ragged group ", spec.group);
      BEVKD_CHECK(spec.shape[0].symbol == g->rows, where, ": the first dimension must be the group's rows symbol ",
                  g->rows);
      spec.versions = version_range(o, &g->versions);
      BEVKD_CHECK(g->versions.since <= spec.versions.since &&
                      (!g->versions.has_until || (spec.versions.has_until && spec.versions.until <= g->versions.until)),
                  where, ": exists in versions ", spec.versions.str(), ", outside its group's ", g->versions.str());
    } else {
      BEVKD_CHECK(spec.shape[0].symbol == "N", where, ": the first dimension must be N");
      const std::string chunk = o.str("chunk");
      if (chunk == "sample") spec.chunk = ChunkKind::kSample;
      else if (chunk == "sample_view") spec.chunk = ChunkKind::kSampleView;
      else BEVKD_FAIL(where, ": unknown chunk \"", chunk, "\" (expected sample or sample_view)");
      if (spec.chunk == ChunkKind::kSampleView)
        BEVKD_CHECK(spec.shape.size() >= 2 && spec.shape[1].symbol == "V", where,
                    ": chunk sample_view needs V as the second dimension");
      spec.versions = version_range(o, nullptr);
    }
    s.datasets_.push_back(std::move(spec));
  }
  return s;
}

const DatasetSpec* Schema::find_dataset(std::string_view dataset, std::string* tap) const {
  for (const auto& d : datasets_)
    if (d.matches(dataset, tap)) return &d;
  return nullptr;
}

const DatasetSpec& Schema::dataset(std::string_view name) const {
  for (const auto& d : datasets_)
    if (d.name == name) return d;
  BEVKD_FAIL(source_, ": no dataset ", name, " in schema ", name_, " ", version_.str());
}

const RaggedGroupSpec& Schema::group(std::string_view name) const {
  for (const auto& g : groups_)
    if (g.name == name) return g;
  BEVKD_FAIL(source_, ": no ragged group ", name, " in schema ", name_, " ", version_.str());
}

const RaggedGroupSpec* Schema::group_with_offsets(std::string_view offsets_dataset) const {
  for (const auto& g : groups_)
    if (g.offsets == offsets_dataset) return &g;
  return nullptr;
}

const AttributeSpec* Schema::find_attribute(std::string_view name) const {
  for (const auto& a : attributes_)
    if (a.name == name) return &a;
  return nullptr;
}

const DimSpec& Schema::dim(std::string_view name) const {
  auto it = dims_.find(name);
  BEVKD_CHECK(it != dims_.end(), source_, ": no dimension ", name);
  return it->second;
}

std::int64_t Schema::constant(std::string_view name) const {
  const DimSpec& d = dim(name);
  BEVKD_CHECK(d.from == DimSpec::From::kValue, source_, ": dimension ", name, " is not a constant");
  return d.value;
}

std::string Schema::missing_field_message(std::string_view field, SchemaVersion found, std::string_view where) const {
  std::string tap;
  const DatasetSpec* d = find_dataset(field, &tap);
  if (d == nullptr || d->versions.contains(found)) return "";
  if (found < d->versions.since)
    return cat(where, ": field ", field, " is not in shards of schema version ", found.str(), ": it came with schema ",
               d->versions.since.str(),
               d->written_by.empty() ? std::string() : cat(" (", d->written_by, " writes it from ", d->versions.since.str(), " on)"),
               "; rewrite the shards with this bevkd to have it");
  return cat(where, ": field ", field, " is not in shards of schema version ", found.str(), ": it exists only in schema ",
             d->versions.str());
}

void Schema::check_readable(SchemaVersion found, std::string_view where) const {
  BEVKD_CHECK(found.major == version_.major, where, ": schema version ", found.str(), " has major version ",
              found.major, ", this build reads major version ", version_.major, " only (",
              name_, " ", version_.str(), "); ",
              found.major > version_.major ? "use a newer bevkd to read it"
                                           : "rewrite the shard with this bevkd");
}

}  // namespace bevkd::storage

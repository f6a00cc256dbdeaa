#include "storage/manifest.h"

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <map>
#include <set>

#include "base/config.h"
#include "base/error.h"
#include "base/fs.h"
#include "storage/codec.h"

namespace bevkd::storage {
namespace {

using nlohmann::json;
namespace fs = std::filesystem;

constexpr const char* kFormat = "bevkd.manifest";
constexpr int kFormatVersion = 1;
// The keys of ShardMeta::identity_json(), stored at the top level of the manifest.
constexpr const char* kIdentityKeys[] = {"bev_grid",    "num_views", "taps",    "fd3d_points", "camera_names",
                                         "class_names", "teacher",   "producer", "config"};


}  // namespace

Manifest::Manifest(const ShardMeta& meta) : identity_(meta.identity_json()) {}

void Manifest::add(const ShardInfo& info, const std::string& root) {
  const fs::path rel = fs::path(info.path).lexically_proximate(root).lexically_normal();
  const std::string r = rel.generic_string();
  BEVKD_CHECK(!rel.is_absolute() && r.rfind("..", 0) != 0, "manifest: shard ", info.path,
              " does not lie inside the manifest's directory ", root);
  add(ManifestShard{r, info.split, info.num_samples, info.bytes, info.xxh64});
}

void Manifest::add(ManifestShard shard) {
  for (const auto& s : shards_)
    BEVKD_CHECK(s.path != shard.path, "manifest: shard ", shard.path, " is already listed");
  BEVKD_CHECK(!shard.path.empty() && shard.path[0] != '/' && shard.path.find("..") == std::string::npos,
              "manifest: shard path \"", shard.path, "\" must be relative to the manifest's directory, without ..");
  BEVKD_CHECK(shard.path.size() < std::strlen(kPartialSuffix) ||
                  shard.path.compare(shard.path.size() - std::strlen(kPartialSuffix), std::string::npos,
                                     kPartialSuffix) != 0,
              "manifest: ", shard.path, " is an unfinished shard and cannot be listed");
  shards_.push_back(std::move(shard));
}

std::vector<std::string> Manifest::splits() const {
  std::vector<std::string> out;
  for (const auto& s : shards_)
    if (std::find(out.begin(), out.end(), s.split) == out.end()) out.push_back(s.split);
  return out;
}

std::int64_t Manifest::num_samples(std::string_view split) const {
  std::int64_t n = 0;
  for (const auto& s : shards_)
    if (split.empty() || s.split == split) n += s.num_samples;
  return n;
}

BevGrid Manifest::grid() const {
  BEVKD_CHECK(identity_.contains("bev_grid"), "manifest has no bev_grid");
  return BevGrid::from_json(identity_.at("bev_grid"), "manifest bev_grid");
}

std::int64_t Manifest::num_views() const { return identity_.value("num_views", std::int64_t{1}); }

std::vector<TapSpec> Manifest::taps() const {
  std::vector<TapSpec> out;
  if (!identity_.contains("taps")) return out;
  for (const json& t : identity_.at("taps"))
    out.push_back(TapSpec{t.at("name").get<std::string>(), t.at("channels").get<std::int64_t>(),
                          dtype_from_name(t.at("dtype").get<std::string>(), "manifest taps")});
  return out;
}

std::string Manifest::shard_path(const ManifestShard& s) const { return (fs::path(dir_) / s.path).string(); }

OpenOptions Manifest::open_options(const ManifestShard& s, bool check_hash) const {
  OpenOptions o;
  o.expected_bytes = s.bytes;
  o.expected_xxh64 = s.xxh64;
  o.check_hash = check_hash;
  return o;
}

void Manifest::check_shard(const ShardHeader& h, const ManifestShard& entry, std::string_view where) const {
  BEVKD_CHECK(h.version.major == schema_version_.major, where, ": schema version ", h.version.str(),
              ", the manifest says ", schema_version_.str());
  const json id = h.meta.identity_json();
  const std::string diff = config::first_difference(identity_, id, "manifest", "shard");
  BEVKD_CHECK(diff.empty(), where, ": differs from the manifest at ", diff);
  BEVKD_CHECK(h.num_samples == entry.num_samples, where, ": has ", h.num_samples, " samples, the manifest says ",
              entry.num_samples);
  BEVKD_CHECK(h.meta.split == entry.split, where, ": split is ", h.meta.split, ", the manifest says ", entry.split);
}

json Manifest::to_json() const {
  json j{{"format", kFormat},
         {"format_version", kFormatVersion},
         {"schema", Schema::current().name()},
         {"schema_version", schema_version_.str()}};
  for (const char* k : kIdentityKeys)
    if (identity_.contains(k)) j[k] = identity_.at(k);
  json splits = json::object();
  for (const auto& s : this->splits()) splits[s] = num_samples(s);
  j["splits"] = splits;
  json shards = json::array();
  for (const auto& s : shards_)
    shards.push_back({{"path", s.path},
                      {"split", s.split},
                      {"num_samples", s.num_samples},
                      {"bytes", s.bytes},
                      {"xxh64", hex64(s.xxh64)}});
  j["shards"] = shards;
  json skipped = json::array();
  for (const auto& k : skipped_)
    skipped.push_back({{"sample_token", k.sample_token},
                       {"split", k.split},
                       {"shard", k.shard},
                       {"reason", k.reason},
                       {"files", k.files}});
  j["skipped_samples"] = skipped;
  return j;
}

Manifest Manifest::from_json(const json& j, std::string_view source) {
  Manifest m;
  BEVKD_CHECK(j.is_object(), source, ": expected a JSON object");
  BEVKD_CHECK(j.value("format", "") == kFormat, source, ": \"format\" is ", j.value("format", json()).dump(),
              ", expected \"", kFormat, "\"");
  BEVKD_CHECK(j.value("format_version", -1) == kFormatVersion, source, ": format_version ",
              j.value("format_version", json()).dump(), " is not supported (this build reads ", kFormatVersion, ")");
  BEVKD_CHECK(j.value("schema", "") == Schema::current().name(), source, ": schema is ",
              j.value("schema", json()).dump(), ", expected \"", Schema::current().name(), "\"");
  BEVKD_CHECK(j.contains("schema_version") && j.at("schema_version").is_string(), source,
              ": missing schema_version");
  m.schema_version_ = SchemaVersion::parse(j.at("schema_version").get<std::string>(), source);
  Schema::current().check_readable(m.schema_version_, source);
  for (const char* k : kIdentityKeys) {
    BEVKD_CHECK(j.contains(k), source, ": missing \"", k, "\"");
    m.identity_[k] = j.at(k);
  }
  BevGrid::from_json(j.at("bev_grid"), cat(source, ": bev_grid"));
  BEVKD_CHECK(j.contains("shards") && j.at("shards").is_array(), source, ": \"shards\" must be an array");
  std::size_t idx = 0;
  for (const json& s : j.at("shards")) {
    const std::string w = cat(source, ": shards[", idx++, "]");
    try {
      ManifestShard e;
      e.path = s.at("path").get<std::string>();
      e.split = s.at("split").get<std::string>();
      e.num_samples = s.at("num_samples").get<std::int64_t>();
      e.bytes = s.at("bytes").get<std::uint64_t>();
      e.xxh64 = parse_hex64(s.at("xxh64").get<std::string>(), cat(w, ".xxh64"));
      BEVKD_CHECK(e.num_samples >= 0, w, ": num_samples is ", e.num_samples);
      m.add(std::move(e));
    } catch (const json::exception& e) {
      BEVKD_FAIL(w, ": expected {path, split, num_samples, bytes, xxh64} (", e.what(), ")");
    } catch (const Error& e) {
      BEVKD_FAIL(w, ": ", e.what());
    }
  }
  if (j.contains("skipped_samples")) {
    BEVKD_CHECK(j.at("skipped_samples").is_array(), source, ": \"skipped_samples\" must be an array");
    idx = 0;
    for (const json& k : j.at("skipped_samples")) {
      const std::string w = cat(source, ": skipped_samples[", idx++, "]");
      try {
        SkippedSample e;
        e.sample_token = k.at("sample_token").get<std::string>();
        e.split = k.at("split").get<std::string>();
        e.shard = k.at("shard").get<std::string>();
        e.reason = k.at("reason").get<std::string>();
        e.files = k.value("files", std::vector<std::string>{});
        m.skipped_.push_back(std::move(e));
      } catch (const json::exception& e) {
        BEVKD_FAIL(w, ": expected {sample_token, split, shard, reason, files} (", e.what(), ")");
      }
    }
  }
  return m;
}

std::string Manifest::file_of(const std::string& shards) {
  const std::string_view json = ".json";
  if (shards.size() >= json.size() && shards.compare(shards.size() - json.size(), json.size(), json) == 0) return shards;
  const std::string m = (std::filesystem::path(shards) / kFileName).string();
  std::error_code ec;
  BEVKD_CHECK(!std::filesystem::is_directory(shards, ec) || std::filesystem::exists(m, ec), shards,
              " is a directory without a ", kFileName);
  return m;
}

Manifest Manifest::load(const std::string& path) {
  const std::string text = read_file(path);
  json j;
  try {
    j = json::parse(text);
  } catch (const json::exception& e) {
    BEVKD_FAIL(path, ": not valid JSON (", e.what(), ")");
  }
  Manifest m = from_json(j, path);
  const fs::path parent = fs::path(path).parent_path();
  m.dir_ = parent.empty() ? "." : parent.string();
  return m;
}

void Manifest::save(const std::string& path) const { write_file_atomic(path, to_json().dump(2) + "\n"); }

Manifest Manifest::merge(const std::vector<std::pair<std::string, Manifest>>& parts) {
  BEVKD_CHECK(!parts.empty(), "manifest merge: no partial manifests given");
  Manifest out;
  out.schema_version_ = parts[0].second.schema_version_;
  out.identity_ = parts[0].second.identity_;
  out.dir_ = parts[0].second.dir_;
  std::map<std::string, std::string> owner;  // shard path -> source
  for (const auto& [name, m] : parts) {
    BEVKD_CHECK(m.schema_version_.major == out.schema_version_.major &&
                    m.schema_version_.minor == out.schema_version_.minor,
                "manifest merge: ", name, " has schema version ", m.schema_version_.str(), ", ", parts[0].first,
                " has ", out.schema_version_.str());
    const std::string diff = config::first_difference(out.identity_, m.identity_, parts[0].first.c_str(), name.c_str());
    BEVKD_CHECK(diff.empty(), "manifest merge: ", parts[0].first, " and ", name, " differ at ", diff);
    for (const auto& s : m.shards_) {
      auto [it, inserted] = owner.emplace(s.path, name);
      BEVKD_CHECK(inserted, "manifest merge: shard ", s.path, " is listed by both ", it->second, " and ", name);
      out.shards_.push_back(s);
    }
    out.skipped_.insert(out.skipped_.end(), m.skipped_.begin(), m.skipped_.end());
  }
  return out;
}

std::string worker_manifest_name(int worker_index, int num_workers) {
  BEVKD_CHECK(num_workers >= 1 && worker_index >= 0 && worker_index < num_workers, "worker index ", worker_index,
              " out of range for ", num_workers, " workers");
  char buf[64];
  std::snprintf(buf, sizeof buf, "manifest.worker-%03d-of-%03d.json", worker_index, num_workers);
  return buf;
}

}  // namespace bevkd::storage

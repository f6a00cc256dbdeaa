#include "storage/shard_meta.h"

#include <algorithm>
#include <cmath>
#include <set>

#include "base/error.h"

#ifndef BEVKD_VERSION
#define BEVKD_VERSION "unknown"
#endif
#ifndef BEVKD_GIT_DESCRIBE
#define BEVKD_GIT_DESCRIBE ""
#endif

namespace bevkd::storage {
namespace {

using nlohmann::json;

}  // namespace

void ShardMeta::validate(std::string_view where, const Schema& schema) const {
  grid.validate(where);
  BEVKD_CHECK(num_views >= schema.dim("V").min, where, ": num_views is ", num_views, ", expected >= ",
              schema.dim("V").min);
  BEVKD_CHECK(!split.empty(), where, ": split is empty");
  const std::int64_t cams = schema.constant("CAM");
  BEVKD_CHECK(static_cast<std::int64_t>(camera_names.size()) == cams, where, ": ", camera_names.size(),
              " camera names given, the schema stores ", cams, " cameras");
  const std::int64_t classes = schema.constant("K");
  BEVKD_CHECK(static_cast<std::int64_t>(class_names.size()) == classes, where, ": ", class_names.size(),
              " class names given, the schema has K = ", classes, " classes");
  const DatasetSpec& features = schema.dataset("teacher/features/{tap}");
  BEVKD_CHECK(static_cast<std::int64_t>(taps.size()) >= features.min_count, where, ": ", taps.size(),
              " teacher taps given, the schema needs at least ", features.min_count, " (known taps: neck, head_shared)");
  std::set<std::string> seen;
  for (const TapSpec& t : taps) {
    BEVKD_CHECK(features.matches(features.instantiate(t.name)), where, ": teacher tap name \"", t.name,
                "\" is not allowed (", features.tap_rule(), ")");
    BEVKD_CHECK(seen.insert(t.name).second, where, ": teacher tap ", t.name, " listed twice");
    BEVKD_CHECK(t.channels > 0, where, ": teacher tap ", t.name, " has ", t.channels, " channels");
    BEVKD_CHECK(features.accepts_dtype(t.dtype), where, ": teacher tap ", t.name, " has dtype ",
                dtype_name(t.dtype), ", the schema accepts float16 or int8");
  }
  BEVKD_CHECK(fd3d_points >= 0, where, ": fd3d_points is ", fd3d_points);
  auto check_json = [&](const char* name, const json& value) {
    const AttributeSpec* spec = schema.find_attribute(name);
    BEVKD_ASSERT(spec != nullptr, name);
    BEVKD_CHECK(value.is_object(), where, ": attribute ", name, " must be a JSON object, found ", value.dump());
    for (const auto& key : spec->required_keys)
      BEVKD_CHECK(value.contains(key), where, ": attribute ", name, " lacks the key \"", key, "\" (found ",
                  value.dump(), ")");
  };
  check_json("producer", producer);
  check_json("teacher", teacher);
  check_json("config", config);
}

const TapSpec* ShardMeta::find_tap(std::string_view name) const {
  for (const auto& t : taps)
    if (t.name == name) return &t;
  return nullptr;
}

json ShardMeta::identity_json() const {
  std::vector<TapSpec> sorted = taps;  // tap order is not part of the identity
  std::sort(sorted.begin(), sorted.end(), [](const TapSpec& a, const TapSpec& b) { return a.name < b.name; });
  json taps_json = json::array();
  for (const auto& t : sorted)
    taps_json.push_back({{"name", t.name}, {"channels", t.channels}, {"dtype", dtype_name(t.dtype)}});
  return json{{"bev_grid", grid.to_json()}, {"num_views", num_views},     {"taps", taps_json},
              {"fd3d_points", fd3d_points}, {"camera_names", camera_names}, {"class_names", class_names}, {"teacher", teacher},
              {"producer", producer},       {"config", config}};
}

std::string string_list_json(const std::vector<std::string>& values) { return json(values).dump(); }

std::vector<std::string> parse_string_list(std::string_view text, std::string_view where, std::string_view what) {
  json j;
  try {
    j = json::parse(text.begin(), text.end());
  } catch (const json::exception& e) {
    BEVKD_FAIL(where, ": ", what, " is not valid JSON (", e.what(), ")");
  }
  BEVKD_CHECK(j.is_array() && std::all_of(j.begin(), j.end(), [](const json& e) { return e.is_string(); }), where,
              ": ", what, " must be a JSON array of strings, found ", text);
  return j.get<std::vector<std::string>>();
}

std::string codec_json(int level, bool shuffle, bool frame_checksum) {
  return json{{"codec", "zstd"}, {"level", level}, {"shuffle", shuffle}, {"frame_checksum", frame_checksum}}.dump();
}

std::vector<std::pair<std::string, std::string>> json_attributes(const ShardMeta& meta) {
  return {{"camera_names", string_list_json(meta.camera_names)},
          {"class_names", string_list_json(meta.class_names)},
          {"producer", meta.producer.dump()},
          {"teacher", meta.teacher.dump()},
          {"config", meta.config.dump()}};
}

void apply_json_attributes(const std::map<std::string, std::string, std::less<>>& texts, const Schema& schema,
                           std::string_view where, ShardMeta* meta, json* compression) {
  std::map<std::string, json, std::less<>> parsed;
  for (const auto& [name, text] : texts) {
    const AttributeSpec* spec = schema.find_attribute(name);
    if (spec == nullptr || spec->type != "json") continue;
    json& j = parsed[name];
    try {
      j = json::parse(text);
    } catch (const json::exception& e) {
      BEVKD_FAIL(where, ": attribute ", name, " is not valid JSON (", e.what(), ")");
    }
    for (const auto& key : spec->required_keys)
      BEVKD_CHECK(j.is_object() && j.contains(key), where, ": attribute ", name, " lacks the key \"", key,
                  "\" (found ", text, ")");
  }
  const auto object = [&](const char* name) {
    auto it = parsed.find(name);
    BEVKD_CHECK(it != parsed.end(), where, ": required attribute ", name, " is missing");
    BEVKD_CHECK(it->second.is_object(), where, ": attribute ", name, " must be a JSON object, found ",
                it->second.dump());
    return it->second;
  };
  meta->camera_names = parse_string_list(texts.at("camera_names"), where, "attribute camera_names");
  meta->class_names = parse_string_list(texts.at("class_names"), where, "attribute class_names");
  meta->producer = object("producer");
  meta->teacher = object("teacher");
  meta->config = object("config");
  *compression = object("compression");
}

json producer_info(std::string_view program) {
  json p{{"program", std::string(program)}, {"version", BEVKD_VERSION}};
  const std::string git = BEVKD_GIT_DESCRIBE;
  if (!git.empty()) p["git"] = git;
  return p;
}

}  // namespace bevkd::storage

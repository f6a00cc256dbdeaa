// What a shard says about itself: the file attributes of schemas/shard_v1.json (grid, cameras,
// producer, teacher, config) plus the parameters that fix its dataset shapes (views, teacher
// taps, FD3D sampling points). The writer takes a ShardMeta; the reader gives one back in its
// ShardHeader; the manifest keeps the parts every shard of a dataset must share.
#pragma once

#include <array>
#include <map>
#include <utility>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "base/bev_grid.h"
#include "storage/array.h"
#include "storage/schema.h"

namespace bevkd::storage {

// One teacher feature tap: teacher/features/<name> [N, V, channels, H, W] of dtype float16, or
// int8 with teacher/feature_scales/<name> [N, V, channels] float32.
struct TapSpec {
  std::string name;
  std::int64_t channels = 0;
  DType dtype = DType::kFloat16;
  bool operator==(const TapSpec& o) const {
    return name == o.name && channels == o.channels && dtype == o.dtype;
  }
};

struct ShardMeta {
  std::string split;                       // train, val, mini_train, ...
  BevGrid grid;                            // the teacher's output grid (base/bev_grid.h)
  std::int64_t num_views = 1;              // V
  std::vector<TapSpec> taps;               // at least one; stored (and read back) in name order
  std::int64_t fd3d_points = 0;            // Q of fd3d/sampling_points; 0: no fd3d group
  std::vector<std::string> camera_names;   // CAM names in storage order
  std::vector<std::string> class_names;    // K class names, label order (DESIGN.md "Classes")
  nlohmann::json producer = nlohmann::json::object();  // {"program", "version", "git"}
  nlohmann::json teacher = nlohmann::json::object();   // {"name", ...}: identifies the teacher
  nlohmann::json config = nlohmann::json::object();    // the full resolved producing config

  // Throws bevkd::Error naming `where` and the bad value (schema attributes' required keys,
  // tap names, camera count, views).
  void validate(std::string_view where, const Schema& schema = Schema::current()) const;
  const TapSpec* find_tap(std::string_view name) const;
  // The parts two shards of one dataset must share (grid, views, taps, fd3d, cameras, teacher,
  // producer, config), as JSON; a manifest stores and compares this.
  nlohmann::json identity_json() const;
};

// A shard's header as the reader found it.
struct ShardHeader {
  SchemaVersion version;
  std::int64_t num_samples = 0;
  ShardMeta meta;
  nlohmann::json compression;  // {"codec", "level", "shuffle", "frame_checksum"}
  std::string created_utc;
};

// {"program": program, "version": <bevkd version>, "git": <git describe at configure time>}
nlohmann::json producer_info(std::string_view program);

// The JSON-valued file attributes of a shard as text (camera_names, class_names, producer,
// teacher, config), for the writer.
std::vector<std::pair<std::string, std::string>> json_attributes(const ShardMeta& meta);
// Fills the JSON-valued parts of `meta` from attribute texts (name -> JSON text), checking
// their types and the schema's required keys; throws bevkd::Error naming `where` and the
// attribute. (JSON parsing lives here so that the reader's and writer's translation units do
// not instantiate the JSON library.)
void apply_json_attributes(const std::map<std::string, std::string, std::less<>>& texts, const Schema& schema,
                           std::string_view where, ShardMeta* meta, nlohmann::json* compression);
// ["a","b"] and back (the back direction checks it is an array of strings, naming `what`).
std::string string_list_json(const std::vector<std::string>& values);
std::vector<std::string> parse_string_list(std::string_view text, std::string_view where, std::string_view what);
// {"codec":"zstd","level":..,"shuffle":..,"frame_checksum":..}
std::string codec_json(int level, bool shuffle, bool frame_checksum);

}  // namespace bevkd::storage

// The 13 nuScenes v1.0 tables (spec/nuscenes.md §(a)) loaded into compact, index-linked
// records, with the devkit's derived joins (`NuScenes.__make_reverse_index__`).
//
// Layout on disk: <dataroot>/<version>/<table>.json, each a JSON array of records with a
// `token` primary key. Every token is interned once per table (TokenColumn) and every foreign
// key is stored as a uint32 record index into the referenced table (kNone for the empty token
// "" of prev/next). Nothing keeps a per-record map or a per-record std::string for the large
// tables (ego_pose, sample_data, sample_annotation): tokens and file names live in contiguous
// character arenas. Files are streamed in chunks of whole records that are parsed on worker
// threads (simdjson on-demand) and appended in file order, so the peak memory is the loaded
// tables plus a few chunks: a trainval-sized table set (~2.5 M sample_data, ~1.2 M
// annotations) loads in seconds with less memory than its JSON (bench/nuscenes_tables_bench.cpp).
//
// Derived joins, exactly as the devkit builds them:
//  * sample_annotation.category_name   = category(instance(ann).category).name
//  * sample_data.channel / modality    = sensor(calibrated_sensor(sd).sensor)
//  * sample.data[channel]               = the KEY FRAME sample_data of that channel (the last one
//                                         in table order if several, like the devkit's dict)
//  * sample.anns                        = annotation indices in sample_annotation TABLE order
//  * log.map                            = the map whose log_tokens list the log (kNone if none)
//
// Errors (bevkd::Error) name the file, the record (index and token), the field, what was
// expected and what was found: a missing table file, malformed JSON, a wrong JSON type, a
// missing field, a NaN or infinite coordinate, a duplicate token, and a dangling foreign key
// ("... field instance_token refers to instance token "abc..." which is not in instance.json").
//
// Reading is strict about what the devkit reads and lenient about the rest: unknown fields are
// ignored, `category.index` (lidarseg only) is optional, integer-valued numbers are accepted
// where floats are expected (never the other way round).
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "core/geometry.h"

namespace bevkd::core::nusc {

// "No record": the foreign key of an empty token ("" for prev/next at the ends of a chain).
inline constexpr std::uint32_t kNone = 0xFFFFFFFFu;

// The 13 tables the devkit's NuScenes class opens (all are required).
enum class Table : int {
  kCategory,
  kAttribute,
  kVisibility,
  kInstance,
  kSensor,
  kCalibratedSensor,
  kEgoPose,
  kLog,
  kScene,
  kSample,
  kSampleData,
  kSampleAnnotation,
  kMap,
};
inline constexpr int kNumTables = 13;
// File stem of a table, e.g. "sample_annotation" (the file is "<stem>.json").
std::string_view table_name(Table t);

// A read-only view of `n` contiguous values (C++17 has no std::span).
template <typename T>
struct Span {
  const T* ptr = nullptr;
  std::size_t n = 0;
  const T* begin() const { return ptr; }
  const T* end() const { return ptr + n; }
  std::size_t size() const { return n; }
  bool empty() const { return n == 0; }
  const T& operator[](std::size_t i) const { return ptr[i]; }
};

// The tokens of one table: characters in one arena (no per-token offsets while every token has
// the same length, as the 32-hex tokens of real tables do) and an open-addressing hash index
// whose 8-byte slots hold the record index and a fingerprint of the token's hash, so a probe
// touches the characters only to confirm a match.
class TokenColumn {
 public:
  std::uint32_t size() const { return size_; }
  std::size_t char_count() const { return chars_.size(); }
  std::string_view operator[](std::uint32_t i) const {
    if (fixed_len_ >= 0) return {chars_.data() + static_cast<std::size_t>(i) * static_cast<std::size_t>(fixed_len_),
                                 static_cast<std::size_t>(fixed_len_)};
    return {chars_.data() + offsets_[i], static_cast<std::size_t>(offsets_[i + 1] - offsets_[i])};
  }
  // Record index of `token`, or kNone.
  std::uint32_t find(std::string_view token) const;

  // Building: add() every token in record order, then build_index(). add() returns the index.
  void reserve(std::size_t records, std::size_t chars);
  std::uint32_t add(std::string_view token);
  // Builds the hash index; returns kNone, or the index of the first record whose token
  // repeats an earlier one (and stores the earlier index in *first).
  std::uint32_t build_index(std::uint32_t* first);
  std::size_t memory_bytes() const;

 private:
  std::string chars_;
  std::uint32_t size_ = 0;
  int fixed_len_ = -1;                  // length of every token so far (-1: none yet or mixed)
  bool mixed_ = false;                  // lengths differ: offsets_ is used
  std::vector<std::uint64_t> offsets_;  // size()+1 entries once mixed_
  std::vector<std::uint64_t> slots_;    // 0 = empty, else (fingerprint << 32) | (index + 1)
};

// ---- records (field names follow the JSON; foreign keys are record indices) -----------------

struct Category {
  std::string name;         // e.g. "vehicle.car" (23 object categories in v1.0)
  std::string description;
  int index = -1;           // lidarseg class index; -1 when the table has no `index`
};

struct Attribute {
  std::string name;  // e.g. "vehicle.moving"
  std::string description;
};

struct Visibility {
  std::string level;  // "v0-40", "v40-60", "v60-80", "v80-100" (tokens "1".."4" in real data)
  std::string description;
};

struct Instance {
  std::uint32_t category = kNone;
  std::int32_t nbr_annotations = 0;
  std::uint32_t first_annotation = kNone;
  std::uint32_t last_annotation = kNone;
};

struct Sensor {
  std::string channel;   // "LIDAR_TOP", "CAM_FRONT", "RADAR_FRONT", ...
  std::string modality;  // "lidar", "camera", "radar"
  std::uint16_t channel_id = 0;  // index into NuScenes::channels() (derived)
};

struct CalibratedSensor {
  std::uint32_t sensor = kNone;
  Vec3 translation{0, 0, 0};  // sensor origin in the ego frame, m
  Quat rotation;              // sensor -> ego, [w, x, y, z]
  bool has_intrinsic = false;  // camera_intrinsic is [] for lidar and radar
  std::array<double, 9> camera_intrinsic{};  // K row-major (pixels), cameras only
  // sensor -> ego: p_ego = R(rotation) p_sensor + translation.
  Rigid sensor_to_ego() const { return Rigid::from_pose(translation, rotation); }
};

struct EgoPose {
  std::int64_t timestamp = 0;  // µs
  Vec3 translation{0, 0, 0};   // ego origin in the global frame, m
  Quat rotation;               // ego -> global
  // ego -> global: p_global = R(rotation) p_ego + translation.
  Rigid ego_to_global() const { return Rigid::from_pose(translation, rotation); }
};

struct Log {
  std::string logfile;        // e.g. "n015-2018-07-24-11-22-45+0800"
  std::string vehicle;
  std::string date_captured;  // "YYYY-MM-DD"
  std::string location;       // e.g. "singapore-onenorth"
  std::uint32_t map = kNone;  // derived: the map listing this log
};

struct Map {
  std::string category;  // "semantic_prior"
  std::string filename;  // "maps/<hash>.png", relative to the dataroot
  std::vector<std::string> log_tokens;
};

struct Scene {
  std::string name;  // "scene-0061"
  std::string description;
  std::uint32_t log = kNone;
  std::int32_t nbr_samples = 0;
  std::uint32_t first_sample = kNone;
  std::uint32_t last_sample = kNone;
};

struct Sample {
  std::int64_t timestamp = 0;  // µs (the LIDAR_TOP key-frame time)
  std::uint32_t scene = kNone;
  std::uint32_t prev = kNone;
  std::uint32_t next = kNone;
};

struct SampleData {
  std::uint32_t sample = kNone;  // key frames: their sample; sweeps: the following key frame's
  std::uint32_t ego_pose = kNone;
  std::uint32_t calibrated_sensor = kNone;
  std::uint32_t prev = kNone;  // previous frame of the same sensor (key frames and sweeps)
  std::uint32_t next = kNone;
  std::int64_t timestamp = 0;  // µs
  std::int32_t width = 0;      // image size in pixels (0 for lidar and radar)
  std::int32_t height = 0;
  bool is_key_frame = false;
  std::uint8_t fileformat = 0;  // index into NuScenes' fileformat strings ("pcd", "jpg")
  std::uint16_t channel_id = 0;  // derived: NuScenes::channels()[channel_id]
};

struct SampleAnnotation {
  std::uint32_t sample = kNone;
  std::uint32_t instance = kNone;
  std::uint32_t visibility = kNone;  // kNone if the token is "" (not in real data)
  std::uint32_t prev = kNone;        // the same instance's annotation in the previous sample
  std::uint32_t next = kNone;
  std::uint32_t attributes_begin = 0;  // into NuScenes::annotation_attributes()
  std::uint32_t attributes_count = 0;
  std::int32_t num_lidar_pts = 0;
  std::int32_t num_radar_pts = 0;
  Vec3 translation{0, 0, 0};  // box centre, global frame, m
  Vec3 size{0, 0, 0};         // [w, l, h], m
  Quat rotation;              // box -> global, [w, x, y, z]
  // The box in nuScenes form (global frame); velocity left NaN (see NuScenes::box_velocity).
  NuscBox box() const;
};

struct LoadOptions {
  bool show_progress = false;  // a Progress line over the 13 tables (stderr)
  // Threads for large tables: 1 parses on the calling thread; n >= 2 parses on n - 1 workers
  // (at most 8) while the calling thread reads, cuts and appends chunks. 0: the hardware
  // concurrency when it is above 2, else 1.
  int threads = 0;
  std::size_t chunk_bytes = 8u << 20;  // records are parsed in chunks of about this size
};

// The loaded database. Immutable after load(); safe to share between threads.
class NuScenes {
 public:
  // Loads <dataroot>/<version>/*.json. Throws bevkd::Error (see the file comment).
  static NuScenes load(const std::string& dataroot, const std::string& version, const LoadOptions& opts = {});

  const std::string& dataroot() const { return dataroot_; }
  const std::string& version() const { return version_; }
  std::string table_path(Table t) const;  // <dataroot>/<version>/<table>.json

  // ---- tables, in file order ----
  const std::vector<Category>& category() const { return category_; }
  const std::vector<Attribute>& attribute() const { return attribute_; }
  const std::vector<Visibility>& visibility() const { return visibility_; }
  const std::vector<Instance>& instance() const { return instance_; }
  const std::vector<Sensor>& sensor() const { return sensor_; }
  const std::vector<CalibratedSensor>& calibrated_sensor() const { return calibrated_sensor_; }
  const std::vector<EgoPose>& ego_pose() const { return ego_pose_; }
  const std::vector<Log>& log() const { return log_; }
  const std::vector<Scene>& scene() const { return scene_; }
  const std::vector<Sample>& sample() const { return sample_; }
  const std::vector<SampleData>& sample_data() const { return sample_data_; }
  const std::vector<SampleAnnotation>& sample_annotation() const { return sample_annotation_; }
  const std::vector<Map>& map() const { return map_; }

  // ---- tokens ----
  const TokenColumn& tokens(Table t) const { return tokens_[static_cast<int>(t)]; }
  std::string_view token(Table t, std::uint32_t index) const { return tokens(t)[index]; }
  std::uint32_t find(Table t, std::string_view token) const { return tokens(t).find(token); }
  // Like find() but throws bevkd::Error naming the table and the token when it is absent.
  std::uint32_t at(Table t, std::string_view token) const;

  // ---- derived joins (see the file comment) ----
  // sample_annotation.category_name.
  std::string_view category_name(std::uint32_t ann) const;
  // The annotation's attribute indices (into attribute()), in JSON order.
  Span<std::uint32_t> attributes_of(std::uint32_t ann) const;
  // sample.anns: annotation indices of a sample in sample_annotation table order.
  Span<std::uint32_t> sample_anns(std::uint32_t sample) const;
  // sample.data[channel]: the key-frame sample_data of `channel`, or kNone.
  std::uint32_t key_frame(std::uint32_t sample, std::string_view channel) const;
  // sample_data.channel / sensor_modality / filename (relative to the dataroot) / fileformat.
  std::string_view channel(std::uint32_t sd) const { return channels_[sample_data_[sd].channel_id]; }
  std::string_view sensor_modality(std::uint32_t sd) const;
  std::string_view filename(std::uint32_t sd) const {
    return {filenames_.data() + filename_offsets_[sd],
            static_cast<std::size_t>(filename_offsets_[sd + 1] - filename_offsets_[sd])};
  }
  std::string_view fileformat(std::uint32_t sd) const { return fileformats_[sample_data_[sd].fileformat]; }
  // Distinct sensor channel names in sensor-table order.
  const std::vector<std::string>& channels() const { return channels_; }
  // Index of a channel in channels(), or -1.
  int channel_id(std::string_view channel) const;

  // ---- what the evaluator and the loaders need ----
  // Scene name of a sample.
  const std::string& scene_name(std::uint32_t sample) const { return scene_[sample_[sample].scene].name; }
  // Samples of a split (split_scene_names(): predefined lists with the version check, or
  // <dataroot>/<version>/splits.json) in SAMPLE TABLE order.
  std::vector<std::uint32_t> split_samples(const std::string& split) const;
  // Samples of the given scenes (by name) in sample table order; unknown names are ignored.
  std::vector<std::uint32_t> samples_of_scenes(const std::vector<std::string>& scene_names) const;
  // The devkit's NuScenes.box_velocity (spec §(c)): global-frame velocity [vx, vy, vz] in m/s
  // from the previous and next annotation of the instance (the annotation itself where one is
  // missing), sample timestamps converted to seconds before subtracting; NaN (all three) if
  // the annotation has no neighbour or dt > max_time_diff (2 * max_time_diff with both).
  Vec3 box_velocity(std::uint32_t ann, double max_time_diff = 1.5) const;
  // The ego pose of the sample's LIDAR_TOP key frame (the eval's ego distance reference).
  // Throws bevkd::Error naming the sample if it has no LIDAR_TOP key frame.
  const EgoPose& lidar_key_pose(std::uint32_t sample) const;

  // Record counts per table and the memory held ("category 23, ..., 412.3 MB").
  std::string summary() const;
  std::size_t memory_bytes() const;

 private:
  friend class TablesLoader;

  std::string dataroot_, version_;
  std::array<TokenColumn, kNumTables> tokens_;
  std::vector<Category> category_;
  std::vector<Attribute> attribute_;
  std::vector<Visibility> visibility_;
  std::vector<Instance> instance_;
  std::vector<Sensor> sensor_;
  std::vector<CalibratedSensor> calibrated_sensor_;
  std::vector<EgoPose> ego_pose_;
  std::vector<Log> log_;
  std::vector<Scene> scene_;
  std::vector<Sample> sample_;
  std::vector<SampleData> sample_data_;
  std::vector<SampleAnnotation> sample_annotation_;
  std::vector<Map> map_;

  std::string filenames_;                       // sample_data.filename arena
  std::vector<std::uint64_t> filename_offsets_;  // size sample_data + 1
  std::vector<std::string> fileformats_;
  std::vector<std::string> channels_;
  std::vector<std::uint32_t> annotation_attributes_;  // attribute indices, sliced per annotation
  std::vector<std::uint32_t> anns_offsets_;           // CSR over samples: size sample + 1
  std::vector<std::uint32_t> anns_;                   // annotation indices grouped by sample
  std::vector<std::uint32_t> key_frames_;             // [sample * channels + channel] -> sd or kNone
};

}  // namespace bevkd::core::nusc

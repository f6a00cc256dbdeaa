// The shard schema, parsed from the JSON in schemas/ (embedded at build time, see
// schemas/embedded.h). The writer, the reader, bevkd-inspect and the tests all go through this
// class; none of them spells the layout out again. schemas/SHARD_FORMAT.md is the human spec.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "storage/array.h"

namespace bevkd::storage {

struct SchemaVersion {
  int major = 0;
  int minor = 0;
  std::string str() const;  // "1.0"
  // Parses "<major>.<minor>"; throws bevkd::Error naming `where` on anything else.
  static SchemaVersion parse(std::string_view text, std::string_view where);
  bool operator==(const SchemaVersion& o) const { return major == o.major && minor == o.minor; }
  bool operator!=(const SchemaVersion& o) const { return !(*this == o); }
  bool operator<(const SchemaVersion& o) const { return major != o.major ? major < o.major : minor < o.minor; }
  bool operator<=(const SchemaVersion& o) const { return !(o < *this); }
};

// The minor versions a dataset or group exists in: [since, until] (until open = every later one).
struct VersionRange {
  SchemaVersion since{1, 0};
  bool has_until = false;
  SchemaVersion until;
  bool contains(SchemaVersion v) const { return since <= v && (!has_until || v <= until); }
  std::string str() const;  // "1.1 and later", "1.0 only", "1.0 to 1.3"
};

// How a dimension of a dataset shape gets its value.
struct DimSpec {
  enum class From { kValue, kAttribute, kDataset, kRagged };
  std::string name;
  std::string doc;
  From from = From::kValue;
  std::int64_t value = -1;   // kValue
  std::string attribute;     // kAttribute: the file attribute holding it
  int index = -1;            // kAttribute: element of an array attribute (-1: scalar)
  std::int64_t min = 0;
};

// One entry of a dataset shape: a symbol ("N", "C_tap") or a literal (9).
struct SchemaDim {
  std::string symbol;        // empty for a literal
  std::int64_t value = -1;   // the literal
  bool is_symbol() const { return !symbol.empty(); }
  std::string str() const;
};

struct AttributeSpec {
  std::string name;
  std::string type;                  // "string", "int64", "float64" or "json"
  std::vector<std::int64_t> shape;   // array attributes ([6]); empty for a scalar
  bool required = true;
  std::string value;                 // a required exact value (schema_name), else empty
  std::vector<std::string> required_keys;  // json attributes: keys the object must have
  std::string doc;
};

enum class FieldKind { kFixed, kString, kRagged };
std::string_view field_kind_name(FieldKind k);

// How a fixed dataset is chunked: one chunk per sample, or one per (sample, view).
enum class ChunkKind { kSample, kSampleView, kRows };

struct DatasetSpec {
  std::string name;                  // may contain "{tap}"
  FieldKind kind = FieldKind::kFixed;
  DType dtype = DType::kFloat32;
  std::vector<DType> alt_dtypes;     // other accepted dtypes (int8 teacher features)
  std::vector<SchemaDim> shape;      // full dataset shape; [0] is N, or the rows symbol if ragged
  ChunkKind chunk = ChunkKind::kSample;
  std::int64_t chunk_rows = 0;       // ragged
  std::size_t string_length = 0;     // kString
  bool exact_length = false;         // kString: every value has exactly string_length bytes
  std::string group;                 // ragged: its RaggedGroupSpec
  bool required = true;              // ragged: required when its group is present
  std::int64_t min_count = 0;        // patterns: at least this many instances
  // Patterns: the characters a tap name may use, as sets of ranges ("a-z0-9_"): its first
  // character from `tap_first`, the others from `tap_rest`; empty = any name without '/'.
  std::string tap_first, tap_rest;
  std::size_t tap_max_length = 0;
  std::string tap_rule() const;  // "first a-z, then a-z0-9_, at most 48 characters"
  std::vector<std::string> known_taps;
  std::string present_iff;           // conditional datasets (documentation; enforced in code)
  std::string doc, units, frame;
  VersionRange versions;             // schema versions that have it (a group's range if it says none)
  std::string written_by;            // the producer that writes it (for "missing field" messages)

  bool is_pattern() const;
  std::string instantiate(std::string_view tap) const;  // "{tap}" -> tap
  // True if `dataset` is this spec's name (a pattern matches any valid tap; *tap gets it).
  bool matches(std::string_view dataset, std::string* tap = nullptr) const;
  bool accepts_dtype(DType t) const;
};

struct RaggedGroupSpec {
  std::string name;
  std::string offsets;            // the int64 offsets dataset, length prod(per) + 1
  std::vector<std::string> per;   // ["N"], ["N", "V"], ["N", "CAM"]
  std::string rows;               // the rows symbol
  bool required = true;
  std::string doc;
  VersionRange versions;
};

struct FilterSpec {
  int id = 0;
  std::string name;
};

class Schema {
 public:
  // The schema this build was compiled with (schemas/shard_v1.json, embedded).
  static const Schema& current();
  // Parses schema JSON; throws bevkd::Error naming `source` and the offending key.
  static Schema parse(std::string_view json_text, std::string_view source);

  const std::string& name() const { return name_; }
  SchemaVersion version() const { return version_; }
  const std::string& source() const { return source_; }
  const std::vector<DatasetSpec>& datasets() const { return datasets_; }
  const std::vector<RaggedGroupSpec>& groups() const { return groups_; }
  const std::vector<AttributeSpec>& attributes() const { return attributes_; }
  const std::map<std::string, DimSpec, std::less<>>& dims() const { return dims_; }
  const std::vector<FilterSpec>& allowed_filters() const { return filters_; }
  const std::string& checksum_dataset() const { return checksum_dataset_; }
  const std::string& checksum_columns_attribute() const { return checksum_columns_attr_; }

  // The spec a dataset name belongs to (patterns included), or nullptr.
  const DatasetSpec* find_dataset(std::string_view dataset, std::string* tap = nullptr) const;
  const DatasetSpec& dataset(std::string_view name) const;  // exact spec name; throws if absent
  const RaggedGroupSpec& group(std::string_view name) const;
  const RaggedGroupSpec* group_with_offsets(std::string_view offsets_dataset) const;
  const AttributeSpec* find_attribute(std::string_view name) const;
  const DimSpec& dim(std::string_view name) const;
  // The value of a constant dimension ("K" -> 10); throws if it is not a constant.
  std::int64_t constant(std::string_view dim) const;

  // Throws bevkd::Error (naming `where`) unless a file of `found` can be read with this schema:
  // same major version. A newer minor is accepted (its extra datasets are ignored).
  void check_readable(SchemaVersion found, std::string_view where) const;

  // The first version whose files keep every group's links and the root's attributes in the
  // object header and write fixed-length string attributes (schema "layout.compact_since").
  SchemaVersion compact_layout_since() const { return compact_since_; }
  // Every version of this major, oldest first (from "history").
  const std::vector<SchemaVersion>& versions() const { return versions_; }

  // For a field a reader asked for that a shard of version `found` does not have: "" when
  // `field` is not a dataset of this schema or exists in `found`, else the complete message
  // ("<where>: field teacher/class_probs is not in shards of schema version 1.0: it came with
  // schema 1.1 (bevkd-precompute run writes it from 1.1 on); rewrite the shards with this bevkd
  // to have it").
  std::string missing_field_message(std::string_view field, SchemaVersion found, std::string_view where) const;

 private:
  std::string source_;
  std::string name_;
  SchemaVersion version_;
  std::map<std::string, DimSpec, std::less<>> dims_;
  std::vector<AttributeSpec> attributes_;
  std::vector<FilterSpec> filters_;
  std::vector<RaggedGroupSpec> groups_;
  std::vector<DatasetSpec> datasets_;
  std::string checksum_dataset_;
  std::string checksum_columns_attr_;
  SchemaVersion compact_since_;
  std::vector<SchemaVersion> versions_;
};

}  // namespace bevkd::storage

// The concrete datasets of one shard: the schema's (pattern) entries resolved against a
// ShardMeta (which taps, how many views, whether the optional fd3d group is there), with their
// dtypes, per-sample shapes and chunking. Writer and reader both derive it the same way, so a
// file is valid exactly when its datasets match the layout its own attributes imply.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "storage/array.h"
#include "storage/schema.h"
#include "storage/shard_meta.h"

namespace bevkd::storage {

struct FieldLayout {
  std::string name;              // dataset path, e.g. "teacher/features/neck"
  const DatasetSpec* spec = nullptr;
  FieldKind kind = FieldKind::kFixed;
  DType dtype = DType::kFloat32;
  std::size_t itemsize = 0;      // bytes per element (the fixed length for strings)
  // fixed / string: the shape of one sample (the dataset shape without N), e.g. [V, C, H, W];
  // ragged: the shape of one row (without the rows dimension), e.g. [9] or [].
  std::vector<std::int64_t> item_shape;
  bool per_view_chunks = false;  // fixed: one chunk per (sample, view) instead of per sample
  std::int64_t chunk_rows = 0;   // ragged: rows per chunk of the flat dataset
  int group = -1;                // ragged: index into ShardLayout::groups
  std::string tap;               // teacher/features/<tap> and teacher/feature_scales/<tap>

  std::int64_t item_numel() const { return shape_numel(item_shape); }
  // fixed/string: bytes of one sample; ragged: bytes of one row.
  std::size_t item_bytes() const { return static_cast<std::size_t>(item_numel()) * itemsize; }
  // Bytes of one (uncompressed) chunk.
  std::size_t chunk_bytes() const;
  // Chunk dimensions of the HDF5 dataset.
  std::vector<std::int64_t> chunk_shape() const;
  // Full dataset shape for `n` samples (fixed/string) or `n` rows (ragged).
  std::vector<std::int64_t> dataset_shape(std::int64_t n) const;
  // Chunks that make up one sample of a fixed/string field (V for per-view chunking, else 1).
  std::int64_t chunks_per_sample() const;
  // Whether byte shuffle applies (elements wider than one byte, not strings, and enabled).
  bool shuffled(bool shuffle_enabled) const {
    return shuffle_enabled && kind != FieldKind::kString && itemsize > 1;
  }
};

struct GroupLayout {
  std::string name;                 // "teacher/det"
  std::string offsets;              // "teacher/det_offsets"
  std::int64_t segments_per_sample = 1;  // V, CAM or 1
  std::vector<int> fields;          // indices into ShardLayout::fields
};

class ShardLayout {
 public:
  // Resolves the schema for `meta` (validated first) in schema version `version` (default: the
  // schema's own; an older minor version of it gives that version's datasets, for reading old
  // shards and writing compatibility fixtures). Field order: schema order, taps in the order of
  // meta.taps, each int8 tap's scale dataset right after the schema's scale entry. Throws
  // bevkd::Error when `meta` asks for a group the version does not have (fd3d after 1.0).
  static ShardLayout make(const ShardMeta& meta, const Schema& schema = Schema::current());
  static ShardLayout make(const ShardMeta& meta, const Schema& schema, SchemaVersion version);

  const std::vector<FieldLayout>& fields() const { return fields_; }
  const std::vector<GroupLayout>& groups() const { return groups_; }
  // Index of a field by dataset name, or -1.
  int find(std::string_view name) const;
  // Throws bevkd::Error naming `where` and listing the fields if `name` is not one.
  const FieldLayout& field(std::string_view name, std::string_view where) const;
  // Field names matching a selector: an exact dataset name, a prefix ending in "/*" ("gt/*",
  // "teacher/*") or "*" (all). Throws bevkd::Error naming `where` if a selector matches nothing.
  // Empty selectors select every field. The result keeps layout order.
  std::vector<int> select(const std::vector<std::string>& selectors, std::string_view where) const;
  std::string field_list() const;  // "sample_token, scene_token, ..." for messages
  const Schema& schema() const { return *schema_; }
  SchemaVersion version() const { return version_; }

 private:
  const Schema* schema_ = nullptr;
  SchemaVersion version_;
  std::vector<FieldLayout> fields_;
  std::vector<GroupLayout> groups_;
};

}  // namespace bevkd::storage

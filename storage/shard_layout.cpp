#include "storage/shard_layout.h"

#include "base/error.h"

namespace bevkd::storage {
namespace {

// The value of a shape symbol for one shard. Attribute-backed dims come from the meta's
// counterpart of that attribute; dataset-backed dims from the tap / fd3d parameters.
std::int64_t resolve_dim(const Schema& schema, const SchemaDim& d, const ShardMeta& meta, const TapSpec* tap) {
  if (!d.is_symbol()) return d.value;
  const DimSpec& spec = schema.dim(d.symbol);
  switch (spec.from) {
    case DimSpec::From::kValue:
      return spec.value;
    case DimSpec::From::kAttribute:
      if (spec.attribute == "num_views") return meta.num_views;
      if (spec.attribute == "bev_shape") return spec.index == 0 ? meta.grid.H : meta.grid.W;
      break;
    case DimSpec::From::kDataset:
      if (d.symbol == "C_tap" && tap != nullptr) return tap->channels;
      if (d.symbol == "Q") return meta.fd3d_points;
      break;
    case DimSpec::From::kRagged:
      break;
  }
  BEVKD_ASSERT(false, "schema dimension ", d.symbol, " cannot be resolved for a per-sample shape");
  return -1;
}

}  // namespace

std::size_t FieldLayout::chunk_bytes() const {
  const auto c = chunk_shape();
  return static_cast<std::size_t>(shape_numel(c)) * itemsize;
}

std::vector<std::int64_t> FieldLayout::chunk_shape() const {
  std::vector<std::int64_t> c;
  if (kind == FieldKind::kRagged) {
    c.push_back(chunk_rows);
    c.insert(c.end(), item_shape.begin(), item_shape.end());
  } else {
    c.push_back(1);
    c.insert(c.end(), item_shape.begin(), item_shape.end());
    if (per_view_chunks) c[1] = 1;
  }
  return c;
}

std::vector<std::int64_t> FieldLayout::dataset_shape(std::int64_t n) const {
  std::vector<std::int64_t> s{n};
  s.insert(s.end(), item_shape.begin(), item_shape.end());
  return s;
}

std::int64_t FieldLayout::chunks_per_sample() const {
  return per_view_chunks ? item_shape.at(0) : 1;
}

ShardLayout ShardLayout::make(const ShardMeta& meta, const Schema& schema) {
  return make(meta, schema, schema.version());
}

ShardLayout ShardLayout::make(const ShardMeta& meta, const Schema& schema, SchemaVersion version) {
  meta.validate("shard layout", schema);
  BEVKD_CHECK(version.major == schema.version().major && version <= schema.version(), "shard layout: schema version ",
              version.str(), " is not one this build knows (", schema.name(), " ", schema.version().str(), ")");
  ShardLayout L;
  L.schema_ = &schema;
  L.version_ = version;
  std::vector<bool> group_present(schema.groups().size(), false);
  for (std::size_t g = 0; g < schema.groups().size(); ++g) {
    const RaggedGroupSpec& spec = schema.groups()[g];
    BEVKD_ASSERT(spec.required || spec.name == "fd3d", "optional ragged group ", spec.name,
                 " has no ShardMeta switch");
    if (spec.name == "fd3d" && meta.fd3d_points > 0)
      BEVKD_CHECK(spec.versions.contains(version), "shard layout: fd3d_points is ", meta.fd3d_points,
                  " but schema ", version.str(), " has no fd3d group (it exists in ", spec.versions.str(), ")");
    if (!spec.versions.contains(version)) continue;
    group_present[g] = spec.required || (spec.name == "fd3d" && meta.fd3d_points > 0);
  }
  std::vector<int> group_index(schema.groups().size(), -1);
  for (std::size_t g = 0; g < schema.groups().size(); ++g) {
    if (!group_present[g]) continue;
    const RaggedGroupSpec& spec = schema.groups()[g];
    GroupLayout gl;
    gl.name = spec.name;
    gl.offsets = spec.offsets;
    for (std::size_t i = 1; i < spec.per.size(); ++i)
      gl.segments_per_sample *= resolve_dim(schema, SchemaDim{spec.per[i], -1}, meta, nullptr);
    group_index[g] = static_cast<int>(L.groups_.size());
    L.groups_.push_back(std::move(gl));
  }

  auto add = [&](const DatasetSpec& spec, const std::string& name, const TapSpec* tap) {
    if (!spec.versions.contains(version)) return;
    FieldLayout f;
    f.name = name;
    f.spec = &spec;
    f.kind = spec.kind;
    f.dtype = (tap != nullptr && spec.name == "teacher/features/{tap}") ? tap->dtype : spec.dtype;
    f.itemsize = spec.kind == FieldKind::kString ? spec.string_length : dtype_size(f.dtype);
    for (std::size_t i = 1; i < spec.shape.size(); ++i) f.item_shape.push_back(resolve_dim(schema, spec.shape[i], meta, tap));
    f.per_view_chunks = spec.chunk == ChunkKind::kSampleView;
    f.chunk_rows = spec.chunk_rows;
    if (tap != nullptr) f.tap = tap->name;
    if (spec.kind == FieldKind::kRagged) {
      for (std::size_t g = 0; g < schema.groups().size(); ++g)
        if (schema.groups()[g].name == spec.group) f.group = group_index[g];
      if (f.group < 0) return;  // optional group absent
      L.groups_[f.group].fields.push_back(static_cast<int>(L.fields_.size()));
    }
    L.fields_.push_back(std::move(f));
  };

  for (const DatasetSpec& spec : schema.datasets()) {
    if (spec.name == "teacher/features/{tap}") {
      for (const TapSpec& t : meta.taps) add(spec, spec.instantiate(t.name), &t);
    } else if (spec.name == "teacher/feature_scales/{tap}") {
      for (const TapSpec& t : meta.taps)
        if (t.dtype == DType::kInt8) add(spec, spec.instantiate(t.name), &t);
    } else {
      BEVKD_ASSERT(!spec.is_pattern(), "pattern dataset ", spec.name, " has no ShardMeta counterpart");
      add(spec, spec.name, nullptr);
    }
  }
  return L;
}

int ShardLayout::find(std::string_view name) const {
  for (std::size_t i = 0; i < fields_.size(); ++i)
    if (fields_[i].name == name) return static_cast<int>(i);
  return -1;
}

const FieldLayout& ShardLayout::field(std::string_view name, std::string_view where) const {
  const int i = find(name);
  BEVKD_CHECK(i >= 0, where, ": no field \"", name, "\" (fields: ", field_list(), ")");
  return fields_[i];
}

std::vector<int> ShardLayout::select(const std::vector<std::string>& selectors, std::string_view where) const {
  std::vector<bool> chosen(fields_.size(), selectors.empty());
  for (const std::string& sel : selectors) {
    bool any = false;
    const bool all = sel == "*";
    const bool prefix = sel.size() >= 2 && sel.compare(sel.size() - 2, 2, "/*") == 0;
    const std::string stem = prefix ? sel.substr(0, sel.size() - 1) : sel;  // keeps the '/'
    for (std::size_t i = 0; i < fields_.size(); ++i) {
      const std::string& n = fields_[i].name;
      if (all || (prefix ? n.compare(0, stem.size(), stem) == 0 : n == sel)) {
        chosen[i] = true;
        any = true;
      }
    }
    BEVKD_CHECK(any, where, ": field selector \"", sel, "\" matches no field (fields: ", field_list(), ")");
  }
  std::vector<int> out;
  for (std::size_t i = 0; i < fields_.size(); ++i)
    if (chosen[i]) out.push_back(static_cast<int>(i));
  return out;
}

std::string ShardLayout::field_list() const {
  std::string s;
  for (const auto& f : fields_) s += cat(s.empty() ? "" : ", ", f.name);
  return s;
}

}  // namespace bevkd::storage

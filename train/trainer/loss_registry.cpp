#include "train/trainer/loss_registry.h"

#include <algorithm>

#include "base/config.h"
#include "base/error.h"
#include "train/trainer/loss_entries.h"

namespace bevkd::train::trainer {

using nlohmann::json;

const std::vector<LossEntry>& loss_registry() {
  static const std::vector<LossEntry> entries = [] {
    auto e = builtin_loss_entries();
    std::sort(e.begin(), e.end(), [](const LossEntry& a, const LossEntry& b) { return a.name < b.name; });
    for (std::size_t i = 1; i < e.size(); ++i)
      BEVKD_ASSERT(e[i - 1].name != e[i].name, "loss registry: ", e[i].name, " registered twice");
    return e;
  }();
  return entries;
}

const LossEntry& find_loss(const std::string& name) {
  std::string known;
  for (const auto& e : loss_registry()) {
    if (e.name == name) return e;
    known += (known.empty() ? "" : ", ") + e.name;
  }
  BEVKD_FAIL("unknown distillation loss '", name, "'; the registry holds: ", known.empty() ? "(none)" : known);
}

json resolve_params(const LossEntry& e, const json& params) {
  json out = e.default_params;
  BEVKD_CHECK(params.is_object(), "loss ", e.name, ": parameters must be an object, found ", config::shown(params));
  for (const auto& [k, v] : params.items()) {
    if (!out.contains(k)) {
      std::string keys;
      for (const auto& [dk, dv] : e.default_params.items()) keys += (keys.empty() ? "" : ", ") + dk;
      BEVKD_FAIL("loss ", e.name, ": unknown parameter '", k, "' (it takes: ", keys.empty() ? "no parameters" : keys,
                 ")");
    }
    const json& d = out.at(k);
    const bool same = (d.is_number() && v.is_number()) || d.type() == v.type();
    BEVKD_CHECK(same, "loss ", e.name, ": parameter '", k, "' must be like ", config::shown(d), ", found ",
                config::shown(v));
    out[k] = v;
  }
  return out;
}

bool shards_have(const ShardNeed& need, const std::vector<storage::TapSpec>& manifest_taps, int schema_major,
                 int schema_minor) {
  if (!need.tap.empty())
    return std::any_of(manifest_taps.begin(), manifest_taps.end(),
                       [&](const storage::TapSpec& t) { return t.name == need.tap; });
  if (need.dataset == "teacher/class_probs") return schema_major > 1 || (schema_major == 1 && schema_minor >= 1);
  return true;  // heat maps, fg masks, teacher boxes, GT and LiDAR depth are in every shard
}

}  // namespace bevkd::train::trainer

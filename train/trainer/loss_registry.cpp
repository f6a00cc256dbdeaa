#include "train/trainer/loss_registry.h"

#include <algorithm>

#include "base/config.h"
#include "base/error.h"
#include "train/probe/registry.h"
#include "train/trainer/loss_entries.h"

namespace bevkd::train::trainer {

using nlohmann::json;

namespace {

// Fills e.default_params[trainer key] from the probe registry (the one place those defaults are
// written); a probe entry or key that is missing or has no fixed default is a bug of the tables.
void inherit_probe_defaults(LossEntry& e) {
  const auto& probes = probe::probe_registry();
  BEVKD_ASSERT(!e.probe_losses.empty(), "loss registry: ", e.name, " names no loss-probe entry");
  for (const auto& name : e.probe_losses)
    BEVKD_ASSERT(probes.find(name) != nullptr, "loss registry: ", e.name, " names the loss-probe entry ", name,
                 ", which is not implemented");
  for (const auto& [tk, qualified] : e.probe_params) {
    // "key" reads the first probe entry's key, "entry.key" another entry's.
    const auto dot = qualified.find('.');
    const std::string entry = dot == std::string::npos ? e.probe_losses.front() : qualified.substr(0, dot);
    const std::string pk = dot == std::string::npos ? qualified : qualified.substr(dot + 1);
    const probe::ProbeEntry* from = probes.find(entry);
    BEVKD_ASSERT(from != nullptr, "loss registry: ", e.name, " inherits '", tk, "' from the missing probe entry ", entry);
    const probe::ParamSpec* spec = nullptr;
    for (const auto& p : from->params)
      if (p.key == pk) spec = &p;
    BEVKD_ASSERT(spec && spec->default_value && !spec->default_value->is_null(), "loss registry: ", e.name,
                 " inherits '", tk, "' from ", entry, ".", pk, ", which has no fixed default");
    e.default_params[tk] = *spec->default_value;
  }
}

}  // namespace

const std::vector<LossEntry>& loss_registry() {
  static const std::vector<LossEntry> entries = [] {
    auto e = builtin_loss_entries();
    for (auto& entry : e) inherit_probe_defaults(entry);
    std::sort(e.begin(), e.end(), [](const LossEntry& a, const LossEntry& b) { return a.name < b.name; });
    for (std::size_t i = 1; i < e.size(); ++i)
      BEVKD_ASSERT(e[i - 1].name != e[i].name, "loss registry: ", e[i].name, " registered twice");
    return e;
  }();
  return entries;
}

json loss_registry_json() {
  json out = json::array();
  for (const auto& e : loss_registry()) {
    json fields = json::array();
    for (const auto& n : e.needs(e.default_params)) fields.push_back(n.dataset);
    json shared = json::object();
    for (const auto& [tk, pk] : e.probe_params) shared[tk] = pk;
    out.push_back({{"name", e.name},
                   {"description", e.description},
                   {"default_weight", e.default_weight},
                   {"params", e.default_params},
                   {"shard_fields", fields},
                   {"probe_losses", e.probe_losses},
                   {"probe_params", shared}});
  }
  return out;
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

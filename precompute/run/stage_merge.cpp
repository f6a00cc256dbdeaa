#include "precompute/run/stage_merge.h"

#include <algorithm>
#include <filesystem>
#include <map>
#include <cstdio>
#include <set>

#include "base/error.h"
#include "base/fs.h"
#include "storage/manifest.h"

namespace bevkd::precompute {

namespace fs = std::filesystem;
using nlohmann::json;

std::string MergeReport::describe() const {
  if (complete() && !manifest_path.empty())
    return cat("merged ", num_workers, " worker manifest", num_workers == 1 ? "" : "s", " -> ", manifest_path);
  std::string s = cat("the run is not complete (", num_workers, " worker", num_workers == 1 ? "" : "s", ")");
  auto list = [](const auto& v) {
    std::string out;
    for (const auto& x : v) out += cat(out.empty() ? "" : ", ", x);
    return out;
  };
  if (!missing_workers.empty()) s += cat("; workers without a manifest: ", list(missing_workers));
  if (!incomplete_workers.empty()) s += cat("; workers with unfinished shards: ", list(incomplete_workers));
  if (!missing_shards.empty()) {
    std::vector<std::string> head(missing_shards.begin(),
                                  missing_shards.begin() + std::min<size_t>(missing_shards.size(), 8));
    s += cat("; ", missing_shards.size(), " shard", missing_shards.size() == 1 ? "" : "s", " missing: ", list(head),
             missing_shards.size() > head.size() ? ", ..." : "");
  }
  return s;
}

MergeReport merge_worker_manifests(const std::string& out_dir, std::optional<int> num_workers, bool write) {
  const std::string plan_path = out_dir + "/shard_plan.json";
  BEVKD_CHECK(path_exists(plan_path), "merge: ", plan_path, " not found (is ", out_dir,
              " the --out directory of a bevkd-precompute run?)");
  json plan;
  try {
    plan = json::parse(read_file(plan_path));
  } catch (const json::exception& e) {
    BEVKD_FAIL("merge: ", plan_path, " is not valid JSON (", e.what(), ")");
  }
  std::vector<std::string> planned;
  std::map<std::string, size_t> order;
  try {
    for (const auto& s : plan.at("shards")) {
      order[s.at("path").get<std::string>()] = planned.size();
      planned.push_back(s.at("path").get<std::string>());
    }
  } catch (const json::exception& e) {
    BEVKD_FAIL("merge: ", plan_path, ": expected {\"shards\": [{\"path\", ...}]} (", e.what(), ")");
  }

  // The worker manifests present, by worker count.
  std::map<int, std::set<int>> found;  // count -> indices
  for (const auto& e : fs::directory_iterator(out_dir)) {
    const std::string name = e.path().filename().string();
    int index = -1, count = -1, end = 0;
    if (std::sscanf(name.c_str(), "manifest.worker-%d-of-%d.json%n", &index, &count, &end) == 2 &&
        static_cast<size_t>(end) == name.size() && count >= 1 && index >= 0 && index < count &&
        name == storage::worker_manifest_name(index, count))
      found[count].insert(index);
  }
  MergeReport r;
  if (num_workers) {
    BEVKD_CHECK(*num_workers >= 1, "merge: --num-workers is ", *num_workers, ", expected >= 1");
    r.num_workers = *num_workers;
  } else {
    BEVKD_CHECK(!found.empty(), "merge: no worker manifest (manifest.worker-III-of-NNN.json) in ", out_dir);
    std::string counts;
    for (const auto& [n, idx] : found) counts += cat(counts.empty() ? "" : ", ", n);
    BEVKD_CHECK(found.size() == 1, "merge: ", out_dir, " holds worker manifests of runs with ", counts,
                " workers; give --num-workers");
    r.num_workers = found.begin()->first;
  }

  std::vector<std::pair<std::string, storage::Manifest>> parts;
  std::set<std::string> listed;
  for (int w = 0; w < r.num_workers; ++w) {
    const std::string name = storage::worker_manifest_name(w, r.num_workers);
    const std::string path = out_dir + "/" + name;
    if (!path_exists(path)) {
      r.missing_workers.push_back(w);
      continue;
    }
    storage::Manifest m = storage::Manifest::load(path);
    for (const auto& s : m.shards()) {
      BEVKD_CHECK(order.count(s.path) != 0, "merge: ", path, " lists shard ", s.path, ", which ", plan_path,
                  " does not plan");
      listed.insert(s.path);
    }
    for (const auto& k : m.skipped())
      BEVKD_CHECK(order.count(k.shard) != 0, "merge: ", path, " lists skipped sample ", k.sample_token, " in shard ",
                  k.shard, ", which ", plan_path, " does not plan");
    bool all_own = true;
    for (size_t i = static_cast<size_t>(w); i < planned.size(); i += static_cast<size_t>(r.num_workers))
      all_own = all_own && std::any_of(m.shards().begin(), m.shards().end(),
                                       [&](const storage::ManifestShard& s) { return s.path == planned[i]; });
    if (!all_own) r.incomplete_workers.push_back(w);
    parts.emplace_back(name, std::move(m));
  }
  for (const auto& p : planned)
    if (listed.count(p) == 0) r.missing_shards.push_back(p);
  if (!r.complete() || !write) return r;

  // Join (checks that identities agree and no shard is listed twice), then order by plan.
  json j = storage::Manifest::merge(parts).to_json();
  auto by_plan = [&](const json& a, const json& b) {
    return order.at(a.at(a.contains("shard") ? "shard" : "path").get<std::string>()) <
           order.at(b.at(b.contains("shard") ? "shard" : "path").get<std::string>());
  };
  std::stable_sort(j["shards"].begin(), j["shards"].end(), by_plan);
  std::stable_sort(j["skipped_samples"].begin(), j["skipped_samples"].end(), by_plan);
  r.manifest_path = out_dir + "/" + storage::Manifest::kFileName;
  storage::Manifest::from_json(j, r.manifest_path).save(r.manifest_path);
  return r;
}

}  // namespace bevkd::precompute

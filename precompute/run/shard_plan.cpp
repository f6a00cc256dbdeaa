#include "precompute/run/shard_plan.h"

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <set>

#include "base/error.h"

namespace bevkd::precompute {

int64_t ShardPlan::num_samples() const {
  int64_t n = 0;
  for (const auto& s : shards) n += static_cast<int64_t>(s.samples.size());
  return n;
}

std::vector<int64_t> ShardPlan::worker_shards(int index, int count) const {
  BEVKD_CHECK(count >= 1 && index >= 0 && index < count, "worker ", index, " of ", count, " is out of range");
  std::vector<int64_t> out;
  for (const auto& s : shards)
    if (s.id % count == index) out.push_back(s.id);
  return out;
}

nlohmann::json ShardPlan::to_json() const {
  nlohmann::json list = nlohmann::json::array();
  for (const auto& s : shards)
    list.push_back({{"id", s.id},
                    {"split", s.split},
                    {"path", s.path},
                    {"num_samples", s.samples.size()},
                    {"first_token", s.tokens.empty() ? std::string() : s.tokens.front()}});
  return {{"splits", splits}, {"num_samples", num_samples()}, {"shards", list}};
}

std::string shard_relative_path(const std::string& split, int64_t index_in_split) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "shard-%05lld.h5", static_cast<long long>(index_in_split));
  return split + "/" + buf;
}

ShardPlan plan_shards(const core::nusc::NuScenes& db, const RunConfig& cfg) {
  ShardPlan plan;
  plan.splits = cfg.split_names();
  for (const auto& split : plan.splits) {
    std::vector<std::uint32_t> samples;
    if (cfg.scenes.empty()) {
      samples = db.split_samples(split);
      BEVKD_CHECK(!samples.empty(), "run: split ", split, " of ", db.dataroot(), " (", db.version(),
                  ") has no samples");
    } else {
      std::set<std::string> known;
      for (const auto& s : db.scene()) known.insert(s.name);
      std::string missing;
      for (const auto& name : cfg.scenes)
        if (known.count(name) == 0) missing += (missing.empty() ? "" : ", ") + name;
      BEVKD_CHECK(missing.empty(), "run: --scenes: scene(s) ", missing, " not found in ", db.dataroot(), "/",
                  db.version(), "/scene.json");
      samples = db.samples_of_scenes(cfg.scenes);
      BEVKD_CHECK(!samples.empty(), "run: the scenes given with --scenes have no samples");
    }
    const auto S = static_cast<size_t>(cfg.samples_per_shard);
    for (size_t first = 0, k = 0; first < samples.size(); first += S, ++k) {
      PlannedShard sh;
      sh.id = static_cast<int64_t>(plan.shards.size());
      sh.split = split;
      sh.index_in_split = static_cast<int64_t>(k);
      sh.path = shard_relative_path(split, sh.index_in_split);
      for (size_t i = first; i < std::min(samples.size(), first + S); ++i) {
        sh.samples.push_back(samples[i]);
        sh.tokens.emplace_back(db.token(core::nusc::Table::kSample, samples[i]));
      }
      plan.shards.push_back(std::move(sh));
    }
  }
  return plan;
}

namespace {

// Parses a non-negative integer environment value; std::nullopt when unset, empty or
// "undefined" (what SGE sets its task variables to outside array jobs).
std::optional<long> env_int(const std::function<const char*(const char*)>& getenv, const char* name) {
  const char* v = getenv(name);
  if (v == nullptr || *v == '\0' || std::string(v) == "undefined") return std::nullopt;
  char* end = nullptr;
  errno = 0;
  const long x = std::strtol(v, &end, 10);
  BEVKD_CHECK(errno == 0 && end != v && *end == '\0' && x >= 0, "environment variable ", name, "='", v,
              "' is not a non-negative integer");
  return x;
}

}  // namespace

WorkerAssignment resolve_worker(std::optional<int> cli_index, std::optional<int> cli_count,
                                const std::function<const char*(const char*)>& getenv) {
  WorkerAssignment w;
  if (cli_index) {
    w.index = *cli_index;
    w.count = cli_count.value_or(1);
    w.source = "command line";
  } else if (auto id = env_int(getenv, "SLURM_ARRAY_TASK_ID")) {
    const auto count = env_int(getenv, "SLURM_ARRAY_TASK_COUNT");
    const long first = env_int(getenv, "SLURM_ARRAY_TASK_MIN").value_or(0);
    BEVKD_CHECK(count || cli_count, "SLURM_ARRAY_TASK_ID is set but SLURM_ARRAY_TASK_COUNT is not: give --num-workers");
    const long step = env_int(getenv, "SLURM_ARRAY_TASK_STEP").value_or(1);
    BEVKD_CHECK(*id >= first, "SLURM_ARRAY_TASK_ID ", *id, " is below SLURM_ARRAY_TASK_MIN ", first);
    BEVKD_CHECK(step >= 1 && (*id - first) % step == 0, "SLURM_ARRAY_TASK_ID ", *id, " is not SLURM_ARRAY_TASK_MIN ",
                first, " + k * SLURM_ARRAY_TASK_STEP ", step,
                " (a sparse array such as --array=1,5,9 has no worker order: give --worker-index/--num-workers)");
    w.index = static_cast<int>((*id - first) / step);
    w.count = static_cast<int>(cli_count ? *cli_count : *count);
    BEVKD_CHECK(!(cli_count && count && *cli_count != *count), "--num-workers ", *cli_count,
                " contradicts SLURM_ARRAY_TASK_COUNT=", *count);
    w.source = "SLURM array (SLURM_ARRAY_TASK_ID=" + std::to_string(*id) + ")";
  } else if (auto sge = env_int(getenv, "SGE_TASK_ID")) {
    const long first = env_int(getenv, "SGE_TASK_FIRST").value_or(1);
    const long last = env_int(getenv, "SGE_TASK_LAST").value_or(first);
    const long step = std::max(1L, env_int(getenv, "SGE_TASK_STEPSIZE").value_or(1));
    BEVKD_CHECK(*sge >= first && (*sge - first) % step == 0, "SGE_TASK_ID ", *sge, " does not fit SGE_TASK_FIRST ",
                first, " / SGE_TASK_STEPSIZE ", step);
    w.index = static_cast<int>((*sge - first) / step);
    w.count = static_cast<int>(cli_count ? *cli_count : (last - first) / step + 1);
    w.source = "SGE array (SGE_TASK_ID=" + std::to_string(*sge) + ")";
  } else if (auto k8s = env_int(getenv, "JOB_COMPLETION_INDEX")) {
    BEVKD_CHECK(cli_count.has_value(), "JOB_COMPLETION_INDEX is set (Kubernetes indexed Job): give --num-workers");
    w.index = static_cast<int>(*k8s);
    w.count = *cli_count;
    w.source = "Kubernetes indexed Job (JOB_COMPLETION_INDEX=" + std::to_string(*k8s) + ")";
  } else {
    w.count = cli_count.value_or(1);
    BEVKD_CHECK(w.count == 1, "--num-workers ", w.count, " needs --worker-index (or a scheduler array index)");
  }
  BEVKD_CHECK(w.count >= 1 && w.index >= 0 && w.index < w.count, "worker index ", w.index, " from ", w.source,
              " is out of range for ", w.count, " workers (expected 0..", w.count - 1, ")");
  return w;
}

}  // namespace bevkd::precompute

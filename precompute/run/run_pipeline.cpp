#include "precompute/run/run_pipeline.h"

#include <omp.h>
#include <tbb/global_control.h>
#include <tbb/parallel_for.h>
#include <tbb/parallel_pipeline.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <iomanip>
#include <map>
#include <memory>
#include <ostream>
#include <sstream>

#include "base/config.h"
#include "base/error.h"
#include "schemas/shard_names.h"
#include "base/fs.h"
#include "base/progress.h"
#include "core/nuscenes/tables.h"
#include "core/nuscenes_vocab.h"
#include "precompute/run/shard_plan.h"
#include "precompute/run/stage_infer.h"
#include "precompute/run/stage_postprocess.h"
#include "precompute/run/stage_read.h"
#include "precompute/run/stage_voxelize.h"
#include "precompute/run/stage_write.h"
#include "storage/codec.h"
#include "storage/shard_reader.h"

namespace bevkd::precompute {

namespace ds = schemas::ds;

namespace fs = std::filesystem;
using nlohmann::json;
using Clock = std::chrono::steady_clock;

const char* StageClock::name(Stage s) {
  static const char* names[] = {"read", "voxelize", "inference", "post-process", "compress", "write"};
  return names[s];
}

void StageClock::add(Stage s, double seconds) {
  double cur = seconds_[s].load();
  while (!seconds_[s].compare_exchange_weak(cur, cur + seconds)) {
  }
}

namespace {

double since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

// LibTorch's intra-op parallelism (OpenMP) of the calling thread, for a scope. The parallel
// stages run their kernels on one thread each (TBB already spreads samples over the cores, and
// an OpenMP team per TBB thread would oversubscribe them); the serial inference stage gets the
// configured count. OpenMP's thread count is a per-thread setting, so this touches no other thread.
class IntraOpThreads {
 public:
  explicit IntraOpThreads(int n) {
    (void)at::get_num_threads();  // LibTorch's lazy per-thread initialisation first (it sets the count)
    previous_ = omp_get_max_threads();
    omp_set_num_threads(n);
  }
  ~IntraOpThreads() { omp_set_num_threads(previous_); }
  IntraOpThreads(const IntraOpThreads&) = delete;
  IntraOpThreads& operator=(const IntraOpThreads&) = delete;

 private:
  int previous_ = 1;
};

std::string iso_utc(std::time_t t) {
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

json teacher_json(const TeacherIdentity& id) {
  json config;
  try {
    config = json::parse(id.config_json);
  } catch (const json::exception&) {
    config = id.config_json;
  }
  return json{{"name", id.kind + ":" + id.preset},
              {"kind", id.kind},
              {"preset", id.preset},
              {"checkpoint", id.checkpoint},
              {"checkpoint_hash", id.checkpoint_hash},
              {"config", config}};
}

// <out>/precompute_config.json: written on the first run, compared on every later one. Returns
// the created_utc the shards carry (see RunConfig::created_utc).
std::string check_or_write_run_config(const RunConfig& cfg, const json& teacher, std::ostream& log) {
  const std::string path = cfg.out_dir + "/precompute_config.json";
  // LibTorch splits convolution reductions by its intra-op thread count, so the thread count
  // changes the features' last bits: it is part of what every worker and every rerun must share.
  const int threads = cfg.threads > 0 ? cfg.threads : at::get_num_threads();
  const json given{{"config", cfg.output_json()}, {"teacher", teacher}, {"inference_threads", threads}};
  const json producer = storage::producer_info("bevkd-precompute");
  std::string created;
  json fresh = given;
  fresh["producer"] = producer;
  fresh["config_hash"] = cfg.output_hash();
  fresh["created_utc"] = iso_utc(std::time(nullptr));
  // Workers started together race to create the file: exactly one wins, the others read it.
  if (!path_exists(path) && create_file_exclusive(path, fresh.dump(2) + "\n")) {
    created = fresh["created_utc"].get<std::string>();
    log << "run: wrote " << path << "\n";
  } else {
    json stored;
    try {
      stored = json::parse(read_file(path));
    } catch (const json::exception& e) {
      BEVKD_FAIL("run: ", path, " is not valid JSON (", e.what(), ")");
    }
    BEVKD_CHECK(stored.value("producer", json()) == producer, "run: ", cfg.out_dir, " was written by ",
                stored.value("producer", json()).dump(), ", this program is ", producer.dump(), " (", path,
                "): the shards of one output come from one build; resume with that build or write to a new "
                "--out directory");
    const json stored_part{{"config", stored.value("config", json())},
                           {"teacher", stored.value("teacher", json())},
                           {"inference_threads", stored.value("inference_threads", json())}};
    const std::string diff = config::first_difference(stored_part, given);
    BEVKD_CHECK(diff.empty(), "run: ", cfg.out_dir, " holds the output of another configuration (", path,
                "): first difference at ", diff,
                ". Rerun with the stored configuration (and --threads) to resume, or write to a new --out directory");
    created = stored.value("created_utc", std::string());
    BEVKD_CHECK(!created.empty(), "run: ", path, ": field created_utc is missing");
  }
  if (!cfg.created_utc.empty()) return cfg.created_utc;
  if (const char* epoch = std::getenv("SOURCE_DATE_EPOCH"); epoch != nullptr && *epoch != '\0') {
    char* end = nullptr;
    const long long t = std::strtoll(epoch, &end, 10);
    BEVKD_CHECK(end != epoch && *end == '\0' && t >= 0, "run: SOURCE_DATE_EPOCH='", epoch,
                "' is not a number of seconds since 1970");
    return iso_utc(static_cast<std::time_t>(t));
  }
  return created;
}

// Is the shard at `path` a finished shard of this run? Returns the manifest entry and the
// skipped samples, or std::nullopt (after a note) when it must be written again. Throws when it
// was written with another configuration. A shard an earlier run listed (`listed`) must still
// have the listed size and XXH64 (one read of the file: the cheap check); one it never listed
// (killed between the rename and the manifest) must pass every sample's checksums.
std::optional<std::pair<storage::ManifestShard, std::vector<storage::SkippedSample>>> existing_shard(
    const std::string& path, const PlannedShard& plan, const storage::ShardMeta& meta, const ReadStage& reader,
    const RunConfig& cfg, const storage::ManifestShard* listed, std::ostream& log) {
  std::unique_ptr<storage::ShardReader> r;
  try {
    storage::OpenOptions oo;
    if (listed != nullptr) {
      oo.expected_bytes = listed->bytes;
      oo.expected_xxh64 = listed->xxh64;
      oo.check_hash = true;
    }
    r = std::make_unique<storage::ShardReader>(path, oo);
    if (listed == nullptr)
      for (int64_t i = 0; i < r->num_samples(); ++i) {
        const auto problems = r->verify_sample(i);
        if (!problems.empty()) BEVKD_FAIL(problems.front().message);
      }
  } catch (const Error& e) {
    log << "run: " << path << " is damaged or not a valid shard, writing it again (" << e.what() << ")\n";
    return std::nullopt;
  }
  if (r->header().version != storage::Schema::current().version()) {
    log << "run: " << path << " has shard schema " << r->header().version.str() << ", this run writes "
        << storage::Schema::current().version().str() << ": writing it again\n";
    return std::nullopt;
  }
  const std::string diff = config::first_difference(r->header().meta.identity_json(), meta.identity_json());
  BEVKD_CHECK(diff.empty(), "run: ", path, " was written with another configuration: first difference at ", diff,
              ". Remove it, or rerun with the configuration it was written with");
  BEVKD_CHECK(r->header().meta.split == plan.split, "run: ", path, " holds split ", r->header().meta.split,
              ", the plan puts split ", plan.split, " there");
  std::vector<std::string> tokens;
  for (int64_t i = 0; i < r->num_samples(); ++i)
    tokens.push_back(r->read_field(i, ds::kSampleToken).string_at(0));
  std::vector<std::string> expected;
  std::vector<storage::SkippedSample> skipped;
  for (size_t i = 0; i < plan.samples.size(); ++i) {
    if (tokens != plan.tokens && cfg.skip_missing_files) {
      auto missing = reader.missing_files(plan.samples[i]);
      if (!missing.empty()) {
        skipped.push_back({plan.tokens[i], plan.split, plan.path, "missing files", std::move(missing)});
        continue;
      }
    }
    expected.push_back(plan.tokens[i]);
  }
  if (tokens != expected) {
    log << "run: " << path << " holds " << tokens.size() << " samples, the plan " << expected.size()
        << " (files appeared or disappeared since it was written): writing it again\n";
    return std::nullopt;
  }
  storage::ManifestShard e{plan.path, plan.split, r->num_samples(), file_size(path),
                           r->file_hash_checked() ? listed->xxh64 : storage::xxh64_file(path)};
  return std::make_pair(e, std::move(skipped));
}

// Batches of the shards to write: consecutive samples of one shard, batch_size at a time.
class BatchSource {
 public:
  BatchSource(const ShardPlan& plan, std::vector<int64_t> todo, int64_t batch_size)
      : plan_(plan), todo_(std::move(todo)), batch_size_(batch_size) {}

  std::unique_ptr<BatchWork> next() {
    if (shard_ >= todo_.size()) return nullptr;
    const PlannedShard& s = plan_.shards[static_cast<size_t>(todo_[shard_])];
    auto b = std::make_unique<BatchWork>();
    b->shard = s.id;
    b->first_in_shard = offset_ == 0;
    const size_t end = std::min(s.samples.size(), offset_ + static_cast<size_t>(batch_size_));
    for (size_t i = offset_; i < end; ++i) {
      SampleWork w;
      w.sample = s.samples[i];
      w.token = s.tokens[i];
      b->samples.push_back(std::move(w));
    }
    offset_ = end;
    b->last_in_shard = offset_ == s.samples.size();
    if (b->last_in_shard) {
      ++shard_;
      offset_ = 0;
    }
    return b;
  }

 private:
  const ShardPlan& plan_;
  std::vector<int64_t> todo_;
  int64_t batch_size_;
  size_t shard_ = 0, offset_ = 0;
};

}  // namespace

std::string RunResult::timing_table() const {
  std::ostringstream os;
  os << std::fixed << std::setprecision(2);
  double serial = 0;
  for (double s : stage_s) serial += s;
  os << "  stage          seconds   share of wall\n";
  for (int i = 0; i < StageClock::kNumStages; ++i)
    os << "  " << std::left << std::setw(14) << StageClock::name(static_cast<StageClock::Stage>(i)) << std::right
       << std::setw(8) << stage_s[static_cast<size_t>(i)] << "   " << std::setw(6)
       << (wall_s > 0 ? 100.0 * stage_s[static_cast<size_t>(i)] / wall_s : 0.0) << " %\n";
  os << "  serial sum     " << std::setw(7) << serial << "   pipelined wall " << wall_s << " s ("
     << (wall_s > 0 ? serial / wall_s : 0.0) << "x)\n";
  return os.str();
}

json RunResult::timings_json() const {
  json stages = json::object();
  double serial = 0;
  for (int i = 0; i < StageClock::kNumStages; ++i) {
    stages[StageClock::name(static_cast<StageClock::Stage>(i))] = stage_s[static_cast<size_t>(i)];
    serial += stage_s[static_cast<size_t>(i)];
  }
  const double written = static_cast<double>(samples_written);
  return {{"wall_s", wall_s},
          {"stages_s", stages},
          {"serial_sum_s", serial},
          {"inference_share_of_wall", wall_s > 0 ? stage_s[StageClock::kInfer] / wall_s : 0.0},
          {"samples_per_s", wall_s > 0 ? written / wall_s : 0.0}};
}

namespace {

// Everything the phases of a run share.
struct RunContext {
  const RunConfig& cfg;
  std::ostream& log;
  std::unique_ptr<tbb::global_control> tbb_threads;
  int infer_threads = 1;
  std::unique_ptr<Teacher> teacher;
  json teacher_json;
  BevGrid grid;
  std::vector<std::string> taps;
  storage::ShardMeta meta;
  std::unique_ptr<core::nusc::NuScenes> db;
  ShardPlan plan;
  std::string created_utc;
  std::unique_ptr<ReadStage> read;
  std::unique_ptr<WriteStage> write;
};

// Threads, teacher (identity, grid and taps: a probe on an empty cloud gives the tap channels),
// the shard metadata, the dataset and the plan; writes or checks precompute_config.json.
void open_run(RunContext& c) {
  const RunConfig& cfg = c.cfg;
  if (cfg.threads > 0)
    c.tbb_threads = std::make_unique<tbb::global_control>(tbb::global_control::max_allowed_parallelism,
                                                          static_cast<size_t>(cfg.threads));
  c.infer_threads = cfg.threads > 0 ? cfg.threads : at::get_num_threads();
  c.teacher = open_teacher(cfg.teacher);
  c.grid = c.teacher->grid();
  c.teacher_json = teacher_json(c.teacher->identity());
  storage::ShardMeta& meta = c.meta;
  meta.grid = c.grid;
  meta.num_views = cfg.views;
  {
    IntraOpThreads threads(c.infer_threads);
    const auto probe = c.teacher->infer({torch::zeros({0, core::nusc::kPointDims}, torch::kFloat32)});
    for (const auto& [name, t] : probe.features) {
      c.taps.push_back(name);
      meta.taps.push_back({name, t.size(1), cfg.feature_dtype == "int8" ? storage::DType::kInt8
                                                                        : storage::DType::kFloat16});
    }
  }
  for (const auto& cam : core::kCameraChannels) meta.camera_names.emplace_back(cam);
  for (const auto& cls : core::kClassNames) meta.class_names.emplace_back(cls);
  meta.producer = storage::producer_info("bevkd-precompute");
  meta.teacher = c.teacher_json;
  meta.config = cfg.output_json();
  meta.split = cfg.split_names().front();  // set per shard by the write stage
  meta.validate("run");

  c.db = std::make_unique<core::nusc::NuScenes>(core::nusc::NuScenes::load(cfg.dataroot, cfg.version));
  c.plan = plan_shards(*c.db, cfg);
  make_dirs(cfg.out_dir);
  c.created_utc = check_or_write_run_config(cfg, c.teacher_json, c.log);
  write_file_atomic(cfg.out_dir + "/shard_plan.json", c.plan.to_json().dump(2) + "\n");

  c.read = std::make_unique<ReadStage>(*c.db, cfg);
  WriteParams wp;
  wp.out_dir = cfg.out_dir;
  wp.meta = meta;
  wp.writer.codec.level = cfg.compression_level;
  wp.writer.codec.shuffle = cfg.shuffle;
  wp.writer.created_utc = c.created_utc;
  wp.worker_index = cfg.worker_index;
  wp.num_workers = cfg.num_workers;
  c.write = std::make_unique<WriteStage>(wp);
}

// Resume: keeps this worker's finished shards and returns the shards to write. Shards to be
// written again are only removed after the output has stopped claiming to be complete
// (manifest.json gone) and this worker's manifest lists just the kept shards, so a kill at any
// point never leaves a manifest that names a missing or half-written shard.
std::vector<int64_t> keep_finished_shards(RunContext& c, RunResult& result) {
  const RunConfig& cfg = c.cfg;
  std::vector<int64_t> todo;
  std::vector<std::string> stale;
  // What earlier runs listed (this worker's manifest, the merged one): the sizes and hashes a
  // finished shard must still have.
  std::map<std::string, storage::ManifestShard> listed;
  for (const std::string& m : {c.write->manifest_path(), cfg.out_dir + "/" + storage::Manifest::kFileName})
    if (path_exists(m)) {
      try {
        const storage::Manifest earlier = storage::Manifest::load(m);
        for (const auto& e : earlier.shards()) listed.emplace(e.path, e);
      } catch (const Error& e) {
        c.log << "run: ignoring " << m << " (" << e.what() << ")\n";
      }
    }
  for (int64_t id : c.plan.worker_shards(cfg.worker_index, cfg.num_workers)) {
    const PlannedShard& s = c.plan.shards[static_cast<size_t>(id)];
    result.planned_samples += static_cast<int64_t>(s.samples.size());
    const std::string path = cfg.out_dir + "/" + s.path;
    if (path_exists(storage::partial_path(path)))
      c.log << "run: " << storage::partial_path(path) << " is an unfinished shard of an earlier run: writing it again\n";
    if (path_exists(path)) {
      const auto l = listed.find(s.path);
      if (auto e = existing_shard(path, s, c.meta, *c.read, cfg, l == listed.end() ? nullptr : &l->second, c.log)) {
        c.write->add_existing(s, e->first, std::move(e->second));
        ++result.shards_kept;
        continue;
      }
      stale.push_back(path);
    }
    todo.push_back(s.id);
  }
  const std::string complete_manifest = cfg.out_dir + "/" + storage::Manifest::kFileName;
  if (!todo.empty() && path_exists(complete_manifest)) {
    fs::remove(complete_manifest);
    c.log << "run: removed " << complete_manifest
          << " (this worker has shards to write; the last worker to finish writes it again)\n";
  }
  c.write->save_manifest();
  for (const std::string& path : stale) fs::remove(path);
  return todo;
}

// The TBB pipeline over the shards to write: read -> voxelize -> infer -> post-process -> write.
void run_stages(RunContext& c, const std::vector<int64_t>& todo, StageClock& clock, RunResult& result) {
  const RunConfig& cfg = c.cfg;
  int64_t todo_samples = 0;
  for (int64_t t : todo) todo_samples += static_cast<int64_t>(c.plan.shards[static_cast<size_t>(t)].samples.size());
  c.log << "run: worker " << cfg.worker_index << " of " << cfg.num_workers << " (" << cfg.worker_source << "): "
        << todo.size() << " shard(s) / " << todo_samples << " samples to write, " << result.shards_kept
        << " finished shard(s) kept; teacher " << c.teacher_json.at("name").get<std::string>() << " on "
        << c.grid.describe() << ", " << cfg.views << " view(s)\n";
  VoxelizeStage voxelize(*c.teacher);
  InferStage infer(*c.teacher);
  PostprocessStage post(PostprocessParams::from(cfg, c.grid, c.taps));
  ReadStage& read = *c.read;
  WriteStage& write = *c.write;
  ProgressOptions po;
  po.unit = "samples";
  po.enabled = !cfg.quiet;
  Progress progress(cat("precompute worker ", cfg.worker_index, "/", cfg.num_workers), todo_samples, c.log, po);
  BatchSource source(c.plan, todo, cfg.batch_size);
  int64_t samples_done = 0;
  const int infer_threads = c.infer_threads;
  const auto t_start = Clock::now();
  auto parallel_samples = [](BatchWork& b, auto&& f) {
    tbb::parallel_for(size_t{0}, b.samples.size(), [&](size_t i) {
      IntraOpThreads one(1);
      f(b.samples[i]);
    });
  };
  if (!todo.empty()) {
    // Batches are shared pointers so that a stage's exception (which cancels the pipeline)
    // frees the batches in flight.
    using Batch = std::shared_ptr<BatchWork>;
    tbb::parallel_pipeline(
        static_cast<size_t>(cfg.max_batches_in_flight),
        tbb::make_filter<void, Batch>(tbb::filter_mode::serial_in_order,
                                      [&](tbb::flow_control& fc) -> Batch {
                                        Batch b = source.next();
                                        if (!b) fc.stop();
                                        return b;
                                      }) &
            tbb::make_filter<Batch, Batch>(tbb::filter_mode::parallel,
                                           [&](Batch b) {
                                             const auto t0 = Clock::now();
                                             parallel_samples(*b, [&](SampleWork& s) { read.run(s); });
                                             clock.add(StageClock::kRead, since(t0));
                                             return b;
                                           }) &
            tbb::make_filter<Batch, Batch>(tbb::filter_mode::parallel,
                                           [&](Batch b) {
                                             const auto t0 = Clock::now();
                                             parallel_samples(*b, [&](SampleWork& s) {
                                               if (!s.skipped()) voxelize.run(s);
                                             });
                                             clock.add(StageClock::kVoxelize, since(t0));
                                             return b;
                                           }) &
            tbb::make_filter<Batch, Batch>(tbb::filter_mode::serial_in_order,
                                           [&](Batch b) {
                                             const auto t0 = Clock::now();
                                             IntraOpThreads threads(infer_threads);
                                             infer.run(*b);
                                             clock.add(StageClock::kInfer, since(t0));
                                             return b;
                                           }) &
            tbb::make_filter<Batch, Batch>(tbb::filter_mode::parallel,
                                           [&](Batch b) {
                                             const auto t0 = Clock::now();
                                             std::vector<int64_t> first(b->samples.size(), -1);
                                             int64_t row = 0;
                                             for (size_t i = 0; i < b->samples.size(); ++i)
                                               if (!b->samples[i].skipped()) {
                                                 first[i] = row;
                                                 row += cfg.views;
                                               }
                                             tbb::parallel_for(size_t{0}, b->samples.size(), [&](size_t i) {
                                               IntraOpThreads one(1);
                                               if (first[i] >= 0) post.run(b->samples[i], b->teacher, first[i]);
                                             });
                                             b->teacher = TeacherOutput{};
                                             clock.add(StageClock::kPostprocess, since(t0));
                                             return b;
                                           }) &
            tbb::make_filter<Batch, void>(tbb::filter_mode::serial_in_order, [&](Batch b) {
              const auto t0 = Clock::now();
              const PlannedShard& s = c.plan.shards[static_cast<size_t>(b->shard)];
              if (b->first_in_shard) write.begin_shard(s);
              for (size_t i = 0; i < b->samples.size(); ++i) {
                write.write(b->samples[i]);
                const bool last = i + 1 == b->samples.size();
                if (last && b->last_in_shard) write.end_shard();
                ++samples_done;
                if (cfg.after_sample) cfg.after_sample(samples_done);
              }
              clock.add(StageClock::kWrite, since(t0));
              progress.advance(static_cast<int64_t>(b->samples.size()));
            }));
  }
  progress.finish();
  result.wall_s = since(t_start);
  result.saturated_values = post.saturated();
}

// Stage times, counts, this worker's manifest, the merged manifest when every worker is done,
// and reports/run-worker-III-of-NNN.json.
void write_report(RunContext& c, const StageClock& clock, RunResult& result) {
  const RunConfig& cfg = c.cfg;
  WriteStage& write = *c.write;
  // Stage times (seconds): read, voxelize, inference and post-process are the wall time each
  // batch spent in the stage, summed over batches — what the stage would cost run alone with
  // its inner parallelism; compress is the CPU time of the shard writer's compression and
  // checksum tasks (summed over threads); write is the writer's HDF5 I/O (chunk writes, index
  // datasets, flush, fsync, rename).
  const auto ws = write.stats();
  for (int i = 0; i < StageClock::kNumStages; ++i)
    result.stage_s[static_cast<size_t>(i)] = clock.get(static_cast<StageClock::Stage>(i));
  result.stage_s[StageClock::kCompress] = ws.encode_s + ws.checksum_s;
  result.stage_s[StageClock::kWrite] = ws.write_s;
  result.samples_written = write.samples_written();
  result.samples_skipped = write.samples_skipped();
  result.shards_written = write.shards_written();
  result.nonfinite_points_dropped = c.read->dropped_points();
  result.worker_manifest = write.manifest_path();
  write.save_manifest();

  result.merge = merge_worker_manifests(cfg.out_dir, cfg.num_workers, /*write=*/true);
  json skipped = json::array();
  for (const auto& k : write.skipped())
    skipped.push_back({{"sample_token", k.sample_token}, {"shard", k.shard}, {"reason", k.reason}, {"files", k.files}});
  const json report{{"run", cfg.to_json()},
                    {"config_hash", cfg.output_hash()},
                    {"teacher", c.teacher_json},
                    {"planned_samples", result.planned_samples},
                    {"samples_written", result.samples_written},
                    {"samples_skipped", result.samples_skipped},
                    {"skipped_samples", skipped},
                    {"shards_written", result.shards_written},
                    {"shards_kept", result.shards_kept},
                    {"float16_saturated_values", result.saturated_values},
                    {"nonfinite_lidar_points_dropped", c.read->dropped_points()},
                    {"timings", result.timings_json()},
                    {"worker_manifest", result.worker_manifest},
                    {"manifest", result.merge.manifest_path}};
  make_dirs(cfg.out_dir + "/reports");
  char name[64];
  std::snprintf(name, sizeof name, "run-worker-%03d-of-%03d.json", cfg.worker_index, cfg.num_workers);
  result.report_path = cfg.out_dir + "/reports/" + name;
  write_file_atomic(result.report_path, report.dump(2) + "\n");
}

}  // namespace

RunResult run_precompute(const RunConfig& cfg, std::ostream& log) {
  cfg.validate();
  RunContext context{cfg, log};
  RunResult result;
  StageClock clock;
  open_run(context);
  const std::vector<int64_t> todo = keep_finished_shards(context, result);
  run_stages(context, todo, clock, result);
  write_report(context, clock, result);
  return result;
}

}  // namespace bevkd::precompute

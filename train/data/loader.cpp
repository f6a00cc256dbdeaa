#include "train/data/loader.h"

#include <algorithm>
#include <any>
#include <atomic>
#include <chrono>
#include <cstring>
#include <exception>
#include <mutex>
#include <thread>

#include "base/error.h"
#include "base/prefetch_queue.h"
#include "schemas/shard_names.h"
#include "train/data/array_tensor.h"
#include "train/data/sample_loader.h"

namespace bevkd::train::data {

namespace ds = schemas::ds;
using storage::Array;
using Clock = std::chrono::steady_clock;

namespace {


// One batch from the producer, or the end of the epoch (batch of size 0), with the stream
// position after its last item and the samples skipped on the way.
struct Produced {
  Batch batch;
  storage::StreamPosition after;
  std::vector<std::string> skipped;
};

using SamplePtr = std::shared_ptr<LoadedSample>;

// [B, ...] of a fixed teacher field whose per-sample array is [1, ...] (the one view).
torch::Tensor stack_arrays(const std::vector<const storage::Sample*>& s, const std::vector<std::string>& tokens,
                           const std::string& name) {
  const Array& a0 = s[0]->get(name);
  std::vector<std::int64_t> shape = a0.shape();
  BEVKD_ASSERT(!shape.empty() && shape[0] == 1, "loader: ", name, " has shape ", storage::shape_str(shape),
               ", expected one view first");
  shape[0] = static_cast<std::int64_t>(s.size());
  auto t = pooled_empty(shape, a0.dtype());
  auto* dst = static_cast<std::byte*>(t.data_ptr());
  for (std::size_t b = 0; b < s.size(); ++b) {
    const Array& a = s[b]->get(name);
    BEVKD_CHECK(a.nbytes() == a0.nbytes() && a.dtype() == a0.dtype(), "loader: ", name, " of sample ", tokens[b],
                " is ", a.describe(), ", sample ", tokens[0], " has ", a0.describe());
    std::memcpy(dst + b * a0.nbytes(), a.raw(), a0.nbytes());
  }
  return t;
}

}  // namespace

TeacherStored stack_teacher(const std::vector<const storage::Sample*>& s, const std::vector<std::string>& tokens,
                            const LoaderConfig& cfg) {
  BEVKD_ASSERT(!s.empty() && s.size() == tokens.size(), "stack_teacher: ", s.size(), " samples, ", tokens.size(),
               " tokens");
  TeacherStored t;
  for (const auto& tap : cfg.teacher_taps) {
    t.features[tap] = stack_arrays(s, tokens, cat(ds::kTeacherFeaturesPrefix, tap));
    const std::string scales = cat(ds::kTeacherFeatureScalesPrefix, tap);
    if (s[0]->has(scales)) t.feature_scales[tap] = stack_arrays(s, tokens, scales);
  }
  if (cfg.teacher_heatmap) t.heatmap = stack_arrays(s, tokens, std::string(ds::kTeacherHeatmap));
  if (cfg.teacher_fg_mask) t.fg_mask = stack_arrays(s, tokens, std::string(ds::kFgMask));
  for (const auto* x : s) {
    if (cfg.teacher_boxes) {
      t.boxes.push_back(tensor_of(x->get(ds::kTeacherBoxes)).reshape({-1, 9}));
      t.scores.push_back(tensor_of(x->get(ds::kTeacherScores)));
      t.labels.push_back(tensor_of(x->get(ds::kTeacherLabels)));
      t.quality.push_back(tensor_of(x->get(ds::kTeacherQuality)));
    }
    if (cfg.teacher_class_probs) t.class_probs.push_back(tensor_of(x->get(schemas::ds::kTeacherClassProbs)));
  }
  return t;
}

storage::StreamOptions stream_options(const LoaderConfig& cfg, const LoaderSetup& setup) {
  storage::StreamOptions o;
  o.split = setup.split;
  o.num_threads = cfg.threads;
  // Enough finished items for a batch plus work for every thread while the producer stacks it.
  o.prefetch = static_cast<int>(std::max<std::int64_t>(2 * cfg.threads, cfg.batch_size + cfg.threads));
  o.shuffle = setup.train;
  o.seed = cfg.seed;
  o.rank = setup.rank;
  o.world_size = setup.world_size;
  if (!setup.train) {
    o.view = 0;
  } else if (cfg.view_policy == "fixed") {
    o.view = static_cast<int>(cfg.fixed_view);
  } else {
    o.draw_view = true;
    for (auto v : cfg.view_choices) o.view_choices.push_back(static_cast<int>(v));
  }
  return o;
}

struct Loader::Impl {
  LoaderConfig cfg;
  LoaderSetup setup;
  BevGrid grid;
  StoredViews views;
  std::shared_ptr<const SampleLoader> samples;
  std::unique_ptr<storage::ShardStream> stream;

  // Producer side.
  std::unique_ptr<PrefetchQueue<Produced>> queue;
  std::thread producer;
  std::atomic<bool> stop{false};

  // Consumer side.
  storage::StreamPosition pos;
  std::exception_ptr failed;
  bool clock_started = false;
  Clock::time_point started;
  double elapsed_before = 0;  // elapsed_s of the segments before the last seek()
  mutable std::mutex stats_mu;
  LoaderStats stats;

  void start(storage::StreamPosition p);
  void halt();
  void produce();
  Batch stack(const std::vector<SamplePtr>& s) const;
};

Batch Loader::Impl::stack(const std::vector<SamplePtr>& s) const {
  Batch b;
  std::vector<torch::Tensor> images, intrinsics, cam2ego, img_aug, bda, depth, box_id;
  for (const auto& x : s) {
    b.sample_tokens.push_back(x->token);
    b.views.push_back(x->view);
    b.gt.push_back(x->gt);
    b.ego2global.push_back(x->ego2global);
    b.shards.push_back(x->shard);
    b.shard_samples.push_back(x->shard_sample);
    images.push_back(x->images);
    intrinsics.push_back(x->intrinsics);
    cam2ego.push_back(x->cam2ego);
    img_aug.push_back(x->img_aug);
    bda.push_back(x->bda);
    depth.push_back(x->depth);
    if (cfg.depth_box_id) box_id.push_back(x->box_id);
  }
  {  // [B, N, 3, H, W] in pooled memory
    std::vector<std::int64_t> shape{static_cast<std::int64_t>(s.size())};
    for (auto d : images[0].sizes()) shape.push_back(d);
    b.cameras.images = pooled_empty(shape, storage::DType::kFloat32);
    auto* dst = b.cameras.images.data_ptr<float>();
    const std::int64_t per = images[0].numel();
    for (std::size_t k = 0; k < s.size(); ++k) {
      BEVKD_ASSERT(images[k].is_contiguous() && images[k].numel() == per, "loader: image tensor of sample ", k);
      std::memcpy(dst + static_cast<std::int64_t>(k) * per, images[k].data_ptr<float>(), sizeof(float) * per);
    }
  }
  b.cameras.intrinsics = torch::stack(intrinsics);
  b.cameras.cam2ego = torch::stack(cam2ego);
  b.cameras.img_aug = torch::stack(img_aug);
  b.cameras.bda = torch::stack(bda);
  b.depth.depth = torch::stack(depth);
  if (cfg.depth_box_id) b.depth.box_id = torch::stack(box_id);
  b.depth.stride = cfg.depth_stride;

  if (cfg.teacher_taps.empty() && !cfg.teacher_heatmap && !cfg.teacher_fg_mask && !cfg.teacher_boxes &&
      !cfg.teacher_class_probs)
    return b;
  std::vector<const storage::Sample*> teacher;
  for (const auto& x : s) teacher.push_back(&x->teacher);
  b.teacher_stored = stack_teacher(teacher, b.sample_tokens, cfg);
  return b;
}

void Loader::Impl::produce() {
  const auto B = static_cast<std::size_t>(cfg.batch_size);
  for (;;) {
    const auto ticket = queue->reserve();
    if (ticket == PrefetchQueue<Produced>::kCancelled) return;
    try {
      Produced p;
      std::vector<SamplePtr> got;
      bool exhausted = false;
      while (got.size() < B) {
        if (stop.load()) return;
        std::optional<storage::StreamItem> item = stream->next();
        if (!item) {
          exhausted = true;
          break;
        }
        SamplePtr s = std::any_cast<SamplePtr>(item->payload);
        if (s->skipped) {
          p.skipped.push_back(s->skip_reason);
          continue;
        }
        got.push_back(std::move(s));
      }
      p.after = stream->position();
      const bool deliver = !got.empty() && !(got.size() < B && setup.train && cfg.drop_last_batch);
      if (deliver) p.batch = stack(got);
      exhausted = exhausted || p.after.index >= stream->samples_per_epoch();
      queue->put(ticket, std::move(p));
      if (exhausted || !deliver) {
        queue->close();
        return;
      }
    } catch (...) {
      queue->put_error(ticket, std::current_exception());
      queue->close();
      return;
    }
  }
}

void Loader::Impl::halt() {
  if (!producer.joinable()) return;
  stop.store(true);
  queue->cancel();
  producer.join();
}

void Loader::Impl::start(storage::StreamPosition p) {
  halt();
  try {
    stream->seek(p);
  } catch (...) {  // e.g. a position outside the epoch: next() reports it too, until a good seek()
    failed = std::current_exception();
    throw;
  }
  pos = p;
  failed = nullptr;
  clock_started = false;
  {
    std::lock_guard<std::mutex> lock(stats_mu);
    elapsed_before = stats.elapsed_s;
  }
  stop.store(false);
  queue = std::make_unique<PrefetchQueue<Produced>>(static_cast<std::size_t>(cfg.prefetch_batches));
  producer = std::thread([this] { produce(); });
}

Loader::Loader(storage::Manifest manifest, const std::string& dataroot, LoaderConfig cfg, LoaderSetup setup)
    : impl_(std::make_unique<Impl>()) {
  Impl& m = *impl_;
  cfg.validate();
  m.cfg = std::move(cfg);
  m.setup = std::move(setup);
  m.grid = manifest.grid();
  const std::string shards_name = cat("shards ", manifest.dir());
  const std::int64_t V = manifest.num_views();
  if (m.setup.train && m.cfg.view_policy == "fixed")
    BEVKD_CHECK(m.cfg.fixed_view < V, "loader config: views.fixed_view ", m.cfg.fixed_view, " is not a view of the ",
                shards_name, ", which store ", V, " views (0..", V - 1, ")");
  if (m.setup.train)
    for (auto v : m.cfg.view_choices)
      BEVKD_CHECK(v < V, "loader config: views.choices holds ", v, ", but the ", shards_name, " store ", V,
                  " views (0..", V - 1, ")");
  if (m.cfg.teacher_class_probs) {
    const storage::SchemaVersion sv = manifest.schema_version();
    BEVKD_CHECK(sv.major > 1 || (sv.major == 1 && sv.minor >= 1), "loader config: teacher.class_probs needs the "
                "dataset teacher/class_probs, which the ", shards_name, " (shard schema ", sv.str(),
                ") lack; it is written by bevkd-precompute with shard schema 1.1 or later");
  }
  // The manifest's producing configuration; every shard's header must equal it (the stream
  // checks each shard against the manifest when it opens it).
  const nlohmann::json& id = manifest.identity();
  const nlohmann::json producing = id.contains("config") ? id.at("config") : nlohmann::json::object();
  m.views = data::stored_views(producing, V, shards_name);
  if (m.setup.expected_views)
    check_view_ranges(producing, shards_name, *m.setup.expected_views, m.setup.expected_views_name);
  if (m.setup.student_grid) check_grid_rule(m.grid, shards_name, *m.setup.student_grid, m.setup.student_grid_name);
  std::vector<std::string> cameras;
  if (manifest.identity().contains("camera_names"))
    cameras = manifest.identity().at("camera_names").get<std::vector<std::string>>();
  BEVKD_CHECK(!cameras.empty(), shards_name, ": the manifest names no cameras");
  m.samples = std::make_shared<const SampleLoader>(m.cfg, dataroot, m.grid, manifest.taps(), cameras, m.setup.train);

  storage::StreamOptions o = stream_options(m.cfg, m.setup);
  o.fields = m.samples->fields();
  o.process = [samples = m.samples](storage::StreamItem& item) {
    auto s = std::make_shared<LoadedSample>(
        samples->load(item.sample, item.position.epoch, item.ref, std::max(item.view, 0)));
    s->shard = item.shard;
    s->shard_sample = item.sample_index;
    item.sample = storage::Sample();  // the images replace it
    item.payload = std::move(s);
  };
  m.stream = std::make_unique<storage::ShardStream>(std::move(manifest), std::move(o));
  m.start(storage::StreamPosition{});
}

Loader::~Loader() { impl_->halt(); }

std::optional<Batch> Loader::next() {
  Impl& m = *impl_;
  if (m.failed) std::rethrow_exception(m.failed);
  const Clock::time_point t0 = Clock::now();
  if (!m.clock_started) {
    m.clock_started = true;
    m.started = t0;
  }
  auto account = [&](const Produced* p) {
    const Clock::time_point t1 = Clock::now();
    std::lock_guard<std::mutex> lock(m.stats_mu);
    m.stats.wait_s += std::chrono::duration<double>(t1 - t0).count();
    m.stats.elapsed_s = m.elapsed_before + std::chrono::duration<double>(t1 - m.started).count();
    if (p == nullptr) return;
    m.stats.skipped_samples += static_cast<std::int64_t>(p->skipped.size());
    for (const auto& s : p->skipped)
      if (m.stats.skipped.size() < LoaderStats::kMaxSkippedMessages) m.stats.skipped.push_back(s);
    if (p->batch.size() > 0) {
      ++m.stats.batches;
      m.stats.samples += p->batch.size();
    }
  };
  std::optional<Produced> p;
  try {
    p = m.queue->pop();
  } catch (...) {
    m.failed = std::current_exception();
    account(nullptr);
    throw;
  }
  if (!p) {
    account(nullptr);
    return std::nullopt;
  }
  m.pos = p->after;
  account(&*p);
  if (p->batch.size() == 0) return std::nullopt;
  return std::move(p->batch);
}

storage::StreamPosition Loader::position() const { return impl_->pos; }

void Loader::seek(storage::StreamPosition pos) { impl_->start(pos); }

std::int64_t Loader::samples_per_epoch() const { return impl_->stream->samples_per_epoch(); }

std::int64_t Loader::batches_per_epoch() const {
  const std::int64_t n = samples_per_epoch(), b = impl_->cfg.batch_size;
  return impl_->setup.train && impl_->cfg.drop_last_batch ? n / b : (n + b - 1) / b;
}

LoaderStats Loader::stats() const {
  std::lock_guard<std::mutex> lock(impl_->stats_mu);
  return impl_->stats;
}

const BevGrid& Loader::grid() const { return impl_->grid; }
const StoredViews& Loader::stored_views() const { return impl_->views; }
const LoaderConfig& Loader::config() const { return impl_->cfg; }

}  // namespace bevkd::train::data

#include "storage/shard_stream.h"

#include <tbb/global_control.h>
#include <tbb/info.h>
#include <tbb/task_arena.h>

#include <algorithm>
#include <exception>
#include <list>
#include <map>
#include <mutex>

#include "base/error.h"
#include "base/fs.h"
#include "base/prefetch_queue.h"
#include "base/rng.h"
#include "storage/shard_reader.h"

namespace bevkd::storage {
namespace {

constexpr std::uint64_t kSampleKeySalt = 0x53414D504C454B45ull;
constexpr std::uint64_t kViewSalt = 0x56494557ull;

struct OpenShard {
  std::shared_ptr<const ShardReader> reader;
  std::vector<int> fields;
};

}  // namespace

std::uint64_t sample_key(const SampleRef& ref) {
  return mix_keys(kSampleKeySalt, static_cast<std::uint64_t>(ref.shard), static_cast<std::uint64_t>(ref.sample));
}

int draw_view(std::uint64_t seed, std::int64_t epoch, const SampleRef& ref, std::int64_t num_views,
              const std::vector<int>& choices) {
  BEVKD_ASSERT(num_views >= 1, "draw_view: num_views ", num_views);
  Rng rng(mix_keys(seed, static_cast<std::uint64_t>(epoch), sample_key(ref), kViewSalt));
  if (choices.empty()) return static_cast<int>(rng.below(static_cast<std::uint64_t>(num_views)));
  return choices[static_cast<std::size_t>(rng.below(choices.size()))];
}

struct ShardStream::Impl {
  Manifest manifest;
  StreamOptions opts;
  std::vector<int> shards;  // manifest indices of the split's shards
  std::int64_t total = 0;
  std::int64_t per_rank = 0;
  std::unique_ptr<tbb::global_control> parallelism;
  std::unique_ptr<tbb::task_arena> arena;

  std::mutex readers_mu;
  std::list<std::pair<int, OpenShard>> readers;  // most recently used first
  std::map<int, std::string> broken;             // shards that failed to open, with the error

  // The consumer's state: position and this epoch's order (only the consumer thread touches
  // them, under mu for position()); decoding tasks deliver into `queue` in any order.
  mutable std::mutex mu;
  StreamPosition pos;
  std::vector<SampleRef> order;  // this rank's order of pos.epoch
  std::int64_t next_submit = 0;
  std::unique_ptr<PrefetchQueue<StreamItem>> queue;

  OpenShard open_shard(int shard);
  void decode(PrefetchQueue<StreamItem>::Ticket t, std::int64_t epoch, std::int64_t k, SampleRef ref);
  void fill();
  std::vector<SampleRef> epoch_order(std::int64_t epoch) const;
  std::vector<SampleRef> rank_order(std::int64_t epoch) const;
  int view_of(std::int64_t epoch, const SampleRef& ref) const;
};

int ShardStream::Impl::view_of(std::int64_t epoch, const SampleRef& ref) const {
  if (!opts.draw_view) return opts.view;
  return draw_view(opts.seed, epoch, ref, manifest.num_views(), opts.view_choices);
}

std::vector<SampleRef> ShardStream::Impl::epoch_order(std::int64_t epoch) const {
  struct Block {
    int shard;
    std::int64_t begin, end;
  };
  std::vector<Block> blocks;
  const std::int64_t B = opts.block_samples;
  for (int s : shards) {
    const std::int64_t n = manifest.shards()[s].num_samples;
    for (std::int64_t b = 0; b < n; b += B) blocks.push_back(Block{s, b, std::min(n, b + B)});
  }
  Rng rng(mix_keys(opts.seed, static_cast<std::uint64_t>(epoch), 0x5EED0DE5ull));  // base/rng.h: the same order everywhere
  if (opts.shuffle) rng.shuffle(blocks.begin(), blocks.end());
  std::vector<SampleRef> out;
  out.reserve(static_cast<std::size_t>(total));
  for (std::size_t w = 0; w < blocks.size(); w += static_cast<std::size_t>(opts.window_blocks)) {
    const std::size_t start = out.size();
    const std::size_t wend = std::min(blocks.size(), w + static_cast<std::size_t>(opts.window_blocks));
    for (std::size_t b = w; b < wend; ++b)
      for (std::int64_t i = blocks[b].begin; i < blocks[b].end; ++i) out.push_back(SampleRef{blocks[b].shard, i});
    if (opts.shuffle) rng.shuffle(out.begin() + static_cast<std::ptrdiff_t>(start), out.end());
  }
  return out;
}

std::vector<SampleRef> ShardStream::Impl::rank_order(std::int64_t epoch) const {
  const std::vector<SampleRef> all = epoch_order(epoch);
  std::vector<SampleRef> out;
  out.reserve(static_cast<std::size_t>(per_rank));
  const std::int64_t start = static_cast<std::int64_t>(opts.rank) * per_rank;
  for (std::int64_t k = 0; k < per_rank; ++k) out.push_back(all[static_cast<std::size_t>((start + k) % total)]);
  return out;
}

OpenShard ShardStream::Impl::open_shard(int shard) {
  std::lock_guard<std::mutex> lock(readers_mu);
  for (auto it = readers.begin(); it != readers.end(); ++it)
    if (it->first == shard) {
      readers.splice(readers.begin(), readers, it);
      return it->second;
    }
  if (auto b = broken.find(shard); b != broken.end()) BEVKD_FAIL(b->second);
  const ManifestShard& entry = manifest.shards()[shard];
  const std::string path = manifest.shard_path(entry);
  OpenShard o;
  try {
    const bool legacy = manifest.schema_version() < Schema::current().compact_layout_since();
    OpenOptions oo = manifest.open_options(entry, opts.check_file_hash || (legacy && opts.check_legacy_file_hash));
    if (!opts.check_manifest) oo.expected_bytes = 0;
    auto reader = std::make_shared<const ShardReader>(path, oo);
    if (opts.check_manifest) manifest.check_shard(reader->header(), entry, cat("shard ", path));
    o.fields = reader->select(opts.fields);
    o.reader = std::move(reader);
  } catch (const Error& e) {
    broken[shard] = e.what();
    throw;
  }
  readers.emplace_front(shard, o);
  while (static_cast<int>(readers.size()) > std::max(1, opts.max_open_shards)) readers.pop_back();
  return o;
}

void ShardStream::Impl::decode(PrefetchQueue<StreamItem>::Ticket t, std::int64_t epoch, std::int64_t k,
                               SampleRef ref) {
  const ManifestShard& entry = manifest.shards()[ref.shard];
  try {
    const OpenShard o = open_shard(ref.shard);
    ReadOptions ro;
    ro.verify = opts.verify;
    ro.view = view_of(epoch, ref);
    StreamItem item;
    item.sample = o.reader->read_fields(ref.sample, o.fields, ro);
    item.shard = entry.path;
    item.sample_index = ref.sample;
    item.ref = ref;
    item.view = ro.view;
    item.position = StreamPosition{epoch, k};
    if (opts.process) opts.process(item);
    queue->put(t, std::move(item));
  } catch (const std::exception& e) {
    queue->put_error(t, std::make_exception_ptr(Error(cat("ShardStream (epoch ", epoch, ", item ", k, " of rank ",
                                                          opts.rank, "): shard ", entry.path, ", sample ", ref.sample,
                                                          ": ", e.what()))));
  }
}

void ShardStream::Impl::fill() {
  while (next_submit < per_rank) {
    const auto t = queue->try_reserve();
    if (!t) return;
    const std::int64_t k = next_submit++;
    const SampleRef ref = order[static_cast<std::size_t>(k)];
    const std::int64_t epoch = pos.epoch;
    arena->enqueue([this, t = *t, epoch, k, ref] { decode(t, epoch, k, ref); });
  }
}

ShardStream::ShardStream(Manifest manifest, StreamOptions opts) : impl_(std::make_unique<Impl>()) {
  Impl& m = *impl_;
  m.manifest = std::move(manifest);
  m.opts = std::move(opts);
  const StreamOptions& o = m.opts;
  BEVKD_CHECK(o.world_size >= 1 && o.rank >= 0 && o.rank < o.world_size, "ShardStream: rank ", o.rank,
              " is not in [0, world_size = ", o.world_size, ")");
  BEVKD_CHECK(o.num_threads >= 1 && o.prefetch >= 0 && o.block_samples >= 1 && o.window_blocks >= 1,
              "ShardStream: num_threads, block_samples and window_blocks must be >= 1 and prefetch >= 0");
  if (m.opts.prefetch == 0) m.opts.prefetch = 2 * o.num_threads;
  const std::int64_t V = m.manifest.num_views();
  BEVKD_CHECK(o.view >= -1 && o.view < V, "ShardStream: view ", o.view, " is not a stored view (the shards store ", V,
              " views, 0..", V - 1, "; -1 = all)");
  BEVKD_CHECK(!(o.draw_view && o.view >= 0), "ShardStream: a fixed view (", o.view,
              ") and draw_view exclude each other");
  BEVKD_CHECK(o.draw_view || o.view_choices.empty(), "ShardStream: view_choices given without draw_view");
  for (int v : o.view_choices)
    BEVKD_CHECK(v >= 0 && v < V, "ShardStream: view choice ", v, " is not a stored view (the shards store ", V,
                " views, 0..", V - 1, ")");
  for (std::size_t s = 0; s < m.manifest.shards().size(); ++s)
    if (o.split.empty() || m.manifest.shards()[s].split == o.split) {
      m.shards.push_back(static_cast<int>(s));
      m.total += m.manifest.shards()[s].num_samples;
    }
  BEVKD_CHECK(m.total > 0, "ShardStream: the manifest in ", m.manifest.dir(), " has no samples",
              o.split.empty() ? std::string() : cat(" in split \"", o.split, "\""));
  for (const std::string& f : o.fields) {
    const std::string missing = Schema::current().missing_field_message(
        f, m.manifest.schema_version(), cat("ShardStream: the shards of ", m.manifest.dir()));
    BEVKD_CHECK(missing.empty(), missing);
  }
  m.per_rank = o.drop_last ? m.total / o.world_size : (m.total + o.world_size - 1) / o.world_size;
  BEVKD_CHECK(m.per_rank > 0, "ShardStream: ", m.total, " samples cannot give each of ", o.world_size,
              " ranks one with drop_last");
  // TBB's default pool has (cores - 1) workers; the consumer thread does not decode, so allow
  // num_threads workers even on small machines (a process-wide upper limit, never a lower one).
  const int want = o.num_threads + 1;
  if (want > tbb::info::default_concurrency())
    m.parallelism = std::make_unique<tbb::global_control>(tbb::global_control::max_allowed_parallelism,
                                                          static_cast<std::size_t>(want));
  m.arena = std::make_unique<tbb::task_arena>(o.num_threads, 0);
  m.queue = std::make_unique<PrefetchQueue<StreamItem>>(static_cast<std::size_t>(m.opts.prefetch));
  seek(StreamPosition{});
}

ShardStream::~ShardStream() { impl_->queue->wait_filled(); }

void ShardStream::seek(StreamPosition pos) {
  Impl& m = *impl_;
  BEVKD_CHECK(pos.epoch >= 0 && pos.index >= 0 && pos.index <= m.per_rank, "ShardStream: position {epoch ",
              pos.epoch, ", index ", pos.index, "} is outside an epoch of ", m.per_rank, " items");
  m.queue->wait_filled();
  m.queue->clear();
  std::lock_guard<std::mutex> lock(m.mu);
  if (m.order.empty() || m.pos.epoch != pos.epoch) m.order = m.rank_order(pos.epoch);
  m.pos = pos;
  m.next_submit = pos.index;
  m.fill();
}

std::optional<StreamItem> ShardStream::next() {
  Impl& m = *impl_;
  if (m.pos.index >= m.per_rank) return std::nullopt;
  m.fill();
  std::optional<StreamItem> item;
  std::exception_ptr error;  // a decoding error, re-thrown at its position after moving past it
  try {
    item = m.queue->pop();
    BEVKD_ASSERT(item.has_value(), "ShardStream: nothing reserved at item ", m.pos.index);
  } catch (...) {
    error = std::current_exception();
  }
  {
    std::lock_guard<std::mutex> lock(m.mu);
    ++m.pos.index;
  }
  m.fill();
  if (error) std::rethrow_exception(error);
  return item;
}

StreamPosition ShardStream::position() const {
  std::lock_guard<std::mutex> lock(impl_->mu);
  return impl_->pos;
}

std::int64_t ShardStream::samples_per_epoch() const { return impl_->per_rank; }
std::vector<SampleRef> ShardStream::rank_order(std::int64_t epoch) const { return impl_->rank_order(epoch); }
std::vector<SampleRef> ShardStream::epoch_order(std::int64_t epoch) const { return impl_->epoch_order(epoch); }
int ShardStream::view_of(std::int64_t epoch, const SampleRef& ref) const { return impl_->view_of(epoch, ref); }
const Manifest& ShardStream::manifest() const { return impl_->manifest; }
const std::vector<int>& ShardStream::shard_indices() const { return impl_->shards; }

}  // namespace bevkd::storage

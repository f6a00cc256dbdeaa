#include "precompute/run/stage_write.h"

#include "base/error.h"

namespace bevkd::precompute {

WriteStage::WriteStage(WriteParams p) : p_(std::move(p)) {}

WriteStage::~WriteStage() = default;  // an unfinished writer removes its .partial file

void WriteStage::add_existing(const PlannedShard& shard, const storage::ManifestShard& entry,
                              std::vector<storage::SkippedSample> skipped) {
  shards_[shard.id] = entry;
  samples_skipped_ += static_cast<int64_t>(skipped.size());
  if (!skipped.empty()) skipped_[shard.id] = std::move(skipped);
}

storage::Manifest WriteStage::manifest() const {
  storage::Manifest m(p_.meta);
  for (const auto& [id, e] : shards_) m.add(e);
  for (const auto& [id, list] : skipped_)
    for (const auto& k : list) m.add_skipped(k);
  return m;
}

std::string WriteStage::manifest_path() const {
  return p_.out_dir + "/" + storage::worker_manifest_name(p_.worker_index, p_.num_workers);
}

void WriteStage::save_manifest() const { manifest().save(manifest_path()); }

std::vector<storage::SkippedSample> WriteStage::skipped() const {
  std::vector<storage::SkippedSample> out;
  for (const auto& [id, list] : skipped_) out.insert(out.end(), list.begin(), list.end());
  return out;
}

void WriteStage::begin_shard(const PlannedShard& shard) {
  BEVKD_ASSERT(writer_ == nullptr, "write: shard ", shard.path, " begun before ", current_->path, " ended");
  current_ = &shard;
  storage::ShardMeta meta = p_.meta;
  meta.split = shard.split;
  writer_ = std::make_unique<storage::ShardWriter>(p_.out_dir + "/" + shard.path, std::move(meta), p_.writer);
}

void WriteStage::write(SampleWork& s) {
  BEVKD_ASSERT(writer_ != nullptr, "write: sample ", s.token, " outside a shard");
  if (s.skipped()) {
    skipped_[current_->id].push_back({s.token, current_->split, current_->path, "missing files", s.missing_files});
    ++samples_skipped_;
    return;
  }
  writer_->append(std::move(s.record));
  ++samples_written_;
}

void WriteStage::end_shard() {
  BEVKD_ASSERT(writer_ != nullptr, "write: end_shard without a shard");
  const storage::ShardInfo info = writer_->close();
  const auto st = writer_->stats();
  closed_stats_.encode_s += st.encode_s;
  closed_stats_.checksum_s += st.checksum_s;
  closed_stats_.write_s += st.write_s;
  writer_.reset();
  shards_[current_->id] = {current_->path, info.split, info.num_samples, info.bytes, info.xxh64};
  ++shards_written_;
  current_ = nullptr;
  save_manifest();
}

storage::WriterStats WriteStage::stats() const {
  storage::WriterStats s = closed_stats_;
  if (writer_) {
    const auto c = writer_->stats();
    s.encode_s += c.encode_s;
    s.checksum_s += c.checksum_s;
    s.write_s += c.write_s;
  }
  return s;
}

}  // namespace bevkd::precompute

#include "precompute/run/stage_read.h"

#include <random>

#include "base/error.h"
#include "base/rng.h"
#include "storage/codec.h"

namespace bevkd::precompute {

namespace {

std::vector<std::string> skipped_files(const core::nusc::KeyFrameLoader& loader, const std::string& token) {
  for (const auto& s : loader.skipped())
    if (s.sample_token == token) return s.missing_files;
  BEVKD_ASSERT(false, "the key-frame loader skipped sample ", token, " without recording it");
  return {};
}

}  // namespace

ReadStage::ReadStage(const core::nusc::NuScenes& db, const RunConfig& cfg) : db_(db), cfg_(cfg) {
  core::nusc::KeyFrameOptions o;
  o.nsweeps = static_cast<int>(cfg.nsweeps);
  o.check_images = true;   // the student reads them: a shard must not point at missing JPEGs,
  o.decode_images = true;  // nor at ones that do not decode or disagree with sample_data
  o.skip_missing_files = cfg.skip_missing_files;
  o.drop_nonfinite_points = cfg.drop_nonfinite_points;
  loader_ = std::make_unique<core::nusc::KeyFrameLoader>(db, o);
  o.load_points = false;
  o.decode_images = false;  // the checker only looks for missing files
  o.skip_missing_files = true;
  checker_ = std::make_unique<core::nusc::KeyFrameLoader>(db, o);
}

void ReadStage::run(SampleWork& s) const {
  try {
    s.frame = loader_->load(s.sample);
  } catch (const Error& e) {
    // The hint only where it helps: the sample's files are missing (not, e.g., truncated).
    bool missing = false;
    try {
      missing = !checker_->load(s.sample).has_value();
    } catch (const Error&) {
    }
    if (missing) BEVKD_FAIL(e.what(), "; bevkd-precompute run --skip-missing-files skips and records such samples");
    throw;
  }
  if (!s.frame) {
    s.missing_files = skipped_files(*loader_, s.token);
    return;
  }
  BEVKD_ASSERT(s.frame->sample_token == s.token, "sample ", s.sample, " has token ", s.frame->sample_token,
               ", the plan says ", s.token);
  dropped_points_ += s.frame->dropped_points;
  s.views = sample_views(cfg_, s.token);
}

std::vector<std::string> ReadStage::missing_files(std::uint32_t sample) const {
  if (checker_->load(sample)) return {};
  return skipped_files(*checker_, std::string(db_.token(core::nusc::Table::kSample, sample)));
}

std::vector<core::nn::BevTransform> sample_views(const RunConfig& cfg, const std::string& token) {
  std::vector<core::nn::BevTransform> views(static_cast<size_t>(cfg.views));
  for (int64_t v = 1; v < cfg.views; ++v) {
    Rng rng(mix_keys(cfg.seed, key_of(token), static_cast<uint64_t>(v)));  // per (seed, sample, view)
    views[static_cast<size_t>(v)] = cfg.view_augment.sample(rng);
  }
  return views;
}

}  // namespace bevkd::precompute

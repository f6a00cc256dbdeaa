#include "precompute/teacher/teacher.h"

#include <xxhash.h>

#include <cstdio>
#include <fstream>
#include <vector>

#include "base/error.h"

namespace bevkd::precompute {

PreparedCloud Teacher::prepare(torch::Tensor points) const {
  PreparedCloud c;
  c.points = std::move(points);
  return c;
}

TeacherOutput Teacher::infer(const std::vector<torch::Tensor>& points) {
  std::vector<PreparedCloud> clouds;
  clouds.reserve(points.size());
  for (const auto& p : points) clouds.push_back(prepare(p));
  return infer_prepared(clouds);
}

std::string file_hash(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  BEVKD_CHECK(in.good(), "cannot open ", path, " to hash it");
  XXH64_state_t* st = XXH64_createState();
  XXH64_reset(st, 0);
  std::vector<char> buf(1 << 20);
  while (in) {
    in.read(buf.data(), static_cast<std::streamsize>(buf.size()));
    if (in.gcount() > 0) XXH64_update(st, buf.data(), static_cast<size_t>(in.gcount()));
  }
  const auto h = XXH64_digest(st);
  XXH64_freeState(st);
  char hex[17];
  std::snprintf(hex, sizeof hex, "%016llx", static_cast<unsigned long long>(h));
  return std::string("xxh64:") + hex;
}

void check_teacher_output(const TeacherOutput& out, int64_t batch, const BevGrid& grid, const std::string& who) {
  for (const char* tap : {kTapNeck, kTapHeadShared})
    BEVKD_CHECK(out.features.count(tap) != 0, who, ": feature tap '", tap, "' is missing");
  for (const auto& [name, t] : out.features)
    BEVKD_CHECK(t.dim() == 4 && t.size(0) == batch && t.size(2) == grid.H && t.size(3) == grid.W, who,
                ": feature tap '", name, "' has shape ", t.sizes(), ", expected [", batch, ", C, ", grid.H, ", ",
                grid.W, "] for ", grid.describe());
  BEVKD_CHECK(out.heatmap.defined() && out.heatmap.dim() == 4 && out.heatmap.size(0) == batch &&
                  out.heatmap.size(1) == core::kNumClasses && out.heatmap.size(2) == grid.H &&
                  out.heatmap.size(3) == grid.W,
              who, ": heat map has shape ", out.heatmap.defined() ? out.heatmap.sizes() : c10::IntArrayRef{},
              ", expected [", batch, ", ", core::kNumClasses, ", ", grid.H, ", ", grid.W, "]");
  BEVKD_CHECK(out.raw.size() == out.tasks.size() && !out.raw.empty(), who, ": ", out.raw.size(),
              " raw task outputs for ", out.tasks.size(), " tasks");
  BEVKD_CHECK(static_cast<int64_t>(out.detections.size()) == batch, who, ": ", out.detections.size(),
              " detection sets for a batch of ", batch);
  for (int64_t b = 0; b < batch; ++b) {
    const auto& d = out.detections[b];
    const auto n = d.size();
    BEVKD_CHECK(d.boxes.dim() == 2 && d.boxes.size(1) == 9 && d.scores.size(0) == n && d.labels.size(0) == n &&
                    d.cells.size(0) == n,
                who, ": sample ", b, " detections are inconsistent (boxes ", d.boxes.sizes(), ", scores ",
                d.scores.sizes(), ", labels ", d.labels.sizes(), ")");
    BEVKD_CHECK(n == 0 || torch::isfinite(d.boxes).all().item<bool>(), who, ": sample ", b,
                " has non-finite decoded boxes");
  }
}

}  // namespace bevkd::precompute

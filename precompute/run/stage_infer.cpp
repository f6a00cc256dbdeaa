#include "precompute/run/stage_infer.h"

namespace bevkd::precompute {

void InferStage::run(BatchWork& b) {
  std::vector<PreparedCloud> clouds;
  for (auto& s : b.samples) {
    if (s.skipped()) continue;
    for (auto& c : s.clouds) clouds.push_back(std::move(c));
    s.clouds.clear();
  }
  b.teacher = clouds.empty() ? TeacherOutput{} : teacher_.infer_prepared(clouds);
}

}  // namespace bevkd::precompute

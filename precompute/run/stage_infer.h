// Stage "infer" of the run pipeline: one teacher forward pass per batch over every view of
// every kept sample (batch = kept samples x V clouds, sample-major). Serial: the teacher owns
// its device; batches never cross shard boundaries, so a shard's batches — and with them the
// numerics of batched inference — are the same for any worker split and after a resume.
#pragma once

#include "precompute/run/run_batch.h"
#include "precompute/teacher/teacher.h"

namespace bevkd::precompute {

class InferStage {
 public:
  explicit InferStage(Teacher& teacher) : teacher_(teacher) {}

  // Fills b.teacher (left empty when every sample of the batch was skipped) and releases the
  // prepared clouds. One call at a time.
  void run(BatchWork& b);

 private:
  Teacher& teacher_;
};

}  // namespace bevkd::precompute

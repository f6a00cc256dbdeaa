// The teacher interface that the precompute pipeline calls (DESIGN.md stage one). Two
// implementations: the built-in PointPillars-CenterPoint loaded from a bevkd checkpoint
// (builtin_teacher.h) and any TorchScript module following bevkd's teacher contract
// (torchscript_teacher.h; the contract is in README.md "Teacher").
//
// Teachers are opened by precompute/teacher/teacher_factory.h.
//
// A teacher maps a batch of LiDAR point clouds — each [P, 5] float32 (x, y, z, intensity,
// time_lag) in the key frame's ego frame (m, s) with the sweeps already moved into it — to
//   * named BEV feature taps [B, C, H, W] float32 (always `neck` and `head_shared`, spec/losses.md
//     §11),
//   * the class heat maps after sigmoid [B, 10, H, W] float32 in DESIGN.md class order,
//   * the raw head outputs per task (logits and regressions, center_head.h),
//   * per sample the decoded boxes after NMS (ego frame, Box), scores, labels and centre cells,
// all on the teacher's output grid `grid()` (row <-> y, column <-> x) and on the CPU.
#pragma once

#include <torch/torch.h>

#include <array>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "core/nn/center_decode.h"
#include "core/nn/center_head.h"
#include "core/geometry.h"

namespace bevkd::precompute {

// The feature taps every teacher provides.
inline constexpr const char* kTapNeck = "neck";
inline constexpr const char* kTapHeadShared = "head_shared";

// What a shard records about the teacher that produced it.
struct TeacherIdentity {
  std::string kind;             // "builtin" | "torchscript"
  std::string preset;           // built-in preset name, or the module's declared name
  std::string checkpoint;       // path as given
  std::string checkpoint_hash;  // "xxh64:<16 hex digits>" of the checkpoint file's bytes
  std::string config_json;      // the resolved model / decode configuration, JSON
};

struct TeacherOutput {
  std::map<std::string, torch::Tensor> features;          // tap name -> [B, C_tap, H, W] float32
  torch::Tensor heatmap;                                   // [B, 10, H, W] float32 in [0, 1]
  std::vector<core::nn::TaskPrediction> raw;        // per task, as the head returns them
  std::vector<core::nn::TaskClasses> tasks;         // label ids of each raw task
  std::vector<core::nn::Detections> detections;     // per sample, after NMS
};

// One point cloud made ready for the model by Teacher::prepare(): the per-cloud CPU work that
// needs no weights, split off so that a pipeline can run it on many threads while infer() runs
// the model serially.
struct PreparedCloud {
  torch::Tensor points;      // [P, 5] float32 (see the file comment)
  // Built-in teacher: the cloud's pillars with the test-time limits (pointpillars.h); undefined
  // for teachers that take raw points (TorchScript).
  torch::Tensor voxels;      // [V, M, 5] float32, zero beyond num_points
  torch::Tensor num_points;  // [V] int32, 1..M
  torch::Tensor coords;      // [V, 3] int32 (z = 0, row <-> y, column <-> x) on the pillar grid
};

class Teacher {
 public:
  virtual ~Teacher() = default;

  // Per-cloud preparation (built-in: pillarisation). Thread-safe: may run on many threads at
  // once, also while infer_prepared() runs. points: [P, 5] float32 CPU tensor, P may be 0.
  virtual PreparedCloud prepare(torch::Tensor points) const;
  // Runs the model on prepared clouds, batch = clouds.size() >= 1. One call at a time. Runs in
  // inference mode (no gradients, BN in eval mode) on the teacher's device; outputs on the CPU.
  virtual TeacherOutput infer_prepared(const std::vector<PreparedCloud>& clouds) = 0;
  // prepare() + infer_prepared(). points[b]: [P_b, 5] float32 CPU tensor; P_b may be 0.
  TeacherOutput infer(const std::vector<torch::Tensor>& points);

  // The grid of every output above.
  virtual BevGrid grid() const = 0;
  virtual TeacherIdentity identity() const = 0;
  // Names of the feature taps infer() returns (kTapNeck and kTapHeadShared at least).
  virtual std::vector<std::string> feature_taps() const = 0;
  virtual torch::Device device() const = 0;
};

// Hash of a file's bytes as written into TeacherIdentity::checkpoint_hash.
std::string file_hash(const std::string& path);

// Checks a TeacherOutput against the interface above (tap and heat-map shapes, batch size,
// grid, finite values); throws bevkd::Error naming `who` and the offending output. Used by both
// implementations and by tests.
void check_teacher_output(const TeacherOutput& out, int64_t batch, const BevGrid& grid, const std::string& who);

}  // namespace bevkd::precompute

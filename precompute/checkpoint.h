// Teacher checkpoints.
//
// Format (version kCheckpointVersion): one file written by torch::pickle_save — a zip archive that
// Python's `torch.load(path)` also reads — holding a dict
//   "format":  "bevkd-teacher-checkpoint"
//   "version": 1
//   "config":  the TeacherModelConfig as JSON (str)
//   "model":   Dict[str, Tensor] every parameter and buffer by its dotted name (mmdet3d keys)
//   "train":   (optional, written by fit-teacher) Dict with
//                "step": int, "epoch": int, "fit_config": str (JSON),
//                "optimizer": uint8 Tensor (LibTorch's optimizer archive, exact AdamW state),
//                "metrics": str (JSON of the last logged metrics)
// Files are written atomically (temporary file, fsync, rename): a crash leaves the previous
// checkpoint intact.
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace bevkd::precompute {

inline constexpr int64_t kCheckpointVersion = 1;
inline constexpr const char* kCheckpointFormat = "bevkd-teacher-checkpoint";

struct TrainState {
  int64_t step = 0;                // optimizer steps done
  int64_t epoch = 0;               // epochs fully done
  std::string fit_config_json;     // the fit configuration that produced it
  std::string optimizer_bytes;     // LibTorch optimizer archive
  std::string metrics_json;        // last logged metrics
};

struct TeacherCheckpoint {
  std::string config_json;                                     // TeacherModelConfig::to_json()
  std::vector<std::pair<std::string, torch::Tensor>> model;    // parameters and buffers, CPU
  std::optional<TrainState> train;
};

// Collects a module's parameters and buffers (CPU copies) in registration order.
std::vector<std::pair<std::string, torch::Tensor>> module_state(const torch::nn::Module& module);

// Copies `state` into `module`. Every parameter/buffer of the module must be present with the
// same shape and the state may hold nothing else; otherwise throws bevkd::Error naming `source`,
// the first mismatched entry (module order) and both shapes, e.g.
//   "checkpoint a.ckpt does not match preset nuscenes-pillar02: parameter
//    pts_voxel_encoder.pfn_layers.0.linear.weight has shape [32, 10] in the checkpoint, the
//    preset expects [64, 11]"
void load_module_state(torch::nn::Module& module, const std::vector<std::pair<std::string, torch::Tensor>>& state,
                       const std::string& source, const std::string& target_name);

void save_checkpoint(const std::string& path, const TeacherCheckpoint& ckpt);
// Throws bevkd::Error naming `path` for a missing, truncated or foreign file.
TeacherCheckpoint read_checkpoint(const std::string& path);

// Optimizer state <-> bytes (LibTorch's OutputArchive / InputArchive).
std::string optimizer_to_bytes(const torch::optim::Optimizer& opt);
void optimizer_from_bytes(torch::optim::Optimizer& opt, const std::string& bytes, const std::string& source);

}  // namespace bevkd::precompute

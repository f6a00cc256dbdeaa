// bevkd's checkpoint format, shared by every trainer (fit-teacher's teacher.ckpt, bevkd-train's
// student checkpoints). One file written by torch::pickle_save — a zip archive that Python's
// `torch.load(path)` also reads — holding a dict
//
//   "format":     "bevkd-checkpoint"
//   "version":    1
//   "kind":       str, what the file holds ("teacher", "student", ...)
//   "meta":       str, JSON written by the trainer (its resolved configuration, step, epoch, ...)
//   "modules":    Dict[str, Dict[str, Tensor]]  named module states ("model", "ema", "loss.bevdistill_infonce", ...):
//                 every parameter and buffer by its dotted name
//   "optimizers": Dict[str, Tensor(uint8)]      LibTorch optimizer archives (exact AdamW state)
//   "blobs":      Dict[str, Tensor(uint8)]      any other state (RNG states, loader position, ...)
//   "checksums":  Dict[str, str]                "xxh64:<16 hex>" of every entry above (dtype, shape and
//                                               bytes of a tensor; the text of meta), keyed
//                                               "meta", "modules/<module>/<name>", "optimizers/<name>",
//                                               "blobs/<name>"
//
// Reading verifies every checksum: a flipped byte inside a weight is refused naming the file and
// the tensor ("checkpoint a.ckpt: modules/model/pts_backbone.blocks.0.0.weight fails its checksum").
// Files are written atomically (temporary file, fsync, rename): a crash leaves the previous
// checkpoint intact.
#pragma once

#include <torch/types.h>

#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

namespace torch::nn {
class Module;
}
namespace torch::optim {
class Optimizer;
}

namespace bevkd::core::nn {

inline constexpr int64_t kCheckpointVersion = 1;
inline constexpr const char* kCheckpointFormat = "bevkd-checkpoint";

using NamedTensors = std::vector<std::pair<std::string, torch::Tensor>>;

struct Checkpoint {
  std::string kind;
  std::string meta_json = "{}";
  std::map<std::string, NamedTensors> modules;
  std::map<std::string, std::string> optimizers;  // archive bytes
  std::map<std::string, std::string> blobs;

  const NamedTensors& module(const std::string& name, const std::string& path) const;  // throws naming both
};

void save_checkpoint(const std::string& path, const Checkpoint& ckpt);
// Reads and verifies a checkpoint. Throws bevkd::Error naming `path` for a missing, truncated or
// foreign file, a failed checksum (naming the entry), or — when `kind` is not empty — another kind.
Checkpoint read_checkpoint(const std::string& path, const std::string& kind = "");

// A module's parameters and buffers (CPU copies) in registration order.
NamedTensors module_state(const torch::nn::Module& module);

// Copies `state` into `module`. Every parameter/buffer of the module must be present with the
// same shape and the state may hold nothing else; otherwise throws bevkd::Error naming `source`,
// the first mismatched entry (module order) and both shapes, e.g.
//   "checkpoint a.ckpt does not match preset nuscenes-pillar02: parameter
//    pts_voxel_encoder.pfn_layers.0.linear.weight has shape [32, 10] in the checkpoint, the
//    preset expects [64, 11]"
// The module is untouched when anything mismatches.
void load_module_state(torch::nn::Module& module, const NamedTensors& state, const std::string& source,
                       const std::string& target_name);

// Optimizer state <-> bytes (LibTorch's OutputArchive / InputArchive).
std::string optimizer_to_bytes(const torch::optim::Optimizer& opt);
void optimizer_from_bytes(torch::optim::Optimizer& opt, const std::string& bytes, const std::string& source);

// Bytes <-> a uint8 tensor (for blobs).
torch::Tensor bytes_tensor(const std::string& s);
std::string tensor_bytes(const torch::Tensor& t);

}  // namespace bevkd::core::nn

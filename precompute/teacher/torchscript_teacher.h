// A teacher from any TorchScript module that follows bevkd's teacher contract, version 1
// (README.md "Teacher" states it for users; this is the normative copy):
//
//   forward(points: Tensor, batch_index: Tensor, batch_size: int, grid: Tensor) -> Dict[str, Tensor]
//
//   points       [P, 5] float32: x, y, z (m), intensity, time_lag (s) in the key frame's ego
//                frame (x forward, y left, z up), the samples of the batch concatenated
//   batch_index  [P] int64: the sample of each point, in [0, batch_size)
//   batch_size   B
//   grid         [8] float64: x_min, y_min, z_min, x_max, y_max, z_max, dx, dy — the output grid
//                (H = (y_max - y_min) / dy rows <-> y, W = (x_max - x_min) / dx columns <-> x)
//
//   required outputs, all float32 [B, ·, H, W] on that grid:
//     "neck"         [B, C_neck, H, W]  BEV neck features
//     "head_shared"  [B, C_s, H, W]     the detection head's shared features
//     "heatmap"      [B, 10, H, W]      class heat-map logits (before sigmoid), DESIGN.md class order
//     "reg"          [B, 2, H, W]       centre offset in cells from the cell's lower corner:
//                                       x = x_min + (col + reg0) dx, y = y_min + (row + reg1) dy
//     "height"       [B, 1, H, W]       z of the box's geometric centre (m)
//     "dim"          [B, 3, H, W]       log l, log w, log h (m; l along the heading)
//     "rot"          [B, 2, H, W]       sin yaw, cos yaw (yaw counter-clockwise from +x)
//     "vel"          [B, 2, H, W]       vx, vy (m/s, ego frame)
//   optional outputs: "tap.<name>" [B, C, H, W] — more feature taps, stored as <name>.
//   optional module attributes:
//     bevkd_contract_version: int  (1 if absent; anything else is refused)
//     bevkd_box_convention: str    "bevkd" (default) or "mmdet3d-v0.17" (dim = log(w, l, h),
//                                  rot = (sin, cos) of -yaw - pi/2; converted on load)
//     bevkd_name: str              a name for the teacher's identity
//
// A missing output, a wrong shape or a non-finite value fails with an error naming the file and
// the output key.
#pragma once

#include <memory>
#include <string>

#include "core/nn/center_decode.h"
#include "precompute/teacher/teacher.h"

namespace bevkd::precompute {

inline constexpr int64_t kTeacherContractVersion = 1;

struct TorchScriptTeacherOptions {
  std::string path;                       // the .pt file (torch.jit.save / torch::jit::Module::save)
  BevGrid grid;                     // the output grid passed to the module and checked
  core::nn::DecodeConfig decode;   // tasks (NMS groups) and thresholds; grid is overwritten
  torch::Device device = torch::kCPU;
};

// Loads the module (throws bevkd::Error naming the file if it is missing, not TorchScript, has
// no forward, or declares another contract version).
std::unique_ptr<Teacher> load_torchscript_teacher(const TorchScriptTeacherOptions& opts);

}  // namespace bevkd::precompute

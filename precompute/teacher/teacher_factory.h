// Which teacher to open, and opening it: the built-in PointPillars-CenterPoint from a fit-teacher
// checkpoint (builtin_teacher.h), or a TorchScript module following bevkd's teacher contract
// (torchscript_teacher.h). What the precompute commands' --checkpoint / --preset / --teacher /
// --grid-* / --tasks options fill. (Kept apart from teacher.h, the interface both implementations
// include, so that no header includes its own implementations.)
#pragma once

#include <array>
#include <memory>
#include <string>

#include "precompute/teacher/teacher.h"

namespace bevkd::precompute {

struct TeacherSpec {
  std::string checkpoint;   // built-in: a fit-teacher checkpoint (teacher.ckpt)
  std::string preset;       // built-in: the preset the checkpoint must match ("" = its stored config)
  std::string torchscript;  // a TorchScript module following the contract (torchscript_teacher.h)
  // TorchScript only (required there): the output grid passed to the module, and the NMS task
  // groups ("nuscenes": CenterPoint's 6 tasks, "single": one group) with the decoder's defaults.
  std::array<double, 6> grid_range{};
  double grid_cell = 0;
  std::string tasks = "nuscenes";
  std::string device = "cpu";

  // Exactly one of checkpoint / torchscript, a grid for TorchScript; throws bevkd::Error naming
  // the option.
  void validate() const;
  // The TorchScript output grid from grid_range and grid_cell (validated).
  BevGrid torchscript_grid() const;

  template <class V>
  void fields(V& v) {
    v("checkpoint", checkpoint, "--checkpoint", "built-in teacher checkpoint (fit-teacher's teacher.ckpt)");
    v("preset", preset, "--preset", "preset the checkpoint must match (default: its stored config)");
    v("torchscript", torchscript, "--teacher", "TorchScript teacher following the contract in README.md");
    v("grid_range", grid_range, "--grid-range", "TorchScript: output grid x_min y_min z_min x_max y_max z_max (m)");
    v("grid_cell", grid_cell, "--grid-cell", "TorchScript: output cell size (m)");
    v("tasks", tasks, "--tasks", "TorchScript: NMS groups, nuscenes | single");
    v("device", device, "--device", "cpu, cuda, cuda:N");
  }
};

std::unique_ptr<Teacher> open_teacher(const TeacherSpec& spec);

}  // namespace bevkd::precompute

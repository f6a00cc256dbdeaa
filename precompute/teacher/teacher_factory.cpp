#include "precompute/teacher/teacher_factory.h"

#include "base/error.h"
#include "precompute/teacher/builtin_teacher.h"
#include "precompute/teacher/torchscript_teacher.h"

namespace bevkd::precompute {

void TeacherSpec::validate() const {
  BEVKD_CHECK(checkpoint.empty() != torchscript.empty(), "teacher: give exactly one of --checkpoint (built-in) and "
              "--teacher (TorchScript), got ", checkpoint.empty() ? "neither" : "both");
  BEVKD_CHECK(torchscript.empty() || preset.empty(), "teacher: --preset applies to a built-in checkpoint, not to the "
              "TorchScript teacher ", torchscript);
  BEVKD_CHECK(tasks == "nuscenes" || tasks == "single", "teacher: --tasks is '", tasks,
              "', expected nuscenes or single");
  if (!torchscript.empty()) torchscript_grid();
  try {
    (void)torch::Device(device);
  } catch (const c10::Error&) {
    BEVKD_FAIL("teacher: --device '", device, "' is not a device (cpu, cuda, cuda:1, ...)");
  }
}

BevGrid TeacherSpec::torchscript_grid() const {
  BEVKD_CHECK(grid_cell > 0, "teacher: the TorchScript teacher ", torchscript,
              " needs its output grid: --grid-range x_min y_min z_min x_max y_max z_max and --grid-cell (m)");
  return BevGrid::make(grid_range, grid_cell, "teacher: --grid-range / --grid-cell");
}

std::unique_ptr<Teacher> open_teacher(const TeacherSpec& spec) {
  spec.validate();
  if (!spec.checkpoint.empty()) {
    BuiltinTeacherOptions o;
    o.checkpoint = spec.checkpoint;
    o.preset = spec.preset;
    o.device = torch::Device(spec.device);
    return load_builtin_teacher(o);
  }
  TorchScriptTeacherOptions o;
  o.path = spec.torchscript;
  o.grid = spec.torchscript_grid();
  o.decode.tasks = spec.tasks == "single" ? core::nn::single_task() : core::nn::nuscenes_tasks();
  if (spec.tasks == "single") o.decode.circle_nms_radius = {o.decode.circle_nms_radius.front()};
  o.device = torch::Device(spec.device);
  return load_torchscript_teacher(o);
}

}  // namespace bevkd::precompute

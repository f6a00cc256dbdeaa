// The built-in PointPillars-CenterPoint as a Teacher (teacher.h).
#pragma once

#include <memory>
#include <string>

#include "precompute/pointpillars.h"
#include "precompute/teacher.h"

namespace bevkd::precompute {

struct BuiltinTeacherOptions {
  std::string checkpoint;               // a checkpoint written by fit-teacher (checkpoint.h)
  // The preset the checkpoint must match; empty: the configuration stored in the checkpoint.
  // A checkpoint that does not match fails naming the first mismatched parameter and both shapes.
  std::string preset;
  torch::Device device = torch::kCPU;
};

std::unique_ptr<Teacher> load_builtin_teacher(const BuiltinTeacherOptions& opts);

// Wraps a model already in memory (fit-teacher's final evaluation). `identity` is reported as is.
std::unique_ptr<Teacher> make_builtin_teacher(PointPillarsCenterPoint model, TeacherIdentity identity);

}  // namespace bevkd::precompute

// The built-in PointPillars-CenterPoint as a Teacher (teacher.h).
#pragma once

#include <memory>
#include <string>

#include "core/nn/checkpoint.h"
#include "precompute/teacher/pointpillars.h"
#include "precompute/teacher/teacher.h"

namespace bevkd::precompute {

// A built-in teacher checkpoint is a core/nn/checkpoint.h file of this kind, with the module
// state "model" and meta {"config": TeacherModelConfig, ...} (fit-teacher adds its training state).
inline constexpr const char* kTeacherCheckpointKind = "teacher";

// Writes a model-only teacher checkpoint (meta {"config": ...}, module "model"): what
// load_builtin_teacher() reads; fit-teacher's checkpoints add the training state.
void save_teacher_model(PointPillarsCenterPoint& model, const std::string& path);

// The model configuration stored in a teacher checkpoint's meta; throws naming `path`.
TeacherModelConfig teacher_config_of(const core::nn::Checkpoint& ckpt, const std::string& path);

struct BuiltinTeacherOptions {
  std::string checkpoint;               // a teacher checkpoint written by fit-teacher
  // The preset the checkpoint must match; empty: the configuration stored in the checkpoint.
  // A checkpoint that does not match fails naming the first mismatched parameter and both shapes.
  std::string preset;
  torch::Device device = torch::kCPU;
};

std::unique_ptr<Teacher> load_builtin_teacher(const BuiltinTeacherOptions& opts);

// Wraps a model already in memory (fit-teacher's final evaluation). `identity` is reported as is.
std::unique_ptr<Teacher> make_builtin_teacher(PointPillarsCenterPoint model, TeacherIdentity identity);

}  // namespace bevkd::precompute

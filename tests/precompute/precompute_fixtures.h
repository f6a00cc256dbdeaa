// Shared fixtures of the precompute tests: a tiny bevkd-synth dataset made once per test process
// and model-only teacher checkpoints (what fit-teacher's teacher.ckpt holds without its training
// state), so that tests need no training run.
#pragma once

#include <cstdint>
#include <string>

#include "precompute/teacher/pointpillars.h"

namespace bevkd::precompute::testing {

// <build>/test-out/<suite>/<name>.<pid>, emptied (tests/support/temp_dir.h).
std::string temp_dir(const std::string& suite, const std::string& name);

// SynthConfig::tiny() with `samples_per_scene` samples (tests/support/synth_data.h): scene-0061
// and scene-0553 fall in mini_train, scene-0103 in mini_val.
const std::string& tiny_synth_dataset(int samples_per_scene = 3);

// Writes a model-only checkpoint of `model` (what load_builtin_teacher reads).
void save_model(PointPillarsCenterPoint& model, const std::string& path);

// A checkpoint of the `preset` model with weights drawn from torch's generator seeded by `seed`
// (random initialisation, as the model's constructor does it); written once per path.
std::string random_teacher_checkpoint(const std::string& path, const std::string& preset, std::uint64_t seed);

// Runs a shell command; returns its exit status and puts stdout + stderr into *output.
int run_command(const std::string& command, std::string* output);

// The path of a built binary target, e.g. binary("bevkd-precompute") (tests/support/run.h).
std::string binary(const std::string& target);

}  // namespace bevkd::precompute::testing

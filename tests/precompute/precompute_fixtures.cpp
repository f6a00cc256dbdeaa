#include "tests/precompute/precompute_fixtures.h"

#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <map>

#include "base/error.h"
#include "base/fs.h"
#include <nlohmann/json.hpp>

#include "base/config.h"
#include "core/nn/checkpoint.h"
#include "precompute/teacher/builtin_teacher.h"
#include "precompute/teacher/teacher_config.h"
#include "tests/support/run.h"
#include "tests/support/synth_data.h"
#include "tests/support/temp_dir.h"

namespace bevkd::precompute::testing {

namespace fs = std::filesystem;

std::string temp_dir(const std::string& suite, const std::string& name) {
  return bevkd::testing::fresh_dir(suite + "/" + name);
}

const std::string& tiny_synth_dataset(int samples_per_scene) { return bevkd::testing::tiny_synth_dataset(samples_per_scene); }

void save_model(PointPillarsCenterPoint& model, const std::string& path) { save_teacher_model(model, path); }

std::string random_teacher_checkpoint(const std::string& path, const std::string& preset, std::uint64_t seed) {
  if (path_exists(path)) return path;
  torch::manual_seed(seed);
  PointPillarsCenterPoint model(teacher_preset(preset));
  save_model(model, path);
  return path;
}

int run_command(const std::string& command, std::string* output) {
  auto r = bevkd::testing::run_command(command);
  if (output) *output = std::move(r.output);
  return r.status;
}

std::string binary(const std::string& target) { return bevkd::testing::binary(target); }

}  // namespace bevkd::precompute::testing

#include "tests/precompute/precompute_fixtures.h"

#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <map>

#include "base/error.h"
#include "base/fs.h"
#include "core/synth/synth.h"
#include "precompute/checkpoint.h"
#include "precompute/teacher/teacher_config.h"

namespace bevkd::precompute::testing {

namespace fs = std::filesystem;

std::string temp_dir(const std::string& suite, const std::string& name) {
  const auto dir = fs::temp_directory_path() / ("bevkd_" + suite + "_" + std::to_string(::getpid())) / name;
  fs::remove_all(dir);
  fs::create_directories(dir);
  return dir.string();
}

const std::string& tiny_synth_dataset(int samples_per_scene) {
  static std::map<int, std::string> made;  // the tests of one process run on one thread
  if (auto it = made.find(samples_per_scene); it != made.end()) return it->second;
  const std::string dir = [&] {
    core::synth::SynthConfig c;
    c.out_dir = temp_dir("precompute_data", "synth-" + std::to_string(samples_per_scene));
    c.scenes = 3;
    c.samples_per_scene = samples_per_scene;
    c.lidar_sweeps = 1;
    c.image_width = 64;
    c.image_height = 36;
    c.azimuth_steps = 540;
    c.objects_per_scene = 30;
    c.seed = 5;
    c.show_progress = false;
    core::synth::generate(c);
    return c.out_dir;
  }();
  return made.emplace(samples_per_scene, dir).first->second;
}

void save_model(PointPillarsCenterPoint& model, const std::string& path) {
  TeacherCheckpoint ck;
  ck.config_json = model->config().to_json();
  ck.model = module_state(*model);
  save_checkpoint(path, ck);
}

std::string random_teacher_checkpoint(const std::string& path, const std::string& preset, std::uint64_t seed) {
  if (path_exists(path)) return path;
  torch::manual_seed(seed);
  PointPillarsCenterPoint model(teacher_preset(preset));
  save_model(model, path);
  return path;
}

int run_command(const std::string& command, std::string* output) {
  FILE* pipe = ::popen((command + " 2>&1").c_str(), "r");
  BEVKD_CHECK(pipe != nullptr, "cannot run ", command);
  std::string out;
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, pipe)) > 0) out.append(buf, n);
  const int status = ::pclose(pipe);
  if (output) *output = out;
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return -1;
}

std::string binary(const std::string& relative) { return std::string(BEVKD_BINARY_DIR) + "/" + relative; }

}  // namespace bevkd::precompute::testing

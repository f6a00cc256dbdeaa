#include "tests/support/synth_data.h"

#include <map>

#include "tests/support/temp_dir.h"

namespace bevkd::testing {

const std::string& synth_dataset(const std::string& name, core::synth::SynthConfig cfg) {
  static std::map<std::string, std::string> made;
  if (auto it = made.find(name); it != made.end()) return it->second;
  cfg.out_dir = fresh_dir("synth-" + name);
  cfg.show_progress = false;
  core::synth::generate(cfg);
  return made.emplace(name, cfg.out_dir).first->second;
}

const std::string& tiny_synth_dataset(int samples_per_scene) {
  auto cfg = core::synth::SynthConfig::tiny();
  cfg.samples_per_scene = samples_per_scene;
  return synth_dataset("tiny-" + std::to_string(samples_per_scene), cfg);
}

}  // namespace bevkd::testing

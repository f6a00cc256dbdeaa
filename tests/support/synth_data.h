// Small bevkd-synth datasets for tests, generated once per test process and configuration
// (core/synth's SynthConfig::tiny() and variations of it).
#pragma once

#include <string>

#include "core/synth/synth.h"

namespace bevkd::testing {

// Generates `cfg` (its out_dir is replaced by <build>/test-out/<name>.<pid>) on first use of
// `name` in this process and returns the dataset root. Not thread-safe (tests of one process
// run on one thread).
const std::string& synth_dataset(const std::string& name, core::synth::SynthConfig cfg);

// SynthConfig::tiny() with `samples_per_scene` samples: three scenes of which scene-0061 and
// scene-0553 fall in mini_train and scene-0103 in mini_val.
const std::string& tiny_synth_dataset(int samples_per_scene = 3);

}  // namespace bevkd::testing

// Helpers of the loss-probe tests: writing case directories and running the probe in-process.
// Temporary directories, binaries and command runs come from tests/support/.
#pragma once

#include <gtest/gtest.h>
#include <torch/types.h>
#include <nlohmann/json.hpp>

#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <string>

#include "tests/support/temp_dir.h"
#include "train/probe/npy.h"
#include "train/probe/probe.h"

namespace bevkd::train::test {

using bevkd::testing::TempDir;

// Writes <dir>/<name>.npy for every tensor, and params.json unless `params` is null.
inline void write_case(const std::string& dir, const std::map<std::string, torch::Tensor>& inputs,
                       const nlohmann::json& params = nullptr) {
  std::filesystem::create_directories(dir);
  for (const auto& [name, t] : inputs) probe::write_npy(dir + "/" + name + ".npy", t);
  if (!params.is_null()) std::ofstream(dir + "/params.json") << params.dump();
}

struct ProbeRun {
  int code = -1;
  std::string out, err;
  nlohmann::json json() const { return nlohmann::json::parse(out); }
};

// run_loss_probe in-process (against `registry`, the real one by default).
inline ProbeRun probe(const std::string& loss, const std::string& case_dir, const std::string& out_dir = "",
                      bool grad = false, const probe::Registry& registry = probe::probe_registry()) {
  probe::LossProbeOptions o;
  o.loss = loss;
  o.case_dir = case_dir;
  o.out_dir = out_dir;
  o.grad = grad;
  std::ostringstream out, err;
  ProbeRun r;
  r.code = probe::run_loss_probe(o, out, err, registry);
  r.out = out.str();
  r.err = err.str();
  return r;
}

// The message of an in-process run that must fail with exit code 2 and print nothing on stdout.
inline std::string usage_error(const std::string& loss, const std::string& dir, const std::string& out = "",
                               bool grad = false, const probe::Registry& registry = probe::probe_registry()) {
  const ProbeRun r = probe(loss, dir, out, grad, registry);
  EXPECT_EQ(r.code, 2) << r.err;
  EXPECT_TRUE(r.out.empty()) << r.out;
  return r.err;
}

}  // namespace bevkd::train::test

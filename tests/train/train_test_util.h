// Helpers of the train/ tests: temporary directories, probe case directories, running a
// command, float64 finite differences.
#pragma once

#include <gtest/gtest.h>
#include <torch/torch.h>
#include <nlohmann/json.hpp>

#include <unistd.h>
#include <array>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <random>
#include <sstream>
#include <string>

#include "train/probe/npy.h"
#include "train/probe/probe.h"

namespace bevkd::train::test {

// A fresh directory under the system temp dir, removed when the object dies.
class TempDir {
 public:
  explicit TempDir(const std::string& tag) {
    static int counter = 0;
    path_ = std::filesystem::temp_directory_path() /
            ("bevkd_train_" + tag + "_" + std::to_string(::getpid()) + "_" + std::to_string(counter++));
    std::filesystem::remove_all(path_);
    std::filesystem::create_directories(path_);
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  std::string path() const { return path_.string(); }
  std::string operator/(const std::string& name) const { return (path_ / name).string(); }

 private:
  std::filesystem::path path_;
};

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

// run_loss_probe in-process.
inline ProbeRun probe(const std::string& loss, const std::string& case_dir, const std::string& out_dir = "",
                      bool grad = false) {
  probe::LossProbeOptions o;
  o.loss = loss;
  o.case_dir = case_dir;
  o.out_dir = out_dir;
  o.grad = grad;
  std::ostringstream out, err;
  ProbeRun r;
  r.code = probe::run_loss_probe(o, out, err);
  r.out = out.str();
  r.err = err.str();
  return r;
}

struct CommandResult {
  int status = -1;
  std::string output;
};

// Runs `command` through the shell; output = its stdout (stderr goes to `stderr_file` if given).
inline CommandResult run_command(const std::string& command) {
  CommandResult r;
  FILE* p = ::popen(command.c_str(), "r");
  if (p == nullptr) return r;
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) r.output.append(buf, n);
  const int st = ::pclose(p);
  r.status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
  return r;
}

// Central finite differences of a scalar function at x (float64), for every entry.
inline torch::Tensor finite_difference(const std::function<torch::Tensor(const torch::Tensor&)>& f,
                                       const torch::Tensor& x, double eps = 1e-6) {
  torch::NoGradGuard no_grad;
  torch::Tensor g = torch::zeros_like(x);
  torch::Tensor xc = x.detach().clone();
  auto flat = xc.view({-1});
  auto gf = g.view({-1});
  for (int64_t i = 0; i < flat.numel(); ++i) {
    const double v = flat[i].item<double>();
    flat[i] = v + eps;
    const double fp = f(xc).item<double>();
    flat[i] = v - eps;
    const double fm = f(xc).item<double>();
    flat[i] = v;
    gf[i] = (fp - fm) / (2 * eps);
  }
  return g;
}

// Autograd gradient of f at x (float64).
inline torch::Tensor autograd_gradient(const std::function<torch::Tensor(const torch::Tensor&)>& f,
                                       const torch::Tensor& x) {
  torch::Tensor xr = x.detach().clone().requires_grad_(true);
  torch::Tensor y = f(xr);
  return torch::autograd::grad({y}, {xr}, {}, false, false, true)[0];
}

// |a - b| <= atol + rtol * max|b| everywhere.
inline ::testing::AssertionResult all_close(const torch::Tensor& a, const torch::Tensor& b, double rtol, double atol) {
  if (a.sizes() != b.sizes())
    return ::testing::AssertionFailure() << "shapes differ: " << a.sizes() << " vs " << b.sizes();
  if (a.numel() == 0) return ::testing::AssertionSuccess();
  const auto ad = a.detach().to(torch::kFloat64), bd = b.detach().to(torch::kFloat64);
  const double err = (ad - bd).abs().max().item<double>(), scale = bd.abs().max().item<double>();
  if (err <= atol + rtol * scale) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << "max |a - b| = " << err << " > " << atol << " + " << rtol << " * " << scale;
}

}  // namespace bevkd::train::test

// Golden cases: scripts/loss_golden.py transcribes spec/losses.md in PyTorch (Debian's
// python3-torch) and writes case directories at test time; the real bevkd-train binary evaluates
// each with `loss-probe --grad --out`, and values, gradients and debug arrays must agree within
// the tolerances the case states (case.json: float32 rtol 2e-5 / atol 1e-6, float64 rtol 1e-10 /
// atol 1e-12; arrays relative to their largest entry; integer arrays exactly). Skipped, with a
// message, where /usr/bin/python3 cannot import torch and scipy.
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>

#include "base/error.h"
#include "core/nn/hungarian.h"
#include "tests/support/run.h"
#include "tests/support/tensor_close.h"
#include "tests/train/probe/probe_test_util.h"
#include "train/probe/npy.h"

namespace bevkd::train {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

// Empty when the golden cases can be had: the ctest fixture generated them, or python3 can
// import torch, scipy and numpy (checked only without the fixture: the import alone takes seconds).
std::string python_missing() {
  static const std::string why = [] {
    if (fs::exists(fs::path(BEVKD_LOSS_GOLDEN_DIR) / "COMPLETE")) return std::string();
    const auto r = bevkd::testing::run_command(cat(BEVKD_PYTHON, " -c 'import torch, scipy, numpy' 2>&1"));
    return r.status == 0 ? std::string()
                         : cat(BEVKD_PYTHON, " cannot import torch/scipy/numpy (", r.output,
                               "); install python3-torch and python3-scipy (scripts/setup.sh)");
  }();
  return why;
}

#define SKIP_WITHOUT_TORCH()                                         \
  do {                                                               \
    if (!python_missing().empty()) GTEST_SKIP() << python_missing(); \
  } while (0)

// The cases of `family`: the directory the ctest fixture train.loss_golden_cases generated
// (BEVKD_LOSS_GOLDEN_DIR, complete once it holds COMPLETE), or, when the binary runs on its own,
// the family generated into `scratch` now.
std::string cases_dir(const test::TempDir& scratch, const std::string& family) {
  if (fs::exists(fs::path(BEVKD_LOSS_GOLDEN_DIR) / "COMPLETE")) return BEVKD_LOSS_GOLDEN_DIR;
  const std::string dir = scratch / "cases";
  const auto r = bevkd::testing::run_command(
      cat(BEVKD_PYTHON, " ", BEVKD_SOURCE_DIR, "/scripts/loss_golden.py ", dir, " --family ", family, " 2>&1"));
  EXPECT_EQ(r.status, 0) << r.output;
  return dir;
}

// What the probe wrote to stderr for the case whose --out is `out`.
std::string probe_stderr(const std::string& out) {
  std::ifstream in(out + ".stderr");
  return std::string(std::istreambuf_iterator<char>(in), {});
}

json read_json(const std::string& path) {
  std::ifstream in(path);
  return json::parse(in);
}

// Runs the binary on every case of `loss` in `cases` (outputs under `scratch`) and compares
// with the expectations.
void check_cases(const std::string& cases, const test::TempDir& scratch, const std::string& loss, int expected_cases) {
  int n = 0;
  std::vector<fs::path> dirs;
  for (const auto& de : fs::directory_iterator(cases))
    if (fs::exists(de.path() / "case.json") && read_json((de.path() / "case.json").string()).at("loss") == loss)
      dirs.push_back(de.path());
  std::sort(dirs.begin(), dirs.end());
  for (const fs::path& c : dirs) {
    SCOPED_TRACE(c.filename().string());
    const json meta = read_json((c / "case.json").string());
    const std::string out = scratch / c.filename().string();
    const bool grad = meta.at("grad").get<bool>();
    const auto r =
        bevkd::testing::run_command(cat(BEVKD_TRAIN_BINARY, " loss-probe --loss ", loss, " --case ", c.string(),
                                        " --out ", out, grad ? " --grad" : "", " 2>", out, ".stderr"),
                                    /*stdout_only=*/true);
    ASSERT_EQ(r.status, 0) << r.output << probe_stderr(out);
    const json got = json::parse(r.output);
    EXPECT_EQ(got, read_json(out + "/values.json"));
    const double rtol = meta.at("rtol"), atol = meta.at("atol");
    const json want = read_json((c / "expected" / "values.json").string()).at("values");
    ASSERT_EQ(got.at("values").size(), want.size()) << got.dump();
    for (const auto& [key, v] : want.items()) {
      ASSERT_TRUE(got.at("values").contains(key)) << key;
      const double g = got.at("values").at(key), w = v;
      EXPECT_LE(std::abs(g - w), atol + rtol * std::abs(w)) << key << ": probe " << g << ", PyTorch " << w;
    }
    for (const auto& de : fs::directory_iterator(c / "expected")) {
      if (de.path().extension() != ".npy") continue;
      const std::string name = de.path().filename().string();
      SCOPED_TRACE(name);
      ASSERT_TRUE(fs::exists(fs::path(out) / name)) << "the probe wrote no " << name;
      const torch::Tensor w = probe::read_npy(de.path().string());
      const torch::Tensor g = probe::read_npy((fs::path(out) / name).string());
      EXPECT_EQ(g.scalar_type(), w.scalar_type());
      if (w.scalar_type() == torch::kInt64)
        EXPECT_TRUE(g.sizes() == w.sizes() && torch::equal(g, w)) << "probe " << g << "\nPyTorch " << w;
      else
        EXPECT_TRUE(bevkd::testing::all_close(g, w, rtol, atol));
    }
    ++n;
  }
  EXPECT_EQ(n, expected_cases);
}

void golden(const std::string& family, const std::string& loss, int expected_cases) {
  test::TempDir scratch;
  check_cases(cases_dir(scratch, family), scratch, loss, expected_cases);
}

TEST(LossGoldenGaussian, ProbeMatchesPyTorch) {
  SKIP_WITHOUT_TORCH();
  golden("gaussian", "gaussian_fg_map", 3);
}

TEST(LossGoldenDense, ProbeMatchesPyTorch) {
  SKIP_WITHOUT_TORCH();
  golden("dense", "bevdistill_dense", 4);
}

TEST(LossGoldenBox, ProbeMatchesPyTorch) {
  SKIP_WITHOUT_TORCH();
  golden("box", "bevdistill_box_distill", 3);
}

TEST(LossGoldenInfoNce, ProbeMatchesPyTorch) {
  SKIP_WITHOUT_TORCH();
  golden("infonce", "bevdistill_infonce", 2);
}

TEST(LossGoldenHeatmap, ProbeMatchesPyTorch) {
  SKIP_WITHOUT_TORCH();
  golden("heatmap", "focaldistiller_bev_l2_heatmap", 3);
}

// TiG-BEV, CWD, MGD, FGD and FitNet: the cases of scripts/loss_golden_part2.py (a transcription
// of the reference code) run through the binary.
TEST(LossGoldenTig, ProbeMatchesPyTorch) {
  SKIP_WITHOUT_TORCH();
  test::TempDir scratch;
  const std::string cases = cases_dir(scratch, "part2");
  check_cases(cases, scratch, "tig_inner_depth", 2);
  check_cases(cases, scratch, "tig_inner_feature", 2);
}

TEST(LossGoldenCwd, ProbeMatchesPyTorch) {
  SKIP_WITHOUT_TORCH();
  test::TempDir scratch;
  const std::string cases = cases_dir(scratch, "part2");
  check_cases(cases, scratch, "cwd_kl", 4);
  check_cases(cases, scratch, "cwd_ce_focaldistiller", 4);
}

TEST(LossGoldenMgd, ProbeMatchesPyTorch) {
  SKIP_WITHOUT_TORCH();
  golden("part2", "mgd", 4);
}

TEST(LossGoldenFgd, ProbeMatchesPyTorch) {
  SKIP_WITHOUT_TORCH();
  golden("part2", "fgd", 2);
}

TEST(LossGoldenFitnet, ProbeMatchesPyTorch) {
  SKIP_WITHOUT_TORCH();
  golden("part2", "fitnet", 6);
}

// FD3D and X³KD have no released code: the cases transcribe the spec's own definitions (§5, §6).
TEST(LossGoldenFd3d, ProbeMatchesPyTorch) {
  SKIP_WITHOUT_TORCH();
  test::TempDir scratch;
  const std::string cases = cases_dir(scratch, "fd3d");
  check_cases(cases, scratch, "fd3d_qfd", 4);
  check_cases(cases, scratch, "fd3d_smgd", 3);
}

TEST(LossGoldenX3kd, ProbeMatchesPyTorch) {
  SKIP_WITHOUT_TORCH();
  golden("x3kd", "x3kd", 4);
}

TEST(LossGoldenHungarian, SameAssignmentsAsScipy) {
  SKIP_WITHOUT_TORCH();
  test::TempDir scratch;
  const json cases = read_json(cases_dir(scratch, "hungarian") + "/hungarian.json");
  ASSERT_EQ(cases.size(), 300u);
  for (const json& c : cases) {
    const auto a = core::nn::linear_sum_assignment(c.at("cost").get<std::vector<double>>(), c.at("rows"), c.at("cols"));
    EXPECT_EQ(a.rows, c.at("row_ind").get<std::vector<int64_t>>()) << c.dump();
    EXPECT_EQ(a.cols, c.at("col_ind").get<std::vector<int64_t>>()) << c.dump();
  }
}

// numpy's own files: format versions 1.0, 2.0 and 3.0, and what the reader refuses.
TEST(LossGoldenNpy, ReadsNumpyFilesOfEveryVersion) {
  SKIP_WITHOUT_TORCH();
  test::TempDir scratch;
  const std::string d = cases_dir(scratch, "npy") + "/npy";
  for (const char* v : {"1", "2", "3"}) {
    SCOPED_TRACE(v);
    const torch::Tensor f4 = probe::read_npy(cat(d, "/f4_v", v, ".npy"));
    EXPECT_EQ(f4.scalar_type(), torch::kFloat32);
    EXPECT_TRUE(torch::equal(f4, torch::arange(6, torch::kFloat32).view({2, 3}) / 7));
    const torch::Tensor f8 = probe::read_npy(cat(d, "/f8_v", v, ".npy"));
    EXPECT_TRUE(torch::equal(f8, torch::arange(24, torch::kFloat64).view({2, 3, 4}) / 3));
    const torch::Tensor i8 = probe::read_npy(cat(d, "/i8_v", v, ".npy"));
    EXPECT_TRUE(torch::equal(i8, torch::tensor({int64_t{-3}, int64_t{0}, int64_t{1} << 40})));
    const torch::Tensor empty = probe::read_npy(cat(d, "/empty_v", v, ".npy"));
    EXPECT_EQ(empty.sizes(), (std::vector<int64_t>{0, 9}));
    const torch::Tensor scalar = probe::read_npy(cat(d, "/scalar_v", v, ".npy"));
    EXPECT_EQ(scalar.dim(), 0);
    EXPECT_EQ(scalar.item<double>(), 2.5);
  }
  auto message = [](const std::string& path) {
    try {
      probe::read_npy(path);
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  EXPECT_NE(message(d + "/fortran.npy").find("fortran_order is True"), std::string::npos);
  EXPECT_NE(message(d + "/int32.npy").find("dtype int32 ('<i4') is not supported"), std::string::npos);
  EXPECT_NE(message(d + "/big_endian.npy").find("dtype big-endian float32"), std::string::npos);
}

}  // namespace
}  // namespace bevkd::train

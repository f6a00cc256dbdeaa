// The TorchScript teacher contract: a module written in TorchScript source (define()), saved to a
// file, loaded by the adapter and decoded; the bevkd and mmdet3d-v0.17 box conventions; and the
// error naming a missing output.
#include <gtest/gtest.h>
#include <torch/script.h>
#include <unistd.h>

#include <cmath>
#include <filesystem>

#include "base/error.h"
#include "precompute/teacher/torchscript_teacher.h"
#include "tests/precompute/precompute_fixtures.h"

namespace bevkd::precompute {
namespace {

// A real (if simple) LiDAR detector in TorchScript: BEV occupancy on the requested grid, a 3x3
// conv "neck", a 1x1 conv "head_shared", and a car heat map that fires on occupied cells. Box
// regressions are constant: centre of the cell, z 0.5, l 4 / w 2 / h 1.5, heading +y.
// `v017` writes the regressions in mmdet3d v0.17's convention; `drop` omits one output.
std::string module_source(bool v017, const std::string& drop) {
  std::string src = R"(
def forward(self, points: Tensor, batch_index: Tensor, batch_size: int, grid: Tensor) -> Dict[str, Tensor]:
    x_min = float(grid[0])
    y_min = float(grid[1])
    dx = float(grid[6])
    dy = float(grid[7])
    W = int(round((float(grid[3]) - x_min) / dx))
    H = int(round((float(grid[4]) - y_min) / dy))
    col = torch.floor((points[:, 0] - x_min) / dx).long()
    row = torch.floor((points[:, 1] - y_min) / dy).long()
    ok = (col >= 0) & (col < W) & (row >= 0) & (row < H)
    flat = (batch_index[ok] * H + row[ok]) * W + col[ok]
    occ = points.new_zeros([batch_size * H * W])
    occ.index_add_(0, flat, points.new_ones([flat.size(0)]))
    occ = torch.clamp(occ.view(batch_size, 1, H, W), 0.0, 1.0)
    neck = torch.relu(torch.conv2d(occ, self.w_neck, padding=1))
    shared = torch.relu(torch.conv2d(neck, self.w_shared))
    car = occ * 15.0 - 10.0
    heat = torch.cat([car, torch.full([batch_size, 9, H, W], -10.0)], 1)
    ones = torch.ones([batch_size, 1, H, W])
    out: Dict[str, Tensor] = {}
    out["neck"] = neck
    out["head_shared"] = shared
    out["heatmap"] = heat
    out["reg"] = torch.cat([ones * 0.5, ones * 0.5], 1)
    out["height"] = ones * 0.5
)";
  if (v017) {
    // dims (w, l, h); yaw' = -yaw - pi/2 = -pi for a heading of +pi/2: (sin, cos) = (0, -1).
    src += R"(
    out["dim"] = torch.cat([ones * 0.6931471805599453, ones * 1.3862943611198906, ones * 0.4054651081081644], 1)
    out["rot"] = torch.cat([ones * 0.0, ones * -1.0], 1)
)";
  } else {
    src += R"(
    out["dim"] = torch.cat([ones * 1.3862943611198906, ones * 0.6931471805599453, ones * 0.4054651081081644], 1)
    out["rot"] = torch.cat([ones * 1.0, ones * 0.0], 1)
)";
  }
  src += R"(
    out["vel"] = torch.cat([ones * 1.0, ones * -2.0], 1)
    out["tap.occupancy"] = occ
)";
  if (!drop.empty()) src += "    out.pop(\"" + drop + "\")\n";
  src += "    return out\n";
  return src;
}

std::string save_module(const std::string& dir, bool v017, const std::string& drop) {
  torch::jit::Module m("BevkdTestTeacher");
  torch::manual_seed(0);
  m.register_parameter("w_neck", torch::rand({4, 1, 3, 3}), false);
  m.register_parameter("w_shared", torch::rand({3, 4, 1, 1}), false);
  if (v017) m.register_attribute("bevkd_box_convention", c10::StringType::get(), std::string("mmdet3d-v0.17"));
  m.register_attribute("bevkd_contract_version", c10::IntType::get(), int64_t{1});
  m.register_attribute("bevkd_name", c10::StringType::get(), std::string("occupancy-test"));
  m.define(module_source(v017, drop));
  const auto path = dir + (v017 ? "/v017.pt" : drop.empty() ? "/teacher.pt" : "/missing.pt");
  m.save(path);
  return path;
}

TorchScriptTeacherOptions options(const std::string& path) {
  TorchScriptTeacherOptions o;
  o.path = path;
  o.grid = BevGrid::make({-20, -20, -5, 20, 20, 3}, 0.8);
  o.decode.tasks = core::nn::nuscenes_tasks();
  o.decode.score_threshold = 0.1;
  return o;
}

// Points of one object: a cluster inside cell (row 30, col 40) of the 0.8 m grid from -20.
torch::Tensor object_cloud(double x, double y) {
  std::vector<float> v;
  for (int i = 0; i < 20; ++i) v.insert(v.end(), {static_cast<float>(x + 0.01 * i), static_cast<float>(y), -1.f, 50.f, 0.f});
  return torch::tensor(v).view({20, 5});
}

void expect_car_at_cell(const TeacherOutput& out, int64_t b, int64_t row, int64_t col, const BevGrid& g) {
  const auto& d = out.detections.at(b);
  ASSERT_EQ(d.size(), 1) << "sample " << b;
  const auto box = d.boxes[0];
  EXPECT_NEAR(box[0].item<double>(), g.x_center(col), 1e-4);
  EXPECT_NEAR(box[1].item<double>(), g.y_center(row), 1e-4);
  EXPECT_NEAR(box[2].item<double>(), 0.5, 1e-6);
  EXPECT_NEAR(box[3].item<double>(), 4.0, 1e-5);  // l
  EXPECT_NEAR(box[4].item<double>(), 2.0, 1e-5);  // w
  EXPECT_NEAR(box[5].item<double>(), 1.5, 1e-5);
  EXPECT_NEAR(box[6].item<double>(), M_PI / 2, 1e-5);
  EXPECT_NEAR(box[7].item<double>(), 1.0, 1e-6);
  EXPECT_NEAR(box[8].item<double>(), -2.0, 1e-6);
  EXPECT_EQ(d.labels[0].item<int64_t>(), 0);  // car
  EXPECT_NEAR(d.scores[0].item<double>(), 1.0 / (1.0 + std::exp(-5.0)), 1e-5);
  EXPECT_EQ(d.cells[0].item<int64_t>(), row * g.W + col);
}

TEST(TorchScriptTeacher, RunsAModuleFollowingTheContract) {
  const auto dir = testing::temp_dir("torchscript_teacher", "ok");
  const auto path = save_module(dir, false, "");
  const auto opts = options(path);
  auto teacher = load_torchscript_teacher(opts);
  const auto g = teacher->grid();
  ASSERT_EQ(g.H, 50);
  // Sample 0: an object in cell (30, 40); sample 1: no points at all; sample 2: cell (10, 5).
  const auto a = object_cloud(g.x_center(40) - 0.2, g.y_center(30));
  const auto c = object_cloud(g.x_center(5) - 0.2, g.y_center(10));
  const auto out = teacher->infer({a, torch::zeros({0, 5}), c});
  EXPECT_EQ(out.features.at("neck").sizes(), (std::vector<int64_t>{3, 4, 50, 50}));
  EXPECT_EQ(out.features.at("head_shared").sizes(), (std::vector<int64_t>{3, 3, 50, 50}));
  EXPECT_EQ(out.features.at("occupancy").sizes(), (std::vector<int64_t>{3, 1, 50, 50}));
  EXPECT_EQ(out.heatmap.sizes(), (std::vector<int64_t>{3, 10, 50, 50}));
  EXPECT_NEAR(out.heatmap[0][0][30][40].item<double>(), 1.0 / (1.0 + std::exp(-5.0)), 1e-6);
  EXPECT_EQ(out.raw.size(), 6u);
  expect_car_at_cell(out, 0, 30, 40, g);
  EXPECT_EQ(out.detections[1].size(), 0);
  expect_car_at_cell(out, 2, 10, 5, g);
  const auto id = teacher->identity();
  EXPECT_EQ(id.kind, "torchscript");
  EXPECT_EQ(id.preset, "occupancy-test");
  EXPECT_EQ(id.checkpoint_hash.rfind("xxh64:", 0), 0u);
}

TEST(TorchScriptTeacher, ConvertsMmdet3dV017Regressions) {
  const auto dir = testing::temp_dir("torchscript_teacher", "v017");
  auto teacher = load_torchscript_teacher(options(save_module(dir, true, "")));
  const auto g = teacher->grid();
  const auto out = teacher->infer({object_cloud(g.x_center(40) - 0.2, g.y_center(30))});
  expect_car_at_cell(out, 0, 30, 40, g);
}

TEST(TorchScriptTeacher, MissingOutputIsNamedWithTheFile) {
  const auto dir = testing::temp_dir("torchscript_teacher", "missing");
  const auto path = save_module(dir, false, "head_shared");
  auto teacher = load_torchscript_teacher(options(path));
  try {
    teacher->infer({object_cloud(1, 1)});
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_EQ(std::string(e.what()), "TorchScript teacher " + path +
                                         ": output 'head_shared' of the teacher contract is missing (the module "
                                         "returned: dim, heatmap, height, neck, reg, rot, tap.occupancy, vel)");
  }
}

TEST(TorchScriptTeacher, OutputOffTheGridIsNamed) {
  const auto dir = testing::temp_dir("torchscript_teacher", "offgrid");
  torch::jit::Module m("FixedGridTeacher");
  m.define(R"(
def forward(self, points: Tensor, batch_index: Tensor, batch_size: int, grid: Tensor) -> Dict[str, Tensor]:
    z = torch.zeros([batch_size, 10, 8, 8])
    out: Dict[str, Tensor] = {"neck": z, "head_shared": z, "heatmap": z, "reg": z[:, :2], "height": z[:, :1],
                              "dim": z[:, :3], "rot": z[:, :2], "vel": z[:, :2]}
    return out
)");
  const auto path = dir + "/fixed.pt";
  m.save(path);
  auto teacher = load_torchscript_teacher(options(path));
  try {
    teacher->infer({object_cloud(1, 1)});
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("TorchScript teacher " + path +
                                         ": output 'neck' has shape [1, 10, 8, 8], the contract expects [1, C, 50, 50]"),
              std::string::npos)
        << e.what();
  }
}

TEST(TorchScriptTeacher, BadFilesAreNamed) {
  const auto dir = testing::temp_dir("torchscript_teacher", "bad");
  const auto path = save_module(dir, false, "");
  auto opts = options(path);
  try {
    load_torchscript_teacher([&] {
      auto o = opts;
      o.path = dir + "/nope.pt";
      return o;
    }());
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(std::string(e.what()), "TorchScript teacher " + dir + "/nope.pt: file not found");
  }
  {
    std::FILE* f = std::fopen((dir + "/junk.pt").c_str(), "wb");
    std::fputs("not a zip", f);
    std::fclose(f);
    auto o = opts;
    o.path = dir + "/junk.pt";
    try {
      load_torchscript_teacher(o);
      FAIL();
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("TorchScript teacher " + dir + "/junk.pt: not a loadable TorchScript module"),
                std::string::npos)
          << e.what();
    }
  }
}

}  // namespace
}  // namespace bevkd::precompute

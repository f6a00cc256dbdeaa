// The frustum geometry: hand-worked points; a synthetic camera looking at a known 3D point under
// image augmentation (resize + crop + flip + rotation) and BEV augmentation (rotation + flip +
// scale): the frustum sample of the feature cell / depth bin holding the point re-projects (with
// an independent forward projection written here) onto that cell's centre pixel and bin depth,
// and lift-splat puts a one-hot depth x context exactly into the point's BEV cell.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>

#include "base/bev_grid.h"
#include "base/math.h"
#include "kernels/bev_pool.h"
#include "tests/train/student/student_test_util.h"
#include "train/student/frustum.h"
#include "train/student/lift_splat.h"

namespace bevkd::train::student {
namespace {

using testing::level_camera;
using testing::rot_z;

torch::Tensor mat3(std::initializer_list<double> v) { return torch::tensor(std::vector<double>(v), torch::kFloat64).view({3, 3}); }

TEST(StudentDepthBins, IndexValueAndCount) {
  DepthBins b{2.0, 58.0, 0.5, "center"};
  b.validate("bins");
  EXPECT_EQ(b.count(), 112);
  EXPECT_EQ(b.index_of(2.0), 0);
  EXPECT_EQ(b.index_of(2.49), 0);
  EXPECT_EQ(b.index_of(2.5), 1);
  EXPECT_EQ(b.index_of(57.99), 111);
  EXPECT_EQ(b.index_of(58.0), -1);
  EXPECT_EQ(b.index_of(1.99), -1);
  EXPECT_EQ(b.index_of(std::nan("")), -1);
  EXPECT_DOUBLE_EQ(b.value_of(0), 2.25);
  EXPECT_DOUBLE_EQ(b.value_of(111), 57.75);
  b.value = "start";
  EXPECT_DOUBLE_EQ(b.value_of(1), 2.5);
  DepthBins bad{2.0, 58.0, 0.75, "center"};
  testing::expect_error([&] { bad.validate("student config"); }, {"student config", "not a whole number of 0.75 m steps"});
  DepthBins bad_value{2.0, 58.0, 0.5, "mid"};
  testing::expect_error([&] { bad_value.validate("x"); }, {"value is 'mid', expected 'center' or 'start'"});
}

TEST(StudentFrustum, SamplesSitAtPixelBlockCentresAndBinValues) {
  FrustumSpec s;
  s.image_height = 32;
  s.image_width = 64;
  s.stride = 16;
  s.bins = DepthBins{2.0, 10.0, 2.0, "center"};
  const auto f = make_frustum(s);
  ASSERT_EQ(f.sizes().vec(), (std::vector<int64_t>{4, 2, 4, 3}));
  // Pixels 16c .. 16c+15 (centres at integers) have their centre at 16c + 7.5.
  EXPECT_DOUBLE_EQ(f[0][0][0][0].item<double>(), 7.5);
  EXPECT_DOUBLE_EQ(f[0][1][3][0].item<double>(), 55.5);
  EXPECT_DOUBLE_EQ(f[0][1][3][1].item<double>(), 23.5);
  EXPECT_DOUBLE_EQ(f[2][0][0][2].item<double>(), 7.0);  // bin 2 = [6, 8), centre 7
  s.image_width = 72;
  testing::expect_error([&] { make_frustum(s); }, {"image 32x72 (HxW) is not a positive multiple of the depth stride 16"});
}

TEST(StudentFrustum, HandWorkedPoint) {
  FrustumSpec s;
  s.image_height = 32;
  s.image_width = 64;
  s.stride = 16;
  s.bins = DepthBins{2.0, 10.0, 2.0, "center"};
  const auto K = mat3({100, 0, 50, 0, 100, 30, 0, 0, 1});
  const auto c2e = level_camera(0.0, {1.0, 0.0, 1.5});  // looking along +x from (1, 0, 1.5)
  const auto pts = frustum_points(make_frustum(s), K.view({1, 1, 3, 3}), c2e.view({1, 1, 4, 4}),
                                  torch::eye(3, torch::kFloat64).view({1, 3, 3}));
  ASSERT_EQ(pts.sizes().vec(), (std::vector<int64_t>{1, 1, 4, 2, 4, 3}));
  ASSERT_EQ(pts.scalar_type(), torch::kFloat32);
  // (u, v, d) = (7.5, 7.5, 3): camera (x, y, z) = ((7.5 - 50)·3/100, (7.5 - 30)·3/100, 3)
  // = (-1.275, -0.675, 3); ego = (z + 1, -x, -y + 1.5) = (4, 1.275, 2.175).
  const auto p = pts[0][0][0][0][0];
  EXPECT_NEAR(p[0].item<double>(), 4.0, 1e-5);
  EXPECT_NEAR(p[1].item<double>(), 1.275, 1e-5);
  EXPECT_NEAR(p[2].item<double>(), 2.175, 1e-5);
  // The bda acts after cam2ego: a 90° rotation takes (x, y) to (-y, x).
  const auto rotated = frustum_points(make_frustum(s), K.view({1, 1, 3, 3}), c2e.view({1, 1, 4, 4}),
                                      rot_z(kPi / 2).view({1, 3, 3}));
  const auto q = rotated[0][0][0][0][0];
  EXPECT_NEAR(q[0].item<double>(), -1.275, 1e-5);
  EXPECT_NEAR(q[1].item<double>(), 4.0, 1e-5);
  EXPECT_NEAR(q[2].item<double>(), 2.175, 1e-5);
}

// The image augmentation of BEVDepth's pipeline in pixel-centre coordinates: resize by `s`
// (u' = s (u + 1/2) - 1/2), crop at (left, top), horizontal flip over the crop width W, rotation
// by `deg` about the crop's centre.
torch::Tensor image_aug(double s, double left, double top, bool flip, double deg, int64_t W, int64_t H) {
  const auto resize = mat3({s, 0, 0.5 * s - 0.5, 0, s, 0.5 * s - 0.5, 0, 0, 1});
  const auto crop = mat3({1, 0, -left, 0, 1, -top, 0, 0, 1});
  const auto fl = flip ? mat3({-1, 0, static_cast<double>(W - 1), 0, 1, 0, 0, 0, 1}) : torch::eye(3, torch::kFloat64);
  const double a = deg * kPi / 180.0, cx = (W - 1) / 2.0, cy = (H - 1) / 2.0;
  const auto to_c = mat3({1, 0, -cx, 0, 1, -cy, 0, 0, 1});
  const auto from_c = mat3({1, 0, cx, 0, 1, cy, 0, 0, 1});
  const auto rot = torch::matmul(from_c, torch::matmul(rot_z(a), to_c));  // rot_z's upper 2x2 rotates (u, v)
  return torch::matmul(rot, torch::matmul(fl, torch::matmul(crop, resize)));
}

// bda = scale · flip · rotation (x: x -> -x; y: y -> -y).
torch::Tensor bev_aug(double deg, bool flip_x, bool flip_y, double scale) {
  const auto f = mat3({flip_x ? -1.0 : 1.0, 0, 0, 0, flip_y ? -1.0 : 1.0, 0, 0, 0, 1});
  return scale * torch::matmul(f, rot_z(deg * kPi / 180.0));
}

struct Case {
  const char* name;
  bool aug_image;
  bool aug_bev;
};

TEST(StudentFrustum, KnownPointLandsInItsCellUnderImageAndBevAugmentation) {
  FrustumSpec spec;  // BEVDepth's frustum: 256x704, stride 16, 112 bins of 0.5 m
  spec.bins = DepthBins{2.0, 58.0, 0.5, "center"};
  const auto frustum = make_frustum(spec);
  const BevGrid grid = BevGrid::make({-51.2, -51.2, -5.0, 51.2, 51.2, 3.0}, 1.6);
  const auto K = mat3({1260, 0, 800, 0, 1260, 450, 0, 0, 1});  // a 1600x900 camera
  const double yaw = 30.0 * kPi / 180.0;
  const auto c2e = level_camera(yaw, {1.5, 0.2, 1.6});
  const auto R = c2e.slice(0, 0, 3).slice(1, 0, 3), t = c2e.slice(0, 0, 3).select(1, 3);

  for (const Case& cs : {Case{"resize and crop only", false, false}, Case{"image aug", true, false}, Case{"bev aug", false, true},
                         Case{"both", true, true}}) {
    SCOPED_TRACE(cs.name);
    const auto A = cs.aug_image ? image_aug(0.44, 0, 140, true, 5.0, 704, 256)
                                : image_aug(0.44, 0, 140, false, 0.0, 704, 256);  // the plain resize + crop
    const auto bda = cs.aug_bev ? bev_aug(20.0, true, false, 1.03) : torch::eye(3, torch::kFloat64);
    const auto AK = torch::matmul(A, K);

    // A point 17 m in front of the camera, slightly off-axis, 0.5 m above ground; then moved to
    // the centre of its BEV cell in the view's frame (a point the frustum can hit squarely).
    const auto ahead = t + 17.0 * torch::tensor({std::cos(yaw + 0.05), std::sin(yaw + 0.05), 0.0}, torch::kFloat64) +
                       torch::tensor({0.0, 0.0, -1.1}, torch::kFloat64);
    auto view = torch::matmul(bda, ahead);
    int64_t row, col;
    ASSERT_TRUE(grid.cell_of(view[0].item<double>(), view[1].item<double>(), &row, &col));
    view = torch::tensor({grid.x_center(col), grid.y_center(row), view[2].item<double>()}, torch::kFloat64);
    const auto ego = torch::linalg::solve(bda, view.unsqueeze(1), true).squeeze(1);

    // Independent forward projection: q = Rᵀ (p - t); pixel = A K q / q_z.
    auto project = [&](const torch::Tensor& p_ego) {
      const auto q = torch::matmul(R.t(), p_ego - t);
      const auto pix = torch::matmul(AK, q);
      return std::array<double, 3>{pix[0].item<double>() / pix[2].item<double>(),
                                   pix[1].item<double>() / pix[2].item<double>(), q[2].item<double>()};
    };
    const auto [u, v, depth] = project(ego);
    ASSERT_GE(u, -0.5);
    ASSERT_LT(u, 703.5);
    ASSERT_GE(v, -0.5);
    ASSERT_LT(v, 255.5);
    const auto c = static_cast<int64_t>(std::floor((u + 0.5) / 16.0));  // pixel round(u) in block c
    const auto r = static_cast<int64_t>(std::floor((v + 0.5) / 16.0));
    const int64_t k = spec.bins.index_of(depth);
    ASSERT_GE(k, 0);

    const auto pts = frustum_points(frustum, AK.view({1, 1, 3, 3}), c2e.view({1, 1, 4, 4}), bda.view({1, 3, 3}));
    const auto F = pts[0][0][k][r][c].to(torch::kFloat64);
    // Back through the inverse bda and the forward projection: the cell's centre pixel and the bin's depth.
    const auto F_ego = torch::linalg::solve(bda, F.unsqueeze(1), true).squeeze(1);
    const auto [fu, fv, fd] = project(F_ego);
    EXPECT_NEAR(fu, 16.0 * c + 7.5, 2e-2);
    EXPECT_NEAR(fv, 16.0 * r + 7.5, 2e-2);
    EXPECT_NEAR(fd, spec.bins.value_of(k), 1e-4);
    // And it lies in the point's BEV cell.
    int64_t frow, fcol;
    ASSERT_TRUE(grid.cell_of(F[0].item<double>(), F[1].item<double>(), &frow, &fcol));
    EXPECT_EQ(frow, row);
    EXPECT_EQ(fcol, col);

    // Lift-splat: one-hot depth at bin k and context 1 at cell (r, c) of camera 0 of sample 0 put
    // exactly 1 into that BEV cell. Sample 1 (identity augmentation) and camera 1 carry nothing.
    LiftSplat ls(spec, grid, 0);
    const int64_t D = spec.bins.count(), h = spec.feat_height(), w = spec.feat_width();
    auto depth_t = torch::zeros({2, 2, D, h, w});
    auto ctx = torch::zeros({2, 2, 1, h, w});
    depth_t[0][0][k][r][c] = 1.0;
    ctx[0][0][0][r][c] = 1.0;
    const auto intr = torch::stack({torch::stack({AK, K}), torch::stack({K, K})}).to(torch::kFloat32);
    const auto cams = torch::stack({torch::stack({c2e, level_camera(-yaw, {0, 0, 1.6})}),
                                    torch::stack({c2e, c2e})})
                          .to(torch::kFloat32);
    const auto bdas = torch::stack({bda, torch::eye(3, torch::kFloat64)}).to(torch::kFloat32);
    const auto out = ls.forward(depth_t, ctx, intr, cams, bdas, GeometryMode::kPerBatch);
    ASSERT_EQ(out.sizes().vec(), (std::vector<int64_t>{2, 1, 64, 64}));
    EXPECT_EQ(out.sum().item<double>(), 1.0);
    EXPECT_EQ(out[0][0][row][col].item<double>(), 1.0);
  }
}

TEST(StudentFrustum, ShapeErrors) {
  FrustumSpec s;
  const auto f = make_frustum(s);
  testing::expect_error(
      [&] { frustum_points(f, torch::eye(3).view({1, 1, 3, 3}), torch::eye(4).expand({1, 2, 4, 4}), torch::eye(3).view({1, 3, 3})); },
      {"cam2ego must be [1, 1, 4, 4]"});
  testing::expect_error(
      [&] { frustum_points(f, torch::zeros({1, 1, 3, 3}), torch::eye(4).view({1, 1, 4, 4}), torch::eye(3).view({1, 3, 3})); },
      {"singular"});
}

}  // namespace
}  // namespace bevkd::train::student

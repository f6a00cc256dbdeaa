// Gaussian heat maps against hand-worked values and a literal transcription of mmdet3d's
// get_targets_single / draw_heatmap_gaussian (spec/losses.md §2).
#include "kernels/gaussian.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "tests/kernels/test_util.h"

namespace bevkd::kernels {
namespace {

using test::all_close;
using test::same;

// exp(-a) for the kernel offsets used below (Python math.exp).
constexpr double kE2 = 0.1353352832366127;       // radius 1, offset (1, 0): exp(-1 / 0.5)
constexpr double kE4 = 0.01831563888873418;      // radius 1, offset (1, 1)
constexpr double kE072 = 0.4867522559599717;     // radius 2 (2σ² = 50/36), offset (1, 0)
constexpr double kE144 = 0.23692775868212176;    // (1, 1)
constexpr double kE288 = 0.056134762834133725;   // (2, 0)
constexpr double kE360 = 0.02732372244729256;    // (2, 1)
constexpr double kE576 = 0.0031511115984444414;  // (2, 2)

// An 8 x 8 map of 1 m cells over [-4, 4]²: voxel 0.5 m, stride 2; coor = (x + 4) / 0.5 / 2.
GaussianOptions small_options(int64_t min_radius) {
  GaussianOptions o;
  o.grid = BevGrid::make({-4.0, -4.0, -5.0, 4.0, 4.0, 3.0}, 1.0);
  o.out_size_factor = 2;
  o.min_radius = min_radius;
  return o;
}

// A box small enough that int(gaussian_radius) is 0, so min_radius decides.
torch::Tensor tiny_box(float x, float y) { return torch::tensor({{x, y, 0.0f, 0.2f, 0.2f, 1.5f, 0.3f}}); }

TEST(GaussianRadius, MatchesTorchFloat32Values) {
  // (length, width) in cells -> radius, computed with numpy float32 scalars exactly as torch
  // evaluates gaussian_radius on float32 tensors (e.g. a 4.5 x 1.9 m car at voxel 0.1, stride 8).
  struct Case {
    float length, width, radius;
  };
  const Case cases[] = {{5.625f, 2.375f, 1.5343897342681885f},
                        {0.375f, 0.375f, 0.16217081248760223f},
                        {15.0f, 3.625f, 2.9379067420959473f},
                        {1.0f, 0.75f, 0.3732927441596985f},
                        {12.5f, 3.125f, 2.5f},
                        {31.25f, 3.75f, 3.8781771659851074f}};
  for (const Case& c : cases)
    EXPECT_EQ(gaussian_radius(c.length, c.width, 0.1), c.radius) << c.length << " x " << c.width;
  // At integer boundaries float32 and float64 disagree; int() must see upstream's float32:
  // double gives 1.99999996 and 1.0000000032 here.
  EXPECT_EQ(gaussian_radius(14.999999046325684f, 2.0f, 0.1), 2.0f);
  EXPECT_EQ(gaussian_radius(1.603773593902588f, 3.5f, 0.1), 0.9999999403953552f);
  // Upstream's association matters too: c3 = (o - 1) * width * height evaluated as
  // (o - 1) * height * width gives 0.99999994 and 1.0 here.
  EXPECT_EQ(gaussian_radius(6.224490165710449f, 1.100000023841858f, 0.1), 1.0f);
  EXPECT_EQ(gaussian_radius(5.671390056610107f, 1.158862829208374f, 0.1), 0.9999999403953552f);
}

TEST(GaussianHeatmaps, HandWorkedRadiusOne) {
  // x = 0.5 -> coor 4.5 -> column 4; y = -1.5 -> coor 2.5 -> row 2
  const torch::Tensor heat = gaussian_mask(tiny_box(0.5f, -1.5f), small_options(1));
  torch::Tensor want = torch::zeros({8, 8});
  want[2][4] = 1.0f;
  for (const auto& [r, c] : {std::pair{1, 4}, {3, 4}, {2, 3}, {2, 5}}) want[r][c] = static_cast<float>(kE2);
  for (const auto& [r, c] : {std::pair{1, 3}, {1, 5}, {3, 3}, {3, 5}}) want[r][c] = static_cast<float>(kE4);
  EXPECT_TRUE(same(heat, want));
}

TEST(GaussianHeatmaps, RadiusBelowTheMinimumIsRaised) {
  const torch::Tensor heat = gaussian_mask(tiny_box(0.5f, 0.5f), small_options(2));  // centre (4, 4)
  const double row0[5] = {kE576, kE360, kE288, kE360, kE576};
  const double row1[5] = {kE360, kE144, kE072, kE144, kE360};
  const double row2[5] = {kE288, kE072, 1.0, kE072, kE288};
  const double* rows[5] = {row0, row1, row2, row1, row0};
  for (int dy = -2; dy <= 2; ++dy)
    for (int dx = -2; dx <= 2; ++dx)
      EXPECT_FLOAT_EQ(heat[4 + dy][4 + dx].item<float>(), static_cast<float>(rows[dy + 2][dx + 2])) << dx << "," << dy;
  EXPECT_EQ((heat > 0).sum().item<int64_t>(), 25);
}

TEST(GaussianHeatmaps, CentreJustBelowTheRangeTruncatesIntoColumnZero) {
  // coor_x = -0.05 and -0.9 truncate toward zero to column 0; -1.01 truncates to -1: skipped.
  for (const float x : {-4.05f, -4.9f}) {
    const torch::Tensor heat = gaussian_mask(tiny_box(x, 0.2f), small_options(1));  // row 4
    EXPECT_EQ(heat[4][0].item<float>(), 1.0f) << x;
    EXPECT_EQ(heat[4][1].item<float>(), static_cast<float>(kE2)) << x;
    EXPECT_EQ(heat[3][1].item<float>(), static_cast<float>(kE4)) << x;
    EXPECT_EQ((heat > 0).sum().item<int64_t>(), 6) << x;  // the kernel's left column is clipped
  }
  EXPECT_EQ(gaussian_mask(tiny_box(-5.01f, 0.2f), small_options(1)).count_nonzero().item<int64_t>(), 0);
}

TEST(GaussianHeatmaps, CentresOutsideTheGridAreSkipped) {
  const GaussianOptions o = small_options(1);
  for (const auto& [x, y] : {std::pair{4.0f, 0.0f}, {0.0f, 4.5f}, {0.0f, -5.2f}, {100.0f, 100.0f}})
    EXPECT_EQ(gaussian_mask(tiny_box(x, y), o).count_nonzero().item<int64_t>(), 0) << x << ", " << y;
  EXPECT_EQ(gaussian_mask(tiny_box(3.99f, 3.99f), o)[7][7].item<float>(), 1.0f);  // coor 7.99 -> 7
}

TEST(GaussianHeatmaps, NonPositiveSizesAreSkipped) {
  const torch::Tensor boxes =
      torch::tensor({{0.0f, 0.0f, 0.0f, 4.0f, 0.0f, 1.5f, 0.0f}, {1.0f, 1.0f, 0.0f, -1.0f, 2.0f, 1.5f, 0.0f}});
  EXPECT_EQ(gaussian_mask(boxes, small_options(2)).count_nonzero().item<int64_t>(), 0);
}

TEST(GaussianHeatmaps, OverlappingObjectsMaxMerge) {
  const torch::Tensor boxes = torch::cat({tiny_box(0.5f, 0.5f), tiny_box(1.5f, 0.5f)});  // (4, 4), (4, 5)
  const torch::Tensor heat = gaussian_mask(boxes, small_options(1));
  EXPECT_EQ(heat[4][4].item<float>(), 1.0f);  // a sum would give 1 + exp(-2)
  EXPECT_EQ(heat[4][5].item<float>(), 1.0f);
  EXPECT_EQ(heat[3][4].item<float>(), static_cast<float>(kE2));
  EXPECT_EQ(heat[3][5].item<float>(), static_cast<float>(kE2));
  EXPECT_EQ(heat[4][3].item<float>(), static_cast<float>(kE2));
  EXPECT_EQ(heat[4][6].item<float>(), static_cast<float>(kE2));
  EXPECT_EQ(heat[3][3].item<float>(), static_cast<float>(kE4));
}

// mmdet3d's procedure transcribed: the float32 centre and sizes, the radius rule, and
// draw_heatmap_gaussian's slicing (left/right/top/bottom) of the full (2r+1)² kernel.
torch::Tensor reference_heatmaps(const torch::Tensor& boxes, const torch::Tensor& labels, int64_t K,
                                 const GaussianOptions& o) {
  const int64_t W = o.grid.W, H = o.grid.H;
  const float voxel_x = static_cast<float>(o.grid.dx / o.out_size_factor),
              voxel_y = static_cast<float>(o.grid.dy / o.out_size_factor);
  const float x_min = static_cast<float>(o.grid.x_min()), y_min = static_cast<float>(o.grid.y_min());
  torch::Tensor heat = torch::zeros({K, H, W});
  for (int64_t i = 0; i < boxes.size(0); ++i) {
    const torch::Tensor bi = boxes[i];
    const auto b = bi.accessor<float, 1>();
    const float width = b[4] / voxel_x / static_cast<float>(o.out_size_factor);
    const float length = b[3] / voxel_y / static_cast<float>(o.out_size_factor);
    if (!(width > 0 && length > 0)) continue;
    const int64_t radius =
        std::max<int64_t>(o.min_radius, static_cast<int64_t>(gaussian_radius(length, width, o.min_overlap)));
    const float coor_x = (b[0] - x_min) / voxel_x / static_cast<float>(o.out_size_factor);
    const float coor_y = (b[1] - y_min) / voxel_y / static_cast<float>(o.out_size_factor);
    const int64_t x = static_cast<int64_t>(std::trunc(coor_x)), y = static_cast<int64_t>(std::trunc(coor_y));
    if (!(x >= 0 && x < W && y >= 0 && y < H)) continue;
    const int64_t d = 2 * radius + 1;
    const double sigma = d / 6.0;
    torch::Tensor g = torch::empty({d, d}, torch::kFloat64);
    for (int64_t r = 0; r < d; ++r)
      for (int64_t c = 0; c < d; ++c) {
        const double yy = r - radius, xx = c - radius;
        const double v = std::exp(-(xx * xx + yy * yy) / (2 * sigma * sigma));
        g[r][c] = v < 2.220446049250313e-16 ? 0.0 : v;
      }
    const int64_t left = std::min(x, radius), right = std::min(W - x, radius + 1);
    const int64_t top = std::min(y, radius), bottom = std::min(H - y, radius + 1);
    torch::Tensor region = heat[labels[i].item<int64_t>()].slice(0, y - top, y + bottom).slice(1, x - left, x + right);
    const torch::Tensor kernel =
        g.slice(0, radius - top, radius + bottom).slice(1, radius - left, radius + right).to(torch::kFloat32);
    region.copy_(torch::max(region, kernel));
  }
  return heat;
}

TEST(GaussianHeatmaps, RandomBoxesMatchTheMmdet3dProcedure) {
  GaussianOptions o;  // CenterPoint nuScenes: voxel 0.1, stride 8, 128 x 128, min_radius 2
  o.grid = BevGrid::make({-51.2, -51.2, -5.0, 51.2, 51.2, 3.0}, 0.8);
  o.out_size_factor = 8;
  torch::manual_seed(31);
  const int64_t n = 300;
  torch::Tensor boxes = torch::zeros({n, 9});
  boxes.select(1, 0).uniform_(-56.0, 56.0);  // some outside, some just below the range
  boxes.select(1, 1).uniform_(-56.0, 56.0);
  boxes.select(1, 3).uniform_(-0.5, 14.0);  // a few non-positive sizes
  boxes.select(1, 4).uniform_(0.0, 4.0);
  boxes.select(1, 5).uniform_(0.5, 4.0);
  boxes.select(1, 6).uniform_(-3.14, 3.14);
  const torch::Tensor labels = torch::randint(0, 10, {n}, torch::kInt64);
  const torch::Tensor heat = gaussian_heatmaps(boxes, labels, 10, o);
  ASSERT_EQ(heat.sizes(), torch::IntArrayRef({10, 128, 128}));
  EXPECT_TRUE(same(heat, reference_heatmaps(boxes, labels, 10, o)));
  // The mask is the class maps max-merged.
  EXPECT_TRUE(same(gaussian_mask(boxes, o), std::get<0>(heat.max(0))));
  // Labels of any integer dtype.
  EXPECT_TRUE(same(gaussian_heatmaps(boxes, labels.to(torch::kInt16), 10, o), heat));
}

TEST(GaussianHeatmaps, RejectsBadInput) {
  const GaussianOptions o = small_options(2);
  EXPECT_ERROR_WITH(gaussian_heatmaps(tiny_box(0, 0), torch::tensor({10}), 10, o),
                     "gaussian_heatmaps: labels[0] is 10, outside [0, 10)");
  EXPECT_ERROR_WITH(gaussian_heatmaps(tiny_box(0, 0), torch::tensor({0, 1}), 10, o),
                     "labels must be [N] integer class ids with N = boxes.size(0), found [2] int64 on cpu");
  EXPECT_ERROR_WITH(gaussian_mask(torch::zeros({3, 8}), o), "gaussian_mask: boxes must be [N, 7] or [N, 9] float32");
  GaussianOptions bad = o;
  bad.grid = BevGrid{};
  EXPECT_ERROR_WITH(gaussian_mask(tiny_box(0, 0), bad), "gaussian_heatmaps: no grid given (GaussianOptions::grid is empty)");
  bad = o;
  bad.min_overlap = 0.0;
  EXPECT_ERROR_WITH(gaussian_mask(tiny_box(0, 0), bad), "min_overlap must be in (0, 1), found 0");
  torch::Tensor map = torch::zeros({8, 8});
  EXPECT_ERROR_WITH(draw_gaussian(map, 8, 0, 1), "draw_gaussian: centre (8, 0) is outside the 8 x 8 map");
}

TEST(DrawGaussian, MaxMergesIntoAnExistingMap) {
  torch::Tensor map = torch::full({5, 6}, 0.5f);
  draw_gaussian(map, 0, 4, 1);
  EXPECT_EQ(map[4][0].item<float>(), 1.0f);
  EXPECT_EQ(map[3][0].item<float>(), 0.5f);  // exp(-2) < 0.5 keeps the old value
  EXPECT_EQ(map[2][2].item<float>(), 0.5f);
}

}  // namespace
}  // namespace bevkd::kernels

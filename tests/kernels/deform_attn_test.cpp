// Single-scale deformable attention against hand-worked samples, an independent reference built
// from torch::grid_sample (forward and, through LibTorch's autograd, backward), and float64
// central finite differences for value, locations and weights.
#include "kernels/deform_attn.h"

#include <torch/torch.h>

#include <array>
#include <cmath>
#include <utility>
#include <vector>

#include "tests/kernels/test_util.h"

namespace bevkd::kernels {
namespace {

using test::all_close;
namespace F = torch::nn::functional;

// Deformable DETR's pure-PyTorch core (one level) with LibTorch ops: per head, grid_sample the
// head's map at g = 2·loc − 1 (bilinear, zeros, align_corners=False) and sum over K with the
// weights.
torch::Tensor reference(const torch::Tensor& value, int64_t H, int64_t W, const torch::Tensor& loc,
                        const torch::Tensor& attn) {
  const int64_t B = value.size(0), M = value.size(2), Dh = value.size(3);
  std::vector<torch::Tensor> heads;
  for (int64_t m = 0; m < M; ++m) {
    const torch::Tensor map = value.select(2, m).transpose(1, 2).reshape({B, Dh, H, W});
    const torch::Tensor grid = loc.select(2, m) * 2 - 1;  // [B, Q, K, 2]
    const torch::Tensor s = F::grid_sample(
        map, grid, F::GridSampleFuncOptions().mode(torch::kBilinear).padding_mode(torch::kZeros).align_corners(false));
    heads.push_back((s * attn.select(2, m).unsqueeze(1)).sum(-1).transpose(1, 2));  // [B, Q, Dh]
  }
  return torch::cat(heads, -1);
}

struct Inputs {
  torch::Tensor value, loc, attn;
  int64_t H, W;
};

// Locations uniform in [−0.3, 1.3]² (a share of them off the map, some more than a cell off),
// weights a softmax over K.
Inputs random_inputs(int64_t B, int64_t H, int64_t W, int64_t M, int64_t Dh, int64_t Q, int64_t K, uint64_t seed,
                     torch::Dtype dtype) {
  torch::manual_seed(seed);
  Inputs in;
  in.H = H;
  in.W = W;
  in.value = torch::randn({B, H * W, M, Dh}, dtype);
  in.loc = torch::rand({B, Q, M, K, 2}, dtype) * 1.6 - 0.3;
  in.attn = torch::randn({B, Q, M, K}, dtype).softmax(-1);
  return in;
}

TEST(DeformAttn, HandWorkedSamples) {
  // One head, one channel, a 2 x 3 map (rows y, columns x): v(r, c) = 10 r + c + 1.
  const int64_t H = 2, W = 3;
  const torch::Tensor value = torch::tensor({1.0, 2.0, 3.0, 11.0, 12.0, 13.0}, torch::kFloat64).view({1, 6, 1, 1});
  // pixel (px, py) = loc · (W, H) − ½; the expected sample is worked out from (px, py).
  const std::vector<std::pair<std::array<double, 2>, double>> cases = {
      {{0.5 / 3, 0.25}, 1.0},                                                      // (0, 0): centre of cell (0, 0)
      {{2.5 / 3, 0.75}, 13.0},                                                     // (2, 1): centre of cell (1, 2)
      {{1.0 / 3, 0.5}, (1 + 2 + 11 + 12) / 4.0},                                   // (0.5, 0.5): the four cells' mean
      {{0.5, 0.25}, 2.0},                                                          // (1, 0): column 1 exactly
      {{1.3 / 3, 0.35}, 0.8 * (0.2 * 1 + 0.8 * 2) + 0.2 * (0.2 * 11 + 0.8 * 12)},  // (0.8, 0.2) = 3.8
      {{-0.25 / 3, 0.25}, 0.25 * 1.0},  // (−0.75, 0): column −1 reads 0, column 0 has weight 0.25
      {{-0.5 / 3, 0.25}, 0.0},          // (−1, 0): the support boundary samples 0
      {{0.5 / 3, 1.2}, 0.1 * 11},       // (0, 1.9): row 1 weight 0.1, row 2 outside
      {{5.0, 5.0}, 0.0},                // far outside
  };
  for (size_t i = 0; i < cases.size(); ++i) {
    const auto& [xy, want] = cases[i];
    const torch::Tensor loc = torch::tensor({xy[0], xy[1]}, torch::kFloat64).view({1, 1, 1, 1, 2});
    const torch::Tensor attn = torch::full({1, 1, 1, 1}, 2.0, torch::kFloat64);
    EXPECT_NEAR(deform_attn(value, H, W, loc, attn).item<double>(), 2.0 * want, 1e-12) << "case " << i;
  }
  EXPECT_NEAR(cases[4].second, 3.8, 1e-12);
}

TEST(DeformAttn, ForwardMatchesGridSample) {
  for (const auto dtype : {torch::kFloat64, torch::kFloat32}) {
    for (const auto& [B, H, W, M, Dh, Q, K] :
         {std::array<int64_t, 7>{2, 13, 17, 3, 5, 40, 4}, std::array<int64_t, 7>{1, 32, 32, 8, 32, 300, 4},
          std::array<int64_t, 7>{3, 1, 9, 2, 1, 7, 1}}) {
      const Inputs in = random_inputs(B, H, W, M, Dh, Q, K, 100 + H, dtype);
      const torch::Tensor out = deform_attn(in.value, H, W, in.loc, in.attn);
      ASSERT_EQ(out.sizes(), torch::IntArrayRef({B, Q, M * Dh}));
      ASSERT_EQ(out.scalar_type(), dtype);
      const torch::Tensor want = reference(in.value, H, W, in.loc, in.attn);
      if (dtype == torch::kFloat64)
        EXPECT_TRUE(all_close(out, want, 0, test::kF64Tol)) << H << "x" << W;
      else
        EXPECT_TRUE(all_close(out, want, test::kF32RelTol, test::kF32AbsTol)) << H << "x" << W;
    }
  }
}

TEST(DeformAttn, BackwardMatchesGridSampleAutograd) {
  for (const auto dtype : {torch::kFloat64, torch::kFloat32}) {
    const Inputs in = random_inputs(2, 11, 14, 4, 6, 50, 3, 7, dtype);
    const torch::Tensor w = torch::randn({2, 50, 24}, dtype);
    auto grads = [&](bool ours) {
      const torch::Tensor v = in.value.clone().requires_grad_(true), l = in.loc.clone().requires_grad_(true),
                          a = in.attn.clone().requires_grad_(true);
      const torch::Tensor out = ours ? deform_attn(v, in.H, in.W, l, a) : reference(v, in.H, in.W, l, a);
      (out * w).sum().backward();
      return std::array<torch::Tensor, 3>{v.grad(), l.grad(), a.grad()};
    };
    const auto got = grads(true), want = grads(false);
    const double rtol = dtype == torch::kFloat64 ? 0 : test::kF32RelTol;
    const double atol = dtype == torch::kFloat64 ? test::kF64Tol : 1e-5;
    EXPECT_TRUE(all_close(got[0], want[0], rtol, atol)) << "value";
    EXPECT_TRUE(all_close(got[1], want[1], rtol, atol)) << "locations";
    EXPECT_TRUE(all_close(got[2], want[2], rtol, atol)) << "weights";
    EXPECT_GT(got[1].abs().sum().item<double>(), 0);
  }
}

// Moves every location at most 1e-3 pixels off so that no point lies within 1e-3 pixels of an
// integer pixel coordinate or of the support boundary (px = −1, px = W), where the bilinear
// interpolant has kinks and a central difference would straddle one.
torch::Tensor away_from_kinks(torch::Tensor loc, int64_t H, int64_t W) {
  torch::Tensor px = loc.select(-1, 0) * W - 0.5, py = loc.select(-1, 1) * H - 0.5;
  for (torch::Tensor* p : {&px, &py}) {
    const torch::Tensor frac = *p - p->floor();
    *p = torch::where(frac < 2e-3, *p + 2e-3, torch::where(frac > 1 - 2e-3, *p - 2e-3, *p));
  }
  return torch::stack({(px + 0.5) / W, (py + 0.5) / H}, -1);
}

TEST(DeformAttn, FiniteDifferenceGradients) {
  Inputs in = random_inputs(2, 5, 6, 2, 3, 7, 3, 11, torch::kFloat64);
  in.loc = away_from_kinks(in.loc, in.H, in.W);
  const torch::Tensor w = torch::randn({2, 7, 6}, torch::kFloat64);
  auto loss = [&](const torch::Tensor& v, const torch::Tensor& l, const torch::Tensor& a) {
    return (deform_attn(v, in.H, in.W, l, a) * w).sum().item<double>();
  };
  const torch::Tensor v = in.value.clone().requires_grad_(true), l = in.loc.clone().requires_grad_(true),
                      a = in.attn.clone().requires_grad_(true);
  (deform_attn(v, in.H, in.W, l, a) * w).sum().backward();
  const double h = 1e-6;
  for (int which = 0; which < 3; ++which) {
    const torch::Tensor base = which == 0 ? in.value : which == 1 ? in.loc : in.attn;
    const torch::Tensor analytic = (which == 0 ? v : which == 1 ? l : a).grad().flatten();
    torch::Tensor numeric = torch::zeros_like(analytic);
    for (int64_t i = 0; i < base.numel(); ++i) {
      torch::Tensor plus = base.clone(), minus = base.clone();
      plus.view({-1})[i] += h;
      minus.view({-1})[i] -= h;
      const double fp = which == 0   ? loss(plus, in.loc, in.attn)
                        : which == 1 ? loss(in.value, plus, in.attn)
                                     : loss(in.value, in.loc, plus);
      const double fm = which == 0   ? loss(minus, in.loc, in.attn)
                        : which == 1 ? loss(in.value, minus, in.attn)
                                     : loss(in.value, in.loc, minus);
      numeric[i] = (fp - fm) / (2 * h);
    }
    EXPECT_TRUE(all_close(analytic, numeric, 1e-6, 1e-7)) << "input " << which;
    EXPECT_GT(analytic.abs().sum().item<double>(), 0) << "input " << which;
  }
}

TEST(DeformAttn, CpuBackwardIsDeterministic) {
  const Inputs in = random_inputs(1, 8, 8, 2, 4, 500, 4, 13, torch::kFloat32);
  // Concentrate the points in one corner so many of them add into the same value cells.
  const torch::Tensor loc = in.loc * 0.2;
  const torch::Tensor w = torch::randn({1, 500, 8});
  auto value_grad = [&] {
    const torch::Tensor v = in.value.clone().requires_grad_(true);
    (deform_attn(v, 8, 8, loc, in.attn) * w).sum().backward();
    return v.grad();
  };
  const torch::Tensor g0 = value_grad();
  for (int r = 0; r < 3; ++r) EXPECT_TRUE(torch::equal(value_grad(), g0));
}

TEST(DeformAttn, EmptyQueriesAndOutsidePoints) {
  const Inputs in = random_inputs(2, 4, 4, 2, 3, 0, 4, 17, torch::kFloat64);
  const torch::Tensor v = in.value.clone().requires_grad_(true);
  const torch::Tensor out = deform_attn(v, 4, 4, in.loc, in.attn);
  EXPECT_EQ(out.sizes(), torch::IntArrayRef({2, 0, 6}));
  out.sum().backward();
  EXPECT_EQ(v.grad().abs().sum().item<double>(), 0.0);
  // All points a full cell or more outside: output 0 and every gradient 0.
  const torch::Tensor far = torch::full({2, 3, 2, 4, 2}, -0.3, torch::kFloat64).requires_grad_(true);
  const torch::Tensor attn = torch::rand({2, 3, 2, 4}, torch::kFloat64).requires_grad_(true);
  const torch::Tensor o2 = deform_attn(v, 4, 4, far, attn);
  EXPECT_EQ(o2.abs().sum().item<double>(), 0.0);
  o2.sum().backward();
  EXPECT_EQ(far.grad().abs().sum().item<double>(), 0.0);
  EXPECT_EQ(attn.grad().abs().sum().item<double>(), 0.0);
}

TEST(DeformAttn, ValueFromBevLayout) {
  torch::manual_seed(19);
  const torch::Tensor bev = torch::randn({2, 12, 5, 7});
  const torch::Tensor v = deform_attn_value_from_bev(bev, 3);  // 3 heads x 4 channels
  ASSERT_EQ(v.sizes(), torch::IntArrayRef({2, 35, 3, 4}));
  // head 2, channel 1 = BEV channel 9; cell (row 3, col 4) = flat 3·7 + 4
  EXPECT_EQ(v[1][25][2][1].item<float>(), bev[1][9][3][4].item<float>());
  // Sampling the centre of cell (3, 4) with weight 1 reads the BEV map there.
  const torch::Tensor loc =
      torch::tensor({4.5 / 7, 3.5 / 5}, torch::kFloat32).view({1, 1, 1, 1, 2}).expand({2, 1, 3, 1, 2});
  const torch::Tensor out = deform_attn(v, 5, 7, loc, torch::ones({2, 1, 3, 1}));
  EXPECT_TRUE(all_close(out.squeeze(1), bev.select(3, 4).select(2, 3), 0, 1e-6));
}

TEST(DeformAttn, RejectsBadInput) {
  const torch::Tensor v = torch::zeros({2, 20, 2, 3}), l = torch::zeros({2, 5, 2, 4, 2}),
                      a = torch::zeros({2, 5, 2, 4});
  EXPECT_ERROR_WITH(deform_attn(v, 4, 6, l, a),
                     "deform_attn: value has 20 cells along dim 1 but the map is 4 x 6 (24 cells)");
  EXPECT_ERROR_WITH(deform_attn(v, 4, 5, torch::zeros({2, 5, 3, 4, 2}), a),
                     "deform_attn: locations must be [B, Q, M, K, 2] with B and M of value, found [2, 5, 3, 4, 2] "
                     "float32 on cpu");
  EXPECT_ERROR_WITH(deform_attn(v, 4, 5, l, torch::zeros({2, 5, 2, 3})),
                     "deform_attn: weights must be [B, Q, M, K] with B, Q, M, K of locations, found [2, 5, 2, 3]");
  EXPECT_ERROR_WITH(deform_attn(v, 4, 5, l.to(torch::kFloat64), a), "need one dtype");
  EXPECT_ERROR_WITH(deform_attn_value_from_bev(torch::zeros({1, 10, 2, 2}), 3),
                     "deform_attn_value_from_bev: 10 channels do not split into 3 heads");
}

}  // namespace
}  // namespace bevkd::kernels

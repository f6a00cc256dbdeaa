// FD3D's distillation head (train/losses/fd3d_head.h): focal-query selection on a hand-built
// decoder output (confidence and GIoU thresholds, boxes and sampling points in metres), and the
// head's step with no GT (finite loss, no focal query, gradient into the head only).
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>

#include "train/losses/fd3d.h"
#include "train/losses/fd3d_head.h"

namespace bevkd::train::losses {
namespace {

namespace cn = core::nn;

BevGrid grid() { return BevGrid::make({-10, -10, -5, 10, 10, 3}, 0.5); }  // 40 x 40

TEST(Fd3dHead, FocalQueriesAreMatchedConfidentQueriesOverlappingTheirGt) {
  const auto g = grid();
  // GT 0 at (2, 3), GT 1 at (-5, -5).
  const auto gt = torch::tensor({{2.0, 3.0, 0.0, 4.0, 2.0, 1.5, 0.0, 0.0, 0.0},
                                 {-5.0, -5.0, 0.0, 4.0, 2.0, 1.5, 0.0, 0.0, 0.0}},
                                torch::kFloat32);
  // q0 predicts GT 0 exactly, confidently; q1 predicts GT 1 but is unmatched; q2 is matched to
  // GT 1 and confident but 8 m away from it (GIoU -1/3); q3 repeats q0's box, unconfident and
  // unmatched. Only q0 is focal.
  auto codes = torch::zeros({1, 4, 10});
  codes[0][0] = cn::encode_query_boxes(gt.narrow(0, 0, 1))[0];
  codes[0][1] = cn::encode_query_boxes(gt.narrow(0, 1, 1))[0];
  auto far = gt.narrow(0, 1, 1).clone();
  far[0][0] = 3.0;
  codes[0][2] = cn::encode_query_boxes(far)[0];
  codes[0][3] = codes[0][0];
  auto logits = torch::full({1, 4, 3}, -4.0);
  logits[0][0][1] = 2.0;   // conf 0.88
  logits[0][1][0] = 2.0;
  logits[0][2][2] = 2.0;
  logits[0][3][1] = -2.0;  // conf 0.12
  cn::QueryDecoderOutput out;
  out.cls_logits = {logits};
  out.codes = {codes};
  out.locations = torch::rand({1, 4, 2, 3, 2});
  cn::QueryMatch m;
  m.query = torch::tensor({0, 2}, torch::kInt64);
  m.gt = torch::tensor({0, 1}, torch::kInt64);
  const auto f = fd3d_focal_queries(out, {m}, {gt}, g, 0.3, 0.3);
  EXPECT_EQ(f.count, 1);
  EXPECT_EQ(f.gt_total, 2);
  EXPECT_EQ(f.gt_covered, 1);
  EXPECT_EQ(f.samples_with_gt, 1);
  ASSERT_EQ(f.boxes.size(), 1u);
  EXPECT_TRUE(torch::allclose(f.boxes[0], gt.narrow(0, 0, 1), 1e-4, 1e-4)) << f.boxes[0];
  ASSERT_EQ(f.positions[0].sizes(), torch::IntArrayRef({1, 2, 3, 2}));
  // Sampling points: x = -10 + 20 loc_x, y = -10 + 20 loc_y.
  const auto want = out.locations[0][0] * 20 - 10;
  EXPECT_TRUE(torch::allclose(f.positions[0][0], want, 1e-5, 1e-5));
  // Raising ρ_c above q0's confidence leaves none; lowering ρ_b to -1 admits q2 (GIoU > -1).
  EXPECT_EQ(fd3d_focal_queries(out, {m}, {gt}, g, 0.9, 0.3).count, 0);
  EXPECT_EQ(fd3d_focal_queries(out, {m}, {gt}, g, 0.3, -0.99).count, 2);
}

Fd3dHeadOptions small_head(int64_t in_channels) {
  Fd3dHeadOptions o;
  o.decoder.in_channels = in_channels;
  o.decoder.num_queries = 6;
  o.decoder.embed_dims = 16;
  o.decoder.num_layers = 2;
  o.decoder.self_attn_heads = 2;
  o.decoder.heads = 2;
  o.decoder.points = 2;
  o.decoder.ffn_dims = 16;
  return o;
}

TEST(Fd3dHead, NoGroundTruthMeansNoFocalQueryAndAFiniteLossOnTheHeadOnly) {
  torch::manual_seed(2);
  Fd3dHead head(small_head(3), grid());
  const auto teacher = torch::randn({2, 3, 40, 40}, torch::requires_grad(true));
  const std::vector<torch::Tensor> none{torch::zeros({0, 9}), torch::zeros({0, 9})};
  const std::vector<torch::Tensor> no_labels{torch::zeros({0}, torch::kInt64), torch::zeros({0}, torch::kInt64)};
  const auto s = fd3d_head_step(head, teacher, none, no_labels);
  EXPECT_TRUE(std::isfinite(s.loss.item<double>()));
  EXPECT_EQ(s.box.item<double>(), 0.0);
  EXPECT_EQ(s.focal.count, 0);
  ASSERT_EQ(s.focal.boxes.size(), 2u);
  EXPECT_EQ(s.focal.boxes[0].size(0), 0);
  s.loss.backward();
  EXPECT_FALSE(teacher.grad().defined());  // the head reads the teacher map as a constant
  bool any = false;
  for (const auto& p : head->parameters()) any = any || (p.grad().defined() && p.grad().abs().sum().item<double>() > 0);
  EXPECT_TRUE(any);
  // SMGD and QFD downstream of zero focal queries: the instance mask is all ones, QFD is 0.
  const auto mask = fd3d_instance_mask(s.focal.boxes, grid(), torch::TensorOptions(torch::kFloat32));
  EXPECT_EQ(mask.min().item<double>(), 1.0);
  const auto q = fd3d_qfd(torch::randn({2, 3, 40, 40}), teacher.detach(), s.focal.positions, torch::nn::Conv2d{nullptr},
                          Fd3dQfdOptions::from_grid(grid()));
  EXPECT_EQ(q.item<double>(), 0.0);
}

// The head learns: a few dozen steps on one sample's features and GT bring the loss down and
// produce focal queries there.
TEST(Fd3dHead, OverfitsOneSample) {
  torch::manual_seed(4);
  auto o = small_head(4);
  o.decoder.dropout = 0;
  Fd3dHead head(o, grid());
  const auto gt = torch::tensor({{2.0, 3.0, 0.0, 4.0, 2.0, 1.5, 0.5, 0.0, 0.0}, {-5.0, 4.0, 0.0, 4.0, 2.0, 1.5, -1.0, 0.0, 0.0}});
  const auto labels = torch::tensor({0, 1}, torch::kInt64);
  // A teacher map with a blob at each object.
  auto t = torch::zeros({1, 4, 40, 40});
  t[0][0].narrow(0, 24, 4).narrow(1, 22, 4).fill_(3);
  t[0][1].narrow(0, 26, 4).narrow(1, 8, 4).fill_(3);
  torch::optim::AdamW opt(head->parameters(), torch::optim::AdamWOptions(3e-3));
  double first = 0, last = 0;
  Fd3dFocalQueries f;
  for (int i = 0; i < 150; ++i) {
    auto s = fd3d_head_step(head, t, {gt}, {labels});
    if (i == 0) first = s.loss.item<double>();
    last = s.loss.item<double>();
    f = s.focal;
    opt.zero_grad();
    s.loss.backward();
    opt.step();
  }
  EXPECT_LT(last, 0.5 * first) << first << " -> " << last;
  EXPECT_GE(f.count, 1) << "no focal query after overfitting";
}

}  // namespace
}  // namespace bevkd::train::losses

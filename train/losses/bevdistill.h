// BEVDistill (Chen et al., ICLR 2023; zehuichen123/BEVDistill 1204aea): the three distillation
// terms of the released config, as spec/losses.md §3 defines them. Pure functions of tensors
// plus one module that owns the trainable parts (the InfoNCE projection heads).
//
//   dense     (§3.1)  bevdistill_dense      Σ(S − T)²·fg / Σfg on head_shared features, weight 0.01
//   box       (§3.2)  bevdistill_box_distill  s²-weighted L1 on Hungarian-matched boxes, weight 0.25
//   InfoNCE   (§3.3)  BevDistillInfoNce     one-direction CE between projected point samples, 0.2
//
// Every function works for any B ≥ 1, for samples without boxes (they add 0, never NaN) and in
// float32 and float64 (all float inputs of one call share a dtype). Teacher tensors are constants:
// they are detached here, so no gradient reaches them.
#pragma once

#include <torch/nn/module.h>
#include <torch/nn/modules/batchnorm.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/pimpl.h>
#include <torch/types.h>

#include <array>
#include <cstdint>
#include <vector>

#include "base/bev_grid.h"
#include "core/nn/center_head.h"
#include "core/nn/hungarian.h"

namespace bevkd::train::losses {

// ---- §3.1 dense foreground-guided feature distillation ---------------------------------------

// Σ_{b,c,h,w} (S − T)²·fg[b,h,w] / Σ_{b,h,w} fg — channels summed (no 1/C), fg broadcast per
// sample (upstream's B > 1 broadcast bug is not reproduced), 0 when Σfg = 0.
//   s:  [B, C, H, W] float, student features (release: the aux head's shared conv output)
//   t:  [B, C, H, W] same dtype, teacher features (detached here)
//   fg: [B, H, W] any float dtype (cast to s's), the Gaussian foreground map (gaussian_fg.h)
// Returns a scalar of s's dtype; the gradient flows to s only.
torch::Tensor bevdistill_dense_unweighted(const torch::Tensor& s, const torch::Tensor& t, const torch::Tensor& fg);

// loss_weight × bevdistill_dense_unweighted (the release's weight is 0.01).
torch::Tensor bevdistill_dense(const torch::Tensor& s, const torch::Tensor& t, const torch::Tensor& fg,
                               double loss_weight = 0.01);

// ---- §3.2 sparse instance (prediction) distillation ------------------------------------------

// bevkd's box regression code for this loss, from DESIGN.md Boxes:
//   boxes [K, 9] float (x, y, z, l, w, h, yaw, vx, vy; ego frame, geometric centre)
//   -> [K, 10] same dtype: (x, y, log l, log w, z, log h, sin yaw, cos yaw, vx, vy).
// It is the reference's normalize_bbox (x, y, log w, log l, z, log h, sin yaw', cos yaw', vx, vy)
// of mmdet3d v0.17 boxes up to a signed permutation (yaw' = −yaw − π/2, so sin yaw = −cos yaw'
// and cos yaw = −sin yaw'): every L1 term, hence the matching cost and the loss, is the same
// when the student's predictions use the same layout and the code weights are permuted with it
// (probe/box_convention.h converts the reference layout). Centres stay in metres. Sizes ≤ 0 give
// non-finite codes (such teacher boxes are dropped by bevdistill_box_distill).
torch::Tensor bevdistill_box_code(const torch::Tensor& boxes);

// The teacher of one sample.
struct BoxDistillTeacher {
  torch::Tensor code;   // [K, 10] float, bevdistill_box_code of the teacher's boxes (top-50 in the release)
  torch::Tensor probs;  // [K, Ncls] float in [0, 1], the teacher's sigmoid class probabilities t_k
  // [K] float, the per-box instance score s_k: weight s_k² on the box's L1 terms, s_k in the
  // normaliser. The release uses s_k = max_c t_kc (bevdistill_max_prob_score); the paper's
  // quality q = c^γ · IoU^(1−γ) (spec §11.1) is passed here instead.
  torch::Tensor score;
};

// s_k = max_c probs[k, c]: [K, Ncls] -> [K].
torch::Tensor bevdistill_max_prob_score(const torch::Tensor& probs);

struct BoxDistillOptions {
  double loss_weight = 0.25;  // loss_bbox_distill (L1)
  // Per entry of bevkd's code (x, y, log l, log w, z, log h, sin, cos, vx, vy).
  std::array<double, 10> code_weights{1, 1, 1, 1, 1, 1, 1, 1, 0.2, 0.2};
  double cls_cost_weight = 1.0;   // soft-label BCE cost, summed over classes (not averaged)
  double reg_cost_weight = 0.25;  // L1 cost on the first 8 code entries
};

struct BoxDistillResult {
  torch::Tensor total;               // scalar: Σ over layers (weighted)
  std::vector<torch::Tensor> layer;  // [L] scalars, weighted
  // matches[l][b]: (query, teacher) pairs of layer l, sample b, sorted by query; teacher indices
  // refer to the sample's teacher rows as given (dropped rows never match).
  std::vector<std::vector<core::nn::Assignment>> matches;
};

// For each layer l independently (spec §3.2):
//   cost[q,k] = cls_w·Σ_c [softplus(−x_qc)·t_kc + softplus(x_qc)·(1−t_kc)]
//             + reg_w·Σ_{d<8} |pred[q,d] − code[k,d]|        (detached, float32 as upstream)
//   Hungarian matching per sample (core/nn/hungarian.h), then
//   L_l = loss_weight · Σ_{matched (q,k), d<10} s_k²·cw_d·|pred[q,d] − code[k,d]| / Σ_b Σ_{matched k} s_k
// with the normaliser over the whole batch, not clamped; L_l = 0 when nothing is matched.
// Teacher rows with a non-finite code, probability or score are dropped before matching (the
// reference cannot match them either: scipy refuses such costs).
//   cls_logits: [L, B, Q, Ncls] float, student class logits (matching cost only, no gradient)
//   bbox_preds: [L, B, Q, 10] same dtype, student codes in bevdistill_box_code's layout
//   teacher:    B entries (K_b may be 0; the entry's tensors in any float dtype, cast to bbox_preds')
// Gradient: to bbox_preds only; the matching and s are constants. Throws bevkd::Error on shape
// mismatches and on a non-finite student cost entry (naming layer and sample).
BoxDistillResult bevdistill_box_distill(const torch::Tensor& cls_logits, const torch::Tensor& bbox_preds,
                                        const std::vector<BoxDistillTeacher>& teacher,
                                        const BoxDistillOptions& opts = {});

// ---- §3.3 instance-level InfoNCE --------------------------------------------------------------

// Samples a BEV map at one point per (layer, sample, query), the way get_relation_distill_loss
// does: grid_sample(bev, points.permute(1,0,2,3)), bilinear, zeros padding, align_corners=False.
//   bev:    [B, C, H, W] float
//   points: [L, B, Q, 2] (x, y) in [−1, 1] (x selects the W axis), same dtype
// Returns [B·L·Q, C], rows in (b, l, q) order.
torch::Tensor bevdistill_sample_points(const torch::Tensor& bev, const torch::Tensor& points);

// mean_i CE(logits[i, :], i) with logits = e_t · e_sᵀ / temperature (rows: teacher samples, one
// direction). e_t, e_s: [N, M] (L2-normalised embeddings), same dtype. 0 when N ≤ 1 (a single
// sample has nothing to contrast; BN1d could not even normalise it).
torch::Tensor infonce_loss(const torch::Tensor& e_t, const torch::Tensor& e_s, double temperature = 0.07);

// One projection head of MoCoCLHead: Linear(C→M) → Linear(M→M) → BatchNorm1d(M, eps 1e-5, batch
// statistics) → ReLU → Linear(M→M) → L2 normalise (eps 1e-12). Children proj, enc1, bn, enc2.
// BN1d runs on batch statistics whenever the module is in train mode (the default; the head only
// exists for training).
class ProjectionHeadImpl : public torch::nn::Module {
 public:
  ProjectionHeadImpl(int64_t in_channels, int64_t mid_channels);
  // x: [N, C] -> [N, M] unit rows.
  torch::Tensor forward(const torch::Tensor& x);

  torch::nn::Linear proj{nullptr}, enc1{nullptr}, enc2{nullptr};
  torch::nn::BatchNorm1d bn{nullptr};
};
TORCH_MODULE(ProjectionHead);

struct InfoNceOptions {
  int64_t student_channels = 256;  // C of the student BEV map
  int64_t teacher_channels = 256;  // C of the teacher BEV map
  int64_t mid_channels = 512;      // M
  double temperature = 0.07;
  double loss_weight = 0.2;
};

// The trainable parts of BEVDistill's InfoNCE: the student ("img") and teacher ("pts") heads.
// Both are trained (the teacher-side head receives gradient); only the teacher map is constant.
class BevDistillInfoNceImpl : public torch::nn::Module {
 public:
  explicit BevDistillInfoNceImpl(InfoNceOptions opts = {});
  // Unweighted loss (multiply by options().loss_weight):
  //   s_bev [B, Cs, Hs, Ws] student raw BEV map; t_bev [B, Ct, Ht, Wt] teacher raw BEV map
  //   (detached here); points [L, B, Q, 2] detached sampling points in [−1, 1] (the student's
  //   predicted centres: the reference's feat_point). All the same float dtype as the heads.
  torch::Tensor forward(const torch::Tensor& s_bev, const torch::Tensor& t_bev, const torch::Tensor& points);
  const InfoNceOptions& options() const { return opts_; }

  ProjectionHead img{nullptr}, pts{nullptr};

 private:
  InfoNceOptions opts_;
};
TORCH_MODULE(BevDistillInfoNce);

// ---- §11.8 a CenterHead student's "queries" --------------------------------------------------

// The K cells of a CenterHead student that play the reference's decoder queries (one "layer"):
// per sample the K cells of highest max-over-classes sigmoid score (descending; K clamped to H·W).
// At each cell: the class logits of all classes in label order (a class in no task gets
// kAbsentClassLogit), and the box decoded there by the task of the cell's best class, in
// bevdistill_box_code's layout — differentiable w.r.t. the head's regression outputs:
//   x = x_min + (col + reg_x)·dx, y = y_min + (row + reg_y)·dy, log l, log w = dim[0], dim[1],
//   z = height, log h = dim[2], sin, cos = rot, vx, vy = vel (0 without velocity).
// points: the decoded (x, y) mapped to grid_sample coordinates of the grid's x-y range
// (−1 at x_min / y_min, +1 at x_max / y_max; align_corners = false), detached.
struct CenterHeadQueries {
  torch::Tensor cls_logits;  // [1, B, K, num_classes]
  torch::Tensor bbox_preds;  // [1, B, K, 10]
  torch::Tensor points;      // [1, B, K, 2]
  torch::Tensor cells;       // [B, K] int64 row * W + col
};
inline constexpr double kAbsentClassLogit = -20.0;

CenterHeadQueries centerhead_queries(const std::vector<core::nn::TaskPrediction>& preds,
                                     const std::vector<core::nn::TaskClasses>& tasks, const BevGrid& grid, int64_t k,
                                     int num_classes = 10);

}  // namespace bevkd::train::losses

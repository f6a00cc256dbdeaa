#include "train/losses/bevdistill.h"

#include <torch/nn/functional/normalization.h>

#include <algorithm>
#include <cmath>

#include "base/error.h"

namespace bevkd::train::losses {

namespace {

std::string shape_of(const torch::Tensor& t) { return t.defined() ? cat(t.sizes()) : std::string("undefined"); }

// num / den, or num (which is then 0) when den == 0: no NaN and no device sync.
torch::Tensor safe_ratio(const torch::Tensor& num, const torch::Tensor& den) {
  return num / torch::where(den != 0, den, torch::ones_like(den));
}

}  // namespace

// ---- §3.1 --------------------------------------------------------------------------------------

torch::Tensor bevdistill_dense_unweighted(const torch::Tensor& s, const torch::Tensor& t, const torch::Tensor& fg) {
  BEVKD_CHECK(s.defined() && s.dim() == 4 && s.is_floating_point(),
              "bevdistill_dense: student features must be [B, C, H, W] float, found ", shape_of(s));
  BEVKD_CHECK(t.defined() && t.sizes() == s.sizes() && t.scalar_type() == s.scalar_type(),
              "bevdistill_dense: teacher features ", shape_of(t), " must match the student's ", s.sizes(), " (dtype ",
              s.scalar_type(), ")");
  BEVKD_CHECK(
      fg.defined() && fg.dim() == 3 && fg.size(0) == s.size(0) && fg.size(1) == s.size(2) && fg.size(2) == s.size(3),
      "bevdistill_dense: fg map ", shape_of(fg), " must be [B, H, W] = [", s.size(0), ", ", s.size(2), ", ", s.size(3),
      "]");
  const torch::Tensor f = fg.detach().to(s.scalar_type()).unsqueeze(1);
  const torch::Tensor num = ((s - t.detach()).pow(2) * f).sum();
  return safe_ratio(num, f.sum());
}

torch::Tensor bevdistill_dense(const torch::Tensor& s, const torch::Tensor& t, const torch::Tensor& fg,
                               double loss_weight) {
  return loss_weight * bevdistill_dense_unweighted(s, t, fg);
}

// ---- §3.2 --------------------------------------------------------------------------------------

torch::Tensor bevdistill_box_code(const torch::Tensor& boxes) {
  BEVKD_CHECK(boxes.defined() && boxes.dim() == 2 && boxes.size(1) == 9 && boxes.is_floating_point(),
              "bevdistill_box_code: boxes must be [K, 9] float (x, y, z, l, w, h, yaw, vx, vy), found ",
              shape_of(boxes));
  const torch::Tensor b = boxes.detach();
  const torch::Tensor yaw = b.select(1, 6);
  return torch::stack({b.select(1, 0), b.select(1, 1), b.select(1, 3).log(), b.select(1, 4).log(), b.select(1, 2),
                       b.select(1, 5).log(), yaw.sin(), yaw.cos(), b.select(1, 7), b.select(1, 8)},
                      1);
}

torch::Tensor bevdistill_max_prob_score(const torch::Tensor& probs) {
  BEVKD_CHECK(probs.defined() && probs.dim() == 2, "bevdistill_max_prob_score: probs must be [K, Ncls], found ",
              shape_of(probs));
  if (probs.size(0) == 0) return probs.new_zeros({0});
  BEVKD_CHECK(probs.size(1) >= 1, "bevdistill_max_prob_score: probs have no class column");
  return std::get<0>(probs.detach().max(1));
}

BoxDistillResult bevdistill_box_distill(const torch::Tensor& cls_logits, const torch::Tensor& bbox_preds,
                                        const std::vector<BoxDistillTeacher>& teacher, const BoxDistillOptions& opts) {
  const char* op = "bevdistill_box_distill";
  BEVKD_CHECK(
      bbox_preds.defined() && bbox_preds.dim() == 4 && bbox_preds.size(3) == 10 && bbox_preds.is_floating_point(), op,
      ": bbox_preds must be [L, B, Q, 10] float, found ", shape_of(bbox_preds));
  const int64_t L = bbox_preds.size(0), B = bbox_preds.size(1), Q = bbox_preds.size(2);
  BEVKD_CHECK(cls_logits.defined() && cls_logits.dim() == 4 && cls_logits.size(0) == L && cls_logits.size(1) == B &&
                  cls_logits.size(2) == Q && cls_logits.is_floating_point(),
              op, ": cls_logits must be [L, B, Q, Ncls] = [", L, ", ", B, ", ", Q, ", Ncls] float, found ",
              shape_of(cls_logits));
  const int64_t C = cls_logits.size(3);
  BEVKD_CHECK(static_cast<int64_t>(teacher.size()) == B, op, ": ", teacher.size(), " teacher samples for a batch of ",
              B);
  const auto dtype = bbox_preds.scalar_type();
  const auto dev = bbox_preds.device();

  // Teacher rows that can be matched: finite code, probabilities and score.
  struct Rows {
    torch::Tensor keep;         // [Kv] int64 indices into the given rows
    torch::Tensor code, score;  // [Kv, 10], [Kv] in dtype
    torch::Tensor probs_f32;    // [Kv, Ncls] float32, for the cost
    torch::Tensor code_f32;     // [Kv, 10] float32, for the cost
  };
  std::vector<Rows> rows(B);
  for (int64_t b = 0; b < B; ++b) {
    const BoxDistillTeacher& t = teacher[b];
    BEVKD_CHECK(t.code.defined() && t.code.dim() == 2 && t.code.size(1) == 10, op, ": teacher sample ", b,
                ": code must be [K, 10], found ", shape_of(t.code));
    const int64_t K = t.code.size(0);
    BEVKD_CHECK(t.probs.defined() && t.probs.dim() == 2 && t.probs.size(0) == K && t.probs.size(1) == C, op,
                ": teacher sample ", b, ": probs must be [K, Ncls] = [", K, ", ", C, "], found ", shape_of(t.probs));
    BEVKD_CHECK(t.score.defined() && t.score.dim() == 1 && t.score.size(0) == K, op, ": teacher sample ", b,
                ": score must be [K] = [", K, "], found ", shape_of(t.score));
    const torch::Tensor code = t.code.detach().to(dev, dtype), probs = t.probs.detach().to(dev, dtype),
                        score = t.score.detach().to(dev, dtype);
    const torch::Tensor finite = torch::isfinite(code).all(1) & torch::isfinite(probs).all(1) & torch::isfinite(score);
    Rows& r = rows[b];
    r.keep = finite.nonzero().view({-1});
    r.code = code.index_select(0, r.keep);
    r.score = score.index_select(0, r.keep);
    r.probs_f32 = probs.index_select(0, r.keep).to(torch::kFloat32);
    r.code_f32 = r.code.to(torch::kFloat32);
  }
  torch::Tensor cw = torch::tensor(std::vector<double>(opts.code_weights.begin(), opts.code_weights.end()),
                                   torch::TensorOptions().dtype(dtype).device(dev));

  BoxDistillResult out;
  out.matches.assign(L, std::vector<core::nn::Assignment>(B));
  for (int64_t l = 0; l < L; ++l) {
    std::vector<torch::Tensor> flat_idx, target, score;
    for (int64_t b = 0; b < B; ++b) {
      const Rows& r = rows[b];
      const int64_t Kv = r.keep.size(0);
      core::nn::Assignment a;
      if (Q > 0 && Kv > 0) {
        torch::NoGradGuard no_grad;
        const torch::Tensor x = cls_logits[l][b].detach().to(torch::kFloat32);  // [Q, Ncls]
        const torch::Tensor p = bbox_preds[l][b].detach().to(torch::kFloat32);  // [Q, 10]
        const torch::Tensor cls_cost =
            torch::softplus(-x).matmul(r.probs_f32.t()) + torch::softplus(x).matmul((1 - r.probs_f32).t());
        const torch::Tensor reg_cost =
            torch::cdist(p.slice(1, 0, 8).contiguous(), r.code_f32.slice(1, 0, 8).contiguous(), 1.0);
        const torch::Tensor cost =
            (static_cast<float>(opts.cls_cost_weight) * cls_cost + static_cast<float>(opts.reg_cost_weight) * reg_cost)
                .to(torch::kCPU, torch::kFloat64)
                .contiguous();
        a = core::nn::linear_sum_assignment(cost.data_ptr<double>(), Q, Kv,
                                            cat(op, ": layer ", l, " sample ", b, " matching cost"));
      }
      // a.cols index the kept rows; the result reports the teacher rows as given.
      const std::vector<int64_t> kept_pos = a.cols;
      const torch::Tensor keep_cpu = r.keep.to(torch::kCPU);
      for (auto& c : a.cols) c = keep_cpu.data_ptr<int64_t>()[c];
      if (!a.rows.empty()) {
        const auto i64 = torch::TensorOptions().dtype(torch::kInt64);
        const torch::Tensor q = torch::tensor(a.rows, i64).to(dev);
        const torch::Tensor k = torch::tensor(kept_pos, i64).to(dev);
        flat_idx.push_back(q + b * Q);
        target.push_back(r.code.index_select(0, k));
        score.push_back(r.score.index_select(0, k));
      }
      out.matches[l][b] = std::move(a);
    }
    const torch::Tensor preds_l = bbox_preds[l].reshape({B * Q, 10});
    const auto i64 = torch::TensorOptions().dtype(torch::kInt64).device(dev);
    const torch::Tensor idx = flat_idx.empty() ? torch::zeros({0}, i64) : torch::cat(flat_idx);
    const torch::Tensor tgt = target.empty() ? torch::zeros({0, 10}, preds_l.options()) : torch::cat(target);
    const torch::Tensor s = score.empty() ? torch::zeros({0}, preds_l.options()) : torch::cat(score);
    const torch::Tensor pred = preds_l.index_select(0, idx);  // [n, 10], keeps the graph when n = 0
    const torch::Tensor num = ((s * s).unsqueeze(1) * cw * (pred - tgt).abs()).sum();
    out.layer.push_back(opts.loss_weight * safe_ratio(num, s.sum()));
  }
  out.total = out.layer.empty() ? (bbox_preds.sum() * 0) : torch::stack(out.layer).sum();
  return out;
}

// ---- §3.3 --------------------------------------------------------------------------------------

torch::Tensor bevdistill_sample_points(const torch::Tensor& bev, const torch::Tensor& points) {
  BEVKD_CHECK(bev.defined() && bev.dim() == 4 && bev.is_floating_point(),
              "bevdistill_sample_points: BEV map must be [B, C, H, W] float, found ", shape_of(bev));
  BEVKD_CHECK(points.defined() && points.dim() == 4 && points.size(1) == bev.size(0) && points.size(3) == 2,
              "bevdistill_sample_points: points must be [L, B, Q, 2] with B = ", bev.size(0), ", found ",
              shape_of(points));
  const int64_t C = bev.size(1);
  const torch::Tensor grid = points.detach().to(bev.scalar_type()).permute({1, 0, 2, 3});  // [B, L, Q, 2]
  // interpolation 0 = bilinear, padding 0 = zeros, align_corners = false
  const torch::Tensor sampled = torch::grid_sampler(bev, grid, 0, 0, false);  // [B, C, L, Q]
  return sampled.permute({0, 2, 3, 1}).reshape({-1, C});
}

torch::Tensor infonce_loss(const torch::Tensor& e_t, const torch::Tensor& e_s, double temperature) {
  BEVKD_CHECK(e_t.defined() && e_s.defined() && e_t.dim() == 2 && e_t.sizes() == e_s.sizes(),
              "infonce_loss: embeddings must both be [N, M], found ", shape_of(e_t), " and ", shape_of(e_s));
  BEVKD_CHECK(temperature > 0, "infonce_loss: temperature must be positive, found ", temperature);
  if (e_t.size(0) == 0) return (e_t.sum() + e_s.sum()) * 0;
  const torch::Tensor logits = e_t.matmul(e_s.t()) / temperature;  // [N, N], rows = teacher samples
  return -torch::log_softmax(logits, 1).diagonal().mean();
}

ProjectionHeadImpl::ProjectionHeadImpl(int64_t in_channels, int64_t mid_channels) {
  BEVKD_CHECK(in_channels >= 1 && mid_channels >= 1, "projection head: channels must be positive, found ", in_channels,
              " -> ", mid_channels);
  proj = register_module("proj", torch::nn::Linear(in_channels, mid_channels));
  enc1 = register_module("enc1", torch::nn::Linear(mid_channels, mid_channels));
  bn = register_module("bn", torch::nn::BatchNorm1d(torch::nn::BatchNorm1dOptions(mid_channels).eps(1e-5)));
  enc2 = register_module("enc2", torch::nn::Linear(mid_channels, mid_channels));
}

torch::Tensor ProjectionHeadImpl::forward(const torch::Tensor& x) {
  const torch::Tensor h = enc2->forward(torch::relu(bn->forward(enc1->forward(proj->forward(x)))));
  return torch::nn::functional::normalize(h, torch::nn::functional::NormalizeFuncOptions().p(2).dim(1).eps(1e-12));
}

BevDistillInfoNceImpl::BevDistillInfoNceImpl(InfoNceOptions opts) : opts_(opts) {
  BEVKD_CHECK(opts_.temperature > 0, "BEVDistill InfoNCE: temperature must be positive, found ", opts_.temperature);
  img = register_module("img", ProjectionHead(opts_.student_channels, opts_.mid_channels));
  pts = register_module("pts", ProjectionHead(opts_.teacher_channels, opts_.mid_channels));
}

torch::Tensor BevDistillInfoNceImpl::forward(const torch::Tensor& s_bev, const torch::Tensor& t_bev,
                                             const torch::Tensor& points) {
  BEVKD_CHECK(s_bev.defined() && s_bev.dim() == 4 && s_bev.size(1) == opts_.student_channels,
              "BEVDistill InfoNCE: student map must be [B, ", opts_.student_channels, ", H, W], found ",
              shape_of(s_bev));
  BEVKD_CHECK(
      t_bev.defined() && t_bev.dim() == 4 && t_bev.size(1) == opts_.teacher_channels && t_bev.size(0) == s_bev.size(0),
      "BEVDistill InfoNCE: teacher map must be [B, ", opts_.teacher_channels, ", H, W] with B = ", s_bev.size(0),
      ", found ", shape_of(t_bev));
  const torch::Tensor s = bevdistill_sample_points(s_bev, points);
  const torch::Tensor t = bevdistill_sample_points(t_bev.detach(), points);
  // One sample has nothing to contrast (its CE is log 1 = 0), and BN1d cannot normalise it.
  if (s.size(0) <= 1) return s.sum() * 0;
  return infonce_loss(pts->forward(t), img->forward(s), opts_.temperature);
}

// ---- §11.8 -----------------------------------------------------------------------------------

CenterHeadQueries centerhead_queries(const std::vector<core::nn::TaskPrediction>& preds,
                                     const std::vector<core::nn::TaskClasses>& tasks, const BevGrid& grid, int64_t k,
                                     int num_classes) {
  BEVKD_CHECK(!preds.empty() && preds.size() == tasks.size(), "centerhead_queries: ", preds.size(),
              " task predictions for ", tasks.size(), " tasks");
  BEVKD_CHECK(k >= 1, "centerhead_queries: K = ", k, ", expected >= 1");
  const auto& p0 = preds[0].heatmap;
  const int64_t B = p0.size(0), H = p0.size(2), W = p0.size(3);
  BEVKD_CHECK(grid.H == H && grid.W == W, "centerhead_queries: the head's maps are ", H, " x ", W, " but the grid ",
              grid.describe(), " has ", grid.H, " x ", grid.W, " cells");
  const auto opts = p0.options();
  // Logits in label order, and for every class the task that predicts it.
  auto logits = torch::full({B, num_classes, H, W}, kAbsentClassLogit, opts);
  std::vector<int64_t> task_of(static_cast<std::size_t>(num_classes), -1);
  for (std::size_t t = 0; t < tasks.size(); ++t)
    for (std::size_t c = 0; c < tasks[t].size(); ++c) {
      const int label = tasks[t][c];
      BEVKD_CHECK(label >= 0 && label < num_classes, "centerhead_queries: task ", t, " holds label ", label,
                  " outside [0, ", num_classes, ")");
      logits.select(1, label).copy_(preds[t].heatmap.select(1, static_cast<int64_t>(c)));
      task_of[static_cast<std::size_t>(label)] = static_cast<int64_t>(t);
    }
  const int64_t K = std::min(k, H * W);
  torch::Tensor cells, best;
  {
    torch::NoGradGuard ng;
    const auto flat = logits.detach().flatten(2);         // [B, C, HW]
    const auto [cell_max, cell_cls] = flat.max(1);        // [B, HW]
    const auto top = cell_max.topk(K, 1, true, true);     // sigmoid is monotone
    cells = std::get<1>(top);                              // [B, K]
    best = cell_cls.gather(1, cells);                      // [B, K] label of the best class
  }
  auto gather_cells = [&](const torch::Tensor& m) {  // [B, C, H, W] -> [B, K, C]
    const auto flat = m.flatten(2);
    return flat.gather(2, cells.unsqueeze(1).expand({B, flat.size(1), K})).transpose(1, 2);
  };
  const auto cls_logits = gather_cells(logits);  // gradient flows (the loss does not use it)
  // Boxes decoded by each cell's task: decode every task at all K cells, then pick per cell.
  const auto rows = torch::div(cells, W, "floor").to(opts.dtype());
  const auto cols = torch::remainder(cells, W).to(opts.dtype());
  std::vector<torch::Tensor> per_task;
  for (const auto& p : preds) {
    const auto reg = gather_cells(p.reg), hgt = gather_cells(p.height), dim = gather_cells(p.dim),
               rot = gather_cells(p.rot);
    const auto vel = p.vel.defined() ? gather_cells(p.vel) : torch::zeros({B, K, 2}, opts);
    const auto x = (cols + reg.select(2, 0)) * grid.dx + grid.x_min();
    const auto y = (rows + reg.select(2, 1)) * grid.dy + grid.y_min();
    per_task.push_back(torch::stack({x, y, dim.select(2, 0), dim.select(2, 1), hgt.select(2, 0), dim.select(2, 2),
                                     rot.select(2, 0), rot.select(2, 1), vel.select(2, 0), vel.select(2, 1)},
                                    2));  // [B, K, 10]
  }
  torch::Tensor code;
  if (per_task.size() == 1) {
    code = per_task[0];
  } else {
    auto lut = torch::tensor(task_of, torch::kInt64).to(cells.device());
    const auto task_idx = lut.index({best});  // [B, K]
    const auto all = torch::stack(per_task, 0);  // [T, B, K, 10]
    code = all.gather(0, task_idx.unsqueeze(0).unsqueeze(-1).expand({1, B, K, 10})).squeeze(0);
  }
  CenterHeadQueries q;
  q.cls_logits = cls_logits.unsqueeze(0);
  q.bbox_preds = code.unsqueeze(0);
  const auto xy = code.detach().slice(2, 0, 2);
  const auto px = (xy.select(2, 0) - grid.x_min()) / (grid.x_max() - grid.x_min()) * 2 - 1;
  const auto py = (xy.select(2, 1) - grid.y_min()) / (grid.y_max() - grid.y_min()) * 2 - 1;
  q.points = torch::stack({px, py}, 2).unsqueeze(0);
  q.cells = cells;
  return q;
}

}  // namespace bevkd::train::losses

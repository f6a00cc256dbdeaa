// Probe entries of spec/loss_probe.md for §2 (gaussian_fg_map) and BEVDistill §3.1-§3.3.
#include <torch/torch.h>

#include "train/losses/bevdistill.h"
#include "train/losses/gaussian_fg.h"
#include "train/probe/entries.h"
#include "train/probe/entry_util.h"

namespace bevkd::train::probe {
namespace {

using P = ParamSpec;

ProbeEntry gaussian_fg_map_entry() {
  ProbeEntry e;
  e.name = "gaussian_fg_map";
  e.section = "§2";
  e.summary = "mmdet3d's Gaussian heat map of one sample's boxes";
  e.inputs = {InputSpec::floating("boxes", {"K", "9"}, "one sample's boxes")};
  e.params = {P::required("H", "map rows (y)"),
              P::required("W", "map columns (x)"),
              P::required("pc_min_xy", "[x_min, y_min] (m)"),
              P::required("voxel_xy", "[voxel_x, voxel_y] (m)"),
              P::required("out_size_factor", "map stride in voxels"),
              P::required("min_radius", "1 in BEVDistill, 2 in CenterPoint/FocalDistiller"),
              P::with_default("min_overlap", 0.1)};
  e.values = {"fg_sum"};
  e.debug_files = {"fg_map", "radius_per_box"};
  e.run = [](const ProbeContext& c) {
    const Params& p = c.params;
    const int64_t H = integer_at_least(p, "H", 1), W = integer_at_least(p, "W", 1);
    const std::vector<double> pc_min = finite_numbers(p, "pc_min_xy", 2, 2);
    const auto voxel = positive_xy(p, "voxel_xy");
    kernels::GaussianOptions g;
    g.out_size_factor = integer_at_least(p, "out_size_factor", 1);
    g.grid = losses::heat_map_grid(pc_min[0], pc_min[1], voxel[0], voxel[1], g.out_size_factor, H, W);
    g.min_radius = integer_at_least(p, "min_radius", 0);
    g.min_overlap = number_in(p, "min_overlap", 0, 1, true);

    const losses::FgMap m = losses::gaussian_fg_map(v017_boxes_to_bevkd(c.in.tensor("boxes")), g);
    ProbeOutput out;
    out.value("fg_sum", m.map.to(torch::kFloat64).sum());
    if (c.want_debug) {
      out.array("fg_map", m.map.to(torch::kFloat64));
      out.array("radius_per_box", m.radius);
    }
    return out;
  };
  return e;
}

ProbeEntry bevdistill_dense_entry() {
  ProbeEntry e;
  e.name = "bevdistill_dense";
  e.section = "§3.1";
  e.summary = "BEVDistill dense foreground-guided feature distillation";
  e.inputs = {InputSpec::floating("s_feat", {"B", "C", "H", "W"}, "student features S").with_grad(),
              InputSpec::floating("t_feat", {"B", "C", "H", "W"}, "teacher features T"),
              InputSpec::floating("fg_map", {"B", "H", "W"}, "fg; else drawn from boxes_b*").optional(),
              InputSpec::floating("boxes", {"K_b", "9"}, "GT boxes, drawn with stride 8").sample_wise().optional()};
  e.one_of = {{"fg_map", "boxes"}};
  e.params = {P::with_default("loss_weight", 0.01),
              P::with_default("grid_size", {1024, 1024}, "[nx, ny]; (ny/8, nx/8) must equal (H, W)"),
              P::with_default("voxel_size", {0.1, 0.1}),
              P::with_default("pc_range", {-51.2, -51.2, -5, 51.2, 51.2, 3}),
              P::with_default("min_overlap", 0.1),
              P::with_default("min_radius", 1)};
  e.values = {"bev_fit_loss_unweighted", "bev_fit_loss"};
  e.grads = {"grad_s_feat"};
  e.run = [](const ProbeContext& c) {
    const Params& p = c.params;
    const double weight = p.number("loss_weight");
    const std::vector<int64_t> grid = p.integers("grid_size", 2, 3);
    const auto voxel = positive_xy(p, "voxel_size");
    const std::vector<double> pc_range = finite_numbers(p, "pc_range", 6, 6);
    const double min_overlap = number_in(p, "min_overlap", 0, 1, true);
    const int64_t min_radius = integer_at_least(p, "min_radius", 0);
    const int64_t H = c.in.size("H"), W = c.in.size("W");

    torch::Tensor fg;
    if (c.in.has("fg_map")) {
      fg = c.in.tensor("fg_map");
    } else {
      // get_bev_fit_loss's hard-coded stride 8 on grid_size (spec §3.1).
      const int64_t nx = grid[0], ny = grid[1];
      if (nx <= 0 || ny <= 0 || ny / 8 != H || nx / 8 != W)
        p.refuse("grid_size", cat("(ny/8, nx/8) = (", ny / 8, ", ", nx / 8, ") must equal the features' (H, W) = (", H,
                                  ", ", W, ")"));
      kernels::GaussianOptions g;
      g.out_size_factor = 8;
      g.grid = losses::heat_map_grid(pc_range[0], pc_range[1], voxel[0], voxel[1], g.out_size_factor, H, W);
      g.min_radius = min_radius;
      g.min_overlap = min_overlap;
      fg = losses::gaussian_fg_maps(bevkd_boxes(c.in.samples("boxes")), g);
    }
    const torch::Tensor unweighted =
        losses::bevdistill_dense_unweighted(c.in.tensor("s_feat"), c.in.tensor("t_feat"), fg);
    const torch::Tensor loss = weight * unweighted;
    ProbeOutput out;
    out.value("bev_fit_loss_unweighted", unweighted);
    out.value("bev_fit_loss", loss);
    if (c.want_grad) out.grad("grad_s_feat", c.in.grad_of(loss, "s_feat"));
    return out;
  };
  return e;
}

ProbeEntry bevdistill_box_distill_entry() {
  ProbeEntry e;
  e.name = "bevdistill_box_distill";
  e.section = "§3.2";
  e.summary = "BEVDistill sparse instance distillation (Hungarian-matched, s²-weighted L1)";
  e.inputs = {
      InputSpec::floating("cls_logits", {"L", "B", "Q", "Ncls"}, "student class logits (matching cost only)"),
      InputSpec::floating("bbox_preds", {"L", "B", "Q", "10"}, "(x, y, log w, log l, z, log h, sin, cos, vx, vy)")
          .with_grad(),
      InputSpec::floating("t_boxes", {"K_b", "9"}, "teacher boxes x, y, z, w, l, h, yaw, vx, vy").sample_wise(),
      InputSpec::floating("t_scores", {"K_b", "Ncls"}, "teacher class probabilities t_k").sample_wise()};
  e.params = {P::with_default("loss_weight_l1", 0.25),
              P::with_default("code_weights", {1, 1, 1, 1, 1, 1, 1, 1, 0.2, 0.2}),
              P::with_default("cls_cost_weight", 1),
              P::with_default("reg_cost_weight", 0.25),
              P::with_default("loss_cls_distill_weight", 0, "0 only"),
              P::with_default("loss_iou_distill_weight", 0, "0 only"),
              P::with_default("score_reweight", true, "true only"),
              P::ignored_key("teacher_topk_in_release")};
  e.values = {"loss_bbox_distill_total", "layer{l}"};
  e.grads = {"grad_bbox_preds"};
  e.debug_files = {"match_l{l}_b{b}"};
  e.run = [](const ProbeContext& c) {
    const Params& p = c.params;
    require_number(p, "loss_cls_distill_weight", 0);
    require_number(p, "loss_iou_distill_weight", 0);
    require_bool(p, "score_reweight", true);
    losses::BoxDistillOptions o;
    o.loss_weight = p.number("loss_weight_l1");
    const std::vector<double> cw = p.numbers("code_weights", 10, 10);
    std::array<double, 10> cw_v017{};
    std::copy(cw.begin(), cw.end(), cw_v017.begin());
    o.code_weights = v017_code_weights_to_bevkd(cw_v017);
    o.cls_cost_weight = p.number("cls_cost_weight");
    o.reg_cost_weight = p.number("reg_cost_weight");

    const auto& boxes = c.in.samples("t_boxes");
    const auto& scores = c.in.samples("t_scores");
    std::vector<losses::BoxDistillTeacher> teacher;
    for (size_t b = 0; b < boxes.size(); ++b) {
      losses::BoxDistillTeacher t;
      t.code = losses::bevdistill_box_code(v017_boxes_to_bevkd(boxes[b]));
      t.probs = scores[b];
      t.score = losses::bevdistill_max_prob_score(scores[b]);
      teacher.push_back(t);
    }
    // The student's codes in bevkd's layout; the gradient flows back to the v0.17 layout.
    const torch::Tensor preds = v017_box_code_to_bevkd(c.in.tensor("bbox_preds"));
    const losses::BoxDistillResult r = losses::bevdistill_box_distill(c.in.tensor("cls_logits"), preds, teacher, o);

    ProbeOutput out;
    out.value("loss_bbox_distill_total", r.total);
    for (size_t l = 0; l < r.layer.size(); ++l) out.value(cat("layer", l), r.layer[l]);
    if (c.want_grad) out.grad("grad_bbox_preds", c.in.grad_of(r.total, "bbox_preds"));
    if (c.want_debug)
      for (size_t l = 0; l < r.matches.size(); ++l)
        for (size_t b = 0; b < r.matches[l].size(); ++b) {
          const core::nn::Assignment& a = r.matches[l][b];
          torch::Tensor m = torch::empty({static_cast<int64_t>(a.rows.size()), 2}, torch::kInt64);
          for (size_t i = 0; i < a.rows.size(); ++i) {
            m[i][0] = a.rows[i];
            m[i][1] = a.cols[i];
          }
          out.array(cat("match_l", l, "_b", b), m);
        }
    return out;
  };
  return e;
}

// The inputs of one MoCoCLHead projection head, prefix "img_" (student) or "pts_" (teacher).
std::vector<InputSpec> head_inputs(const std::string& prefix) {
  return {InputSpec::floating(prefix + "proj_w", {"M", "C"}), InputSpec::floating(prefix + "proj_b", {"M"}),
          InputSpec::floating(prefix + "enc1_w", {"M", "M"}), InputSpec::floating(prefix + "enc1_b", {"M"}),
          InputSpec::floating(prefix + "bn_g", {"M"}),        InputSpec::floating(prefix + "bn_b", {"M"}),
          InputSpec::floating(prefix + "enc2_w", {"M", "M"}), InputSpec::floating(prefix + "enc2_b", {"M"})};
}

void load_head(losses::ProjectionHead& h, const ProbeInputs& in, const std::string& prefix) {
  torch::NoGradGuard no_grad;
  h->proj->weight.copy_(in.tensor(prefix + "proj_w"));
  h->proj->bias.copy_(in.tensor(prefix + "proj_b"));
  h->enc1->weight.copy_(in.tensor(prefix + "enc1_w"));
  h->enc1->bias.copy_(in.tensor(prefix + "enc1_b"));
  h->bn->weight.copy_(in.tensor(prefix + "bn_g"));
  h->bn->bias.copy_(in.tensor(prefix + "bn_b"));
  h->enc2->weight.copy_(in.tensor(prefix + "enc2_w"));
  h->enc2->bias.copy_(in.tensor(prefix + "enc2_b"));
}

ProbeEntry bevdistill_infonce_entry() {
  ProbeEntry e;
  e.name = "bevdistill_infonce";
  e.section = "§3.3";
  e.summary = "BEVDistill instance-level InfoNCE (MoCoCLHead, one direction)";
  e.inputs = {InputSpec::floating("s_bev", {"B", "C", "H", "W"}, "student raw BEV map").with_grad(),
              InputSpec::floating("t_bev", {"B", "C", "H", "W"}, "teacher raw BEV map"),
              InputSpec::floating("sampling_points", {"L", "B", "Q", "2"}, "(x, y) in [-1, 1]")};
  for (const std::string prefix : {"img_", "pts_"})
    for (InputSpec& s : head_inputs(prefix)) e.inputs.push_back(s);
  e.params = {P::with_default("temperature", 0.07), P::with_default("loss_weight", 0.2),
              P::derived("mid_channels", "M, taken from the weights"), P::with_default("proj_num", 1, "1 only"),
              P::ignored_key("bn")};
  e.values = {"relation_distill_loss_unweighted", "relation_distill_loss"};
  e.grads = {"grad_s_bev"};
  e.run = [](const ProbeContext& c) {
    const Params& p = c.params;
    const int64_t M = c.in.size("M"), C = c.in.size("C");
    if (p.has_value("mid_channels") && p.integer("mid_channels") != M)
      p.refuse("mid_channels", cat("the weights give M = ", M));
    if (p.integer("proj_num") != 1) p.refuse("proj_num", "1 only");
    losses::InfoNceOptions o;
    o.student_channels = o.teacher_channels = C;
    o.mid_channels = M;
    o.temperature = number_in(p, "temperature", 0, 1e30, true);
    o.loss_weight = p.number("loss_weight");
    losses::BevDistillInfoNce m(o);
    m->to(c.in.dtype());
    m->train();
    load_head(m->img, c.in, "img_");
    load_head(m->pts, c.in, "pts_");
    const torch::Tensor unweighted =
        m->forward(c.in.tensor("s_bev"), c.in.tensor("t_bev"), c.in.tensor("sampling_points"));
    const torch::Tensor loss = o.loss_weight * unweighted;
    ProbeOutput out;
    out.value("relation_distill_loss_unweighted", unweighted);
    out.value("relation_distill_loss", loss);
    if (c.want_grad) out.grad("grad_s_bev", c.in.grad_of(loss, "s_bev"));
    return out;
  };
  return e;
}

}  // namespace

void register_bevdistill_probes(Registry& r) {
  r.add(gaussian_fg_map_entry());
  r.add(bevdistill_dense_entry());
  r.add(bevdistill_box_distill_entry());
  r.add(bevdistill_infonce_entry());
}

}  // namespace bevkd::train::probe

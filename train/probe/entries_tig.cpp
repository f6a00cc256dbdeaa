// Probe entries of spec/loss_probe.md for TiG-BEV §4.1 (tig_inner_depth) and §4.2
// (tig_inner_feature).
#include <torch/torch.h>

#include "train/losses/tig_bev.h"
#include "train/probe/entries.h"
#include "train/probe/entry_util.h"

namespace bevkd::train::probe {
namespace {

using P = ParamSpec;

// A finite number parameter (refused otherwise).
double finite_number(const Params& p, const std::string& key) {
  const double v = p.number(key);
  if (!std::isfinite(v)) p.refuse(key, "expected a finite number");
  return v;
}

ProbeEntry tig_inner_depth_entry() {
  ProbeEntry e;
  e.name = "tig_inner_depth";
  e.section = "§4.1";
  e.summary = "TiG-BEV inner-depth supervision (relative depth to each box's best pixel)";
  e.inputs = {InputSpec::floating("depth_logits", {"B*N", "D", "h", "w"}, "depth-net logits").with_grad(),
              InputSpec::floating("depth_gt", {"B", "N", "h", "w"}, "LiDAR depth (m), 0 = no point"),
              InputSpec::int64("fg_gt", {"B", "N", "h", "w"}, "0 = background, k = 1-based box id")};
  e.params = {P::with_default("dbound", {1, 60, 1}, "[start, stop, step): the bins are arange(dbound) start values"),
              P::derived("D", "the bin count; must equal that of dbound"), P::with_default("inner_depth_weight", 1),
              P::ignored_key("downsample")};
  e.values = {"loss_inner_depth"};
  e.grads = {"grad_depth_logits"};
  e.validate = [](const ProbeInputs& in, const Params& p) {
    const std::vector<double> db = finite_numbers(p, "dbound", 3, 3);
    if (!(db[2] > 0 && db[1] > db[0])) p.refuse("dbound", "expected [start, stop, step) with start < stop, step > 0");
    losses::TigInnerDepthOptions o;
    o.dbound = {db[0], db[1], db[2]};
    const int64_t bins = o.num_bins();
    if (p.has_value("D") && p.integer("D") != bins) p.refuse("D", cat("dbound gives ", bins, " bins"));
    BEVKD_PROBE_CHECK(in.size("D") == bins, "input depth_logits: shape [", in.size("B") * in.size("N"), ",",
                      in.size("D"), ",", in.size("h"), ",", in.size("w"), "], expected D = ", bins,
                      " depth bins (dbound [", db[0], ", ", db[1], ", ", db[2], "])");
    BEVKD_PROBE_CHECK(in.tensor("fg_gt").numel() == 0 || in.tensor("fg_gt").min().item<int64_t>() >= 0,
                      "input fg_gt: holds a negative box id, expected 0 (background) or 1-based box ids");
  };
  e.run = [](const ProbeContext& c) {
    const std::vector<double> db = c.params.numbers("dbound", 3, 3);
    losses::TigInnerDepthOptions o;
    o.dbound = {db[0], db[1], db[2]};
    o.weight = finite_number(c.params, "inner_depth_weight");
    const torch::Tensor loss =
        losses::tig_inner_depth_loss(c.in.tensor("depth_logits"), c.in.tensor("depth_gt"), c.in.tensor("fg_gt"), o);
    ProbeOutput out;
    out.value("loss_inner_depth", loss);
    if (c.want_grad) out.grad("grad_depth_logits", c.in.grad_of(loss, "depth_logits"));
    return out;
  };
  return e;
}

// The LSS grid of the reference's key-point normalisation, from params.json.
losses::LssGridParams lss_params(const Params& p) {
  losses::LssGridParams lss;
  const std::vector<double> bx = finite_numbers(p, "lss_grid_bx", 2, 3);
  const auto dx = positive_xy(p, "lss_grid_dx");
  const std::vector<int64_t> nx = p.integers("lss_grid_nx", 2, 3);
  if (nx[0] < 2 || nx[1] < 2)
    p.refuse("lss_grid_nx", "expected at least 2 cells per axis (the grid divides by nx - 1)");
  lss.bx = {bx[0], bx[1]};
  lss.dx = dx;
  lss.nx = {nx[0], nx[1]};
  return lss;
}

// The grid of a map of H x W cells over the LSS grid's range (x from bx - dx/2 over nx cells of dx).
BevGrid map_grid(const losses::LssGridParams& lss, int64_t H, int64_t W) {
  const double x0 = lss.bx[0] - lss.dx[0] / 2, y0 = lss.bx[1] - lss.dx[1] / 2;
  const double x1 = x0 + static_cast<double>(lss.nx[0]) * lss.dx[0],
               y1 = y0 + static_cast<double>(lss.nx[1]) * lss.dx[1];
  return BevGrid::make({x0, y0, 0.0, x1, y1, 1.0}, (x1 - x0) / static_cast<double>(W),
                       (y1 - y0) / static_cast<double>(H), "tig_inner_feature map grid");
}

ProbeEntry tig_inner_feature_entry() {
  ProbeEntry e;
  e.name = "tig_inner_feature";
  e.section = "§4.2";
  e.summary = "TiG-BEV inner-keypoint and inner-channel distillation on enlarged-box lattices";
  e.inputs = {InputSpec::floating("s_bev", {"B", "Cs", "H", "W"}, "student BEV map").with_grad(),
              InputSpec::floating("t_bev", {"B", "C", "H'", "W'"}, "teacher BEV map (may be on another grid)"),
              InputSpec::floating("embed_w", {"C", "Cs", "1", "1"}, "inter-channel embed (1x1 conv)"),
              InputSpec::floating("embed_b", {"C"}),
              InputSpec::floating("boxes", {"K_b", "9"}, "GT boxes (mmdet3d v0.17)").sample_wise()};
  e.params = {P::with_default("x_sample_num", 24, "n; must equal y_sample_num"),
              P::with_default("y_sample_num", 24),
              P::with_default("enlarge_width", 1.6, "m on every side; <= 0: no enlargement"),
              P::with_default("inter_keypoint_weight", 100),
              P::with_default("inter_channel_weight", 10),
              P::with_default("lss_grid_bx", {-50.8, -50.8}),
              P::with_default("lss_grid_dx", {0.8, 0.8}),
              P::with_default("lss_grid_nx", {128, 128}),
              P::with_default("exact", false,
                              "bevkd's option (spec §11.1): sample at the true positions on each map's grid over the "
                              "LSS grid's range instead of the reference's 128/127 stretch")};
  e.values = {"loss_inter_keypoint", "loss_inter_channel"};
  e.grads = {"grad_s_bev_loss_inter_keypoint", "grad_s_bev_loss_inter_channel"};
  e.debug_files = {"corners_b{b}", "grid_b{b}_box{k}"};
  e.validate = [](const ProbeInputs&, const Params& p) {
    const int64_t n = p.integer("x_sample_num");
    if (p.integer("y_sample_num") != n) p.refuse("y_sample_num", cat("must equal x_sample_num = ", n));
    if (n < 2) p.refuse("x_sample_num", "expected n >= 2 (the lattice includes both edges)");
    if (n > 1024) p.refuse("x_sample_num", "expected n <= 1024");
    finite_number(p, "enlarge_width");
    lss_params(p);
  };
  e.run = [](const ProbeContext& c) {
    const Params& p = c.params;
    losses::TigInnerFeatureOptions o;
    o.sample_num = p.integer("x_sample_num");
    o.enlarge_width = p.number("enlarge_width");
    o.inter_keypoint_weight = finite_number(p, "inter_keypoint_weight");
    o.inter_channel_weight = finite_number(p, "inter_channel_weight");
    o.lss = lss_params(p);
    o.exact = p.boolean("exact");
    if (o.exact) {
      o.student_grid = map_grid(o.lss, c.in.size("H"), c.in.size("W"));
      o.teacher_grid = map_grid(o.lss, c.in.size("H'"), c.in.size("W'"));
    }
    const std::vector<torch::Tensor> boxes = bevkd_boxes(c.in.samples("boxes"));
    const losses::TigInnerFeatureLoss r = losses::tig_inner_feature_loss(
        c.in.tensor("s_bev"), c.in.tensor("t_bev"), boxes, c.in.tensor("embed_w"), c.in.tensor("embed_b"), o);
    ProbeOutput out;
    out.value("loss_inter_keypoint", r.inter_keypoint);
    out.value("loss_inter_channel", r.inter_channel);
    if (c.want_grad) {
      out.grad("grad_s_bev_loss_inter_keypoint", c.in.grad_of(r.inter_keypoint, "s_bev"));
      out.grad("grad_s_bev_loss_inter_channel", c.in.grad_of(r.inter_channel, "s_bev"));
    }
    if (c.want_debug)  // the same steps the loss takes: enlarged corners, lattice, clipped grid
      for (size_t b = 0; b < boxes.size(); ++b) {
        if (boxes[b].size(0) == 0) continue;
        const torch::Tensor corners = losses::tig_box_corners(boxes[b], o.enlarge_width);
        out.array(cat("corners_b", b), corners.to(torch::kFloat64));
        const torch::Tensor lattice = losses::tig_keypoint_lattice(corners, o.sample_num);
        const torch::Tensor grid =
            o.exact ? losses::tig_normalize_exact(lattice, o.student_grid) : losses::tig_normalize_lss(lattice, o.lss);
        for (int64_t k = 0; k < grid.size(0); ++k)
          out.array(cat("grid_b", b, "_box", k), grid.slice(0, k, k + 1).to(torch::kFloat64));
      }
    return out;
  };
  return e;
}

}  // namespace

void register_tig_probes(Registry& r) {
  r.add(tig_inner_depth_entry());
  r.add(tig_inner_feature_entry());
}

}  // namespace bevkd::train::probe

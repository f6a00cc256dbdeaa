// Probe entry of spec/loss_probe.md for FocalDistiller's released HeatmapDistiller (§6).
#include "train/losses/focaldistiller.h"
#include "train/probe/entries.h"
#include "train/probe/entry_util.h"

namespace bevkd::train::probe {
namespace {

using P = ParamSpec;

ProbeEntry focaldistiller_bev_l2_heatmap_entry() {
  ProbeEntry e;
  e.name = "focaldistiller_bev_l2_heatmap";
  e.section = "§6";
  e.summary = "FocalDistiller's HeatmapDistiller: weight·Σ(S·M−T·M)²/ΣM";
  e.inputs = {InputSpec::floating("s_bev", {"B", "C", "H", "W"}, "student BEV features").with_grad(),
              InputSpec::floating("t_bev", {"B", "C", "H", "W"}, "teacher BEV features"),
              InputSpec::floating("heat_mask", {"B", "1", "H", "W"}, "M; else drawn from boxes_b*").optional(),
              InputSpec::floating("boxes", {"K_b", "9"}, "GT boxes").sample_wise().optional()};
  e.one_of = {{"heat_mask", "boxes"}};
  e.params = {P::with_default("weight", 0.1),
              P::required("heatmap_grid", "[nx, ny] voxels of the detection grid"),
              P::required("voxel", "[voxel_x, voxel_y] (m)"),
              P::required("out_size_factor", "heat-map stride in voxels"),
              P::with_default("min_radius", 2),
              P::with_default("min_overlap", 0.1),
              P::with_default("pc_range", {-51.2, -51.2, -5, 51.2, 51.2, 3}),
              P::with_default("resize", "nearest", "\"nearest\" only (torch's legacy rule)")};
  e.values = {"loss"};
  e.grads = {"grad_s_bev"};
  e.debug_files = {"heat_mask"};
  e.run = [](const ProbeContext& c) {
    const Params& p = c.params;
    const double weight = p.number("weight");
    const std::vector<int64_t> grid = p.integers("heatmap_grid", 2, 3);
    const auto voxel = positive_xy(p, "voxel");
    const int64_t osf = integer_at_least(p, "out_size_factor", 1);
    const int64_t min_radius = integer_at_least(p, "min_radius", 0);
    const double min_overlap = number_in(p, "min_overlap", 0, 1, true);
    const std::vector<double> pc_range = finite_numbers(p, "pc_range", 6, 6);
    require_string(p, "resize", "nearest");
    if (grid[0] < osf || grid[1] < osf) p.refuse("heatmap_grid", cat("the heat map (ny, nx) / ", osf, " has no cell"));

    ProbeOutput out;
    torch::Tensor mask;
    if (c.in.has("heat_mask")) {
      mask = c.in.tensor("heat_mask");
    } else {
      kernels::GaussianOptions g;
      g.out_size_factor = osf;
      g.grid = losses::heat_map_grid(pc_range[0], pc_range[1], voxel[0], voxel[1], osf, grid[1] / osf, grid[0] / osf);
      g.min_radius = min_radius;
      g.min_overlap = min_overlap;
      mask = losses::focaldistiller_heat_mask(bevkd_boxes(c.in.samples("boxes")), g, c.in.size("H"), c.in.size("W"));
      if (c.want_debug) out.array("heat_mask", mask.to(torch::kFloat64));
    }
    const torch::Tensor loss =
        losses::focaldistiller_bev_l2_heatmap(c.in.tensor("s_bev"), c.in.tensor("t_bev"), mask, weight);
    out.value("loss", loss);
    if (c.want_grad) out.grad("grad_s_bev", c.in.grad_of(loss, "s_bev"));
    return out;
  };
  return e;
}

}  // namespace

void register_focaldistiller_probes(Registry& r) { r.add(focaldistiller_bev_l2_heatmap_entry()); }

}  // namespace bevkd::train::probe

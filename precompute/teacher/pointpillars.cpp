#include "precompute/teacher/pointpillars.h"

#include <cmath>

#include "base/error.h"
#include "kernels/scatter.h"
#include "kernels/voxelize.h"

namespace bevkd::precompute {


PillarBatch pillarize_batch(const std::vector<torch::Tensor>& points, const PillarConfig& cfg, bool training) {
  const auto opts = kernels::VoxelizeOptions::pillars(cfg.grid, cfg.max_points_per_pillar,
                                                      training ? cfg.max_pillars_train : cfg.max_pillars_test);
  for (size_t b = 0; b < points.size(); ++b)
    BEVKD_CHECK(points[b].dim() == 2 && points[b].size(1) == PillarConfig::kPointDims &&
                    points[b].scalar_type() == torch::kFloat32,
                "pillarize: sample ", b, " has points of shape ", points[b].sizes(), " and dtype ",
                points[b].scalar_type(), ", expected [P, 5] float32 (x, y, z, intensity, time_lag)");
  auto v = kernels::voxelize_batch(points, opts);
  PillarBatch p;
  p.points = v.voxels;
  p.num_points = v.num_points;
  p.coords = v.coords;
  p.batch_size = static_cast<int64_t>(points.size());
  return p;
}

PfnLayerImpl::PfnLayerImpl(int64_t in, int64_t out, bool last, double bn_eps, double bn_momentum) : last_(last) {
  const int64_t units = last ? out : out / 2;
  BEVKD_CHECK(units > 0, "pillar feature net: a non-last PFN layer needs an even width >= 2, got ", out);
  linear_ = register_module("linear", torch::nn::Linear(torch::nn::LinearOptions(in, units).bias(false)));
  norm_ = register_module("norm", torch::nn::BatchNorm1d(torch::nn::BatchNorm1dOptions(units).eps(bn_eps).momentum(bn_momentum)));
}

torch::Tensor PfnLayerImpl::forward(const torch::Tensor& x) {
  auto y = linear_(x);                                               // [V, M, units]
  y = norm_(y.permute({0, 2, 1}).contiguous()).permute({0, 2, 1});   // BN over V * M per channel
  y = torch::relu(y);
  auto y_max = std::get<0>(y.max(1, /*keepdim=*/true));              // [V, 1, units]
  if (last_) return y_max;
  return torch::cat({y, y_max.expand_as(y)}, 2);
}

PillarFeatureNetImpl::PillarFeatureNetImpl(const PillarConfig& cfg) : cfg_(cfg) {
  pfn_layers_ = register_module("pfn_layers", torch::nn::ModuleList());
  int64_t in = cfg_.decorated_dims();
  for (size_t i = 0; i < cfg_.pfn_channels.size(); ++i) {
    const bool last = i + 1 == cfg_.pfn_channels.size();
    pfn_layers_->push_back(PfnLayer(in, cfg_.pfn_channels[i], last, cfg_.bn_eps, cfg_.bn_momentum));
    in = cfg_.pfn_channels[i];
  }
}

torch::Tensor PillarFeatureNetImpl::decorate(const PillarBatch& p) const {
  const auto& pts = p.points;  // [V, M, 5]
  const auto V = pts.size(0), M = pts.size(1);
  const auto opts = pts.options();
  const auto n = p.num_points.to(pts.device()).to(torch::kFloat32).view({V, 1, 1});
  const auto xyz = pts.narrow(2, 0, 3);
  // Offsets from the mean of the pillar's (real) points: padding rows are zero, so the sum is
  // the sum over real points.
  const auto mean = xyz.sum(1, /*keepdim=*/true) / n;
  const auto f_cluster = xyz - mean;
  // Offsets from the pillar centre: x_min + (col + 1/2) * vx etc. (mmdet3d x_offset = vx/2 + x_min).
  const auto coords = p.coords.to(pts.device());
  const auto& r = cfg_.grid.range;
  const std::array<double, 3> vs{cfg_.grid.dx, cfg_.grid.dy, cfg_.grid.z_max() - cfg_.grid.z_min()};
  const auto cx = coords.select(1, 3).to(torch::kFloat32).mul(static_cast<float>(vs[0])).add(static_cast<float>(vs[0] / 2 + r[0]));
  const auto cy = coords.select(1, 2).to(torch::kFloat32).mul(static_cast<float>(vs[1])).add(static_cast<float>(vs[1] / 2 + r[1]));
  std::vector<torch::Tensor> center{pts.select(2, 0) - cx.unsqueeze(1), pts.select(2, 1) - cy.unsqueeze(1)};
  if (cfg_.center_offset_z) {
    // One pillar spans z, so its z centre is z_min + vz / 2 (coors z index 0).
    center.push_back(pts.select(2, 2) - static_cast<float>(vs[2] / 2 + r[2]));
  }
  auto features = torch::cat({pts, f_cluster, torch::stack(center, 2)}, 2);
  // Padding points get all-zero features (mmdet3d get_paddings_indicator).
  const auto slot = torch::arange(M, opts.dtype(torch::kInt64)).view({1, M});
  const auto valid = slot.lt(p.num_points.to(pts.device()).view({V, 1})).to(torch::kFloat32).unsqueeze(2);
  return features * valid;
}

torch::Tensor PillarFeatureNetImpl::forward(const PillarBatch& pillars) {
  auto x = decorate(pillars);
  for (const auto& layer : *pfn_layers_) x = layer->as<PfnLayer>()->forward(x);
  return x.squeeze(1);
}

PointPillarsCenterPointImpl::PointPillarsCenterPointImpl(TeacherModelConfig cfg) : cfg_(std::move(cfg)) {
  cfg_.validate();
  // mmdet3d's backbone/neck BN: eps 1e-3, momentum 0.01 (the pillar config carries them).
  const double eps = cfg_.pillars.bn_eps, mom = cfg_.pillars.bn_momentum;
  pts_voxel_encoder_ = register_module("pts_voxel_encoder", PillarFeatureNet(cfg_.pillars));
  pts_backbone_ = register_module("pts_backbone", core::nn::SecondBackbone(cfg_.pillars.pfn_channels.back(),
                                                                          cfg_.backbone, core::nn::BnOptions{eps, mom}));
  pts_neck_ = register_module("pts_neck",
                              core::nn::SecondFpn(cfg_.backbone.out_channels, cfg_.neck, core::nn::BnOptions{eps, mom}));
  pts_bbox_head_ = register_module("pts_bbox_head", core::nn::CenterHead(cfg_.head));
}

PointPillarsOutput PointPillarsCenterPointImpl::forward(const std::vector<torch::Tensor>& points) {
  return forward_pillars(pillarize_batch(points, cfg_.pillars, is_training()));
}

PointPillarsOutput PointPillarsCenterPointImpl::forward_pillars(const PillarBatch& pillars) {
  const auto device = pts_bbox_head_->parameters().front().device();
  PillarBatch p = pillars;
  p.points = p.points.to(device);
  p.num_points = p.num_points.to(device);
  p.coords = p.coords.to(device);
  const auto features = pts_voxel_encoder_->forward(p);  // [V, C]
  const auto grid = cfg_.pillar_grid();
  const auto canvas = kernels::scatter_to_bev(features, p.coords, p.batch_size, grid.H, grid.W);
  PointPillarsOutput out;
  out.neck = pts_neck_->forward(pts_backbone_->forward(canvas));
  out.head = pts_bbox_head_->forward(out.neck);
  return out;
}

}  // namespace bevkd::precompute

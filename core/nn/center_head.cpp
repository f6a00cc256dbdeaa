#include "core/nn/center_head.h"

#include <set>

#include "base/error.h"

namespace bevkd::core::nn {

std::vector<TaskClasses> nuscenes_tasks() { return {{0}, {1, 2}, {3, 4}, {5}, {6, 7}, {8, 9}}; }

std::vector<TaskClasses> single_task(int num_classes) {
  TaskClasses all;
  for (int c = 0; c < num_classes; ++c) all.push_back(c);
  return {all};
}

void validate_tasks(const std::vector<TaskClasses>& tasks, int num_classes, const std::string& where) {
  BEVKD_CHECK(!tasks.empty(), where, ": tasks is empty, expected at least one task");
  std::set<int> seen;
  for (size_t t = 0; t < tasks.size(); ++t) {
    BEVKD_CHECK(!tasks[t].empty(), where, ": task ", t, " has no classes");
    for (int label : tasks[t]) {
      BEVKD_CHECK(label >= 0 && label < num_classes, where, ": task ", t, " lists label ", label,
                  ", expected a label in [0, ", num_classes, ")");
      BEVKD_CHECK(seen.insert(label).second, where, ": label ", label, " (task ", t,
                  ") appears in more than one task");
    }
  }
}

void CenterHeadConfig::validate(const std::string& where) const {
  BEVKD_CHECK(in_channels > 0, where, ": in_channels must be positive, got ", in_channels);
  BEVKD_CHECK(shared_channels > 0, where, ": shared_channels must be positive, got ", shared_channels);
  BEVKD_CHECK(head_channels > 0, where, ": head_channels must be positive, got ", head_channels);
  BEVKD_CHECK(final_kernel > 0 && final_kernel % 2 == 1, where,
              ": final_kernel must be a positive odd number, got ", final_kernel);
  BEVKD_CHECK(num_heatmap_convs >= 1, where, ": num_heatmap_convs must be >= 1, got ", num_heatmap_convs);
  BEVKD_CHECK(num_reg_convs >= 1, where, ": num_reg_convs must be >= 1, got ", num_reg_convs);
  BEVKD_CHECK(bn_eps > 0 && bn_momentum > 0 && bn_momentum <= 1, where, ": bn_eps ", bn_eps,
              " / bn_momentum ", bn_momentum, " out of range");
  BEVKD_CHECK(num_classes > 0, where, ": num_classes must be positive, got ", num_classes);
  validate_tasks(tasks, num_classes, where);
}

torch::Tensor class_heatmap(const std::vector<TaskPrediction>& preds, const std::vector<TaskClasses>& tasks,
                            int num_classes) {
  BEVKD_ASSERT(preds.size() == tasks.size() && !preds.empty());
  const auto& first = preds[0].heatmap;
  auto out = torch::zeros({first.size(0), num_classes, first.size(2), first.size(3)}, first.options());
  for (size_t t = 0; t < tasks.size(); ++t) {
    BEVKD_ASSERT(preds[t].heatmap.size(1) == static_cast<int64_t>(tasks[t].size()));
    const auto prob = preds[t].heatmap.sigmoid();
    for (size_t k = 0; k < tasks[t].size(); ++k) out.select(1, tasks[t][k]).copy_(prob.select(1, static_cast<int64_t>(k)));
  }
  return out;
}

// mmcv kaiming_init defaults: normal, fan_out, ReLU gain, zero bias.
static void kaiming_fan_out(torch::nn::Conv2d& conv) {
  torch::NoGradGuard no_grad;
  torch::nn::init::kaiming_normal_(conv->weight, 0.0, torch::kFanOut, torch::kReLU);
  if (conv->bias.defined()) conv->bias.zero_();
}

ConvBnReluImpl::ConvBnReluImpl(int64_t in, int64_t out, int64_t kernel, int64_t stride, double bn_eps,
                               double bn_momentum) {
  conv_ = register_module(
      "conv", torch::nn::Conv2d(torch::nn::Conv2dOptions(in, out, kernel).stride(stride).padding(kernel / 2).bias(false)));
  bn_ = register_module("bn", torch::nn::BatchNorm2d(torch::nn::BatchNorm2dOptions(out).eps(bn_eps).momentum(bn_momentum)));
  kaiming_fan_out(conv_);  // mmcv ConvModule.init_weights
}

torch::Tensor ConvBnReluImpl::forward(const torch::Tensor& x) { return torch::relu(bn_(conv_(x))); }

torch::nn::Sequential SeparateHeadImpl::branch(const CenterHeadConfig& cfg, int64_t out, int64_t num_convs,
                                               bool heatmap) {
  torch::nn::Sequential seq;
  int64_t c_in = cfg.shared_channels;
  for (int64_t i = 0; i + 1 < num_convs; ++i) {
    seq->push_back(ConvBnRelu(c_in, cfg.head_channels, cfg.final_kernel, 1, cfg.bn_eps, cfg.bn_momentum));
    c_in = cfg.head_channels;
  }
  torch::nn::Conv2d last(
      torch::nn::Conv2dOptions(c_in, out, cfg.final_kernel).padding(cfg.final_kernel / 2).bias(true));
  // SeparateHead.init_weights: the heat-map bias starts at init_bias (focal-loss prior); the
  // regression branches get kaiming_init; the heat-map conv keeps PyTorch's default init.
  torch::NoGradGuard no_grad;
  if (heatmap) {
    last->bias.fill_(cfg.init_bias);
  } else {
    kaiming_fan_out(last);
  }
  seq->push_back(last);
  return seq;
}

SeparateHeadImpl::SeparateHeadImpl(const CenterHeadConfig& cfg, int64_t num_task_classes) {
  reg_ = register_module("reg", branch(cfg, 2, cfg.num_reg_convs, false));
  height_ = register_module("height", branch(cfg, 1, cfg.num_reg_convs, false));
  dim_ = register_module("dim", branch(cfg, 3, cfg.num_reg_convs, false));
  rot_ = register_module("rot", branch(cfg, 2, cfg.num_reg_convs, false));
  if (cfg.with_velocity) vel_ = register_module("vel", branch(cfg, 2, cfg.num_reg_convs, false));
  heatmap_ = register_module("heatmap", branch(cfg, num_task_classes, cfg.num_heatmap_convs, true));
}

TaskPrediction SeparateHeadImpl::forward(const torch::Tensor& shared) {
  TaskPrediction p;
  p.heatmap = heatmap_->forward(shared);
  p.reg = reg_->forward(shared);
  p.height = height_->forward(shared);
  p.dim = dim_->forward(shared);
  p.rot = rot_->forward(shared);
  if (vel_) p.vel = vel_->forward(shared);
  return p;
}

CenterHeadImpl::CenterHeadImpl(CenterHeadConfig cfg) : cfg_(std::move(cfg)) {
  cfg_.validate();
  shared_conv_ = register_module("shared_conv", ConvBnRelu(cfg_.in_channels, cfg_.shared_channels, 3, 1, cfg_.bn_eps,
                                                           cfg_.bn_momentum));
  task_heads_ = register_module("task_heads", torch::nn::ModuleList());
  for (const auto& task : cfg_.tasks) task_heads_->push_back(SeparateHead(cfg_, static_cast<int64_t>(task.size())));
}

CenterHeadOutput CenterHeadImpl::forward(const torch::Tensor& x) {
  BEVKD_CHECK(x.dim() == 4 && x.size(1) == cfg_.in_channels, "center head: input has shape ", x.sizes(),
              ", expected [B, ", cfg_.in_channels, ", H, W]");
  CenterHeadOutput out;
  out.shared = shared_conv_->forward(x);
  for (const auto& head : *task_heads_) out.tasks.push_back(head->as<SeparateHead>()->forward(out.shared));
  return out;
}

TaskPrediction convert_v017_box_regression(const TaskPrediction& p) {
  TaskPrediction q = p;
  q.dim = torch::stack({p.dim.select(1, 1), p.dim.select(1, 0), p.dim.select(1, 2)}, 1);
  q.rot = torch::stack({-p.rot.select(1, 1), -p.rot.select(1, 0)}, 1);
  return q;
}

}  // namespace bevkd::core::nn

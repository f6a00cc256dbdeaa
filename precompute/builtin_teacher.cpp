#include "precompute/builtin_teacher.h"

#include "base/error.h"
#include "precompute/checkpoint.h"

namespace bevkd::precompute {

namespace det = core::detection;

namespace {

class BuiltinTeacher final : public Teacher {
 public:
  BuiltinTeacher(PointPillarsCenterPoint model, TeacherIdentity id) : model_(std::move(model)), id_(std::move(id)) {
    model_->eval();
    device_ = model_->parameters().front().device();
    decode_ = model_->config().decode_config();
  }

  TeacherOutput infer(const std::vector<torch::Tensor>& points) override {
    torch::NoGradGuard no_grad;
    const auto B = static_cast<int64_t>(points.size());
    BEVKD_CHECK(B > 0, "built-in teacher: empty batch");
    model_->eval();
    auto out = model_->forward(points);
    TeacherOutput t;
    t.features[kTapNeck] = out.neck.to(torch::kCPU);
    t.features[kTapHeadShared] = out.head.shared.to(torch::kCPU);
    t.tasks = model_->config().head.tasks;
    for (auto& p : out.head.tasks) {
      det::TaskPrediction c;
      c.heatmap = p.heatmap.to(torch::kCPU);
      c.reg = p.reg.to(torch::kCPU);
      c.height = p.height.to(torch::kCPU);
      c.dim = p.dim.to(torch::kCPU);
      c.rot = p.rot.to(torch::kCPU);
      if (p.vel.defined()) c.vel = p.vel.to(torch::kCPU);
      t.raw.push_back(std::move(c));
    }
    t.heatmap = det::class_heatmap(t.raw, t.tasks, core::kNumClasses);
    t.detections = det::decode_center_head(t.raw, decode_);
    check_teacher_output(t, B, grid(), "built-in teacher " + id_.preset);
    return t;
  }

  core::BevGrid grid() const override { return model_->config().output_grid(); }
  TeacherIdentity identity() const override { return id_; }
  std::vector<std::string> feature_taps() const override { return {kTapNeck, kTapHeadShared}; }
  torch::Device device() const override { return device_; }

 private:
  PointPillarsCenterPoint model_;
  TeacherIdentity id_;
  det::DecodeConfig decode_;
  torch::Device device_ = torch::kCPU;
};

}  // namespace

std::unique_ptr<Teacher> load_builtin_teacher(const BuiltinTeacherOptions& opts) {
  const auto ckpt = read_checkpoint(opts.checkpoint);
  TeacherModelConfig cfg;
  std::string target;
  if (opts.preset.empty()) {
    cfg = TeacherModelConfig::from_json(ckpt.config_json, "checkpoint " + opts.checkpoint + " config");
    target = "its stored config (preset " + cfg.preset + ")";
  } else {
    cfg = teacher_preset(opts.preset);
    target = "preset " + opts.preset;
  }
  PointPillarsCenterPoint model(cfg);
  load_module_state(*model, ckpt.model, "checkpoint " + opts.checkpoint, target);
  model->to(opts.device);
  TeacherIdentity id;
  id.kind = "builtin";
  id.preset = cfg.preset;
  id.checkpoint = opts.checkpoint;
  id.checkpoint_hash = file_hash(opts.checkpoint);
  id.config_json = cfg.to_json();
  return std::make_unique<BuiltinTeacher>(std::move(model), std::move(id));
}

std::unique_ptr<Teacher> make_builtin_teacher(PointPillarsCenterPoint model, TeacherIdentity identity) {
  return std::make_unique<BuiltinTeacher>(std::move(model), std::move(identity));
}

}  // namespace bevkd::precompute

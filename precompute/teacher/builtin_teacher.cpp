#include "precompute/teacher/builtin_teacher.h"

#include "base/error.h"
#include "base/config.h"
#include "core/nn/checkpoint.h"

namespace bevkd::precompute {

namespace det = core::nn;

namespace {

class BuiltinTeacher final : public Teacher {
 public:
  BuiltinTeacher(PointPillarsCenterPoint model, TeacherIdentity id) : model_(std::move(model)), id_(std::move(id)) {
    model_->eval();
    device_ = model_->parameters().front().device();
    decode_ = model_->config().decode_config();
  }

  // Pillarises one cloud with the test-time pillar limit (pillarize_batch is deterministic and
  // per cloud, so a batch of prepared clouds equals pillarising the batch at once).
  PreparedCloud prepare(torch::Tensor points) const override {
    PreparedCloud c;
    auto p = pillarize_batch({points}, model_->config().pillars, /*training=*/false);
    c.points = std::move(points);
    c.voxels = std::move(p.points);
    c.num_points = std::move(p.num_points);
    c.coords = p.coords.narrow(1, 1, 3).contiguous();  // drop the batch column (all 0)
    return c;
  }

  TeacherOutput infer_prepared(const std::vector<PreparedCloud>& clouds) override {
    torch::NoGradGuard no_grad;
    const auto B = static_cast<int64_t>(clouds.size());
    BEVKD_CHECK(B > 0, "built-in teacher: empty batch");
    model_->eval();
    PillarBatch batch;
    batch.batch_size = B;
    std::vector<torch::Tensor> voxels, num_points, coords;
    for (int64_t b = 0; b < B; ++b) {
      const auto& c = clouds[static_cast<size_t>(b)];
      BEVKD_CHECK(c.voxels.defined() && c.num_points.defined() && c.coords.defined(),
                  "built-in teacher: cloud ", b, " of the batch was not prepared by this teacher's prepare()");
      voxels.push_back(c.voxels);
      num_points.push_back(c.num_points);
      coords.push_back(torch::cat({torch::full({c.coords.size(0), 1}, b, torch::kInt32), c.coords}, 1));
    }
    batch.points = torch::cat(voxels, 0);
    batch.num_points = torch::cat(num_points, 0);
    batch.coords = torch::cat(coords, 0);
    auto out = model_->forward_pillars(batch);
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

  BevGrid grid() const override { return model_->config().output_grid(); }
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

void save_teacher_model(PointPillarsCenterPoint& model, const std::string& path) {
  core::nn::Checkpoint ck;
  ck.kind = kTeacherCheckpointKind;
  ck.meta_json = nlohmann::json{{"config", config::to_json(model->config())}}.dump();
  ck.modules["model"] = core::nn::module_state(*model);
  core::nn::save_checkpoint(path, ck);
}

TeacherModelConfig teacher_config_of(const core::nn::Checkpoint& ckpt, const std::string& path) {
  const auto meta = config::parse(ckpt.meta_json, "checkpoint " + path + " meta");
  BEVKD_CHECK(meta.is_object() && meta.contains("config"), "checkpoint ", path,
              ": its meta has no 'config' (the teacher's model configuration)");
  return TeacherModelConfig::from_json(meta.at("config").dump(), "checkpoint " + path + " config");
}

std::unique_ptr<Teacher> load_builtin_teacher(const BuiltinTeacherOptions& opts) {
  const auto ckpt = core::nn::read_checkpoint(opts.checkpoint, kTeacherCheckpointKind);
  TeacherModelConfig cfg;
  std::string target;
  if (opts.preset.empty()) {
    cfg = teacher_config_of(ckpt, opts.checkpoint);
    target = "its stored config (preset " + cfg.preset + ")";
  } else {
    cfg = teacher_preset(opts.preset);
    target = "preset " + opts.preset;
  }
  PointPillarsCenterPoint model(cfg);
  core::nn::load_module_state(*model, ckpt.module("model", opts.checkpoint), "checkpoint " + opts.checkpoint, target);
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

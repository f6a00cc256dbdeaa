#include "train/data/batch.h"

#include "base/error.h"

namespace bevkd::train::data {

namespace {

torch::Tensor moved(const torch::Tensor& t, const torch::Device& device) {
  return t.defined() ? t.to(device) : t;
}

}  // namespace

CameraBatch CameraBatch::to(const torch::Device& device) const {
  CameraBatch o;
  o.images = moved(images, device);
  o.intrinsics = moved(intrinsics, device);
  o.cam2ego = moved(cam2ego, device);
  o.img_aug = moved(img_aug, device);
  o.bda = moved(bda, device);
  return o;
}

SampleGt SampleGt::to(const torch::Device& device) const {
  return SampleGt{moved(boxes, device), moved(labels, device), moved(index, device)};
}

DepthTargets DepthTargets::to(const torch::Device& device) const {
  DepthTargets o;
  o.depth = moved(depth, device);
  o.box_id = moved(box_id, device);
  o.stride = stride;
  return o;
}

std::vector<SampleTeacher> TeacherStored::to_float32(const torch::Device& device, int64_t batch_size) const {
  std::vector<SampleTeacher> out(static_cast<std::size_t>(batch_size));
  for (const auto& [tap, stored] : features) {
    BEVKD_ASSERT(stored.dim() == 4 && stored.size(0) == batch_size, "teacher tap ", tap, " has shape ", stored.sizes());
    torch::Tensor f = stored.to(device);
    if (f.scalar_type() == torch::kChar) {
      const auto it = feature_scales.find(tap);
      BEVKD_CHECK(it != feature_scales.end(), "teacher tap ", tap, " is int8 but has no feature scales");
      const torch::Tensor scale = it->second.to(device);  // [B, C]
      f = f.to(torch::kFloat32) * scale.unsqueeze(-1).unsqueeze(-1);
    } else {
      f = f.to(torch::kFloat32);
    }
    for (int64_t b = 0; b < batch_size; ++b) out[static_cast<std::size_t>(b)].features[tap] = f.select(0, b);
  }
  const torch::Tensor heat = heatmap.defined() ? heatmap.to(device).to(torch::kFloat32) : torch::Tensor();
  const torch::Tensor mask = fg_mask.defined() ? fg_mask.to(device).to(torch::kFloat32) : torch::Tensor();
  for (int64_t b = 0; b < batch_size; ++b) {
    SampleTeacher& t = out[static_cast<std::size_t>(b)];
    const auto k = static_cast<std::size_t>(b);
    if (heat.defined()) t.heatmap = heat.select(0, b);
    if (mask.defined()) t.fg_mask = mask.select(0, b);
    if (!boxes.empty()) {
      t.boxes = boxes[k].to(device);
      t.scores = scores[k].to(device);
      t.labels = labels[k].to(device).to(torch::kInt64);
      t.quality = quality[k].to(device);
    }
    if (!class_probs.empty()) t.class_probs = class_probs[k].to(device).to(torch::kFloat32);
  }
  return out;
}

Batch Batch::to(const torch::Device& device) const {
  Batch o;
  o.sample_tokens = sample_tokens;
  o.views = views;
  o.cameras = cameras.to(device);
  o.depth = depth.to(device);
  o.gt.reserve(gt.size());
  for (const auto& g : gt) o.gt.push_back(g.to(device));
  o.teacher = teacher_stored.to_float32(device, size());
  o.teacher_stored = teacher_stored;
  o.ego2global = ego2global;
  o.shards = shards;
  o.shard_samples = shard_samples;
  return o;
}

}  // namespace bevkd::train::data

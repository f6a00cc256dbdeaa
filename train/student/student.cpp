#include "train/student/student.h"

#include <torch/cuda.h>

#include <chrono>

#include "base/error.h"

namespace bevkd::train::student {
namespace {

class Clock {
 public:
  Clock(const torch::Device& device, bool on) : device_(device), on_(on) {
    if (on_) t0_ = start_ = now();
  }
  double lap_ms() {
    if (!on_) return 0;
    const auto t = now();
    const double ms = std::chrono::duration<double, std::milli>(t - t0_).count();
    t0_ = t;
    return ms;
  }
  double total_ms() const {
    return on_ ? std::chrono::duration<double, std::milli>(now() - start_).count() : 0;
  }

 private:
  std::chrono::steady_clock::time_point now() const {
    if (device_.is_cuda()) torch::cuda::synchronize(device_.index());
    return std::chrono::steady_clock::now();
  }
  torch::Device device_;
  bool on_;
  std::chrono::steady_clock::time_point t0_, start_;
};

std::vector<int64_t> bev_neck_inputs(const StudentConfig& c) {
  std::vector<int64_t> in{c.depth_net.context_channels};
  for (auto ch : c.bev_backbone.out_channels()) in.push_back(ch);
  return in;
}

}  // namespace

std::vector<std::string> student_tap_names() { return {kTapLss, kTapNeck, kTapHeadShared}; }

const torch::Tensor& StudentOutput::tap(const std::string& name) const {
  if (name == kTapLss) return lss;
  if (name == kTapNeck) return neck;
  if (name == kTapHeadShared) {
    BEVKD_CHECK(head_shared.defined(), "student tap '", name, "': a student with the query head has no CenterHead "
                "shared conv (taps: ", kTapLss, ", ", kTapNeck, ")");
    return head_shared;
  }
  BEVKD_FAIL("student tap '", name, "' is unknown, expected one of: ", kTapLss, ", ", kTapNeck, ", ", kTapHeadShared);
}

StudentImpl::StudentImpl(StudentConfig cfg) : cfg_(std::move(cfg)) {
  cfg_.validate();
  img_backbone = register_module("img_backbone", ResNet(cfg_.image_backbone));
  img_neck = register_module("img_neck", core::nn::SecondFpn(cfg_.image_backbone.out_channels(), cfg_.image_neck));
  depth_net = register_module("depth_net", DepthNet(cfg_.image_neck_channels(), cfg_.depth_bins.count(), cfg_.depth_net));
  bev_backbone = register_module("bev_backbone", ResNet(cfg_.bev_backbone));
  bev_neck = register_module("bev_neck", core::nn::SecondFpn(bev_neck_inputs(cfg_), cfg_.bev_neck));
  if (cfg_.query())
    query_head = register_module("query_head", core::nn::QueryDecoder(cfg_.query_head, cfg_.grid));
  else
    head = register_module("head", core::nn::CenterHead(cfg_.head));
  lift_splat_ = std::make_unique<LiftSplat>(cfg_.frustum(), cfg_.grid, cfg_.geometry_cache_size);
}

StudentOutput StudentImpl::forward(const data::CameraBatch& cam, StudentTimings* timings) {
  const auto& images = cam.images;
  BEVKD_CHECK(images.defined() && images.dim() == 5 && images.size(2) == 3 && images.size(3) == cfg_.image_height &&
                  images.size(4) == cfg_.image_width,
              "student (preset ", cfg_.preset, "): images must be [B, N, 3, ", cfg_.image_height, ", ",
              cfg_.image_width, "], got ", images.defined() ? images.sizes() : torch::IntArrayRef{});
  const int64_t B = images.size(0), N = images.size(1);
  // The depth net's BatchNorm1d over the camera parameters needs two rows to train on.
  BEVKD_CHECK(!is_training() || B * N >= 2, "student (preset ", cfg_.preset,
              "): training needs at least two cameras per batch (B x N = ", B * N,
              "): the depth net normalises its camera parameters over them (BatchNorm1d)");
  const int64_t D = cfg_.depth_bins.count();
  const int64_t h = cfg_.image_height / cfg_.depth_stride, w = cfg_.image_width / cfg_.depth_stride;
  Clock clock(images.device(), timings != nullptr);

  const auto feats = img_backbone->forward(images.reshape({B * N, 3, cfg_.image_height, cfg_.image_width}));
  if (timings) timings->image_backbone_ms = clock.lap_ms();
  const auto x = img_neck->forward(feats);  // [B·N, Ci, h, w]
  BEVKD_ASSERT(x.size(2) == h && x.size(3) == w);
  if (timings) timings->image_neck_ms = clock.lap_ms();

  const auto camera = camera_mlp_input(cam.intrinsics, cam.img_aug, cam.cam2ego, cam.bda).reshape({B * N, kCameraParams});
  auto dn = depth_net->forward(x, camera);
  StudentOutput out;
  out.depth_logits = dn.depth_logits.view({B, N, D, h, w});
  out.depth = out.depth_logits.softmax(2);
  out.context = dn.context.view({B, N, cfg_.depth_net.context_channels, h, w});
  if (timings) timings->depth_net_ms = clock.lap_ms();

  const auto mode = is_training() ? GeometryMode::kPerBatch : GeometryMode::kCached;
  out.lss = lift_splat_->forward(out.depth, out.context, cam.intrinsics, cam.cam2ego, cam.bda, mode,
                                 timings ? &timings->lift_splat : nullptr);
  clock.lap_ms();

  std::vector<torch::Tensor> levels{out.lss};
  for (auto& t : bev_backbone->forward(out.lss)) levels.push_back(t);
  out.neck = bev_neck->forward(levels);
  if (timings) timings->bev_encoder_ms = clock.lap_ms();
  if (cfg_.query()) {
    out.query = query_head->forward(out.neck);
  } else {
    auto ho = head->forward(out.neck);
    out.head_shared = ho.shared;
    out.tasks = std::move(ho.tasks);
  }
  if (timings) {
    timings->head_ms = clock.lap_ms();
    timings->total_ms = clock.total_ms();
  }
  return out;
}

InitReport StudentImpl::load_image_backbone_weights(const std::string& path) {
  return load_torchvision_weights(*img_backbone, path);
}

int64_t StudentImpl::num_parameters() const {
  int64_t n = 0;
  for (const auto& p : parameters()) n += p.numel();
  return n;
}

int64_t StudentImpl::num_parameters(const std::string& module) const {
  for (const auto& c : named_children())
    if (c.key() == module) {
      int64_t n = 0;
      for (const auto& p : c.value()->parameters()) n += p.numel();
      return n;
    }
  BEVKD_FAIL("student: no module '", module,
             "' (expected img_backbone, img_neck, depth_net, bev_backbone, bev_neck, head or query_head)");
}

}  // namespace bevkd::train::student

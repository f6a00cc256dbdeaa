#include "train/losses/fd3d_head.h"

#include <torch/torch.h>

#include "base/error.h"
#include "kernels/iou.h"

namespace bevkd::train::losses {

namespace cn = core::nn;

void Fd3dHeadOptions::validate(const std::string& where) const {
  decoder.validate(where + " decoder");
  loss.validate(where + " loss");
  BEVKD_CHECK(rho_c >= 0 && rho_c <= 1, where, ": rho_c ", rho_c, " must be in [0, 1]");
  BEVKD_CHECK(rho_b >= -1 && rho_b <= 1, where, ": rho_b ", rho_b, " must be in [-1, 1] (a GIoU)");
}

Fd3dHeadImpl::Fd3dHeadImpl(Fd3dHeadOptions opts, BevGrid grid) : opts_(std::move(opts)), grid_(std::move(grid)) {
  opts_.validate();
  opts_.loss.with_velocity = opts_.decoder.with_velocity;
  decoder_ = register_module("decoder", cn::QueryDecoder(opts_.decoder, grid_));
}

cn::QueryDecoderOutput Fd3dHeadImpl::forward(const torch::Tensor& teacher) {
  BEVKD_CHECK(teacher.dim() == 4 && teacher.size(2) == grid_.H && teacher.size(3) == grid_.W, "fd3d head: the "
              "teacher map has shape ", teacher.sizes(), ", expected [B, C, ", grid_.H, ", ", grid_.W, "] (its grid)");
  return decoder_->forward(teacher.detach());
}

Fd3dFocalQueries fd3d_focal_queries(const cn::QueryDecoderOutput& out, const std::vector<cn::QueryMatch>& match,
                                    const std::vector<torch::Tensor>& gt_boxes, const BevGrid& grid, double rho_c,
                                    double rho_b) {
  const torch::NoGradGuard g;
  const auto& logits = out.cls_logits.back();
  const auto& codes = out.codes.back();
  const int64_t B = logits.size(0);
  Fd3dFocalQueries f;
  for (int64_t b = 0; b < B; ++b) {
    const auto& m = match[static_cast<size_t>(b)];
    const auto& gt = gt_boxes[static_cast<size_t>(b)];
    f.gt_total += gt.size(0);
    f.samples_with_gt += gt.size(0) > 0 ? 1 : 0;
    const int64_t M = out.locations.size(2), K = out.locations.size(3);
    if (m.query.numel() == 0) {
      f.boxes.push_back(torch::zeros({0, 9}, torch::kFloat32));
      f.positions.push_back(torch::zeros({0, M, K, 2}, torch::kFloat32));
      continue;
    }
    const auto q = m.query.to(logits.device());
    const auto conf = torch::sigmoid(logits[b].index_select(0, q)).amax(1).cpu();
    const auto pred = cn::decode_query_boxes(codes[b].index_select(0, q)).cpu().to(torch::kFloat32);
    const auto matched_gt = gt.cpu().to(torch::kFloat32).index_select(0, m.gt);
    const auto giou = kernels::bev_giou_aligned(pred, matched_gt);
    const auto keep = ((conf > rho_c) & (giou > rho_b)).nonzero().squeeze(1);
    f.count += keep.numel();
    f.gt_covered += keep.numel();  // one GT per matched query
    f.boxes.push_back(pred.index_select(0, keep));
    const auto loc = out.locations[b].index_select(0, q.index_select(0, keep.to(q.device())));
    f.positions.push_back(cn::query_locations_to_metres(loc, grid).cpu().to(torch::kFloat32));
  }
  return f;
}

Fd3dHeadStep fd3d_head_step(Fd3dHead& head, const torch::Tensor& teacher, const std::vector<torch::Tensor>& gt_boxes,
                            const std::vector<torch::Tensor>& gt_labels) {
  const auto out = head->forward(teacher);
  const auto& grid = head->grid();
  std::vector<torch::Tensor> gt_codes;
  for (const auto& g : gt_boxes) gt_codes.push_back(cn::encode_query_boxes(g.to(teacher.device())));
  Fd3dHeadStep s;
  torch::Tensor cls = torch::zeros({}, teacher.options()), box = cls;
  std::vector<cn::QueryMatch> last;
  for (std::size_t l = 0; l < out.codes.size(); ++l) {
    auto ll = cn::query_layer_loss(out.cls_logits[l], out.codes[l], gt_codes, gt_labels, head->options().loss);
    cls = cls + ll.cls;
    box = box + ll.box;
    if (l + 1 == out.codes.size()) last = std::move(ll.match);
  }
  s.loss = cls + box;
  s.cls = cls.detach();
  s.box = box.detach();
  s.focal = fd3d_focal_queries(out, last, gt_boxes, grid, head->options().rho_c, head->options().rho_b);
  s.out = out;
  return s;
}

}  // namespace bevkd::train::losses

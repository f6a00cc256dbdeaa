#include "core/nn/query_decoder.h"

#include <torch/nn/functional/activation.h>
#include <torch/nn/init.h>
#include <torch/torch.h>

#include <cmath>

#include "base/error.h"
#include "kernels/deform_attn.h"

namespace bevkd::core::nn {

namespace F = torch::nn::functional;

void QueryDecoderConfig::validate(const std::string& where) const {
  BEVKD_CHECK(in_channels >= 1, where, ": in_channels ", in_channels, " must be >= 1");
  BEVKD_CHECK(num_queries >= 1, where, ": num_queries ", num_queries, " must be >= 1");
  BEVKD_CHECK(num_layers >= 1, where, ": num_layers ", num_layers, " must be >= 1");
  BEVKD_CHECK(heads >= 1 && points >= 1, where, ": heads ", heads, " and points ", points, " must be >= 1");
  BEVKD_CHECK(embed_dims >= 1 && embed_dims % heads == 0, where, ": embed_dims ", embed_dims,
              " must be a positive multiple of heads ", heads);
  BEVKD_CHECK(self_attn_heads >= 1 && embed_dims % self_attn_heads == 0, where, ": embed_dims ", embed_dims,
              " must be a multiple of self_attn_heads ", self_attn_heads);
  BEVKD_CHECK(ffn_dims >= 1, where, ": ffn_dims ", ffn_dims, " must be >= 1");
  BEVKD_CHECK(dropout >= 0 && dropout < 1, where, ": dropout ", dropout, " must be in [0, 1)");
  BEVKD_CHECK(num_classes >= 1, where, ": num_classes ", num_classes, " must be >= 1");
}

namespace {

torch::Tensor inverse_sigmoid(const torch::Tensor& x, double eps = 1e-5) {
  const auto c = x.clamp(0, 1);
  return torch::log(c.clamp_min(eps) / (1 - c).clamp_min(eps));
}

}  // namespace

QueryDecoderLayerImpl::QueryDecoderLayerImpl(const QueryDecoderConfig& c) : heads_(c.heads), points_(c.points) {
  const int64_t D = c.embed_dims;
  self_attn_ = register_module(
      "self_attn", torch::nn::MultiheadAttention(torch::nn::MultiheadAttentionOptions(D, c.self_attn_heads).dropout(c.dropout)));
  offsets_ = register_module("sampling_offsets", torch::nn::Linear(D, c.heads * c.points * 2));
  weights_ = register_module("attention_weights", torch::nn::Linear(D, c.heads * c.points));
  out_proj_ = register_module("output_proj", torch::nn::Linear(D, D));
  ffn1_ = register_module("ffn1", torch::nn::Linear(D, c.ffn_dims));
  ffn2_ = register_module("ffn2", torch::nn::Linear(c.ffn_dims, D));
  norm1_ = register_module("norm1", torch::nn::LayerNorm(torch::nn::LayerNormOptions({D})));
  norm2_ = register_module("norm2", torch::nn::LayerNorm(torch::nn::LayerNormOptions({D})));
  norm3_ = register_module("norm3", torch::nn::LayerNorm(torch::nn::LayerNormOptions({D})));
  drop_ = register_module("dropout", torch::nn::Dropout(c.dropout));
  // Deformable DETR's initialisation: zero offset weights, each head's points on a ring in its
  // own direction at 1..K cells; uniform attention weights.
  torch::NoGradGuard g;
  offsets_->weight.zero_();
  const auto theta = torch::arange(c.heads, torch::kFloat32) * (2.0 * M_PI / static_cast<double>(c.heads));
  auto grid = torch::stack({theta.cos(), theta.sin()}, -1);                         // [M, 2]
  grid = grid / grid.abs().amax(-1, true);                                          // onto the unit square
  grid = grid.view({c.heads, 1, 2}).repeat({1, c.points, 1});                       // [M, K, 2]
  grid = grid * torch::arange(1, c.points + 1, torch::kFloat32).view({1, c.points, 1});
  offsets_->bias.copy_(grid.reshape(-1));
  weights_->weight.zero_();
  weights_->bias.zero_();
  torch::nn::init::xavier_uniform_(out_proj_->weight);
  out_proj_->bias.zero_();
}

torch::Tensor QueryDecoderLayerImpl::forward(const torch::Tensor& q0, const torch::Tensor& pos,
                                             const torch::Tensor& value, int64_t height, int64_t width,
                                             const torch::Tensor& ref, torch::Tensor* locations) {
  const int64_t B = q0.size(0), N = q0.size(1);
  // nn::MultiheadAttention takes [N, B, D].
  const auto qk = (q0 + pos).transpose(0, 1);
  const auto sa = std::get<0>(self_attn_->forward(qk, qk, q0.transpose(0, 1))).transpose(0, 1);
  auto q = norm1_->forward(q0 + drop_->forward(sa));

  const auto off = offsets_->forward(q).view({B, N, heads_, points_, 2});
  const auto w = torch::softmax(weights_->forward(q).view({B, N, heads_, points_}), -1);
  const auto scale = torch::tensor({static_cast<float>(width), static_cast<float>(height)}, q.options());
  const auto loc = ref.view({B, N, 1, 1, 2}) + off / scale;
  if (locations) *locations = loc;
  const auto da = kernels::deform_attn(value, height, width, loc, w);  // [B, N, M·Dh]
  q = norm2_->forward(q + drop_->forward(out_proj_->forward(da)));
  const auto ffn = ffn2_->forward(drop_->forward(torch::relu(ffn1_->forward(q))));
  return norm3_->forward(q + drop_->forward(ffn));
}

QueryDecoderImpl::QueryDecoderImpl(QueryDecoderConfig cfg, BevGrid grid) : cfg_(std::move(cfg)), grid_(std::move(grid)) {
  cfg_.validate();
  grid_.validate("query decoder grid");
  const int64_t D = cfg_.embed_dims;
  value_proj_ = register_module("value_proj", torch::nn::Linear(cfg_.in_channels, D));
  ref_proj_ = register_module("reference_points", torch::nn::Linear(D, 2));
  query_ = register_module("query_embedding", torch::nn::Embedding(cfg_.num_queries, D));
  pos_ = register_module("query_pos", torch::nn::Embedding(cfg_.num_queries, D));
  layers_ = register_module("layers", torch::nn::ModuleList());
  cls_ = register_module("cls_branches", torch::nn::ModuleList());
  reg_ = register_module("reg_branches", torch::nn::ModuleList());
  const double prior = 0.01, bias = -std::log((1 - prior) / prior);  // focal-loss prior for the class logits
  for (int64_t l = 0; l < cfg_.num_layers; ++l) {
    layers_->push_back(QueryDecoderLayer(cfg_));
    torch::nn::Sequential cls(torch::nn::Linear(D, D), torch::nn::LayerNorm(torch::nn::LayerNormOptions({D})),
                              torch::nn::ReLU(), torch::nn::Linear(D, cfg_.num_classes));
    {
      torch::NoGradGuard g;
      cls[3]->as<torch::nn::Linear>()->bias.fill_(bias);
    }
    cls_->push_back(cls);
    reg_->push_back(torch::nn::Sequential(torch::nn::Linear(D, D), torch::nn::ReLU(), torch::nn::Linear(D, D),
                                          torch::nn::ReLU(), torch::nn::Linear(D, kQueryCodeSize)));
  }
  torch::NoGradGuard g;
  torch::nn::init::xavier_uniform_(value_proj_->weight);
  value_proj_->bias.zero_();
  torch::nn::init::xavier_uniform_(ref_proj_->weight);
  ref_proj_->bias.zero_();
}

QueryDecoderOutput QueryDecoderImpl::forward(const torch::Tensor& bev) {
  BEVKD_CHECK(bev.dim() == 4 && bev.size(1) == cfg_.in_channels && bev.size(2) == grid_.H && bev.size(3) == grid_.W,
              "query decoder: the BEV map has shape ", bev.sizes(), ", expected [B, ", cfg_.in_channels, ", ", grid_.H,
              ", ", grid_.W, "] (its grid)");
  const int64_t B = bev.size(0), H = bev.size(2), W = bev.size(3), M = cfg_.heads, D = cfg_.embed_dims;
  const auto flat = bev.flatten(2).transpose(1, 2);                   // [B, H·W, C], cell r·W + c
  const auto value = value_proj_->forward(flat).view({B, H * W, M, D / M}).contiguous();
  auto q = query_->weight.unsqueeze(0).expand({B, -1, -1});
  const auto pos = pos_->weight.unsqueeze(0).expand({B, -1, -1});
  auto ref = torch::sigmoid(ref_proj_->forward(pos));
  QueryDecoderOutput out;
  for (int64_t l = 0; l < cfg_.num_layers; ++l) {
    torch::Tensor loc;
    q = layers_[static_cast<size_t>(l)]->as<QueryDecoderLayer>()->forward(q, pos, value, H, W, ref, &loc);
    const auto logits = cls_[static_cast<size_t>(l)]->as<torch::nn::Sequential>()->forward(q);
    auto code = reg_[static_cast<size_t>(l)]->as<torch::nn::Sequential>()->forward(q);
    const auto centre = torch::sigmoid(inverse_sigmoid(ref) + code.narrow(-1, 0, 2));
    code = torch::cat({query_locations_to_metres(centre, grid_), code.narrow(-1, 2, kQueryCodeSize - 2)}, -1);
    out.cls_logits.push_back(logits);
    out.codes.push_back(code);
    ref = centre.detach();
    if (l + 1 == cfg_.num_layers) out.locations = loc;
  }
  return out;
}

torch::Tensor encode_query_boxes(const torch::Tensor& boxes) {
  BEVKD_CHECK(boxes.dim() == 2 && boxes.size(1) == 9, "encode_query_boxes: boxes have shape ", boxes.sizes(),
              ", expected [N, 9]");
  const auto b = boxes.to(torch::kFloat32);
  return torch::stack({b.select(1, 0), b.select(1, 1), b.select(1, 2),
                       b.select(1, 3).log(), b.select(1, 4).log(), b.select(1, 5).log(), b.select(1, 6).sin(),
                       b.select(1, 6).cos(), b.select(1, 7), b.select(1, 8)},
                      1);
}

torch::Tensor decode_query_boxes(const torch::Tensor& codes) {
  BEVKD_CHECK(codes.dim() >= 1 && codes.size(-1) == kQueryCodeSize, "decode_query_boxes: codes have shape ",
              codes.sizes(), ", expected [..., 10]");
  auto c = [&](int64_t k) { return codes.select(-1, k); };
  return torch::stack({c(0), c(1), c(2), c(3).exp(), c(4).exp(), c(5).exp(),
                       torch::atan2(c(6), c(7)), c(8), c(9)},
                      -1);
}

torch::Tensor query_locations_to_metres(const torch::Tensor& locations, const BevGrid& grid) {
  const double sx = grid.x_max() - grid.x_min(), sy = grid.y_max() - grid.y_min();
  return torch::stack({locations.select(-1, 0) * sx + grid.x_min(), locations.select(-1, 1) * sy + grid.y_min()}, -1);
}

}  // namespace bevkd::core::nn

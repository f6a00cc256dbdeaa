// A DETR-style query decoder over one BEV map (Deformable DETR's decoder restricted to a single
// feature level, with iterative box refinement as in DETR3D / BEVFormer): FD3D's distillation
// head (spec/losses.md §6) runs it on the stored teacher map, and a query-based detection head
// can run it on a student's map. Each of the L layers:
//
//   q ← LN(q + Dropout(SelfAttn(q + pos, q + pos, q)))                 (nn::MultiheadAttention)
//   Δp = Linear(q) → [M, K, 2] cells; a = softmax_K(Linear(q) → [M, K])
//   q ← LN(q + Dropout(Linear(deform_attn(V, ref + Δp / (W, H), a))))    (kernels/deform_attn.h)
//   q ← LN(q + Dropout(FFN(q)))
//   logits_l = cls_l(q) [Q, num_classes]; r = reg_l(q) [Q, 10]
//   centre_l = σ(σ⁻¹(ref) + r[0:2]) in [0, 1] of the grid; ref ← centre_l.detach()  (next layer's)
//   code_l = (x_min + centre_x·(x_max − x_min), y_min + centre_y·(y_max − y_min), r[2:10])
//
// V = Linear(map) split into M heads; the initial reference points are σ(Linear(pos)), pos and
// the query content are learned embeddings of N queries.
//
// Box code (per query, float32): (x, y, z, log l, log w, log h, sin yaw, cos yaw, vx, vy) with the
// centre x, y, z in metres (ego frame), l, w, h in metres, yaw counter-clockwise from +x,
// velocity in m/s — the CenterHead's quantities with an absolute centre, as BEVDistill's and
// DETR3D's heads regress it (an L1 loss in metres weighs the centre as it should).
// encode_query_boxes() / decode_query_boxes() convert to and from bevkd's Box (DESIGN.md).
#pragma once

#include <torch/nn/module.h>
#include <torch/nn/modules/activation.h>
#include <torch/nn/modules/container/modulelist.h>
#include <torch/nn/modules/container/sequential.h>
#include <torch/nn/modules/dropout.h>
#include <torch/nn/modules/embedding.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/modules/normalization.h>
#include <torch/types.h>

#include <cstdint>
#include <string>
#include <vector>

#include "base/bev_grid.h"
#include "core/nuscenes_vocab.h"

namespace bevkd::core::nn {

constexpr int64_t kQueryCodeSize = 10;

struct QueryDecoderConfig {
  int64_t in_channels = 256;   // channels of the BEV map the decoder reads
  int64_t num_queries = 300;   // N
  int64_t embed_dims = 256;    // D
  int64_t num_layers = 3;      // L
  int64_t self_attn_heads = 8;
  int64_t heads = 8;           // M: deformable-attention heads
  int64_t points = 4;          // K: sampling points per head
  int64_t ffn_dims = 512;
  double dropout = 0.1;
  int num_classes = kNumClasses;
  bool with_velocity = true;   // code dims 8, 9 (vx, vy) are predicted and trained

  void validate(const std::string& where = "query decoder") const;
  template <class V>
  void fields(V& v) {
    v("in_channels", in_channels);
    v("num_queries", num_queries);
    v("embed_dims", embed_dims);
    v("num_layers", num_layers);
    v("self_attn_heads", self_attn_heads);
    v("heads", heads);
    v("points", points);
    v("ffn_dims", ffn_dims);
    v("dropout", dropout);
    v("num_classes", num_classes);
    v("with_velocity", with_velocity);
  }
};

struct QueryDecoderOutput {
  std::vector<torch::Tensor> cls_logits;  // per layer [B, N, num_classes] float32
  std::vector<torch::Tensor> codes;       // per layer [B, N, 10] float32 (box code, see above)
  torch::Tensor locations;                // last layer's sampling points [B, N, M, K, 2], (x, y) in [0, 1] of the map
};

class QueryDecoderLayerImpl : public torch::nn::Module {
 public:
  explicit QueryDecoderLayerImpl(const QueryDecoderConfig& c);
  // q, pos [B, N, D]; value [B, H·W, M, D/M]; ref [B, N, 2] in [0, 1]. Returns q' and, in
  // *locations, the sampling points [B, N, M, K, 2].
  torch::Tensor forward(const torch::Tensor& q, const torch::Tensor& pos, const torch::Tensor& value, int64_t height,
                        int64_t width, const torch::Tensor& ref, torch::Tensor* locations);

 private:
  int64_t heads_, points_;
  torch::nn::MultiheadAttention self_attn_{nullptr};
  torch::nn::Linear offsets_{nullptr}, weights_{nullptr}, out_proj_{nullptr}, ffn1_{nullptr}, ffn2_{nullptr};
  torch::nn::LayerNorm norm1_{nullptr}, norm2_{nullptr}, norm3_{nullptr};
  torch::nn::Dropout drop_{nullptr};
};
TORCH_MODULE(QueryDecoderLayer);

class QueryDecoderImpl : public torch::nn::Module {
 public:
  // grid: the BEV map's grid (the reference points span its x-y range).
  QueryDecoderImpl(QueryDecoderConfig cfg, BevGrid grid);
  // bev [B, in_channels, H, W] float32 on the grid (row ↔ y, column ↔ x).
  QueryDecoderOutput forward(const torch::Tensor& bev);
  const QueryDecoderConfig& config() const { return cfg_; }

 private:
  QueryDecoderConfig cfg_;
  BevGrid grid_;
  torch::nn::Linear value_proj_{nullptr}, ref_proj_{nullptr};
  torch::nn::Embedding query_{nullptr}, pos_{nullptr};
  torch::nn::ModuleList layers_{nullptr}, cls_{nullptr}, reg_{nullptr};
};
TORCH_MODULE(QueryDecoder);

// Box code <-> Box. boxes [N, 9] float (ego frame, Box) -> codes [N, 10]; codes [..., 10] -> [..., 9].
torch::Tensor encode_query_boxes(const torch::Tensor& boxes);
torch::Tensor decode_query_boxes(const torch::Tensor& codes);
// Sampling points in [0, 1] of the map [..., 2] -> (x, y) in metres (ego frame) on `grid`.
torch::Tensor query_locations_to_metres(const torch::Tensor& locations, const BevGrid& grid);

}  // namespace bevkd::core::nn

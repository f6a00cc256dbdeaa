#include "core/nn/second.h"

#include <torch/nn/init.h>
#include <torch/nn/modules/activation.h>
#include <torch/nn/modules/batchnorm.h>
#include <torch/nn/modules/container/sequential.h>
#include <torch/nn/modules/conv.h>

#include <cmath>

#include "base/error.h"

namespace bevkd::core::nn {

void kaiming_fan_out_(torch::Tensor& weight) {
  torch::NoGradGuard no_grad;
  torch::nn::init::kaiming_normal_(weight, 0.0, torch::kFanOut, torch::kReLU);
}

void SecondConfig::validate(const std::string& where) const {
  BEVKD_CHECK(!out_channels.empty(), where, ": out_channels is empty");
  BEVKD_CHECK(layer_nums.size() == out_channels.size() && layer_strides.size() == out_channels.size(), where,
              ": out_channels (", out_channels.size(), "), layer_nums (", layer_nums.size(), ") and layer_strides (",
              layer_strides.size(), ") must have one length");
  for (size_t i = 0; i < out_channels.size(); ++i) {
    BEVKD_CHECK(out_channels[i] > 0, where, ": out_channels[", i, "] must be positive, got ", out_channels[i]);
    BEVKD_CHECK(layer_nums[i] >= 0, where, ": layer_nums[", i, "] must be >= 0, got ", layer_nums[i]);
    BEVKD_CHECK(layer_strides[i] >= 1, where, ": layer_strides[", i, "] must be >= 1, got ", layer_strides[i]);
  }
}

int64_t SecondConfig::total_stride() const {
  int64_t s = 1;
  for (auto x : layer_strides) s *= x;
  return s;
}

void SecondFpnConfig::validate(const std::string& where) const {
  BEVKD_CHECK(!out_channels.empty() && out_channels.size() == upsample_strides.size(), where, ": out_channels (",
              out_channels.size(), ") and upsample_strides (", upsample_strides.size(),
              ") must be non-empty and of one length");
  for (size_t i = 0; i < out_channels.size(); ++i) {
    BEVKD_CHECK(out_channels[i] > 0, where, ": out_channels[", i, "] must be positive, got ", out_channels[i]);
    const double s = upsample_strides[i];
    const bool up_ok = s >= 1 && s == std::floor(s);
    const bool down_ok = s > 0 && s < 1 && std::fabs(1.0 / s - std::round(1.0 / s)) < 1e-9;
    BEVKD_CHECK(up_ok || down_ok, where, ": upsample_strides[", i, "] is ", s,
                ", expected an integer >= 1 or 1/n for an integer n");
  }
}

int64_t SecondFpnConfig::channels() const {
  int64_t c = 0;
  for (auto x : out_channels) c += x;
  return c;
}

SecondBackboneImpl::SecondBackboneImpl(int64_t in_channels, const SecondConfig& cfg, BnOptions bn) {
  cfg.validate("SECOND backbone");
  blocks_ = register_module("blocks", torch::nn::ModuleList());
  int64_t in = in_channels;
  for (size_t i = 0; i < cfg.out_channels.size(); ++i) {
    const int64_t out = cfg.out_channels[i];
    torch::nn::Sequential block;
    auto add_conv = [&](int64_t c_in, int64_t stride) {
      torch::nn::Conv2d conv(torch::nn::Conv2dOptions(c_in, out, 3).stride(stride).padding(1).bias(false));
      kaiming_fan_out_(conv->weight);
      block->push_back(conv);
      block->push_back(torch::nn::BatchNorm2d(torch::nn::BatchNorm2dOptions(out).eps(bn.eps).momentum(bn.momentum)));
      block->push_back(torch::nn::ReLU());
    };
    add_conv(in, cfg.layer_strides[i]);
    for (int64_t j = 0; j < cfg.layer_nums[i]; ++j) add_conv(out, 1);
    blocks_->push_back(block);
    in = out;
  }
}

std::vector<torch::Tensor> SecondBackboneImpl::forward(torch::Tensor x) {
  std::vector<torch::Tensor> outs;
  for (const auto& block : *blocks_) {
    x = block->as<torch::nn::Sequential>()->forward(x);
    outs.push_back(x);
  }
  return outs;
}

SecondFpnImpl::SecondFpnImpl(const std::vector<int64_t>& in_channels, const SecondFpnConfig& cfg, BnOptions bn) {
  cfg.validate("SECONDFPN neck");
  BEVKD_CHECK(in_channels.size() == cfg.out_channels.size(), "SECONDFPN neck: ", in_channels.size(),
              " input levels, ", cfg.out_channels.size(), " deblocks configured");
  deblocks_ = register_module("deblocks", torch::nn::ModuleList());
  for (size_t i = 0; i < cfg.out_channels.size(); ++i) {
    const double s = cfg.upsample_strides[i];
    const int64_t out = cfg.out_channels[i];
    torch::nn::Sequential deblock;
    if (s > 1) {
      const auto k = static_cast<int64_t>(std::llround(s));
      torch::nn::ConvTranspose2d up(torch::nn::ConvTranspose2dOptions(in_channels[i], out, k).stride(k).bias(false));
      kaiming_fan_out_(up->weight);
      deblock->push_back(up);
    } else {
      // mmdet3d use_conv_for_no_stride=True: stride 1 and 1/n become a (1/s)x(1/s) conv.
      const auto k = static_cast<int64_t>(std::llround(1.0 / s));
      torch::nn::Conv2d down(torch::nn::Conv2dOptions(in_channels[i], out, k).stride(k).bias(false));
      kaiming_fan_out_(down->weight);
      deblock->push_back(down);
    }
    deblock->push_back(torch::nn::BatchNorm2d(torch::nn::BatchNorm2dOptions(out).eps(bn.eps).momentum(bn.momentum)));
    deblock->push_back(torch::nn::ReLU());
    deblocks_->push_back(deblock);
  }
}

torch::Tensor SecondFpnImpl::forward(const std::vector<torch::Tensor>& xs) {
  BEVKD_CHECK(xs.size() == deblocks_->size(), "SECONDFPN neck: ", xs.size(), " input levels, expected ",
              deblocks_->size());
  std::vector<torch::Tensor> ups;
  for (size_t i = 0; i < xs.size(); ++i) ups.push_back(deblocks_[i]->as<torch::nn::Sequential>()->forward(xs[i]));
  for (size_t i = 1; i < ups.size(); ++i)
    BEVKD_CHECK(ups[i].size(2) == ups[0].size(2) && ups[i].size(3) == ups[0].size(3), "SECONDFPN neck: level ", i,
                " comes out at ", ups[i].size(2), "x", ups[i].size(3), ", level 0 at ", ups[0].size(2), "x",
                ups[0].size(3), " (check upsample_strides against the backbone strides and the input size)");
  return ups.size() == 1 ? ups[0] : torch::cat(ups, 1);
}

}  // namespace bevkd::core::nn

// `--init FILE`: a user's torchvision ResNet weights into the student's image backbone.
//
// File format read: a zip archive written by Python's `torch.save` holding a plain `dict`
// {str: Tensor} — parameter and buffer names as torchvision's state dict
// (`conv1.weight`, `layer1.0.downsample.1.running_mean`, ...).
//
// Why not the `torch.save(model.state_dict())` file itself: a state dict is a
// `collections.OrderedDict` carrying a `_metadata` attribute, and LibTorch 1.13's unpickler
// (torch::pickle_load) fails on it (an internal assertion "Expected GenericDict but got None";
// checked with Debian's python3-torch 1.13 — an OrderedDict without `_metadata` fails the same
// way), while a plain dict of tensors loads. scripts/convert_torchvision_weights.py turns any
// torchvision checkpoint (a state dict, or a dict holding one under `state_dict` / `model`) into
// that plain dict:
//
//   python3 scripts/convert_torchvision_weights.py resnet50-0676ba61.pth resnet50.bevkd.pt
//   bevkd-train train --init resnet50.bevkd.pt ...
//
// Loading rules: every parameter and buffer of the backbone must be in the file with the same
// shape; the file may also hold the classifier (`fc.*`) and the stages the backbone does not build
// (`layer4.*` for a 3-stage backbone), which are skipped and reported; any other key is an error.
// Errors name the file, the key and both shapes; the backbone is untouched when anything fails.
#pragma once

#include <string>
#include <vector>

#include "core/nn/checkpoint.h"
#include "train/student/resnet.h"

namespace bevkd::train::student {

// Reads a weights file (see above): name -> tensor (CPU), in the file's order. Throws
// bevkd::Error naming the file when it cannot be read, is not a dict of tensors (naming the first
// entry that is not), or is an unconverted state dict (the message names the converter script).
core::nn::NamedTensors read_weights_file(const std::string& path);

struct InitReport {
  int64_t loaded = 0;                // parameters and buffers copied
  std::vector<std::string> skipped;  // file keys skipped (classifier, stages not built)
};

// Copies `state` (torchvision names) into `net`. `source` names the origin in errors ("weights
// file resnet50.bevkd.pt"). Floating-point values are converted to the parameter's dtype.
InitReport load_torchvision_weights(ResNetImpl& net, const core::nn::NamedTensors& state, const std::string& source);
// read_weights_file + load_torchvision_weights.
InitReport load_torchvision_weights(ResNetImpl& net, const std::string& path);

}  // namespace bevkd::train::student

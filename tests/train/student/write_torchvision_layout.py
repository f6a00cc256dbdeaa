#!/usr/bin/env python3
"""Writes torchvision-layout ResNet weights the way a user's file is written, plus reference
outputs, for the student's --init tests (tests/train/student/torchvision_init_test.cpp).

torchvision may be absent, so the model is torchvision's ResNet rebuilt from plain torch.nn
modules with torchvision's attribute names, order and forward (torchvision/models/resnet.py:
conv1, bn1, relu, maxpool, layer1..layer4 of BasicBlock / Bottleneck (stride on the 3x3, "v1.5")
with conv1/bn1/conv2/bn2[/conv3/bn3]/downsample, avgpool, fc). `width` (64 in torchvision) only
scales the channels, for a small Bottleneck network.

Writes, for OUT:
  OUT                 torch.save(resnet18.state_dict()) — an OrderedDict with _metadata, exactly as
                      users have it (seeded random parameters and BN statistics)
  OUT.json            per key of OUT: shape, dtype, float64 sum, first and last value
  OUT.layouts.json    the state-dict keys and shapes, in order, of ResNet-18, -34 and -50
  OUT.forward.pt      a plain dict (LibTorch-readable): "input" [2, 3, 64, 96]; "r18.out{1..4}" the
                      ResNet-18 stage outputs for it (eval mode, OUT's weights); "r50w16.<key>" the
                      weights of a ResNet-50 at width 16 and "r50w16.out{1..4}" its stage outputs

Usage: write_torchvision_layout.py OUT
"""
import json
import math
import sys

import torch
from torch import nn


class BasicBlock(nn.Module):
    expansion = 1

    def __init__(self, inplanes, planes, stride=1, downsample=None):
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = downsample

    def forward(self, x):
        identity = x
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        if self.downsample is not None:
            identity = self.downsample(x)
        return self.relu(out + identity)


class Bottleneck(nn.Module):
    expansion = 4

    def __init__(self, inplanes, planes, stride=1, downsample=None):
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, planes * 4, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(planes * 4)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x):
        identity = x
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        if self.downsample is not None:
            identity = self.downsample(x)
        return self.relu(out + identity)


class ResNet(nn.Module):
    def __init__(self, block, layers, width=64, num_classes=1000):
        super().__init__()
        self.inplanes = width
        self.conv1 = nn.Conv2d(3, width, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        self.layer1 = self._make_layer(block, width, layers[0])
        self.layer2 = self._make_layer(block, width * 2, layers[1], 2)
        self.layer3 = self._make_layer(block, width * 4, layers[2], 2)
        self.layer4 = self._make_layer(block, width * 8, layers[3], 2)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(width * 8 * block.expansion, num_classes)

    def _make_layer(self, block, planes, blocks, stride=1):
        downsample = None
        if stride != 1 or self.inplanes != planes * block.expansion:
            downsample = nn.Sequential(
                nn.Conv2d(self.inplanes, planes * block.expansion, 1, stride, bias=False),
                nn.BatchNorm2d(planes * block.expansion),
            )
        layers = [block(self.inplanes, planes, stride, downsample)]
        self.inplanes = planes * block.expansion
        for _ in range(1, blocks):
            layers.append(block(self.inplanes, planes))
        return nn.Sequential(*layers)

    def stages(self, x):
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        outs = []
        for layer in (self.layer1, self.layer2, self.layer3, self.layer4):
            x = layer(x)
            outs.append(x)
        return outs


def build(depth, width=64):
    if depth == 18:
        return ResNet(BasicBlock, [2, 2, 2, 2], width)
    if depth == 34:
        return ResNet(BasicBlock, [3, 4, 6, 3], width)
    if depth == 50:
        return ResNet(Bottleneck, [3, 4, 6, 3], width)
    raise SystemExit(f"unsupported depth {depth}")


def randomise(model):
    """Seeded values with activations of moderate size: kaiming-scaled convs, BN near identity."""
    with torch.no_grad():
        for name, t in model.state_dict().items():
            if name.endswith("num_batches_tracked"):
                t.fill_(len(name))
            elif name.endswith("running_var"):
                t.uniform_(0.5, 1.5)
            elif name.endswith("running_mean") or name.endswith(".bias"):
                t.normal_(0.0, 0.1)
            elif t.dim() == 4:
                t.normal_(0.0, math.sqrt(2.0 / (t.shape[1] * t.shape[2] * t.shape[3])))
            elif t.dim() == 2:
                t.normal_(0.0, 0.01)
            else:  # BN weight
                t.uniform_(0.5, 1.0)
    return model.eval()


def main():
    if len(sys.argv) != 2:
        raise SystemExit(__doc__)
    out = sys.argv[1]
    torch.manual_seed(1234)

    r18 = randomise(build(18))
    state = r18.state_dict()
    torch.save(state, out)
    info = {}
    for name, t in state.items():
        flat = t.reshape(-1)
        info[name] = {
            "shape": list(t.shape),
            "dtype": str(t.dtype).replace("torch.", ""),
            "sum": float(flat.double().sum()),
            "first": float(flat[0]),
            "last": float(flat[-1]),
        }
    with open(out + ".json", "w") as f:
        json.dump({"keys": list(state.keys()), "tensors": info}, f)

    # Names and shapes only: skip the (slow) default initialisation of ResNet-34/50.
    resets = (nn.Conv2d.reset_parameters, nn.Linear.reset_parameters)
    nn.Conv2d.reset_parameters = nn.Linear.reset_parameters = lambda self: None
    layouts = {}
    for depth in (18, 34, 50):
        layouts[str(depth)] = [[k, list(v.shape)] for k, v in build(depth).state_dict().items()]
    nn.Conv2d.reset_parameters, nn.Linear.reset_parameters = resets
    with open(out + ".layouts.json", "w") as f:
        json.dump(layouts, f)

    r50 = randomise(build(50, width=16))
    x = torch.randn(2, 3, 64, 96)
    ref = {"input": x}
    with torch.no_grad():
        for i, o in enumerate(r18.stages(x)):
            ref[f"r18.out{i + 1}"] = o
        for i, o in enumerate(r50.stages(x)):
            ref[f"r50w16.out{i + 1}"] = o
    for k, v in r50.state_dict().items():
        ref["r50w16." + k] = v
    torch.save({k: v.contiguous() for k, v in ref.items()}, out + ".forward.pt")


if __name__ == "__main__":
    main()

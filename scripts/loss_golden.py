#!/usr/bin/python3
"""Golden cases for `bevkd-train loss-probe`: the formulas of spec/losses.md transcribed in PyTorch.

Usage: /usr/bin/python3 scripts/loss_golden.py OUT_DIR [--family NAME ...] [--seed N]

Writes one case directory per case under OUT_DIR (families: gaussian, dense, box, infonce,
heatmap, hungarian, npy, part2 = TiG-BEV/CWD/MGD/FGD/FitNet from loss_golden_part2.py, fd3d, x3kd (the spec's
own definitions §5, §6); default all):

    OUT_DIR/<case>/<input>.npy, params.json     what loss-probe reads (spec/loss_probe.md)
    OUT_DIR/<case>/case.json                    {"loss", "grad", "dtype", "rtol", "atol"}
    OUT_DIR/<case>/expected/values.json         {"values": {KEY: number}}
    OUT_DIR/<case>/expected/<file>.npy          expected gradients and debug arrays

plus OUT_DIR/hungarian.json (scipy's linear_sum_assignment on matrices with ties),
OUT_DIR/npy/ (the same arrays saved in .npy format versions 1.0, 2.0 and 3.0), and
OUT_DIR/COMPLETE (the families written) once everything is written.

Everything here is written from the spec's text, in the reference code's own conventions
(mmdet3d v0.17 boxes x, y, z, dx, dy, dz, yaw, vx, vy; BEVDistill's normalize_bbox layout), not
from bevkd's C++: agreement tests both the losses and loss-probe's conversions. Needs Debian's
python3-torch, python3-scipy and python3-numpy.
"""
import argparse
import json
import math
import os
import sys

import numpy as np
import torch
import torch.nn.functional as F
from scipy.optimize import linear_sum_assignment

F32 = torch.float32
F64 = torch.float64

# Tolerances per compute dtype (values and gradients; arrays scaled by their largest entry).
TOL = {"float32": {"rtol": 2e-5, "atol": 1e-6}, "float64": {"rtol": 1e-10, "atol": 1e-12}}


# ---- writing cases -------------------------------------------------------------------------

def save(path, t):
    a = t.detach().cpu().numpy() if isinstance(t, torch.Tensor) else np.asarray(t)
    np.save(path, np.ascontiguousarray(a))


def write_case(root, name, loss, inputs, params, values, grads=None, debug=None, dtype="float32", grad=True):
    d = os.path.join(root, name)
    os.makedirs(os.path.join(d, "expected"), exist_ok=True)
    for k, v in inputs.items():
        save(os.path.join(d, k + ".npy"), v)
    if params is not None:
        with open(os.path.join(d, "params.json"), "w") as f:
            json.dump(params, f)
    with open(os.path.join(d, "case.json"), "w") as f:
        json.dump(dict(loss=loss, grad=grad and bool(grads), dtype=dtype, **TOL[dtype]), f)
    with open(os.path.join(d, "expected", "values.json"), "w") as f:
        json.dump({"values": {k: float(v) for k, v in values.items()}}, f)
    for k, v in (grads or {}).items():
        save(os.path.join(d, "expected", k + ".npy"), v.to(F64))
    for k, v in (debug or {}).items():
        save(os.path.join(d, "expected", k + ".npy"), v)


# ---- spec §2: mmdet3d gaussian_radius / draw_heatmap_gaussian -------------------------------

def gaussian_radius(height, width, min_overlap):
    """float32 tensors in, float32 tensor out; all roots divided by 2 (CornerNet quirk)."""
    o = min_overlap
    b1 = height + width
    c1 = width * height * (1 - o) / (1 + o)
    r1 = (b1 + torch.sqrt(b1 ** 2 - 4 * 1 * c1)) / 2
    b2 = 2 * (height + width)
    c2 = (1 - o) * width * height
    r2 = (b2 + torch.sqrt(b2 ** 2 - 4 * 4 * c2)) / 2
    a3 = 4 * o
    b3 = -2 * o * (height + width)
    c3 = (o - 1) * width * height
    r3 = (b3 + torch.sqrt(b3 ** 2 - 4 * a3 * c3)) / 2
    return min(r1, r2, r3)


def gaussian_kernel(radius):
    d = 2 * radius + 1
    sigma = d / 6
    m = (d - 1.0) / 2.0
    y, x = np.ogrid[-m:m + 1, -m:m + 1]
    g = np.exp(-(x * x + y * y) / (2 * sigma * sigma))
    g[g < np.finfo(g.dtype).eps * g.max()] = 0
    return g


def draw_gaussian(heat, cx, cy, radius):
    H, W = heat.shape
    g = gaussian_kernel(radius)
    left, right = min(cx, radius), min(W - cx, radius + 1)
    top, bottom = min(cy, radius), min(H - cy, radius + 1)
    window = heat[cy - top:cy + bottom, cx - left:cx + right]
    patch = torch.from_numpy(g[radius - top:radius + bottom, radius - left:radius + right]).to(F32)
    if min(window.shape) > 0 and min(patch.shape) > 0:
        torch.max(window, patch, out=window)


def fg_map(boxes, H, W, pc_min, voxel, osf, min_radius, min_overlap):
    """boxes: (K, 9) mmdet3d v0.17, any float dtype -> float32 (H, W) map and int64 radius per box."""
    heat = torch.zeros(H, W, dtype=F32)
    radii = []
    b32 = boxes.to(F32)
    for k in range(b32.shape[0]):
        width = b32[k, 3] / voxel[0] / osf    # dx (w) over the x voxel
        length = b32[k, 4] / voxel[1] / osf   # dy (l) over the y voxel
        if not (width > 0 and length > 0):
            radii.append(-1)
            continue
        r = max(min_radius, int(gaussian_radius(length, width, min_overlap)))
        radii.append(r)
        coor_x = (b32[k, 0] - pc_min[0]) / voxel[0] / osf
        coor_y = (b32[k, 1] - pc_min[1]) / voxel[1] / osf
        c = torch.stack([coor_x, coor_y]).to(torch.int32)  # truncation toward zero
        cx, cy = int(c[0]), int(c[1])
        if not (0 <= cx < W and 0 <= cy < H):
            continue
        draw_gaussian(heat, cx, cy, r)
    return heat, torch.tensor(radii, dtype=torch.int64)


# ---- random inputs ---------------------------------------------------------------------------

def random_boxes(g, n, x_range, y_range, dtype):
    """n non-square, rotated mmdet3d v0.17 boxes with sizes 0.6-5 m."""
    b = torch.zeros(n, 9, dtype=F64)
    b[:, 0] = torch.empty(n, dtype=F64).uniform_(*x_range, generator=g)
    b[:, 1] = torch.empty(n, dtype=F64).uniform_(*y_range, generator=g)
    b[:, 2] = torch.empty(n, dtype=F64).uniform_(-1, 1, generator=g)
    b[:, 3] = torch.empty(n, dtype=F64).uniform_(0.6, 2.5, generator=g)   # dx = w
    b[:, 4] = torch.empty(n, dtype=F64).uniform_(2.6, 5.0, generator=g)   # dy = l
    b[:, 5] = torch.empty(n, dtype=F64).uniform_(1.0, 2.0, generator=g)
    b[:, 6] = torch.empty(n, dtype=F64).uniform_(-math.pi, math.pi, generator=g)
    b[:, 7:9] = torch.empty(n, 2, dtype=F64).uniform_(-3, 3, generator=g)
    return b.to(dtype)


def randn(g, *shape, dtype=F32):
    return torch.randn(*shape, generator=g, dtype=F64).to(dtype)


# ---- §2 cases ----------------------------------------------------------------------------------

def gaussian_cases(root, g):
    # Non-square voxels, so that the box's dx/dy order matters.
    p = dict(H=40, W=32, pc_min_xy=[-12.8, -20.0], voxel_xy=[0.2, 0.25], out_size_factor=4, min_radius=1)
    boxes = random_boxes(g, 5, (-12, 12), (-19, 19), F64)
    extra = torch.tensor([
        [-12.8 - 0.06 * 0.8, 3.0, 0.0, 1.5, 4.0, 1.5, 0.3, 0, 0],  # coor_x = -0.06: drawn in column 0
        [40.0, 0.0, 0.0, 2.0, 4.5, 1.5, 1.0, 0, 0],                # off the map: radius only
        [1.0, 1.0, 0.0, 0.0, 4.5, 1.5, 0.0, 0, 0],                 # dx = 0: skipped, radius -1
        [boxes[0, 0] + 0.3, boxes[0, 1] - 0.2, 0, 2.2, 4.8, 1.7, -0.7, 0, 0],  # overlaps box 0
        [-6.0, 19.6, 0.5, 3.1, 12.5, 3.5, 2.2, 0, 0],               # a long truck at the top edge: clipped
    ], dtype=F64)
    for name, b, dtype, min_r in (("gaussian_f32", torch.cat([boxes, extra]).to(F32), "float32", 1),
                                  ("gaussian_f64_minr2", torch.cat([boxes, extra]), "float64", 2),
                                  ("gaussian_empty", torch.zeros(0, 9, dtype=F32), "float32", 1)):
        q = dict(p, min_radius=min_r)
        heat, radii = fg_map(b, q["H"], q["W"], q["pc_min_xy"], q["voxel_xy"], q["out_size_factor"], min_r, 0.1)
        write_case(root, name, "gaussian_fg_map", {"boxes": b}, q, {"fg_sum": heat.double().sum()},
                   debug={"fg_map": heat.double(), "radius_per_box": radii}, dtype=dtype, grad=False)


# ---- §3.1 dense ------------------------------------------------------------------------------

def dense_loss(s, t, fg, weight):
    f = fg.to(s.dtype)[:, None]
    den = f.sum()
    unweighted = ((s - t) ** 2 * f).sum() / den if den > 0 else ((s - t) ** 2 * f).sum()
    return unweighted, weight * unweighted


def dense_cases(root, g):
    for name, dtype in (("dense_fgmap_f64", F64), ("dense_fgmap_f32", F32)):
        s = randn(g, 2, 3, 5, 6, dtype=dtype).requires_grad_()
        t = randn(g, 2, 3, 5, 6, dtype=dtype)
        fg = torch.rand(2, 5, 6, generator=g, dtype=F64).to(dtype)
        fg[1] = 0  # a sample without foreground adds 0
        u, w = dense_loss(s, t, fg, 0.01)
        w.backward()
        write_case(root, name, "bevdistill_dense", {"s_feat": s, "t_feat": t, "fg_map": fg}, None,
                   {"bev_fit_loss_unweighted": u, "bev_fit_loss": w}, {"grad_s_feat": s.grad},
                   dtype=str(dtype).split(".")[1])
    # fg drawn from boxes: grid [nx, ny] = [128, 96] voxels of 0.1 m, stride 8 -> H, W = 12, 16.
    for name, dtype, weight in (("dense_boxes_f32", F32, 0.01), ("dense_boxes_f64", F64, 0.3)):
        H, W = 12, 16
        pc = [-6.4, -4.8, -5.0, 6.4, 4.8, 3.0]
        s = randn(g, 2, 4, H, W, dtype=dtype).requires_grad_()
        t = randn(g, 2, 4, H, W, dtype=dtype)
        boxes = [random_boxes(g, 3, (-6, 6), (-4.5, 4.5), dtype), torch.zeros(0, 9, dtype=dtype)]
        fg = torch.stack([fg_map(b, H, W, pc[:2], [0.1, 0.1], 8, 1, 0.1)[0] for b in boxes])
        u, w = dense_loss(s, t, fg, weight)
        w.backward()
        params = {"grid_size": [128, 96, 40], "voxel_size": [0.1, 0.1, 0.2], "pc_range": pc, "loss_weight": weight}
        write_case(root, name, "bevdistill_dense", {"s_feat": s, "t_feat": t, "boxes_b0": boxes[0],
                                                      "boxes_b1": boxes[1]}, params,
                   {"bev_fit_loss_unweighted": u, "bev_fit_loss": w}, {"grad_s_feat": s.grad},
                   dtype=str(dtype).split(".")[1])


# ---- §3.2 box distillation ---------------------------------------------------------------------

def normalize_bbox(b):
    """BEVDistill normalize_bbox of mmdet3d v0.17 boxes (x, y, z, w, l, h, yaw, vx, vy)."""
    return torch.cat([b[:, 0:2], b[:, 3:4].log(), b[:, 4:5].log(), b[:, 2:3], b[:, 5:6].log(),
                      b[:, 6:7].sin(), b[:, 6:7].cos(), b[:, 7:9]], dim=1)


def box_distill(cls_logits, bbox_preds, t_boxes, t_scores, p):
    L, B, Q, _ = bbox_preds.shape
    cw = torch.tensor(p["code_weights"], dtype=bbox_preds.dtype)
    layers, matches = [], {}
    for l in range(L):
        targets, weights, scores = [], [], []
        for b in range(B):
            tb, ts = t_boxes[b], t_scores[b]
            tgt = torch.zeros(Q, 9, dtype=bbox_preds.dtype)   # unmatched rows: log 0 -> dropped
            wgt = torch.zeros(Q, 10, dtype=bbox_preds.dtype)
            sc = torch.zeros(Q, dtype=bbox_preds.dtype)
            r = c = np.zeros(0, dtype=np.int64)
            if tb.shape[0] > 0 and Q > 0:
                x = cls_logits[l, b].detach().to(F32)
                pr = bbox_preds[l, b].detach().to(F32)
                tk = ts.to(F32)
                pos = F.binary_cross_entropy_with_logits(x, torch.ones_like(x), reduction="none")
                neg = F.binary_cross_entropy_with_logits(x, torch.zeros_like(x), reduction="none")
                cls_cost = torch.einsum("nc,mc->nm", pos, tk) + torch.einsum("nc,mc->nm", neg, 1 - tk)
                reg_cost = torch.cdist(pr[:, :8], normalize_bbox(tb).to(F32)[:, :8], p=1)
                cost = p["cls_cost_weight"] * cls_cost + p["reg_cost_weight"] * reg_cost
                r, c = linear_sum_assignment(cost.numpy())
                s = ts.max(1).values
                tgt[r] = tb[c]
                wgt[r] = 1.0
                sc[r] = s[c]
            matches[(l, b)] = np.stack([r, c], axis=1).astype(np.int64) if len(r) else np.zeros((0, 2), np.int64)
            targets.append(tgt)
            weights.append(wgt)
            scores.append(sc)
        tgt = normalize_bbox(torch.cat(targets))
        score = torch.cat(scores)
        w = torch.cat(weights) * score[:, None]     # score_reweight: the weight times s ...
        w = w * cw * score[:, None]                 # ... and times s again
        norm = score.sum()
        ok = torch.isfinite(tgt).all(-1)
        pred = bbox_preds[l].reshape(B * Q, 10)
        loss = p["loss_weight_l1"] * (w[ok] * (pred[ok] - tgt[ok]).abs()).sum() / norm
        layers.append(torch.nan_to_num(loss))
    return sum(layers), layers, matches


def box_cases(root, g):
    specs = [
        ("box_f32", F32, 2, 6, [4, 0], None),
        ("box_f64_rect", F64, 3, 3, [5, 2], None),  # K > Q in sample 0, K < Q in sample 1
        ("box_f64_codeweights", F64, 2, 5, [3, 4], [1, 0.5, 2, 0.7, 1, 1.5, 0.3, 1.2, 0.2, 0.4]),
    ]
    for name, dtype, L, Q, Ks, cw in specs:
        B, C = len(Ks), 10
        cls = randn(g, L, B, Q, C, dtype=dtype)
        t_boxes = [random_boxes(g, k, (-40, 40), (-40, 40), dtype) for k in Ks]
        # Predictions near the teacher boxes so that the matching is meaningful.
        preds = randn(g, L, B, Q, 10, dtype=dtype) * 0.5
        for b, tb in enumerate(t_boxes):
            if tb.shape[0]:
                idx = torch.randint(0, tb.shape[0], (L, Q), generator=g)
                preds[:, b] += normalize_bbox(tb)[idx]
        preds.requires_grad_()
        t_scores = [torch.rand(k, C, generator=g, dtype=F64).to(dtype) for k in Ks]
        params = {"code_weights": cw or [1, 1, 1, 1, 1, 1, 1, 1, 0.2, 0.2], "loss_weight_l1": 0.25,
                  "cls_cost_weight": 1.0, "reg_cost_weight": 0.25}
        total, layers, matches = box_distill(cls, preds, t_boxes, t_scores, params)
        total.backward()
        inputs = {"cls_logits": cls, "bbox_preds": preds}
        for b in range(B):
            inputs[f"t_boxes_b{b}"] = t_boxes[b]
            inputs[f"t_scores_b{b}"] = t_scores[b]
        values = {"loss_bbox_distill_total": total}
        values.update({f"layer{l}": v for l, v in enumerate(layers)})
        debug = {f"match_l{l}_b{b}": torch.from_numpy(m) for (l, b), m in matches.items()}
        write_case(root, name, "bevdistill_box_distill", inputs,
                   dict(params, teacher_topk_in_release=50) if cw is None else params, values,
                   {"grad_bbox_preds": preds.grad}, debug, dtype=str(dtype).split(".")[1])


# ---- §3.3 InfoNCE ------------------------------------------------------------------------------

class Head(torch.nn.Module):
    def __init__(self, c, m, dtype):
        super().__init__()
        self.proj = torch.nn.Linear(c, m).to(dtype)
        self.enc1 = torch.nn.Linear(m, m).to(dtype)
        self.bn = torch.nn.BatchNorm1d(m, eps=1e-5).to(dtype)
        self.enc2 = torch.nn.Linear(m, m).to(dtype)

    def forward(self, x):
        return F.normalize(self.enc2(F.relu(self.bn(self.enc1(self.proj(x))))), dim=1)


def infonce_cases(root, g):
    for name, dtype in (("infonce_f32", F32), ("infonce_f64", F64)):
        B, C, H, W, L, Q, M = 2, 4, 5, 7, 2, 5, 8
        torch.manual_seed(int(torch.randint(0, 1 << 30, (1,), generator=g)))
        s = randn(g, B, C, H, W, dtype=dtype).requires_grad_()
        t = randn(g, B, C, H, W, dtype=dtype)
        points = (torch.rand(L, B, Q, 2, generator=g, dtype=F64) * 2.4 - 1.2).to(dtype)  # some outside [-1, 1]
        img, pts = Head(C, M, dtype), Head(C, M, dtype)
        with torch.no_grad():
            for h in (img, pts):
                h.bn.weight.uniform_(0.5, 1.5)
                h.bn.bias.uniform_(-0.2, 0.2)
        img.train()
        pts.train()
        grid = points.permute(1, 0, 2, 3)
        fs = F.grid_sample(s, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
        ft = F.grid_sample(t, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
        fs = fs.permute(0, 2, 3, 1).reshape(B * L * Q, C)
        ft = ft.permute(0, 2, 3, 1).reshape(B * L * Q, C)
        logits = pts(ft) @ img(fs).t() / 0.07
        unweighted = F.cross_entropy(logits, torch.arange(B * L * Q))
        loss = 0.2 * unweighted
        loss.backward()
        inputs = {"s_bev": s, "t_bev": t, "sampling_points": points}
        for prefix, h in (("img_", img), ("pts_", pts)):
            inputs.update({prefix + "proj_w": h.proj.weight, prefix + "proj_b": h.proj.bias,
                           prefix + "enc1_w": h.enc1.weight, prefix + "enc1_b": h.enc1.bias,
                           prefix + "bn_g": h.bn.weight, prefix + "bn_b": h.bn.bias,
                           prefix + "enc2_w": h.enc2.weight, prefix + "enc2_b": h.enc2.bias})
        write_case(root, name, "bevdistill_infonce", inputs, {"bn": True, "mid_channels": M},
                   {"relation_distill_loss_unweighted": unweighted, "relation_distill_loss": loss},
                   {"grad_s_bev": s.grad}, dtype=str(dtype).split(".")[1])


# ---- §6 HeatmapDistiller -----------------------------------------------------------------------

def heatmap_cases(root, g):
    # Heat-map grid [nx, ny] = [64, 48] voxels of 0.4 m, stride 4 -> 12 x 16 (H x W), resized to 10 x 10.
    for name, dtype, given_mask in (("heatmap_boxes_f32", F32, False), ("heatmap_boxes_f64", F64, False),
                                    ("heatmap_mask_f64", F64, True)):
        B, C, H, W = 2, 3, 10, 10
        pc = [-12.8, -9.6, -5.0, 12.8, 9.6, 3.0]
        s = randn(g, B, C, H, W, dtype=dtype).requires_grad_()
        t = randn(g, B, C, H, W, dtype=dtype)
        inputs = {"s_bev": s, "t_bev": t}
        params = {"heatmap_grid": [64, 48], "voxel": [0.4, 0.4], "out_size_factor": 4, "pc_range": pc}
        if given_mask:
            mask = torch.rand(B, 1, H, W, generator=g, dtype=F64).to(dtype)
            inputs["heat_mask"] = mask
        else:
            boxes = [random_boxes(g, 3, (-12, 12), (-9, 9), dtype), torch.zeros(0, 9, dtype=dtype)]
            small = torch.stack([fg_map(b, 12, 16, pc[:2], [0.4, 0.4], 4, 2, 0.1)[0] for b in boxes])[:, None]
            mask = F.interpolate(small, size=(H, W), mode="nearest")
            inputs.update({"boxes_b0": boxes[0], "boxes_b1": boxes[1]})
        m = mask.to(dtype)
        loss = 0.1 * ((s * m - t * m) ** 2).sum() / m.sum()
        loss.backward()
        debug = {} if given_mask else {"heat_mask": mask.double()}
        write_case(root, name, "focaldistiller_bev_l2_heatmap", inputs, params, {"loss": loss},
                   {"grad_s_bev": s.grad}, debug, dtype=str(dtype).split(".")[1])


# ---- §5 X3KD and §6 FD3D (provisional: no released code; the spec's own definitions) ----------

def uniform(g, *shape, dtype=F32):
    return torch.rand(*shape, generator=g, dtype=F64).to(dtype)


def qfd(s, t, positions, rng, weight, adaptor=None):
    """spec §6 eq. 10-14: sample both maps at each focal query's M*K positions, min-max normalise
    each side per query over its M*K*C values, sum of squared differences / N_f."""
    if adaptor is not None:
        s = F.conv2d(s, *adaptor)
    total, nf = s.sum() * 0, 0
    for b, p in enumerate(positions):
        n, m, k, _ = p.shape
        if n == 0:
            continue
        gx = 2 * (p[..., 0] - rng[0]) / (rng[2] - rng[0]) - 1
        gy = 2 * (p[..., 1] - rng[1]) / (rng[3] - rng[1]) - 1
        grid = torch.stack([gx, gy], -1).reshape(1, n, m * k, 2).to(s.dtype)
        fs = F.grid_sample(s[b:b + 1], grid, mode="bilinear", padding_mode="zeros", align_corners=False)[0]
        ft = F.grid_sample(t[b:b + 1], grid, mode="bilinear", padding_mode="zeros", align_corners=False)[0]
        for q in range(n):
            a, c = fs[:, q], ft[:, q]  # [C, M*K]
            a = (a - a.min()) / (a.max() - a.min()).clamp_min(1e-12)
            c = (c - c.min()) / (c.max() - c.min()).clamp_min(1e-12)
            total = total + ((a - c) ** 2).sum()
        nf += n
    return total * 0 if nf == 0 else weight * total / nf


def smgd(s, t, u, region, gen, tau, r, weight):
    """spec §6 eq. 3-9: I^m = I^fg OR I^r (I^fg = 1 - region, I^r = 0 where u < r),
    F = G(S * I^m), loss = weight * tau^2 / C * sum_c sum_i phi(T) log(phi(T) / phi(F)), batch mean."""
    keep = ((1 - region) > 0.5) | (u >= r)
    x = s * keep.to(s.dtype)
    f = F.conv2d(F.relu(F.conv2d(x, gen[0], gen[1], padding=1)), gen[2], gen[3], padding=1)
    B, C, H, W = t.shape
    pt = F.softmax(t.reshape(B, C, H * W) / tau, -1)
    kl = (pt * (torch.log(pt) - F.log_softmax(f.reshape(B, C, H * W) / tau, -1))).sum()
    return weight * tau ** 2 / C * kl / B


def qfl(x, y, beta):
    p = torch.sigmoid(x)
    return -(y - p).abs() ** beta * (y * torch.log(p) + (1 - y) * torch.log(1 - p))


def fd3d_cases(root, g):
    rng = [-8.0, -6.0, 8.0, 6.0]
    for dtype, cs, c, counts in ((F32, 3, 4, (2, 0, 1)), (F64, 3, 4, (2, 0, 1)), (F64, 4, 4, (0, 0, 0)),
                                 (F64, 2, 2, (3, 1, 0))):
        B = len(counts)
        s = randn(g, B, cs, 6, 8, dtype=dtype).requires_grad_()   # student grid 2 m cells
        t = randn(g, B, c, 12, 16, dtype=dtype)                   # teacher grid 1 m cells
        inputs = {"s_bev": s, "t_bev": t}
        adaptor = None
        if cs != c:
            adaptor = (randn(g, c, cs, 1, 1, dtype=dtype), randn(g, c, dtype=dtype) * 0.1)
            inputs.update({"adaptor_w": adaptor[0], "adaptor_b": adaptor[1]})
        positions = []
        for b, n in enumerate(counts):
            # positions mostly inside the range, some past its border (zeros padding)
            p = torch.stack([uniform(g, n, 2, 3, dtype=F64) * 19 - 9.5, uniform(g, n, 2, 3, dtype=F64) * 14 - 7], -1)
            positions.append(p.to(dtype))
            inputs[f"positions_b{b}"] = positions[-1]
        w = 0.001 if c == 4 else 0.5
        loss = qfd(s, t, positions, rng, w, adaptor)
        grads = {}
        if loss.requires_grad:
            loss.backward()
            grads = {"grad_s_bev": s.grad}
        name = f"fd3d_qfd_cs{cs}_c{c}_{'_'.join(map(str, counts))}_{str(dtype).split('.')[1]}"
        write_case(root, name, "fd3d_qfd", inputs, {"bev_range": rng, "loss_weight": w}, {"loss": loss},
                   grads or {"grad_s_bev": torch.zeros_like(s)}, dtype=str(dtype).split(".")[1])
    for dtype, tau, r in ((F32, 2.0, 0.5), (F64, 2.0, 0.5), (F64, 1.0, 0.8)):
        B, cs, c, H, W = 2, 3, 4, 5, 6
        s = randn(g, B, cs, H, W, dtype=dtype).requires_grad_()
        t = randn(g, B, c, H, W, dtype=dtype) * 2
        u = uniform(g, B, 1, H, W, dtype=dtype)
        region = torch.zeros(B, 1, H, W, dtype=dtype)
        region[0, 0, 1:4, 2:5] = 1
        region[1, 0, 0:2, 0:2] = 1
        gen = (randn(g, c, cs, 3, 3, dtype=dtype) * 0.3, randn(g, c, dtype=dtype) * 0.1,
               randn(g, c, c, 3, 3, dtype=dtype) * 0.3, randn(g, c, dtype=dtype) * 0.1)
        loss = smgd(s, t, u, region, gen, tau, r, 0.25)
        loss.backward()
        inputs = {"s": s, "t": t, "u": u, "region": region, "gen_w1": gen[0], "gen_b1": gen[1], "gen_w2": gen[2],
                  "gen_b2": gen[3]}
        write_case(root, f"fd3d_smgd_tau{int(tau)}_{str(dtype).split('.')[1]}", "fd3d_smgd", inputs,
                   {"tau": tau, "mask_ratio": r}, {"loss": loss}, {"grad_s": s.grad}, dtype=str(dtype).split(".")[1])


def x3kd_cases(root, g):
    for dtype in (F32, F64):
        dn = str(dtype).split(".")[1]
        B = 2
        # X-FD: student 3 ch on 4 x 5, teacher 4 ch on 8 x 10 (bilinear resize, then the adaptor).
        s = randn(g, B, 3, 4, 5, dtype=dtype).requires_grad_()
        t = randn(g, B, 4, 8, 10, dtype=dtype)
        aw, ab = randn(g, 4, 3, 1, 1, dtype=dtype), randn(g, 4, dtype=dtype) * 0.1
        up = F.interpolate(s, size=(8, 10), mode="bilinear", align_corners=False)
        xfd = 1.0 * ((F.conv2d(up, aw, ab) - t) ** 2).mean()
        xfd.backward()
        fd_inputs = {"s": s, "t": t, "adaptor_w": aw, "adaptor_b": ab}
        # X-AT
        ls = randn(g, B, 1, 4, 5, dtype=dtype).requires_grad_()
        lt = randn(g, B, 1, 4, 5, dtype=dtype)
        bce = F.binary_cross_entropy_with_logits
        gen = 0.1 * bce(ls, torch.ones_like(ls))
        disc = bce(lt, torch.ones_like(lt)) + bce(ls.detach(), torch.zeros_like(ls))
        gen.backward()
        at_inputs = {"disc_logits_student": ls, "disc_logits_teacher": lt}
        # X-OD: K = 3 classes, R = 4 code dims on 4 x 5; sample 1 has no teacher box; one box below the threshold.
        hm = randn(g, B, 3, 4, 5, dtype=dtype).requires_grad_()
        thm = uniform(g, B, 3, 4, 5, dtype=dtype)
        reg = randn(g, B, 4, 4, 5, dtype=dtype).requires_grad_()
        codes = [randn(g, 3, 4, dtype=dtype), torch.zeros(0, 4, dtype=dtype)]
        cells = [torch.tensor([[0, 0], [3, 4], [1, 2]], dtype=torch.int64), torch.zeros(0, 2, dtype=torch.int64)]
        scores = [torch.tensor([0.9, 0.05, 0.4], dtype=dtype), torch.zeros(0, dtype=dtype)]
        nbox = sum(c.shape[0] for c in codes)
        l_hm = qfl(hm, thm, 2.0).sum() / max(1, nbox)
        num, den = reg.sum() * 0, 0.0
        for b in range(B):
            for j in range(codes[b].shape[0]):
                if scores[b][j] >= 0.1:
                    r_, c_ = cells[b][j].tolist()
                    num = num + scores[b][j] * (reg[b, :, r_, c_] - codes[b][j]).abs().sum()
                    den = den + scores[b][j]
        l_reg = num / max(1e-6, float(den))
        xod = 1.0 * l_hm + 0.25 * l_reg
        xod.backward()
        od_inputs = {"s_hm_logits": hm, "t_hm": thm, "s_reg": reg}
        for b in range(B):
            od_inputs.update({f"t_code_b{b}": codes[b], f"t_cell_b{b}": cells[b], f"t_score_b{b}": scores[b]})
        write_case(root, f"x3kd_all_{dn}", "x3kd", {**fd_inputs, **at_inputs, **od_inputs}, {},
                   {"xfd": xfd, "gen_loss": gen, "disc_loss": disc, "xod_hm": l_hm, "xod_reg": l_reg, "xod": xod},
                   {"grad_s_xfd": s.grad, "grad_disc_logits_student_gen_loss": ls.grad,
                    "grad_s_hm_logits_xod": hm.grad, "grad_s_reg_xod": reg.grad}, dtype=dn)
        write_case(root, f"x3kd_at_only_{dn}", "x3kd", at_inputs, {"w_at": 0.1},
                   {"gen_loss": gen, "disc_loss": disc}, {"grad_disc_logits_student_gen_loss": ls.grad}, dtype=dn)


# ---- scipy's assignments and .npy versions -------------------------------------------------------

def hungarian_cases(root, g):
    cases = []
    for _ in range(300):
        r, c = (int(v) for v in torch.randint(1, 8, (2,), generator=g))
        if len(cases) % 2:
            m = torch.randint(0, 3, (r, c), generator=g).double().numpy()   # many ties
        else:
            m = torch.rand(r, c, generator=g, dtype=F32).double().numpy()
        rows, cols = linear_sum_assignment(m)
        cases.append({"rows": r, "cols": c, "cost": m.ravel().tolist(), "row_ind": rows.tolist(),
                      "col_ind": cols.tolist()})
    with open(os.path.join(root, "hungarian.json"), "w") as f:
        json.dump(cases, f)


def npy_cases(root, g):
    d = os.path.join(root, "npy")
    os.makedirs(d, exist_ok=True)
    arrays = {"f4": np.arange(6, dtype=np.float32).reshape(2, 3) / 7,
              "f8": np.arange(24, dtype=np.float64).reshape(2, 3, 4) / 3,
              "i8": np.array([-3, 0, 1 << 40], dtype=np.int64),
              "empty": np.zeros((0, 9), dtype=np.float32),
              "scalar": np.array(2.5, dtype=np.float64)}
    for name, a in arrays.items():
        for version in ((1, 0), (2, 0), (3, 0)):
            with open(os.path.join(d, f"{name}_v{version[0]}.npy"), "wb") as f:
                np.lib.format.write_array(f, a, version=version)
    np.save(os.path.join(d, "fortran.npy"), np.asfortranarray(np.arange(6, dtype=np.float32).reshape(2, 3)))
    np.save(os.path.join(d, "int32.npy"), np.arange(3, dtype=np.int32))
    np.save(os.path.join(d, "big_endian.npy"), np.arange(3, dtype=">f4"))


def part2_cases(root, g):
    """TiG-BEV, CWD, MGD, FGD and FitNet: the cases of scripts/loss_golden_part2.py (its own seed;
    `g` is unused), written as loss-probe cases. Debug arrays are compared in float64."""
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import loss_golden_part2
    for c in loss_golden_part2.build_cases():
        f64 = any(isinstance(v, torch.Tensor) and v.dtype == F64 for v in c["inputs"].values())
        debug = {k: (v.to(F64) if v.is_floating_point() else v) for k, v in c["debug"].items()}
        write_case(root, c["name"], c["loss"], c["inputs"], c["params"], c["expected"], grads=c["grads"],
                   debug=debug, dtype="float64" if f64 else "float32")


FAMILIES = {"gaussian": gaussian_cases, "dense": dense_cases, "box": box_cases, "infonce": infonce_cases,
            "heatmap": heatmap_cases, "hungarian": hungarian_cases, "npy": npy_cases, "part2": part2_cases,
            "fd3d": fd3d_cases, "x3kd": x3kd_cases}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("out")
    ap.add_argument("--family", action="append", choices=sorted(FAMILIES))
    ap.add_argument("--seed", type=int, default=12)
    a = ap.parse_args()
    os.makedirs(a.out, exist_ok=True)
    torch.set_num_threads(1)
    for fam in a.family or sorted(FAMILIES):
        FAMILIES[fam](a.out, torch.Generator().manual_seed(a.seed + len(fam)))
    with open(os.path.join(a.out, "COMPLETE"), "w") as f:
        f.write("\n".join(a.family or sorted(FAMILIES)) + "\n")
    print(f"loss_golden: wrote {len(os.listdir(a.out)) - 1} entries to {a.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

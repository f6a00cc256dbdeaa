#!/usr/bin/env python3
"""Golden cases for bevkd's distillation losses, part 2 (issue 12): TiG-BEV inner depth and its
depth rasteriser, TiG-BEV inner feature, CWD (KL and FocalDistiller's CE), MGD, FGD, FitNet.

Each loss is a PyTorch transcription of the computation that ../shared/spec/losses.md specifies
(sections 4.1, 4.2, 7.1-7.4), written the way the reference code computes it (mmdet3d v0.17 box
corners, TiG-BEV's get_gt_sample_grid with its 128/127 stretch, FGD's slicing, MGD's where(...)
mask), not a copy of bevkd's C++. Needs Debian's python3-torch (and numpy).

  loss_golden_part2.py --json OUT.json    every case with its inputs, expected values and
                                          gradients, for tests/train/golden_part2_test.cpp
  loss_golden_part2.py --cases DIR        the loss-probe cases (spec/loss_probe.md): one folder per
                                          case with <input>.npy, params.json and expected.json

Deviations from the reference, all documented in spec/losses.md or train/losses/*.h:
  * FGD: a box whose cell extent starts left of / above the map is clipped to the map (the
    reference's Python slicing would wrap the negative start; see fgd.h).
  * Depth rasteriser: the per-pixel order key rank + depth/100 is evaluated in float64 (the
    reference's float32 key can tie neighbouring depths at large ranks).
"""
import argparse
import json
import math
import os
import sys

import numpy as np
import torch
import torch.nn.functional as F


# ---- TiG-BEV inner depth (spec 4.1): TiG_BEV.get_inner_depth_loss -----------------------------

def tig_inner_depth(fg_gt, depth_gt, depth, dbound, inner_depth_weight=1.0):
    B, N, H, W = fg_gt.shape
    depth_prob = depth.softmax(dim=1)
    discrete_depth = torch.arange(*dbound, dtype=depth.dtype).view(1, -1, 1, 1).expand(B * N, -1, H, W)
    depth_estimate = torch.sum(depth_prob * discrete_depth, dim=1)
    fg_gt = fg_gt.reshape(B * N, H, W)
    depth_gt = depth_gt.reshape(B * N, H, W)
    pos_mask = fg_gt > 0
    num_pos = torch.clip(pos_mask.sum(), min=1.0)
    fg_gt = F.one_hot(fg_gt.long()).permute(0, 3, 1, 2)[:, 1:, :, :]
    depth_estimate_fg = fg_gt * (depth_estimate.unsqueeze(1))
    depth_fg_gt = fg_gt * (depth_gt.unsqueeze(1))
    depth_dis = torch.abs(depth_estimate_fg - depth_fg_gt) + 99 * (1 - fg_gt)
    ind = depth_dis.view(B * N, -1, H * W).argmin(-1, keepdim=True)
    est_min = fg_gt * (depth_estimate_fg.view(B * N, -1, H * W).gather(-1, ind)).view(B * N, -1, 1, 1)
    gt_min = fg_gt * (depth_fg_gt.view(B * N, -1, H * W).gather(-1, ind)).view(B * N, -1, 1, 1)
    diff_pred = depth_estimate - est_min.sum(1).detach()
    diff_gt = depth_gt - gt_min.sum(1)
    return torch.sum(F.mse_loss(diff_pred, diff_gt.detach(), reduction='none') * pos_mask) / num_pos * inner_depth_weight


# ---- TiG-BEV depth maps: PointToMultiViewDepthWithGTIndex.points2map -------------------------

def tig_points2map(points_label, points, height, width, downsample, dbound):
    """points [P,3] (u, v, depth) after the image augmentation; points_label [K,P] in {0,1}."""
    height, width = height // downsample, width // downsample
    depth_map = torch.zeros((height, width), dtype=torch.float32)
    coor = torch.round(points[:, :2] / downsample)
    depth = points[:, 2]
    kept1 = (coor[:, 0] >= 0) & (coor[:, 0] < width) & (coor[:, 1] >= 0) & (coor[:, 1] < height) \
        & (depth < dbound[1]) & (depth >= dbound[0])
    points_label, coor, depth = points_label[:, kept1], coor[kept1], depth[kept1]
    ranks = coor[:, 0] + coor[:, 1] * width
    sort = (ranks.double() + depth.double() / 100.).argsort()  # float64 key (see the module doc)
    points_label, coor, depth, ranks = points_label[:, sort], coor[sort], depth[sort], ranks[sort]
    kept2 = torch.ones(coor.shape[0], dtype=torch.bool)
    kept2[1:] = (ranks[1:] != ranks[:-1])
    points_label, coor, depth = points_label[:, kept2], coor[kept2], depth[kept2]
    coor = coor.to(torch.long)
    depth_map[coor[:, 1], coor[:, 0]] = depth.float()
    fg_bbox_ind, fg_points_ind = torch.where(points_label == 1)
    fg_coor = coor[fg_points_ind]
    fg_map = torch.zeros((height, width), dtype=torch.long)
    fg_map[fg_coor[:, 1], fg_coor[:, 0]] = fg_bbox_ind + 1
    return depth_map, fg_map


def bevdet_img_aug(resize, crop, flip, rotate_deg):
    """LoadMultiViewImageFromFiles_BEVDet.img_transform's post_rot (2x2) and post_tran (2)."""
    post_rot = torch.eye(2, dtype=torch.float64) * resize
    post_tran = -torch.tensor(crop[:2], dtype=torch.float64)
    if flip:
        A = torch.tensor([[-1.0, 0.0], [0.0, 1.0]], dtype=torch.float64)
        b = torch.tensor([crop[2] - crop[0], 0.0], dtype=torch.float64)
        post_rot = A.matmul(post_rot)
        post_tran = A.matmul(post_tran) + b
    h = rotate_deg / 180 * np.pi
    A = torch.tensor([[np.cos(h), np.sin(h)], [-np.sin(h), np.cos(h)]], dtype=torch.float64)
    b = torch.tensor([crop[2] - crop[0], crop[3] - crop[1]], dtype=torch.float64) / 2
    b = A.matmul(-b) + b
    return A.matmul(post_rot), A.matmul(post_tran) + b


# ---- TiG-BEV inner feature (spec 4.2) ----------------------------------------------------------

def mmdet_bev_corners(boxes, extra_width):
    """LiDARInstance3DBoxes (mmdet3d v0.17) .enlarged_box(w).corners[:, [0, 2, 4, 6], :2]."""
    boxes = boxes.clone()
    if extra_width > 0:
        boxes[:, 3:6] += extra_width * 2
        boxes[:, 2] -= extra_width
    dims = boxes[:, 3:6]
    corners_norm = torch.from_numpy(np.stack(np.unravel_index(np.arange(8), [2] * 3), axis=1)).to(dims.dtype)
    corners_norm = corners_norm[[0, 1, 3, 2, 4, 5, 7, 6]]
    corners_norm = corners_norm - dims.new_tensor([0.5, 0.5, 0])
    corners = dims.view([-1, 1, 3]) * corners_norm.reshape([1, 8, 3])
    angle = boxes[:, 6]
    rot_sin, rot_cos = torch.sin(angle), torch.cos(angle)
    ones, zeros = torch.ones_like(rot_cos), torch.zeros_like(rot_cos)
    rot_mat_T = torch.stack([torch.stack([rot_cos, -rot_sin, zeros]),
                             torch.stack([rot_sin, rot_cos, zeros]),
                             torch.stack([zeros, zeros, ones])])
    corners = torch.einsum('aij,jka->aik', (corners, rot_mat_T))
    corners += boxes[:, :3].view(-1, 1, 3)
    return corners[:, [0, 2, 4, 6], :2]


def tig_gt_sample_grid(c, n, bx, dx, nx):
    """TiG_BEV.get_gt_sample_grid for one box's corners c [4, 2] (float32)."""
    dH_x, dH_y = c[0] - c[1]
    dW_x, dW_y = c[0] - c[2]
    raw_grid_x = torch.linspace(c[0][0], c[1][0], n).view(1, -1).repeat(n, 1)
    raw_grid_y = torch.linspace(c[0][1], c[2][1], n).view(-1, 1).repeat(1, n)
    raw_grid = torch.cat((raw_grid_x.unsqueeze(2), raw_grid_y.unsqueeze(2)), dim=2)
    off_x = torch.linspace(0, -dW_x, n).view(-1, 1).repeat(1, n)
    off_y = torch.linspace(0, -dH_y, n).view(1, -1).repeat(n, 1)
    grid = raw_grid + torch.cat((off_x.unsqueeze(2), off_y.unsqueeze(2)), dim=2)
    for a in range(2):
        grid[:, :, a] = torch.clip(((grid[:, :, a] - (bx[a] - dx[a] / 2.)) / dx[a] / (nx[a] - 1)) * 2.0 - 1.0,
                                   min=-1.0, max=1.0)
    return grid.unsqueeze(0)


def tig_inner_feature(s_bev, t_bev, boxes_list, embed_w, embed_b, n=24, enlarge_width=1.6,
                      inter_keypoint_weight=100.0, inter_channel_weight=10.0,
                      lss_grid_bx=(-50.8, -50.8), lss_grid_dx=(0.8, 0.8), lss_grid_nx=(128, 128)):
    bx = torch.tensor(lss_grid_bx, dtype=torch.float32)
    dx = torch.tensor(lss_grid_dx, dtype=torch.float32)
    nx = torch.tensor(lss_grid_nx, dtype=torch.long)
    fs, ft = [], []
    for b, boxes in enumerate(boxes_list):
        if boxes.shape[0] == 0:
            continue
        corners = mmdet_bev_corners(boxes.float(), enlarge_width)
        for k in range(boxes.shape[0]):
            grid = tig_gt_sample_grid(corners[k], n, bx, dx, nx).to(s_bev.dtype)
            fs.append(F.grid_sample(s_bev[b:b + 1], grid, align_corners=False, mode='bilinear'))
            ft.append(F.grid_sample(t_bev[b:b + 1], grid, align_corners=False, mode='bilinear'))
    if not fs:
        zero = s_bev.sum() * 0
        return zero, zero
    fs, ft = torch.cat(fs), torch.cat(ft)
    N = n * n

    def gram_loss(a, c):
        a, c = F.normalize(a, dim=2), F.normalize(c, dim=2)
        return F.mse_loss(a, c, reduction='none').sum(-1).mean()

    s = fs.view(-1, fs.shape[1], N)
    t = ft.view(-1, ft.shape[1], N)
    kp = gram_loss(s.permute(0, 2, 1).matmul(s), t.permute(0, 2, 1).matmul(t)) * inter_keypoint_weight
    fe = F.conv2d(fs, embed_w, embed_b)
    e = fe.view(-1, fe.shape[1], N)
    ch = gram_loss(e.matmul(e.permute(0, 2, 1)), t.matmul(t.permute(0, 2, 1))) * inter_channel_weight
    return kp, ch


# ---- CWD (spec 7.2) ------------------------------------------------------------------------------

def cwd(s, t, tau=1.0, loss_weight=1.0, form='kl'):
    N, C, H, W = s.shape
    p_t = F.softmax(t.reshape(-1, W * H) / tau, dim=1)
    log_ps = torch.log_softmax(s.reshape(-1, W * H) / tau, dim=1)
    if form == 'kl':
        inner = p_t * torch.log_softmax(t.reshape(-1, W * H) / tau, dim=1) - p_t * log_ps
    else:
        inner = -p_t * log_ps
    return loss_weight * torch.sum(inner) * tau ** 2 / (C * N)


# ---- MGD (spec 7.3) ------------------------------------------------------------------------------

def mgd(s, t, u, p, alpha_mgd=2e-5, lambda_mgd=0.65):
    if 'align_w' in p:
        s = F.conv2d(s, p['align_w'], p['align_b'])
    N = t.shape[0]
    mat = torch.where(u > 1 - lambda_mgd, 0, 1).to(s.dtype)
    x = F.conv2d(s * mat, p['gen_w1'], p['gen_b1'], padding=1)
    x = F.conv2d(F.relu(x), p['gen_w2'], p['gen_b2'], padding=1)
    return torch.sum((x - t) ** 2) / N * alpha_mgd


# ---- FGD (spec 7.4) ------------------------------------------------------------------------------

def fgd_masks(gt_bboxes, img_shape, N, H, W, dtype):
    mask_fg = torch.zeros((N, H, W), dtype=dtype)
    mask_bg = torch.ones((N, H, W), dtype=dtype)
    for i in range(N):
        b = gt_bboxes[i].float()
        nb = torch.ones_like(b)
        nb[:, 0] = b[:, 0] / img_shape[1] * W
        nb[:, 2] = b[:, 2] / img_shape[1] * W
        nb[:, 1] = b[:, 1] / img_shape[0] * H
        nb[:, 3] = b[:, 3] / img_shape[0] * H
        wmin, wmax = torch.floor(nb[:, 0]).int(), torch.ceil(nb[:, 2]).int()
        hmin, hmax = torch.floor(nb[:, 1]).int(), torch.ceil(nb[:, 3]).int()
        area = 1.0 / (hmax.view(1, -1) + 1 - hmin.view(1, -1)) / (wmax.view(1, -1) + 1 - wmin.view(1, -1))
        for j in range(len(b)):
            r0, c0 = max(int(hmin[j]), 0), max(int(wmin[j]), 0)  # clipped starts (see the module doc)
            sl = mask_fg[i][r0:hmax[j] + 1, c0:wmax[j] + 1]
            mask_fg[i][r0:hmax[j] + 1, c0:wmax[j] + 1] = torch.maximum(sl, area[0][j].to(dtype))
        mask_bg[i] = torch.where(mask_fg[i] > 0, 0, 1)
        if torch.sum(mask_bg[i]):
            mask_bg[i] /= torch.sum(mask_bg[i])
    return mask_fg, mask_bg


def fgd_attention(preds, temp):
    N, C, H, W = preds.shape
    value = torch.abs(preds)
    fea_map = value.mean(axis=1, keepdim=True)
    S = (H * W * F.softmax((fea_map / temp).view(N, -1), dim=1)).view(N, H, W)
    channel_map = value.mean(axis=2, keepdim=False).mean(axis=2, keepdim=False)
    return S, C * F.softmax(channel_map / temp, dim=1)


def fgd_context(x, p, side):
    N, C, H, W = x.shape
    mask = F.conv2d(x, p[f'conv_mask_{side}_w'], p[f'conv_mask_{side}_b']).view(N, 1, H * W)
    mask = F.softmax(mask, dim=2).unsqueeze(-1)
    context = torch.matmul(x.view(N, C, H * W).unsqueeze(1), mask).view(N, C, 1, 1)
    a = F.conv2d(context, p[f'add_{side}_w1'], p[f'add_{side}_b1'])
    a = F.layer_norm(a, [C // 2, 1, 1], p[f'add_{side}_ln_w'], p[f'add_{side}_ln_b'], eps=1e-5)
    a = F.conv2d(F.relu(a), p[f'add_{side}_w2'], p[f'add_{side}_b2'])
    return x + a


def fgd(s, t, gt_bboxes, img_shape, p, temp=0.5, alpha_fgd=1e-3, beta_fgd=5e-4, gamma_fgd=1e-3, lambda_fgd=5e-6):
    if 'align_w' in p:
        s = F.conv2d(s, p['align_w'], p['align_b'])
    N, C, H, W = s.shape
    S_t, C_t = fgd_attention(t, temp)
    S_s, C_s = fgd_attention(s, temp)
    mask_fg, mask_bg = fgd_masks(gt_bboxes, img_shape, N, H, W, s.dtype)
    mfg, mbg = mask_fg.unsqueeze(1), mask_bg.unsqueeze(1)
    ct, st = C_t.unsqueeze(-1).unsqueeze(-1), S_t.unsqueeze(1)
    fea_t = torch.mul(torch.mul(t, torch.sqrt(st)), torch.sqrt(ct))
    fea_s = torch.mul(torch.mul(s, torch.sqrt(st)), torch.sqrt(ct))
    fg = torch.sum((fea_s * torch.sqrt(mfg) - fea_t * torch.sqrt(mfg)) ** 2) / N
    bg = torch.sum((fea_s * torch.sqrt(mbg) - fea_t * torch.sqrt(mbg)) ** 2) / N
    mask = torch.sum(torch.abs(C_s - C_t)) / N + torch.sum(torch.abs(S_s - S_t)) / N
    rela = torch.sum((fgd_context(s, p, 's') - fgd_context(t, p, 't')) ** 2) / N
    loss = alpha_fgd * fg + beta_fgd * bg + gamma_fgd * mask + lambda_fgd * rela
    return {'fg_loss': fg, 'bg_loss': bg, 'mask_loss': mask, 'rela_loss': rela, 'loss': loss}


# ---- FitNet (spec 7.1) ---------------------------------------------------------------------------

def fitnet(s, t, regressor_w, regressor_b, variant='mmrazor', loss_weight=1.0, normalize=True):
    r = F.conv2d(s, regressor_w, regressor_b)
    if variant == 'plain':
        return loss_weight * torch.mean((r - t) ** 2)
    if normalize:
        r = r.view(r.size(0), -1)
        r = r / r.norm(2, dim=1, keepdim=True)
        t = t.reshape(t.size(0), -1)
        t = t / t.norm(2, dim=1, keepdim=True)
    return loss_weight * torch.sum((r - t) ** 2) / r.size(0)


# ---- cases ---------------------------------------------------------------------------------------

def mmdet_boxes(rows):
    """(x, y, z, l, w, h, yaw) in bevkd's Box convention -> mmdet3d v0.17 (x, y, z, dx=w, dy=l, dz, yaw_m, 0, 0)."""
    out = torch.zeros(len(rows), 9, dtype=torch.float32)
    for k, (x, y, z, l, w, h, yaw) in enumerate(rows):
        out[k] = torch.tensor([x, y, z, w, l, h, -yaw - math.pi / 2, 0, 0])
    return out


def build_cases():
    g = torch.Generator().manual_seed(20240612)

    def randn(*shape, dtype=torch.float32, scale=1.0):
        return (torch.randn(*shape, generator=g, dtype=torch.float64) * scale).to(dtype)

    def rand(*shape, dtype=torch.float32):
        return torch.rand(*shape, generator=g, dtype=torch.float64).to(dtype)

    cases = []

    def add(name, loss, params, inputs, grads_of, compute, debug=None):
        """grads_of: (input, value key, output name) triples, e.g. ('s', 'loss', 'grad_s')."""
        names = {g[0] for g in grads_of}
        leaves = {k: (v.clone().requires_grad_(True) if k in names else v) for k, v in inputs.items()}
        values = compute(leaves)
        grads = {}
        for gname, vkey, out in grads_of:
            (gr,) = torch.autograd.grad(values[vkey], leaves[gname], retain_graph=True, allow_unused=True)
            grads[out] = torch.zeros_like(leaves[gname]) if gr is None else gr
        cases.append(dict(name=name, loss=loss, params=params, inputs=inputs,
                          expected={k: float(v) for k, v in values.items()},
                          grads=grads, debug=debug or {}))

    # TiG inner depth: B=2, N=2, D=5 (dbound [2, 7, 1]), 4x5; image (0,1) without foreground.
    for dtype in (torch.float32, torch.float64):
        logits = randn(4, 5, 4, 5, dtype=dtype, scale=2.0)
        depth_gt = (rand(2, 2, 4, 5, dtype=dtype) * 5 + 2)
        fg_gt = torch.randint(0, 4, (2, 2, 4, 5), generator=g)
        fg_gt[0, 1] = 0
        params = {'dbound': [2, 7, 1], 'inner_depth_weight': 1.5}
        add(f'tig_inner_depth_{str(dtype)[6:]}', 'tig_inner_depth', params,
            {'depth_logits': logits, 'depth_gt': depth_gt, 'fg_gt': fg_gt},
            [('depth_logits', 'loss_inner_depth', 'grad_depth_logits')],
            lambda x: {'loss_inner_depth': tig_inner_depth(x['fg_gt'], x['depth_gt'], x['depth_logits'],
                                                           [2, 7, 1], 1.5)})

    # TiG inner feature: student 16x16 (Cs 3), teacher 8x8 (C 5) over +-6.4 m, LSS grid of the
    # student, 5x5 key points; sample 1 has no boxes; one box partly off the map.
    for dtype in (torch.float32, torch.float64):
        s_bev = randn(3, 3, 16, 16, dtype=dtype)
        t_bev = randn(3, 5, 8, 8, dtype=dtype)
        embed_w = randn(5, 3, 1, 1, dtype=dtype, scale=0.5)
        embed_b = randn(5, dtype=dtype, scale=0.1)
        boxes = [mmdet_boxes([(-1.0, 0.5, 0.2, 3.0, 1.6, 1.5, 0.7), (5.5, -2.0, 0.0, 2.5, 2.0, 1.5, 2.9)]),
                 torch.zeros(0, 9),
                 mmdet_boxes([(1.2, -3.1, 0.0, 1.0, 0.8, 1.0, -1.3), (-4.0, 4.5, 0.0, 4.2, 1.9, 1.6, 0.0),
                              (0.3, 0.2, 0.0, 0.6, 0.6, 1.7, 1.1)])]
        params = {'x_sample_num': 5, 'y_sample_num': 5, 'enlarge_width': 1.6, 'inter_keypoint_weight': 100.0,
                  'inter_channel_weight': 10.0, 'lss_grid_bx': [-6.0, -6.0], 'lss_grid_dx': [0.8, 0.8],
                  'lss_grid_nx': [16, 16]}
        inputs = {'s_bev': s_bev, 't_bev': t_bev, 'embed_w': embed_w, 'embed_b': embed_b}
        inputs.update({f'boxes_b{b}': bx for b, bx in enumerate(boxes)})

        def feat(x, boxes=boxes):
            kp, ch = tig_inner_feature(x['s_bev'], x['t_bev'], boxes, x['embed_w'], x['embed_b'], n=5,
                                       lss_grid_bx=(-6.0, -6.0), lss_grid_dx=(0.8, 0.8), lss_grid_nx=(16, 16))
            return {'loss_inter_keypoint': kp, 'loss_inter_channel': ch}

        corners = {f'corners_b{b}': mmdet_bev_corners(bx, 1.6) for b, bx in enumerate(boxes) if bx.shape[0]}
        add(f'tig_inner_feature_{str(dtype)[6:]}', 'tig_inner_feature', params, inputs,
            [('s_bev', k, 'grad_s_bev_' + k) for k in ('loss_inter_keypoint', 'loss_inter_channel')], feat,
            debug=corners)

    # CWD, both forms, two temperatures.
    for dtype in (torch.float32, torch.float64):
        s, t = randn(2, 3, 5, 6, dtype=dtype, scale=2), randn(2, 3, 5, 6, dtype=dtype, scale=2)
        for form, loss in (('kl', 'cwd_kl'), ('ce', 'cwd_ce_focaldistiller')):
            for tau, w in ((1.0, 1.0), (4.0, 3.0)):
                add(f'{loss}_tau{int(tau)}_{str(dtype)[6:]}', loss, {'tau': tau, 'loss_weight': w},
                    {'s': s, 't': t}, [('s', 'loss', 'grad_s')],
                    lambda x, tau=tau, w=w, form=form: {'loss': cwd(x['s'], x['t'], tau, w, form)})

    # MGD with and without the align conv.
    for dtype in (torch.float32, torch.float64):
        for cs in (3, 4):
            inputs = {'s': randn(2, cs, 6, 5, dtype=dtype), 't': randn(2, 4, 6, 5, dtype=dtype),
                      'u': rand(2, 1, 6, 5, dtype=dtype),
                      'gen_w1': randn(4, 4, 3, 3, dtype=dtype, scale=0.3), 'gen_b1': randn(4, dtype=dtype, scale=0.1),
                      'gen_w2': randn(4, 4, 3, 3, dtype=dtype, scale=0.3), 'gen_b2': randn(4, dtype=dtype, scale=0.1)}
            if cs != 4:
                inputs['align_w'] = randn(4, cs, 1, 1, dtype=dtype)
                inputs['align_b'] = randn(4, dtype=dtype, scale=0.1)
            add(f'mgd_cs{cs}_{str(dtype)[6:]}', 'mgd', {'alpha_mgd': 2e-5, 'lambda_mgd': 0.65}, inputs,
                [('s', 'loss', 'grad_s')],
                lambda x: {'loss': mgd(x['s'], x['t'], x['u'], x, 2e-5, 0.65)})

    # FGD: 6x8 map of a 48x64 image, align 3 -> 4, sample 1 without boxes, boxes overlapping and
    # partly off the image; random (non-zero) context blocks.
    for dtype in (torch.float32, torch.float64):
        inputs = {'s': randn(2, 3, 6, 8, dtype=dtype), 't': randn(2, 4, 6, 8, dtype=dtype),
                  'align_w': randn(4, 3, 1, 1, dtype=dtype), 'align_b': randn(4, dtype=dtype, scale=0.1),
                  'gt_boxes_b0': torch.tensor([[10.5, 4.0, 30.2, 20.9], [25.0, 10.0, 40.0, 30.0],
                                               [-9.0, -5.0, 7.0, 9.0], [55.0, 40.0, 70.0, 52.0]], dtype=dtype),
                  'gt_boxes_b1': torch.zeros(0, 4, dtype=dtype)}
        for side in ('s', 't'):
            inputs.update({f'conv_mask_{side}_w': randn(1, 4, 1, 1, dtype=dtype), f'conv_mask_{side}_b': randn(1, dtype=dtype),
                           f'add_{side}_w1': randn(2, 4, 1, 1, dtype=dtype), f'add_{side}_b1': randn(2, dtype=dtype),
                           f'add_{side}_ln_w': randn(2, 1, 1, dtype=dtype), f'add_{side}_ln_b': randn(2, 1, 1, dtype=dtype),
                           f'add_{side}_w2': randn(4, 2, 1, 1, dtype=dtype), f'add_{side}_b2': randn(4, dtype=dtype)})
        params = {'temp': 0.5, 'alpha_fgd': 1e-3, 'beta_fgd': 5e-4, 'gamma_fgd': 1e-3, 'lambda_fgd': 5e-6,
                  'img_shape': [48, 64]}
        boxes = [inputs['gt_boxes_b0'], inputs['gt_boxes_b1']]
        mfg, mbg = fgd_masks(boxes, [48, 64], 2, 6, 8, dtype)
        add(f'fgd_{str(dtype)[6:]}', 'fgd', params, inputs, [('s', 'loss', 'grad_s')],
            lambda x, boxes=boxes: fgd(x['s'], x['t'], boxes, [48, 64], x),
            debug={'mask_fg': mfg, 'mask_bg': mbg})

    # FitNet, both variants.
    for dtype in (torch.float32, torch.float64):
        inputs = {'s': randn(3, 2, 4, 5, dtype=dtype), 't': randn(3, 4, 4, 5, dtype=dtype),
                  'regressor_w': randn(4, 2, 1, 1, dtype=dtype), 'regressor_b': randn(4, dtype=dtype, scale=0.1)}
        for variant, normalize, w in (('mmrazor', True, 10.0), ('mmrazor', False, 10.0), ('plain', False, 2.0)):
            add(f'fitnet_{variant}{"" if normalize else "_raw"}_{str(dtype)[6:]}', 'fitnet',
                {'variant': variant, 'loss_weight': w, 'normalize': normalize}, inputs, [('s', 'loss', 'grad_s')],
                lambda x, v=variant, n=normalize, w=w: {'loss': fitnet(x['s'], x['t'], x['regressor_w'],
                                                                       x['regressor_b'], v, w, n)})
    return cases


def raster_cases():
    """Depth maps of random points after random BEVDet image augmentations (not a probe loss)."""
    g = torch.Generator().manual_seed(7)
    out = []
    for k, (resize, crop, flip, rot) in enumerate([(0.44, (20, 60, 724, 316), True, 3.7),
                                                   (0.5, (8, 4, 712, 260), False, -5.2),
                                                   (0.48, (0, 0, 704, 256), True, 0.0)]):
        P = 1500
        uvd = torch.stack([torch.rand(P, generator=g, dtype=torch.float64) * 1700 - 50,
                           torch.rand(P, generator=g, dtype=torch.float64) * 1000 - 50,
                           torch.rand(P, generator=g, dtype=torch.float64) * 70 - 5], 1).float()
        box_id = torch.randint(-1, 6, (P,), generator=g, dtype=torch.int32)
        post_rot, post_tran = bevdet_img_aug(resize, crop, flip, rot)
        A = torch.eye(3, dtype=torch.float64)
        A[:2, :2], A[:2, 2] = post_rot, post_tran
        pts = torch.cat([uvd[:, :2].double().matmul(post_rot.T) + post_tran, uvd[:, 2:].double()], 1)
        label = torch.zeros(6, P, dtype=torch.long)
        label[box_id[box_id >= 0].long(), torch.nonzero(box_id >= 0)[:, 0]] = 1
        img_h, img_w = crop[3] - crop[1], crop[2] - crop[0]
        depth, fg = tig_points2map(label, pts, img_h, img_w, 16, [1.0, 60.0])
        out.append(dict(name=f'tig_depth_raster_{k}', uvd=uvd, box_id=box_id, transform=A, image_height=img_h,
                        image_width=img_w, stride=16, depth=depth, fg=fg))
    return out


def tensor_json(t):
    t = t.detach().cpu()
    dtype = {torch.float32: 'float32', torch.float64: 'float64'}.get(t.dtype, 'int64')
    data = t.double().reshape(-1).tolist() if dtype != 'int64' else t.long().reshape(-1).tolist()
    return {'dtype': dtype, 'shape': list(t.shape), 'data': data}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--json', help='write every case (inputs, expected values, gradients) to this file')
    ap.add_argument('--cases', help='write loss-probe case folders under this directory')
    args = ap.parse_args()
    if not args.json and not args.cases:
        ap.error('give --json and/or --cases')
    torch.set_num_threads(1)
    cases = build_cases()
    if args.json:
        doc = {'cases': [{'name': c['name'], 'loss': c['loss'], 'params': c['params'],
                          'inputs': {k: tensor_json(v) for k, v in c['inputs'].items()},
                          'expected': c['expected'],
                          'grads': {k: tensor_json(v) for k, v in c['grads'].items()},
                          'debug': {k: tensor_json(v) for k, v in c['debug'].items()}} for c in cases],
               'raster': [{k: (tensor_json(v) if torch.is_tensor(v) else v) for k, v in r.items()}
                          for r in raster_cases()]}
        tmp = args.json + '.tmp'
        with open(tmp, 'w') as f:
            json.dump(doc, f)
        os.replace(tmp, args.json)
    if args.cases:
        for c in cases:
            d = os.path.join(args.cases, c['name'])
            os.makedirs(d, exist_ok=True)
            for k, v in c['inputs'].items():
                np.save(os.path.join(d, k + '.npy'), v.detach().numpy())
            with open(os.path.join(d, 'params.json'), 'w') as f:
                json.dump(c['params'], f, indent=1)
            with open(os.path.join(d, 'expected.json'), 'w') as f:
                json.dump({'loss': c['loss'], 'values': c['expected']}, f, indent=1)
            for k, v in c['grads'].items():
                np.save(os.path.join(d, 'expected_' + k + '.npy'), v.detach().double().numpy())
    print(f'loss_golden_part2: {len(cases)} cases', file=sys.stderr)


if __name__ == '__main__':
    main()

// The probe entries of each loss family (registry.h says how to add a family).
#pragma once

#include "train/probe/registry.h"

namespace bevkd::train::probe {

// §2 gaussian_fg_map; §3.1 bevdistill_dense; §3.2 bevdistill_box_distill; §3.3 bevdistill_infonce.
void register_bevdistill_probes(Registry& r);
// §4.1 tig_inner_depth; §4.2 tig_inner_feature.
void register_tig_probes(Registry& r);
// §7.2 cwd_kl, cwd_ce_focaldistiller; §7.3 mgd; §7.4 fgd; §7.1 fitnet.
void register_baseline_probes(Registry& r);
// §6 focaldistiller_bev_l2_heatmap.
void register_focaldistiller_probes(Registry& r);
// §6 fd3d_qfd, fd3d_smgd (provisional: no released code).
void register_fd3d_probes(Registry& r);
// §5 x3kd (provisional: no released code).
void register_x3kd_probes(Registry& r);

// Every family above, in spec/loss_probe.md's order (entries.cpp).
Registry build_registry();

}  // namespace bevkd::train::probe

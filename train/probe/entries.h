// The probe entries of each loss family, and the list of losses of spec/loss_probe.md that are
// not implemented yet (refused by name). registry.h says how to add a family.
#pragma once

#include "train/probe/registry.h"

namespace bevkd::train::probe {

// §2 gaussian_fg_map; §3.1 bevdistill_dense; §3.2 bevdistill_box_distill; §3.3 bevdistill_infonce.
void register_bevdistill_probes(Registry& r);
// §6 focaldistiller_bev_l2_heatmap.
void register_focaldistiller_probes(Registry& r);

// Every family above, then the pending names (entries.cpp).
Registry build_registry();

}  // namespace bevkd::train::probe

#include "train/probe/entries.h"

namespace bevkd::train::probe {

Registry build_registry() {
  Registry r;
  register_bevdistill_probes(r);
  register_tig_probes(r);
  register_baseline_probes(r);
  register_focaldistiller_probes(r);
  register_fd3d_probes(r);
  register_x3kd_probes(r);
  return r;
}

const Registry& probe_registry() {
  static const Registry registry = build_registry();
  return registry;
}

}  // namespace bevkd::train::probe

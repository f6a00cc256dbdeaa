// The registry's entries, one function per loss family (loss_entries_<family>.cpp), gathered by
// builtin_loss_entries() (loss_registry.cpp sorts them by name).
#pragma once

#include <vector>

#include "train/trainer/loss_registry.h"

namespace bevkd::train::trainer {

std::vector<LossEntry> builtin_loss_entries();
std::vector<LossEntry> x3kd_loss_entries();  // loss_entries_x3kd.cpp
std::vector<LossEntry> fd3d_loss_entries();  // loss_entries_fd3d.cpp

}  // namespace bevkd::train::trainer

// `bevkd-train loss-probe`: evaluates one loss of spec/losses.md on arrays saved with
// numpy.save, running the training code itself, so that users can compare bevkd with PyTorch
// reference code number for number. The contract is spec/loss_probe.md; in short:
//
//   bevkd-train loss-probe --loss NAME --case DIR [--grad] [--out DIR]
//   bevkd-train loss-probe --list [--json]
//
//   stdout  exactly one JSON object {"loss": NAME, "values": {KEY: number, ...}}, numbers with
//           17 significant digits, non-finite values as null; logs go to stderr.
//   --out   (created if missing) also receives values.json, with --grad one grad_<...>.npy
//           (float64, shaped like its input) per gradient the loss lists, and the loss's debug
//           arrays (fg_map.npy, match_l0_b0.npy, ...).
//   exit    0 success; 2 bad use (the message names the input or key); 1 any other failure.
//
// Case directory: <input>.npy per input (per-sample inputs <name>_b0 ... <name>_b{B-1}), and an
// optional params.json. Files that are not .npy are ignored; a .npy file that is no input of the
// loss is refused as an unknown input (so a misspelt name is not silently dropped), except the
// probe's own outputs (grad_*.npy and the loss's debug arrays), so --out may name the case
// directory.
//
// Boxes in case directories follow mmdet3d v0.17 (spec §1); they are converted to bevkd's Box
// at this boundary only (box_convention.h).
#pragma once

#include <nlohmann/json.hpp>
#include <ostream>
#include <string>

#include "train/probe/registry.h"

namespace bevkd::train::probe {

struct LossProbeOptions {
  std::string loss;      // --loss
  std::string case_dir;  // --case
  std::string out_dir;   // --out ("" = none)
  bool grad = false;     // --grad
  bool list = false;     // --list
  bool json = false;     // --json (with --list)
  // bevkd-train's loss registry (train/trainer: loss_registry_json(), set by the binary): --list
  // shows it after the probe entries, --list --json as "trainer_losses" next to "losses". The
  // trainer's entries read their shared defaults from this registry, so the two cannot disagree.
  nlohmann::json trainer_losses;
};

// Runs the command: writes the result to `out` and messages to `err`, returns the exit code
// (0, 1 or 2). Never throws.
int run_loss_probe(const LossProbeOptions& opts, std::ostream& out, std::ostream& err,
                   const Registry& registry = probe_registry());

// Loads and validates a case directory against `entry` (exit-2 checks of the contract);
// throws UsageError naming the input or key. Exposed for tests.
ProbeContext load_case(const ProbeEntry& entry, const std::string& case_dir, bool want_grad);

// The stdout / values.json text: {"loss":NAME,"values":{...}} with 17 significant digits.
std::string values_json(const std::string& loss, const ProbeOutput& out);

// --list text and --list --json text.
std::string list_text(const Registry& registry, const nlohmann::json& trainer_losses = nullptr);
std::string list_json(const Registry& registry, const nlohmann::json& trainer_losses = nullptr);

}  // namespace bevkd::train::probe

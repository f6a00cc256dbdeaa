// The loss-probe registry: one ProbeEntry per loss of spec/loss_probe.md, declaring its inputs,
// parameters, value keys, gradient files and a run function. `bevkd-train loss-probe` (probe.h)
// validates a case directory against the entry (exit 2 naming the input or key), then calls
// run(); `--list` / `--list --json` print the entries.
//
// ---- Adding the probe entries of a loss family --------------------------------------------
// 1. Write train/probe/entries_<family>.cpp defining
//        void register_<family>_probes(Registry& r);
//    which calls r.add(entry) once per loss (see entries_bevdistill.cpp for complete examples),
//    and declare it in train/probe/entries.h.
// 2. Call it in build_registry() (entries.cpp). A name of the contract that has no entry yet may
//    be registered with add_pending(name, section): it is refused by name ("loss X is not
//    implemented yet") until add() replaces it.
// 3. Add the .cpp to train/probe/CMakeLists.txt, a transcription to scripts/loss_golden.py, its
//    golden suite to tests/train/probe/ and its exit-2 rules to tests/train/probe/probe_entries_test.cpp.
//
// Value keys, grad files and debug files may be patterns where their number depends on the
// inputs: "layer{l}" stands for layer0, layer1, ... (any run of names matching it, in order), as
// in bevdistill_box_distill's values and "match_l{l}_b{b}" debug arrays. Inputs present exactly
// when sizes differ (the spec's "iff Cs≠C") are declared optional() and checked in validate()
// with require_inputs_iff() (entry_util.h). An entry whose terms are evaluated only when their
// inputs are given (x3kd) sets partial_outputs: its values and grads are then an ordered subset
// of the declared ones. tests/train/probe/probe_test.cpp (LossProbeRegistry) registers a complete
// toy family in its own Registry.
//
// bevkd-train's loss registry (train/trainer/loss_registry.h) names, per training loss, the entries
// here that check its pure function and reads the parameters it shares with them (their
// defaults) from this registry; `loss-probe --list` shows both, so they cannot disagree.
//
// An entry in brief:
//   ProbeEntry e;
//   e.name = "cwd_kl"; e.section = "§7.2";
//   e.inputs = {InputSpec::floating("s", {"N", "C", "H", "W"}).with_grad(),
//               InputSpec::floating("t", {"N", "C", "H", "W"})};
//   e.params = {ParamSpec::with_default("tau", 1.0), ParamSpec::with_default("loss_weight", 1.0)};
//   e.values = {"loss"};
//   e.grads = {"grad_s"};
//   e.run = [](const ProbeContext& c) {
//     torch::Tensor loss = cwd_kl(c.in.tensor("s"), c.in.tensor("t"), c.params.number("tau"), ...);
//     ProbeOutput out;
//     out.value("loss", loss);
//     if (c.want_grad) out.grad("grad_s", c.in.grad_of(loss, "s"));
//     return out;
//   };
//   r.add(std::move(e));
//
// Shapes are lists of symbols: a size name ("B", "C", "K_b"), an integer ("9"), or a product /
// quotient of names and integers ("B*N", "C/2"). The same name means the same size in every
// input; a name ending in "_b" is per sample (K_b may differ between samples but is shared by
// the per-sample inputs of one sample). The entry's batch_symbol ("B", or "N" where the spec
// writes the batch so) is the batch size: per-sample inputs must come as exactly that many files
// <name>_b0 ... <name>_b{B-1}.
//
// By the time run() is called: every input has the declared rank, dtype and sizes; float inputs
// are in the compute dtype (float64 if any float input file was float64, else float32); inputs
// declared with_grad() require grad when the probe was asked for gradients; params.json holds
// only declared keys with their defaults filled in. Errors thrown by run() are exit 1, except
// UsageError (exit 2: use BEVKD_PROBE_CHECK / Params::refuse for a value the contract does not
// allow).
#pragma once

#include <torch/types.h>

#include <functional>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "train/probe/params.h"

namespace bevkd::train::probe {

enum class InputDtype { kFloat, kInt64 };

struct InputSpec {
  std::string name;                // file stem; per-sample inputs are <name>_b<i>.npy
  std::vector<std::string> shape;  // one symbol per dimension (see the top of this file)
  InputDtype dtype = InputDtype::kFloat;
  bool per_sample = false;
  bool required = true;
  bool grad = false;  // a student input that receives a gradient (∂)
  std::string doc;    // what it is, for --list

  static InputSpec floating(std::string name, std::vector<std::string> shape, std::string doc = "");
  static InputSpec int64(std::string name, std::vector<std::string> shape, std::string doc = "");
  InputSpec& with_grad() {
    grad = true;
    return *this;
  }
  InputSpec& optional() {
    required = false;
    return *this;
  }
  InputSpec& sample_wise() {
    per_sample = true;
    return *this;
  }
  // "boxes_b*" for per-sample inputs, else the name.
  std::string display_name() const { return per_sample ? name + "_b*" : name; }
};

// The validated inputs of one case.
class ProbeInputs {
 public:
  bool has(const std::string& name) const;
  // A batched input; throws (internal error) when absent or per-sample.
  const torch::Tensor& tensor(const std::string& name) const;
  // A per-sample input: exactly B tensors.
  const std::vector<torch::Tensor>& samples(const std::string& name) const;
  // The value bound to a size symbol ("B", "C", "K_b@0" for sample 0's K_b).
  int64_t size(const std::string& symbol) const;
  bool bound(const std::string& symbol) const { return sizes_.count(symbol) > 0; }
  torch::ScalarType dtype() const { return dtype_; }
  int64_t batch() const;  // the batch size (0 when no input binds it)

  // ∂ value / ∂ input (batched input declared with_grad(), requiring grad). The graph is kept,
  // so several values may be differentiated in turn.
  torch::Tensor grad_of(const torch::Tensor& value, const std::string& name) const;
  // The same for a per-sample input: one gradient per sample.
  std::vector<torch::Tensor> grads_of(const torch::Tensor& value, const std::string& name) const;

 private:
  friend class CaseLoader;
  std::map<std::string, torch::Tensor> batched_;
  std::map<std::string, std::vector<torch::Tensor>> per_sample_;
  std::map<std::string, int64_t> sizes_;
  std::string batch_symbol_ = "B";
  torch::ScalarType dtype_ = torch::kFloat32;
};

struct ProbeContext {
  ProbeInputs in;
  Params params;
  bool want_grad = false;   // --grad: fill ProbeOutput::grads
  bool want_debug = false;  // --out given: fill ProbeOutput::debug (required ones and opt ones)
};

struct ProbeOutput {
  std::vector<std::pair<std::string, double>> values;
  std::vector<std::pair<std::string, torch::Tensor>> grads;  // file stem "grad_..." -> written float64
  std::vector<std::pair<std::string, torch::Tensor>> debug;  // file stem -> written as its dtype

  void value(const std::string& key, double v) { values.emplace_back(key, v); }
  void value(const std::string& key, const torch::Tensor& scalar);
  void grad(const std::string& file, const torch::Tensor& g) { grads.emplace_back(file, g); }
  void array(const std::string& file, const torch::Tensor& a) { debug.emplace_back(file, a); }
};

struct ProbeEntry {
  std::string name;     // --loss NAME
  std::string section;  // "§3.1" of spec/losses.md
  std::string summary;  // one line for --list
  std::vector<InputSpec> inputs;
  std::vector<ParamSpec> params;
  std::vector<std::string> values;       // value keys, in output order
  std::vector<std::string> grads;        // grad file stems written with --grad
  std::vector<std::string> debug_files;  // file stems written with --out (required or optional)
  std::string batch_symbol = "B";        // the size symbol of the batch (per-sample inputs count it)
  // Values and grads may be an ordered subset of the declared ones (terms evaluated only when
  // their inputs are given).
  bool partial_outputs = false;
  // Alternatives: exactly one input of each group must be present, e.g. {"fg_map", "boxes"}.
  std::vector<std::vector<std::string>> one_of;
  // Extra checks after shapes are bound (throw UsageError), e.g. "iff Cs != C" inputs.
  std::function<void(const ProbeInputs&, const Params&)> validate;
  std::function<ProbeOutput(const ProbeContext&)> run;
};

class Registry {
 public:
  // Adds an implemented entry; replaces a pending one of the same name. Two implemented
  // entries with one name are a bug (internal error).
  void add(ProbeEntry e);
  // A loss of the contract that is not implemented yet: refused by name.
  void add_pending(std::string name, std::string section);

  const ProbeEntry* find(const std::string& name) const;  // implemented entries only
  bool is_pending(const std::string& name) const { return pending_.count(name) > 0; }
  const std::string& pending_section(const std::string& name) const { return pending_.at(name); }
  const std::vector<ProbeEntry>& entries() const { return entries_; }
  std::vector<std::string> pending_names() const;

 private:
  std::vector<ProbeEntry> entries_;
  std::map<std::string, std::string> pending_;
};

// The registry of every loss (built once, on first use; see entries.cpp).
const Registry& probe_registry();

}  // namespace bevkd::train::probe

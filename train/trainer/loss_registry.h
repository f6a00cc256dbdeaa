// bevkd-train's loss registry: the distillation losses a training run can switch on by name
// (train config "losses": [{"name": ..., "weight": ..., <params>}]). An entry says
//   * what it needs from the shards (ShardNeed: the dataset, the loader switch that loads it,
//     and the bevkd-precompute option that writes it) — the trainer refuses a loss whose field
//     the shards lack at start-up, naming the field and that option;
//   * its default weight and parameters (params are checked against the entry's keys: an unknown
//     key is refused by name);
//   * a factory making the DistillLoss module: the pure loss of train/losses/ plus its trainable
//     parts (adaptors, projection heads), which train in their own optimizer parameter group, are
//     saved in checkpoints under "loss.<name>" and are absent at inference.
// The detection (CenterHead) and depth losses are not in the registry: every run has them.
#pragma once

#include <torch/nn/module.h>
#include <torch/optim/optimizer.h>
#include <torch/types.h>

#include <functional>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "base/bev_grid.h"
#include "core/nn/center_targets.h"
#include "storage/shard_meta.h"
#include "train/data/batch.h"
#include "train/data/loader_config.h"
#include "train/student/student.h"

namespace bevkd::train::trainer {

// What a loss sees at a training step (everything on the training device, float32).
struct LossInputs {
  const student::StudentOutput& student;
  const data::Batch& batch;                              // teacher fields in batch.teacher (per sample)
  const std::vector<core::nn::TaskTargets>& targets;     // the detection targets of the batch (student grid)
  int64_t step = 0;
};

// What a loss learns at start-up.
struct LossSetup {
  const student::StudentConfig& student;  // with the aligned grid
  BevGrid teacher_grid;                   // the shards' grid
  std::vector<storage::TapSpec> teacher_taps;
  nlohmann::json params;                  // the entry's parameters, defaults filled in
  std::string where;                      // "loss bevdistill_dense" for messages
};

class DistillLoss : public torch::nn::Module {
 public:
  // Named unweighted terms (scalars); the trainer multiplies their sum by the loss's weight and
  // logs each term as "loss.<name>.<term>".
  virtual std::map<std::string, torch::Tensor> terms(const LossInputs& in) = 0;

  // Machinery with an optimizer of its own (X³KD's discriminator). The student's optimizer, its
  // gradient clipping and its gradient reducer take student_parameters() (default: every
  // parameter, in the loss's own parameter group); own_parameters() are trained by
  // own_optimizer() alone, after the student's step: the trainer takes own_losses() (one per
  // micro-batch of the step, built by terms() from detached inputs), back-propagates them
  // (averaged), all-reduces their gradients over the ranks and steps own_optimizer(). A loss
  // without such machinery keeps these defaults.
  virtual std::vector<torch::Tensor> student_parameters() { return parameters(); }
  virtual std::vector<torch::Tensor> own_parameters() { return {}; }
  virtual torch::optim::Optimizer* own_optimizer() { return nullptr; }
  // The own optimizer's learning rate at a step whose student learning rate is `factor` times
  // the configured peak (its own schedule may follow that shape or ignore it).
  virtual void set_own_lr(double factor) { (void)factor; }
  // The losses saved since the last call (and forgets them: a skipped step calls it too), with
  // the scalars to log for them (e.g. the discriminator's accuracy), averaged over micro-batches.
  virtual std::vector<torch::Tensor> take_own_losses(std::map<std::string, double>& logged) {
    (void)logged;
    return {};
  }
  // The own parameters' gradient-norm clip (0: none).
  virtual double own_grad_clip() const { return 0; }
  // Scalars to log for the step that are not loss terms (FD3D's focal queries per sample),
  // averaged over the step's micro-batches; called once per step (skipped steps included).
  virtual void take_metrics(std::map<std::string, double>& logged) { (void)logged; }
};

// A shard field a loss needs.
struct ShardNeed {
  std::string dataset;            // e.g. "teacher/features/head_shared", "teacher/heatmap"
  std::string precompute_option;  // how bevkd-precompute writes it, e.g. "--taps head_shared"
  std::string tap;                // the teacher tap, when the dataset is a feature map ("" otherwise)
  // Switches the loader on for it (teacher taps, boxes, heat map, fg mask, class probs, box ids).
  std::function<void(data::LoaderConfig&)> request;
};

struct LossEntry {
  std::string name;
  std::string description;  // paper and section of spec/losses.md
  double default_weight = 1.0;
  nlohmann::json default_params = nlohmann::json::object();  // every key the loss accepts
  std::function<std::vector<ShardNeed>(const nlohmann::json& params)> needs;
  std::function<std::shared_ptr<DistillLoss>(const LossSetup& setup)> make;
  // The loss-probe entries (spec/loss_probe.md, train/probe/) that check this loss's pure
  // function, and the parameters it shares with them: trainer key -> probe key. Their defaults are
  // READ from the probe registry when the entry is built (never written twice), so `bevkd-train
  // losses` and `loss-probe --list` cannot disagree.
  std::vector<std::string> probe_losses;
  std::vector<std::pair<std::string, std::string>> probe_params;
};

// Every registered loss, by name order.
const std::vector<LossEntry>& loss_registry();
// The registry as JSON (`bevkd-train losses --json`, and the "trainer_losses" of
// `loss-probe --list --json`): [{name, description, default_weight, params, shard_fields,
// probe_losses, probe_params}] with the default parameters and the shard fields they need.
nlohmann::json loss_registry_json();
// The entry called `name`; throws bevkd::Error listing the registered names otherwise.
const LossEntry& find_loss(const std::string& name);
// params with the entry's defaults filled in; an unknown key is refused naming the loss and the
// accepted keys, a value of another JSON type than its default is refused naming the key.
nlohmann::json resolve_params(const LossEntry& e, const nlohmann::json& params);

// Whether the shards described by `manifest_taps` / `schema` hold `need` (teacher heat maps, masks
// and boxes are in every shard; taps must be listed; class_probs needs schema >= 1.1).
bool shards_have(const ShardNeed& need, const std::vector<storage::TapSpec>& manifest_taps, int schema_major,
                 int schema_minor);

}  // namespace bevkd::train::trainer

// The registry's FD3D entry (spec/losses.md §6): the distillation head (train/losses/fd3d_head.h)
// decodes the stored teacher map and trains against GT with an AdamW of its own (only L_dh
// updates it, DESIGN.md "Stage two"); its focal queries drive SMGD (instance mask) and QFD
// (sampling positions) on the student.
#include <ATen/CPUGeneratorImpl.h>
#include <torch/optim/adamw.h>
#include <torch/torch.h>

#include "base/config.h"
#include "base/rng.h"
#include "core/nn/checkpoint.h"
#include "train/losses/fd3d.h"
#include "train/losses/fd3d_head.h"
#include "train/trainer/fd3d_head_run.h"
#include "train/trainer/loss_entries.h"
#include "train/trainer/loss_entry_util.h"

namespace bevkd::train::trainer {

namespace {

namespace ls = losses;

struct Fd3d : DistillLoss {
  std::string tap, student_tap;
  bool smgd = true, qfd = true;
  uint64_t seed = 0;
  double head_lr = 0, head_clip = 0;
  BevGrid student_grid, teacher_grid;
  ls::Fd3dSmgdOptions smgd_o;
  ls::Fd3dQfdOptions qfd_o;
  ls::Fd3dHead head{nullptr};
  ls::Fd3dGenerator generator{nullptr};
  torch::nn::Conv2d qfd_adaptor{nullptr};
  std::unique_ptr<torch::optim::AdamW> head_opt;
  // Per micro-batch since the last step: L_dh (its graph reaches the head only), its two parts and
  // the focal-query counts.
  std::vector<torch::Tensor> head_losses;
  std::vector<std::array<double, 5>> stats;  // cls, box, focal per sample with GT, GT covered share, focal per sample

  explicit Fd3d(const LossSetup& s)
      : tap(str(s.params, "tap")), student_tap(str(s.params, "student_tap")), student_grid(s.student.grid),
        teacher_grid(s.teacher_grid) {
    const auto& p = s.params;
    smgd = p.at("smgd").get<bool>();
    qfd = p.at("qfd").get<bool>();
    seed = p.at("seed").get<uint64_t>();
    head_lr = num(p, "head_lr");
    head_clip = num(p, "head_grad_clip");
    BEVKD_CHECK(head_lr > 0, s.where, ": head_lr ", head_lr, " must be > 0");
    const int64_t ct = tap_channels(s, tap), cs = student_channels(s, student_tap);
    ls::Fd3dHeadOptions ho;
    ho.decoder.in_channels = ct;
    ho.decoder.num_queries = p.at("num_queries").get<int64_t>();
    ho.decoder.embed_dims = p.at("embed_dims").get<int64_t>();
    ho.decoder.num_layers = p.at("num_layers").get<int64_t>();
    ho.decoder.heads = p.at("heads").get<int64_t>();
    ho.decoder.points = p.at("points").get<int64_t>();
    ho.decoder.ffn_dims = 2 * ho.decoder.embed_dims;
    ho.loss.cls_weight = num(p, "alpha");
    ho.loss.box_weight = num(p, "beta");
    ho.rho_c = num(p, "rho_c");
    ho.rho_b = num(p, "rho_b");
    const std::string init = str(p, "head_init");
    core::nn::NamedTensors init_state;
    if (!init.empty()) {
      // A head trained by `bevkd-train fd3d-head`: its architecture and thresholds come with it.
      const auto ck = core::nn::read_checkpoint(init, kFd3dHeadCheckpointKind);
      const json meta = config::parse(ck.meta_json, "checkpoint " + init + " meta");
      config::from_json(meta.at("decoder"), ho.decoder, "checkpoint " + init + " decoder");
      config::from_json(meta.at("loss"), ho.loss, "checkpoint " + init + " loss");
      ho.rho_c = meta.at("rho_c").get<double>();
      ho.rho_b = meta.at("rho_b").get<double>();
      const BevGrid g = BevGrid::from_json(meta.at("grid"), "checkpoint " + init + " grid");
      BEVKD_CHECK(g.to_json() == teacher_grid.to_json(), s.where, ": head_init ", init, " was trained on the grid ", g.describe(),
                  ", the shards' is ", teacher_grid.describe());
      BEVKD_CHECK(meta.at("tap") == tap, s.where, ": head_init ", init, " was trained on the tap ", meta.at("tap").dump(),
                  ", this loss reads '", tap, "'");
      BEVKD_CHECK(ho.decoder.in_channels == ct, s.where, ": head_init ", init, " reads ", ho.decoder.in_channels,
                  " channels, the tap has ", ct);
      init_state = ck.module("fd3d_head", init);
    }
    ho.validate(s.where + " head");
    head = register_module("head", ls::Fd3dHead(ho, teacher_grid));
    if (!init.empty()) core::nn::load_module_state(*head, init_state, "checkpoint " + init, "the fd3d head");
    head_opt = std::make_unique<torch::optim::AdamW>(head->parameters(),
                                                     torch::optim::AdamWOptions(head_lr).weight_decay(1e-4));
    if (smgd) {
      smgd_o.tau = num(p, "smgd_tau");
      smgd_o.mask_ratio = num(p, "smgd_mask_ratio");
      smgd_o.weight = num(p, "smgd_weight");
      smgd_o.validate();
      const bool same = student_grid.H == teacher_grid.H && student_grid.W == teacher_grid.W;
      const bool half = 2 * student_grid.H == teacher_grid.H && 2 * student_grid.W == teacher_grid.W;
      BEVKD_CHECK(same || half, s.where, ": SMGD's generator maps the student grid ", student_grid.H, "x",
                  student_grid.W, " onto the teacher's ", teacher_grid.H, "x", teacher_grid.W,
                  " only when they are equal or the student's cells are twice as large");
      generator = register_module("generator", ls::Fd3dGenerator(cs, ct, /*upsample=*/half));
    }
    if (qfd) {
      qfd_o = ls::Fd3dQfdOptions::from_grid(teacher_grid);
      qfd_o.weight = num(p, "qfd_weight");
      qfd_o.validate();
      if (cs != ct) qfd_adaptor = register_module("qfd_adaptor", torch::nn::Conv2d(torch::nn::Conv2dOptions(cs, ct, 1)));
    }
  }

  std::vector<torch::Tensor> student_parameters() override {
    std::vector<torch::Tensor> v;
    for (const auto& it : named_parameters())
      if (it.key().rfind("head.", 0) != 0) v.push_back(it.value());
    return v;
  }
  std::vector<torch::Tensor> own_parameters() override { return head->parameters(); }
  torch::optim::Optimizer* own_optimizer() override { return head_opt.get(); }
  double own_grad_clip() const override { return head_clip; }
  void set_own_lr(double factor) override {
    for (auto& g : head_opt->param_groups()) static_cast<torch::optim::AdamWOptions&>(g.options()).lr(head_lr * factor);
  }
  std::vector<torch::Tensor> take_own_losses(std::map<std::string, double>& logged) override {
    (void)logged;  // the head's terms are logged with the metrics
    auto out = std::move(head_losses);
    head_losses.clear();
    return out;
  }
  void take_metrics(std::map<std::string, double>& logged) override {
    if (!stats.empty()) {
      std::array<double, 5> m{};
      for (const auto& s : stats)
        for (std::size_t k = 0; k < m.size(); ++k) m[k] += s[k] / static_cast<double>(stats.size());
      logged["loss.fd3d.head_cls"] = m[0];
      logged["loss.fd3d.head_box"] = m[1];
      logged["fd3d.focal_per_gt_sample"] = m[2];
      logged["fd3d.gt_covered"] = m[3];
      logged["fd3d.focal_per_sample"] = m[4];
    }
    stats.clear();
  }

  std::map<std::string, torch::Tensor> terms(const LossInputs& in) override {
    const torch::Tensor t = teacher_map(in.batch, tap);
    std::vector<torch::Tensor> boxes, labels;
    for (const auto& g : in.batch.gt) {
      boxes.push_back(g.boxes);
      labels.push_back(g.labels);
    }
    auto step = ls::fd3d_head_step(head, t, boxes, labels);
    head_losses.push_back(step.loss);
    const auto& f = step.focal;
    stats.push_back({step.cls.item<double>(), step.box.item<double>(),
                     f.samples_with_gt > 0 ? static_cast<double>(f.count) / static_cast<double>(f.samples_with_gt) : 0.0,
                     f.gt_total > 0 ? static_cast<double>(f.gt_covered) / static_cast<double>(f.gt_total) : 0.0,
                     static_cast<double>(f.count) / static_cast<double>(t.size(0))});
    std::map<std::string, torch::Tensor> out;
    const torch::Tensor s = in.student.tap(student_tap);
    if (smgd) {
      const auto mask = ls::fd3d_instance_mask(f.boxes, student_grid, s.options());
      // Each sample's draw depends on (seed, step, sample) only (as MGD's): resume and any split
      // over ranks or micro-batches draw the same masks.
      std::vector<torch::Tensor> draws;
      for (const auto& token : in.batch.sample_tokens) {
        auto gen = at::make_generator<at::CPUGeneratorImpl>(mix_keys(seed, static_cast<uint64_t>(in.step), key_of(token)));
        draws.push_back(torch::rand({1, 1, student_grid.H, student_grid.W}, gen, torch::kFloat32));
      }
      out["smgd"] = ls::fd3d_smgd(s, t, mask, torch::cat(draws).to(s.device()), generator, smgd_o);
    }
    if (qfd) {
      out["qfd"] = ls::fd3d_qfd(s, t, f.positions, qfd_adaptor, qfd_o);  // 0 without focal queries
    }
    return out;
  }
};

}  // namespace

std::vector<LossEntry> fd3d_loss_entries() {
  std::vector<LossEntry> all;
  LossEntry e{"fd3d",
              "FD3D (spec/losses.md §6): a distillation head (N queries, self-attention, single-level deformable "
              "attention over the stored teacher map, FFN; Hungarian-trained on GT with its own AdamW) whose focal "
              "queries drive SMGD (instance-masked generative KL) and QFD (min-max normalised features at their "
              "sampling points); head_init warm-starts the head from `bevkd-train fd3d-head`",
              1.0,
              {{"tap", "neck"},
               {"student_tap", "neck"},
               {"smgd", true},
               {"qfd", true},
               {"seed", 0},
               {"num_queries", 300},
               {"embed_dims", 256},
               {"num_layers", 3},
               {"heads", 8},
               {"points", 4},
               {"alpha", 2.0},
               {"beta", 0.25},
               {"rho_c", 0.3},
               {"rho_b", 0.3},
               {"head_lr", 2e-4},
               {"head_init", ""},
               {"head_grad_clip", 35.0}},
              [](const json& p) { return std::vector<ShardNeed>{tap_need(p.at("tap").get<std::string>())}; },
              maker<Fd3d>()};
  e.probe_losses = {"fd3d_smgd", "fd3d_qfd"};
  e.probe_params = {{"smgd_tau", "tau"},
                    {"smgd_mask_ratio", "mask_ratio"},
                    {"smgd_weight", "loss_weight"},
                    {"qfd_weight", "fd3d_qfd.loss_weight"}};
  all.push_back(std::move(e));
  return all;
}

}  // namespace bevkd::train::trainer

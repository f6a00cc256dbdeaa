// The registry's X³KD entry (spec/losses.md §5): X-FD, X-AT and X-OD on one adaptor A, with
// X-AT's discriminator trained by an optimizer of its own after each student step (the
// DistillLoss "own optimizer" interface, loss_registry.h). X-IS is out of scope: bevkd stores no
// perspective-view instance-segmentation teacher.
#include <torch/nn/functional/upsampling.h>
#include <torch/optim/adam.h>
#include <torch/torch.h>

#include "core/nn/center_targets.h"
#include "train/losses/x3kd.h"
#include "train/trainer/loss_entries.h"
#include "train/trainer/loss_entry_util.h"

namespace bevkd::train::trainer {

namespace {

namespace ls = losses;

ShardNeed heatmap_need() {
  return {"teacher/heatmap", "(every shard holds the teacher's heat map)", "",
          [](data::LoaderConfig& c) { c.teacher_heatmap = true; }};
}

// One student's regression channels at a task's cells, in center_targets' box-target order
// (Δx, Δy, z, log l, log w, log h, sin yaw, cos yaw[, vx, vy]): [B, R, H, W].
torch::Tensor task_regression(const core::nn::TaskPrediction& p) {
  std::vector<torch::Tensor> v{p.reg, p.height, p.dim, p.rot};
  if (p.vel.defined()) v.push_back(p.vel);
  return torch::cat(v, 1);
}

struct X3kd : DistillLoss {
  std::string tap, student_tap;
  ls::X3kdOptions o;
  student::StudentConfig student;
  bool xod = false, follow_schedule = true;
  double disc_lr = 0;
  torch::nn::Conv2d adaptor{nullptr};
  ls::X3kdDiscriminator disc{nullptr};
  std::unique_ptr<torch::optim::Adam> disc_opt;
  // X-OD: the classes the student's tasks predict, as (class, task, channel).
  std::vector<std::array<int64_t, 3>> classes;
  // What X-AT's discriminator step reads, per micro-batch since the last step: (T, A(S) detached).
  std::vector<std::pair<torch::Tensor, torch::Tensor>> saved;

  explicit X3kd(const LossSetup& s) : tap(str(s.params, "tap")), student_tap(str(s.params, "student_tap")), student(s.student) {
    const auto& p = s.params;
    o.w_fd = num(p, "w_fd");
    o.w_at = num(p, "w_at");
    o.w_hm = num(p, "w_hm");
    o.w_reg = num(p, "w_reg");
    o.qfl_beta = num(p, "qfl_beta");
    o.score_thr = num(p, "score_thr");
    o.validate();
    BEVKD_CHECK(o.w_fd > 0 || o.w_at > 0 || o.w_hm > 0 || o.w_reg > 0, s.where,
                ": every term is off (w_fd, w_at, w_hm and w_reg are 0)");
    xod = o.w_hm > 0 || o.w_reg > 0;
    BEVKD_CHECK(!xod || !student.query(), s.where, ": X-OD distils the CenterHead's heat map and regression maps; "
                "the student has the query head (set w_hm and w_reg to 0 there)");
    const int64_t ct = tap_channels(s, tap);
    adaptor = ls::x3kd_make_adaptor(student_channels(s, student_tap), ct);
    if (adaptor) register_module("adaptor", adaptor);
    if (o.w_at > 0) {
      const auto hidden = p.at("disc_channels").get<int64_t>();
      disc_lr = num(p, "disc_lr");
      const double beta1 = num(p, "disc_beta1");
      const auto sched = str(p, "disc_schedule");
      BEVKD_CHECK(hidden >= 1, s.where, ": disc_channels ", hidden, " must be >= 1");
      BEVKD_CHECK(disc_lr > 0, s.where, ": disc_lr ", disc_lr, " must be > 0");
      BEVKD_CHECK(beta1 >= 0 && beta1 < 1, s.where, ": disc_beta1 ", beta1, " must be in [0, 1)");
      BEVKD_CHECK(sched == "follow" || sched == "constant", s.where, ": disc_schedule must be follow (the student's "
                  "schedule shape, scaled to disc_lr) or constant, got '", sched, "'");
      follow_schedule = sched == "follow";
      disc = register_module("discriminator", ls::X3kdDiscriminator(ct, hidden));
      disc_opt = std::make_unique<torch::optim::Adam>(
          disc->parameters(), torch::optim::AdamOptions(disc_lr).betas(std::make_tuple(beta1, 0.999)));
    }
    for (int64_t t = 0; t < static_cast<int64_t>(student.head.tasks.size()); ++t)
      for (int64_t k = 0; k < static_cast<int64_t>(student.head.tasks[t].size()); ++k)
        classes.push_back({student.head.tasks[t][k], t, k});
    std::sort(classes.begin(), classes.end());
  }

  std::vector<torch::Tensor> student_parameters() override {
    std::vector<torch::Tensor> v;
    for (const auto& it : named_parameters())
      if (it.key().rfind("discriminator.", 0) != 0) v.push_back(it.value());
    return v;
  }
  std::vector<torch::Tensor> own_parameters() override { return disc ? disc->parameters() : std::vector<torch::Tensor>{}; }
  torch::optim::Optimizer* own_optimizer() override { return disc_opt.get(); }
  void set_own_lr(double factor) override {
    for (auto& g : disc_opt->param_groups())
      static_cast<torch::optim::AdamOptions&>(g.options()).lr(follow_schedule ? disc_lr * factor : disc_lr);
  }

  std::vector<torch::Tensor> take_own_losses(std::map<std::string, double>& logged) override {
    std::vector<torch::Tensor> out;
    double acc = 0, sum = 0;
    for (const auto& [t, as] : saved) {
      const auto lt = disc->forward(t), lsd = disc->forward(as);
      out.push_back(ls::x3kd_xat_discriminator_from_logits(lt, lsd));
      sum += out.back().item<double>();
      acc += ls::x3kd_discriminator_accuracy(lt, lsd);
    }
    if (!saved.empty()) {
      const double n = static_cast<double>(saved.size());
      logged["loss.x3kd.disc"] = sum / n;
      logged["x3kd.disc_acc"] = acc / n;
    }
    saved.clear();
    return out;
  }

  std::map<std::string, torch::Tensor> terms(const LossInputs& in) override {
    std::map<std::string, torch::Tensor> out;
    const torch::Tensor t = teacher_map(in.batch, tap);
    if (o.w_fd > 0 || disc) {
      const torch::Tensor as = ls::x3kd_adapt(in.student.tap(student_tap), adaptor, t.size(2), t.size(3));
      if (o.w_fd > 0) out["xfd"] = ls::x3kd_xfd(as, t, o.w_fd);
      if (disc) {
        out["xat"] = ls::x3kd_xat_generator_loss(disc, as, o.w_at);
        saved.emplace_back(t, as.detach());
      }
    }
    if (xod) {
      const auto od = output_distillation(in);
      out["xod_hm"] = o.w_hm * od.first;
      out["xod_reg"] = o.w_reg * od.second;
    }
    return out;
  }

  // X-OD (L_hm, L_reg): the student's class heat-map logits resized onto the teacher's grid
  // against the stored heat map; the regression at each teacher box's centre cell of the
  // student's grid against the box coded as the student's CenterHead codes its GT.
  std::pair<torch::Tensor, torch::Tensor> output_distillation(const LossInputs& in) {
    const auto& tasks = in.student.tasks;
    std::vector<torch::Tensor> logits;
    std::vector<int64_t> cls;
    for (const auto& [c, t, k] : classes) {
      logits.push_back(tasks[static_cast<size_t>(t)].heatmap.select(1, k));
      cls.push_back(c);
    }
    std::vector<torch::Tensor> thm, boxes, labels;
    int64_t num_boxes = 0;
    for (const auto& st : in.batch.teacher) {
      thm.push_back(st.heatmap);
      boxes.push_back(st.boxes.to(torch::kCPU));
      labels.push_back(st.labels.to(torch::kCPU));
      num_boxes += st.boxes.size(0);
    }
    const torch::Tensor t_hm =
        torch::stack(thm).index_select(1, torch::tensor(cls, torch::kInt64).to(thm.front().device()));
    torch::Tensor s_hm = torch::stack(logits, 1);
    if (s_hm.size(2) != t_hm.size(2) || s_hm.size(3) != t_hm.size(3))
      s_hm = torch::nn::functional::interpolate(s_hm, torch::nn::functional::InterpolateFuncOptions()
                                                          .size(std::vector<int64_t>{t_hm.size(2), t_hm.size(3)})
                                                          .mode(torch::kBilinear)
                                                          .align_corners(false));
    const torch::Tensor hm = ls::x3kd_xod_hm(s_hm, t_hm, num_boxes, o);

    // The teacher boxes coded on the student's grid by the one target coder (slots keep their
    // source row, hence their score).
    auto tcfg = student.target_config();
    tcfg.max_objs = std::max<int64_t>(tcfg.max_objs, num_boxes);
    const auto targets = core::nn::center_targets(boxes, labels, tcfg);
    std::vector<torch::Tensor> preds, codes, scores;
    const auto dev = hm.device();
    for (std::size_t t = 0; t < tasks.size(); ++t) {
      const torch::Tensor reg = task_regression(tasks[t]);  // [B, R, H, W]
      const int64_t R = reg.size(1), HW = reg.size(2) * reg.size(3);
      for (int64_t b = 0; b < reg.size(0); ++b) {
        const torch::Tensor slots = targets[t].mask[b].nonzero().squeeze(1);
        if (slots.numel() == 0) continue;
        const torch::Tensor idx = targets[t].index[b].index_select(0, slots).to(dev);
        preds.push_back(reg[b].reshape({R, HW}).index_select(1, idx).t());
        codes.push_back(targets[t].box[b].index_select(0, slots).narrow(1, 0, R).to(dev));
        const torch::Tensor src = targets[t].source[b].index_select(0, slots);
        scores.push_back(in.batch.teacher[static_cast<size_t>(b)].scores.to(torch::kCPU).index_select(0, src).to(dev));
      }
    }
    const torch::Tensor reg = preds.empty() ? torch::zeros({}, hm.options())
                                            : ls::x3kd_xod_reg(torch::cat(preds), torch::cat(codes), torch::cat(scores), o);
    return {hm, reg};
  }
};

}  // namespace

std::vector<LossEntry> x3kd_loss_entries() {
  std::vector<LossEntry> all;
  LossEntry e{"x3kd",
              "X³KD cross-modal distillation (spec/losses.md §5): X-FD (adapted student map vs a teacher tap), X-AT "
              "(a per-cell discriminator with its own Adam, stepped after the student; w_at = 0 turns it off) and X-OD "
              "(QFL on the stored heat map + score-weighted L1 on the teacher boxes' codes); X-IS is out of scope",
              1.0,
              {{"tap", "neck"},
               {"student_tap", "neck"},
               {"disc_channels", 256},
               {"disc_lr", 1e-4},
               {"disc_beta1", 0.5},
               {"disc_schedule", "constant"}},
              [](const json& p) {
                std::vector<ShardNeed> n{tap_need(p.at("tap").get<std::string>())};
                if (p.at("w_hm").get<double>() > 0 || p.at("w_reg").get<double>() > 0) {
                  n.push_back(heatmap_need());
                  n.push_back(teacher_boxes_need());
                }
                return n;
              },
              maker<X3kd>()};
  e.probe_losses = {"x3kd"};
  e.probe_params = {{"w_fd", "w_fd"},         {"w_at", "w_at"},         {"w_hm", "w_hm"},
                    {"w_reg", "w_reg"},       {"qfl_beta", "qfl_beta"}, {"score_thr", "score_thr"}};
  all.push_back(std::move(e));
  return all;
}

}  // namespace bevkd::train::trainer

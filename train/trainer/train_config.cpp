#include "train/trainer/train_config.h"

#include <torch/types.h>

#include <cmath>

#include "base/config.h"
#include "base/error.h"
#include "base/fs.h"

namespace bevkd::train::trainer {

using nlohmann::json;

json to_config_json(const LossSpec& s) {
  json j = s.params.is_object() ? s.params : json::object();
  j["name"] = s.name;
  if (std::isfinite(s.weight)) j["weight"] = s.weight;
  return j;
}

void from_config_json(const json& j, LossSpec& s, const std::string& where) {
  BEVKD_CHECK(j.is_object(), where, ": a loss must be an object {\"name\": ..., \"weight\": ..., <params>}, found ",
              config::shown(j));
  BEVKD_CHECK(j.contains("name") && j.at("name").is_string(), where, ": a loss needs a \"name\" (string), found ",
              config::shown(j));
  s.name = j.at("name").get<std::string>();
  s.weight = std::numeric_limits<double>::quiet_NaN();
  if (j.contains("weight")) {
    BEVKD_CHECK(j.at("weight").is_number(), where, ": loss ", s.name, ": \"weight\" must be a number, found ",
                config::shown(j.at("weight")));
    s.weight = j.at("weight").get<double>();
  }
  s.params = json::object();
  for (const auto& [k, v] : j.items())
    if (k != "name" && k != "weight") s.params[k] = v;
}

LossSpec parse_loss_flag(const std::string& text) {
  LossSpec s;
  const auto colon = text.find(':');
  s.name = text.substr(0, colon);
  BEVKD_CHECK(!s.name.empty(), "--loss '", text, "': expected NAME or NAME:WEIGHT");
  if (colon != std::string::npos) {
    const std::string w = text.substr(colon + 1);
    try {
      std::size_t used = 0;
      s.weight = std::stod(w, &used);
      BEVKD_CHECK(used == w.size(), "");
    } catch (const std::exception&) {
      BEVKD_FAIL("--loss '", text, "': the weight '", w, "' is not a number (expected NAME or NAME:WEIGHT)");
    }
  }
  return s;
}

namespace {
void check_device(const std::string& device, const std::string& w) {
  try {
    (void)torch::Device(device);
  } catch (const std::exception&) {
    BEVKD_FAIL(w, ": --device '", device, "' is not a device (cpu, cuda, cuda:1, ...)");
  }
}
}  // namespace

void TrainConfig::validate() const {
  const std::string w = "bevkd-train train";
  BEVKD_CHECK(!shards.empty(), w, ": --shards (config key data.shards) is required");
  BEVKD_CHECK(!dataroot.empty(), w, ": --dataroot (config key data.dataroot) is required");
  BEVKD_CHECK(!out_dir.empty(), w, ": --out (config key runtime.out_dir) is required");
  BEVKD_CHECK(!train_split.empty(), w, ": --train-split is empty");
  BEVKD_CHECK(epochs >= 1, w, ": --epochs must be >= 1, got ", epochs);
  schedule.validate(w + " schedule");
  BEVKD_CHECK(weight_decay >= 0, w, ": --weight-decay must be >= 0, got ", weight_decay);
  BEVKD_CHECK(grad_clip >= 0, w, ": --grad-clip must be >= 0, got ", grad_clip);
  BEVKD_CHECK(ema_decay > 0 && ema_decay < 1, w, ": --ema-decay must be in (0, 1), got ", ema_decay);
  BEVKD_CHECK(ema_ramp > 0, w, ": --ema-ramp must be > 0, got ", ema_ramp);
  BEVKD_CHECK(precision == "fp32" || precision == "bf16", w, ": --precision must be fp32 or bf16, got '", precision,
              "'");
  check_device(device, w);
  BEVKD_CHECK(precision == "fp32" || torch::Device(device).is_cuda(), w,
              ": --precision bf16 is autocast on CUDA; the device is ", device, " (use fp32 on the CPU)");
  BEVKD_CHECK(max_bad_steps >= 0, w, ": --max-bad-steps must be >= 0, got ", max_bad_steps);
  BEVKD_CHECK(eval_every >= 0, w, ": --eval-every must be >= 0, got ", eval_every);
  BEVKD_CHECK(eval_weights == "auto" || eval_weights == "ema" || eval_weights == "model", w,
              ": --eval-weights must be auto, ema or model, got '", eval_weights, "'");
  BEVKD_CHECK(eval_weights != "ema" || ema, w, ": --eval-weights ema needs --ema");
  BEVKD_CHECK(threads >= 0 && checkpoint_every >= 0 && stop_after >= 0 && log_every >= 1, w,
              ": threads, checkpoint_every, stop_after must be >= 0 and log_every >= 1");
  BEVKD_CHECK(accumulate >= 1, w, ": --accumulate must be >= 1, got ", accumulate);
  BEVKD_CHECK(dist_timeout_s > 0, w, ": --dist-timeout must be > 0 seconds, got ", dist_timeout_s);
  BEVKD_CHECK(dist_bucket_mb > 0, w, ": --dist-bucket-mb must be > 0, got ", dist_bucket_mb);
  BEVKD_CHECK(dist_backend == "auto" || dist_backend == "gloo" || dist_backend == "nccl", w,
              ": --dist-backend must be auto, gloo or nccl, got '", dist_backend, "'");
  for (const auto& l : losses) {
    BEVKD_CHECK(!l.name.empty(), w, ": a loss without a name");
    BEVKD_CHECK(std::isnan(l.weight) || (std::isfinite(l.weight) && l.weight >= 0), w, ": loss ", l.name,
                ": weight must be a finite number >= 0, got ", l.weight);
  }
  for (std::size_t i = 0; i < losses.size(); ++i)
    for (std::size_t k = i + 1; k < losses.size(); ++k)
      BEVKD_CHECK(losses[i].name != losses[k].name, w, ": loss ", losses[i].name, " is listed twice");
  loader.validate();
}

void EvalConfig::validate() const {
  const std::string w = "bevkd-train eval";
  BEVKD_CHECK(!checkpoint.empty(), w, ": --checkpoint is required");
  BEVKD_CHECK(!shards.empty(), w, ": --shards is required");
  BEVKD_CHECK(!dataroot.empty(), w, ": --dataroot is required");
  BEVKD_CHECK(!split.empty(), w, ": --split is empty");
  BEVKD_CHECK(weights == "auto" || weights == "ema" || weights == "model", w,
              ": --weights must be auto, ema or model, got '", weights, "'");
  BEVKD_CHECK(batch_size >= 1 && threads >= 1, w, ": --batch-size and --loader-threads must be >= 1");
  check_device(device, w);
}

student::StudentConfig resolve_student(const TrainConfig& cfg) {
  if (cfg.student.grid.valid()) {
    BEVKD_CHECK(cfg.student_config.empty(), "bevkd-train train: the configuration holds a full student "
                "(student.model) and --student-config ", cfg.student_config, "; give one of them");
    cfg.student.validate();
    return cfg.student;
  }
  auto s = student::student_preset(cfg.preset);
  if (!cfg.student_config.empty()) {
    config::from_json(config::read_file(cfg.student_config), s, cfg.student_config);
    s.validate();
  }
  return s;
}

data::ImageAugConfig loader_image_config(const student::StudentConfig& s) {
  data::ImageAugConfig a;
  a.final_size = {s.image_height, s.image_width};
  a.resize_range = s.image_aug.resize_range;
  a.reference_width = s.image_aug.reference_width;
  a.rotation_range = s.image_aug.rotation_range_deg;
  a.flip_prob = s.image_aug.flip_prob;
  a.bottom_crop_range = s.image_aug.bottom_crop;
  BEVKD_CHECK(s.image_mean.size() == 3 && s.image_std.size() == 3, "student image.mean / image.std must hold 3 values");
  for (int c = 0; c < 3; ++c) {
    a.mean[static_cast<std::size_t>(c)] = s.image_mean[static_cast<std::size_t>(c)];
    a.std[static_cast<std::size_t>(c)] = s.image_std[static_cast<std::size_t>(c)];
  }
  return a;
}

void follow_student(data::LoaderConfig& c, const student::StudentConfig& s) {
  c.image = loader_image_config(s);
  c.depth_stride = s.depth_stride;
  c.depth_range = {s.depth_bins.min, s.depth_bins.max};
}

}  // namespace bevkd::train::trainer

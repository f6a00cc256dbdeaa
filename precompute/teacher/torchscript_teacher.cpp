#include "precompute/teacher/torchscript_teacher.h"

#include <torch/script.h>

#include <sstream>

#include "base/error.h"
#include "base/fs.h"
#include "base/config.h"

namespace bevkd::precompute {

namespace det = core::nn;

namespace {

const char* const kRequired[] = {"neck", "head_shared", "heatmap", "reg", "height", "dim", "rot", "vel"};

struct RegChannels {
  const char* key;
  int64_t channels;
};
const RegChannels kHeadOutputs[] = {{"reg", 2}, {"height", 1}, {"dim", 3}, {"rot", 2}, {"vel", 2}};

class TorchScriptTeacher final : public Teacher {
 public:
  explicit TorchScriptTeacher(const TorchScriptTeacherOptions& opts) : opts_(opts) {
    BEVKD_CHECK(path_exists(opts_.path), "TorchScript teacher ", opts_.path, ": file not found");
    try {
      module_ = torch::jit::load(opts_.path, opts_.device);
    } catch (const c10::Error& e) {
      BEVKD_FAIL("TorchScript teacher ", opts_.path, ": not a loadable TorchScript module (",
                 std::string(e.what_without_backtrace()).substr(0, 300), ")");
    }
    BEVKD_CHECK(module_.find_method("forward").has_value(), "TorchScript teacher ", opts_.path,
                ": the module has no forward method");
    if (module_.hasattr("bevkd_contract_version")) {
      const auto v = module_.attr("bevkd_contract_version");
      BEVKD_CHECK(v.isInt() && v.toInt() == kTeacherContractVersion, "TorchScript teacher ", opts_.path,
                  ": bevkd_contract_version is ", v.isInt() ? std::to_string(v.toInt()) : std::string(v.tagKind()),
                  ", this bevkd implements contract version ", kTeacherContractVersion);
    }
    if (module_.hasattr("bevkd_box_convention")) {
      const auto v = module_.attr("bevkd_box_convention");
      BEVKD_CHECK(v.isString(), "TorchScript teacher ", opts_.path, ": bevkd_box_convention is not a string");
      convention_ = v.toStringRef();
      BEVKD_CHECK(convention_ == "bevkd" || convention_ == "mmdet3d-v0.17", "TorchScript teacher ", opts_.path,
                  ": bevkd_box_convention is '", convention_, "', expected 'bevkd' or 'mmdet3d-v0.17'");
    }
    if (module_.hasattr("bevkd_name") && module_.attr("bevkd_name").isString())
      name_ = module_.attr("bevkd_name").toStringRef();
    module_.eval();
    opts_.decode.grid = opts_.grid;
    opts_.decode.validate("TorchScript teacher " + opts_.path + " decode");
    hash_ = file_hash(opts_.path);
  }

  TeacherOutput infer_prepared(const std::vector<PreparedCloud>& clouds) override {
    torch::NoGradGuard no_grad;
    const auto B = static_cast<int64_t>(clouds.size());
    BEVKD_CHECK(B > 0, "TorchScript teacher ", opts_.path, ": empty batch");
    std::vector<torch::Tensor> points, idx;
    for (int64_t b = 0; b < B; ++b) {
      const auto& p = clouds[static_cast<size_t>(b)].points;
      BEVKD_CHECK(p.dim() == 2 && p.size(1) == 5 && p.scalar_type() == torch::kFloat32, "TorchScript teacher ",
                  opts_.path, ": sample ", b, " has points of shape ", p.sizes(), " and dtype ", p.scalar_type(),
                  ", expected [P, 5] float32");
      points.push_back(p);
      idx.push_back(torch::full({p.size(0)}, b, torch::kInt64));
    }
    const auto& g = opts_.grid;
    const auto grid = torch::tensor({g.range[0], g.range[1], g.range[2], g.range[3], g.range[4], g.range[5], g.dx, g.dy},
                                    torch::kFloat64);
    c10::IValue result;
    try {
      result = module_.forward({torch::cat(points, 0).to(opts_.device), torch::cat(idx, 0).to(opts_.device), B,
                                grid.to(opts_.device)});
    } catch (const c10::Error& e) {
      BEVKD_FAIL("TorchScript teacher ", opts_.path, ": forward failed: ",
                 std::string(e.what_without_backtrace()).substr(0, 500));
    }
    BEVKD_CHECK(result.isGenericDict(), "TorchScript teacher ", opts_.path, ": forward returned ", result.tagKind(),
                ", the teacher contract expects Dict[str, Tensor]");
    std::map<std::string, torch::Tensor> outs;
    for (const auto& e : result.toGenericDict()) {
      BEVKD_CHECK(e.key().isString() && e.value().isTensor(), "TorchScript teacher ", opts_.path,
                  ": forward returned a dict entry that is not str -> Tensor");
      outs[e.key().toStringRef()] = e.value().toTensor().to(torch::kCPU).to(torch::kFloat32).contiguous();
    }
    for (const char* key : kRequired) {
      if (outs.count(key) != 0) continue;
      std::string have;
      for (const auto& [k, v] : outs) have += (have.empty() ? "" : ", ") + k;
      BEVKD_FAIL("TorchScript teacher ", opts_.path, ": output '", key,
                 "' of the teacher contract is missing (the module returned: ", have.empty() ? "nothing" : have, ")");
    }
    auto expect = [&](const std::string& key, int64_t channels) {
      const auto& t = outs.at(key);
      const bool ok = t.dim() == 4 && t.size(0) == B && (channels < 0 || t.size(1) == channels) &&
                      t.size(2) == g.H && t.size(3) == g.W;
      BEVKD_CHECK(ok, "TorchScript teacher ", opts_.path, ": output '", key, "' has shape ", t.sizes(),
                  ", the contract expects [", B, ", ", channels < 0 ? std::string("C") : std::to_string(channels), ", ",
                  g.H, ", ", g.W, "] for ", g.describe());
      BEVKD_CHECK(torch::isfinite(t).all().item<bool>(), "TorchScript teacher ", opts_.path, ": output '", key,
                  "' holds non-finite values");
    };
    expect("neck", -1);
    expect("head_shared", -1);
    expect("heatmap", core::kNumClasses);
    for (const auto& r : kHeadOutputs) expect(r.key, r.channels);

    TeacherOutput out;
    out.features[kTapNeck] = outs.at("neck");
    out.features[kTapHeadShared] = outs.at("head_shared");
    for (const auto& [k, v] : outs) {
      if (k.rfind("tap.", 0) != 0) continue;
      expect(k, -1);
      out.features[k.substr(4)] = v;
    }
    det::TaskPrediction all;
    all.heatmap = outs.at("heatmap");
    all.reg = outs.at("reg");
    all.height = outs.at("height");
    all.dim = outs.at("dim");
    all.rot = outs.at("rot");
    all.vel = outs.at("vel");
    if (convention_ == "mmdet3d-v0.17") all = det::convert_v017_box_regression(all);
    out.heatmap = all.heatmap.sigmoid();
    // One task per NMS group, sharing the regression maps.
    out.tasks = opts_.decode.tasks;
    for (const auto& task : out.tasks) {
      det::TaskPrediction p = all;
      p.heatmap = all.heatmap.index_select(1, torch::tensor(std::vector<int64_t>(task.begin(), task.end()), torch::kInt64));
      out.raw.push_back(std::move(p));
    }
    out.detections = det::decode_center_head(out.raw, opts_.decode);
    check_teacher_output(out, B, g, "TorchScript teacher " + opts_.path);
    return out;
  }

  BevGrid grid() const override { return opts_.grid; }

  TeacherIdentity identity() const override {
    TeacherIdentity id;
    id.kind = "torchscript";
    id.preset = name_;
    id.checkpoint = opts_.path;
    id.checkpoint_hash = hash_;
    nlohmann::json j;
    j["contract_version"] = kTeacherContractVersion;
    j["box_convention"] = convention_;
    j["grid"] = opts_.grid.to_json();
    j["tasks"] = opts_.decode.tasks;
    j["decode"] = config::to_json(opts_.decode);
    id.config_json = j.dump(2);
    return id;
  }

  std::vector<std::string> feature_taps() const override { return {kTapNeck, kTapHeadShared}; }
  torch::Device device() const override { return opts_.device; }

 private:
  TorchScriptTeacherOptions opts_;
  torch::jit::Module module_;
  std::string convention_ = "bevkd";
  std::string name_ = "torchscript";
  std::string hash_;
};

}  // namespace

std::unique_ptr<Teacher> load_torchscript_teacher(const TorchScriptTeacherOptions& opts) {
  return std::make_unique<TorchScriptTeacher>(opts);
}

}  // namespace bevkd::precompute

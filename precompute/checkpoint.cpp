#include "precompute/checkpoint.h"

#include <cstring>
#include <map>
#include <set>
#include <sstream>

#include "base/error.h"
#include "base/fs.h"

namespace bevkd::precompute {

namespace {

std::string shape_str(const torch::Tensor& t) {
  std::ostringstream os;
  os << t.sizes();
  return os.str();
}

torch::Tensor bytes_tensor(const std::string& s) {
  auto t = torch::empty({static_cast<int64_t>(s.size())}, torch::kUInt8);
  if (!s.empty()) std::memcpy(t.data_ptr<uint8_t>(), s.data(), s.size());
  return t;
}

std::string tensor_bytes(const torch::Tensor& t) {
  const auto c = t.contiguous();
  return std::string(reinterpret_cast<const char*>(c.data_ptr<uint8_t>()), static_cast<size_t>(c.numel()));
}

}  // namespace

std::vector<std::pair<std::string, torch::Tensor>> module_state(const torch::nn::Module& module) {
  std::vector<std::pair<std::string, torch::Tensor>> out;
  for (const auto& p : module.named_parameters(/*recurse=*/true)) out.emplace_back(p.key(), p.value().detach().to(torch::kCPU).clone());
  for (const auto& b : module.named_buffers(/*recurse=*/true)) out.emplace_back(b.key(), b.value().detach().to(torch::kCPU).clone());
  return out;
}

void load_module_state(torch::nn::Module& module, const std::vector<std::pair<std::string, torch::Tensor>>& state,
                       const std::string& source, const std::string& target_name) {
  std::map<std::string, const torch::Tensor*> by_name;
  for (const auto& [name, t] : state) by_name[name] = &t;
  std::vector<std::pair<std::string, torch::Tensor>> targets;
  for (const auto& p : module.named_parameters(true)) targets.emplace_back(p.key(), p.value());
  for (const auto& b : module.named_buffers(true)) targets.emplace_back(b.key(), b.value());
  // Check everything first so a mismatch leaves the module untouched.
  for (const auto& [name, t] : targets) {
    const auto it = by_name.find(name);
    BEVKD_CHECK(it != by_name.end(), source, " does not match ", target_name, ": it has no entry for ", name,
                " (", target_name, " expects shape ", shape_str(t), ")");
    BEVKD_CHECK(it->second->sizes() == t.sizes(), source, " does not match ", target_name, ": parameter ", name,
                " has shape ", shape_str(*it->second), " in the checkpoint, ", target_name, " expects ", shape_str(t));
  }
  std::set<std::string> wanted;
  for (const auto& [name, t] : targets) wanted.insert(name);
  for (const auto& [name, t] : state)
    BEVKD_CHECK(wanted.count(name) != 0, source, " does not match ", target_name, ": it holds ", name, " with shape ",
                shape_str(t), ", which ", target_name, " does not have");
  torch::NoGradGuard no_grad;
  for (auto& [name, t] : targets) t.copy_(by_name.at(name)->to(t.device(), t.scalar_type()));
}

void save_checkpoint(const std::string& path, const TeacherCheckpoint& ckpt) {
  c10::impl::GenericDict root(c10::StringType::get(), c10::AnyType::get());
  root.insert("format", std::string(kCheckpointFormat));
  root.insert("version", kCheckpointVersion);
  root.insert("config", ckpt.config_json);
  c10::Dict<std::string, at::Tensor> model;
  for (const auto& [name, t] : ckpt.model) model.insert(name, t.detach().to(torch::kCPU).contiguous());
  root.insert("model", model);
  if (ckpt.train) {
    c10::impl::GenericDict train(c10::StringType::get(), c10::AnyType::get());
    train.insert("step", ckpt.train->step);
    train.insert("epoch", ckpt.train->epoch);
    train.insert("fit_config", ckpt.train->fit_config_json);
    train.insert("optimizer", bytes_tensor(ckpt.train->optimizer_bytes));
    train.insert("metrics", ckpt.train->metrics_json);
    root.insert("train", train);
  }
  const std::vector<char> bytes = torch::pickle_save(root);
  write_file_atomic(path, std::string_view(bytes.data(), bytes.size()));
}

TeacherCheckpoint read_checkpoint(const std::string& path) {
  const std::string raw = read_file(path);
  c10::IValue v;
  try {
    v = torch::pickle_load(std::vector<char>(raw.begin(), raw.end()));
  } catch (const std::exception& e) {
    BEVKD_FAIL("checkpoint ", path, ": not a readable bevkd teacher checkpoint (", file_size(path),
               " bytes; torch::pickle_load: ", std::string(e.what()).substr(0, 200), ")");
  }
  BEVKD_CHECK(v.isGenericDict(), "checkpoint ", path, ": expected a dict at the top level, found ", v.tagKind());
  const auto root = v.toGenericDict();
  auto field = [&](const char* key) -> c10::IValue {
    BEVKD_CHECK(root.contains(key), "checkpoint ", path, ": field '", key, "' is missing");
    return root.at(key);
  };
  const auto format = field("format");
  BEVKD_CHECK(format.isString() && format.toStringRef() == kCheckpointFormat, "checkpoint ", path,
              ": field 'format' is not '", kCheckpointFormat, "'");
  const auto version = field("version");
  BEVKD_CHECK(version.isInt() && version.toInt() == kCheckpointVersion, "checkpoint ", path, ": version ",
              version.isInt() ? std::to_string(version.toInt()) : std::string("?"), ", this bevkd reads version ",
              kCheckpointVersion);
  TeacherCheckpoint ck;
  const auto config = field("config");
  BEVKD_CHECK(config.isString(), "checkpoint ", path, ": field 'config' is not a string");
  ck.config_json = config.toStringRef();
  const auto model = field("model");
  BEVKD_CHECK(model.isGenericDict(), "checkpoint ", path, ": field 'model' is not a dict");
  for (const auto& e : model.toGenericDict()) {
    BEVKD_CHECK(e.key().isString() && e.value().isTensor(), "checkpoint ", path,
                ": field 'model' must map names to tensors");
    ck.model.emplace_back(e.key().toStringRef(), e.value().toTensor());
  }
  if (root.contains("train")) {
    const auto tv = root.at("train");
    BEVKD_CHECK(tv.isGenericDict(), "checkpoint ", path, ": field 'train' is not a dict");
    const auto t = tv.toGenericDict();
    auto tf = [&](const char* key) -> c10::IValue {
      BEVKD_CHECK(t.contains(key), "checkpoint ", path, ": field 'train.", key, "' is missing");
      return t.at(key);
    };
    TrainState s;
    const auto step = tf("step"), epoch = tf("epoch"), fit = tf("fit_config"), opt = tf("optimizer"),
               metrics = tf("metrics");
    BEVKD_CHECK(step.isInt() && epoch.isInt() && fit.isString() && opt.isTensor() && metrics.isString(),
                "checkpoint ", path, ": field 'train' has entries of the wrong type");
    s.step = step.toInt();
    s.epoch = epoch.toInt();
    s.fit_config_json = fit.toStringRef();
    BEVKD_CHECK(opt.toTensor().scalar_type() == torch::kUInt8, "checkpoint ", path,
                ": field 'train.optimizer' is not a uint8 tensor");
    s.optimizer_bytes = tensor_bytes(opt.toTensor());
    s.metrics_json = metrics.toStringRef();
    ck.train = std::move(s);
  }
  return ck;
}

std::string optimizer_to_bytes(const torch::optim::Optimizer& opt) {
  torch::serialize::OutputArchive ar;
  opt.save(ar);
  std::ostringstream os;
  ar.save_to(os);
  return os.str();
}

void optimizer_from_bytes(torch::optim::Optimizer& opt, const std::string& bytes, const std::string& source) {
  torch::serialize::InputArchive ar;
  try {
    std::istringstream is(bytes);
    ar.load_from(is);
    opt.load(ar);
  } catch (const c10::Error& e) {
    BEVKD_FAIL(source, ": the optimizer state cannot be restored (",
               std::string(e.what_without_backtrace()).substr(0, 200), ")");
  }
}

}  // namespace bevkd::precompute

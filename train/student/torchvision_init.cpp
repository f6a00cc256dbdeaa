#include "train/student/torchvision_init.h"

#include <torch/serialize.h>

#include <fstream>
#include <iterator>
#include <map>
#include <set>
#include <sstream>

#include "base/error.h"

namespace bevkd::train::student {
namespace {

std::string shape_str(const torch::Tensor& t) {
  std::ostringstream os;
  os << "[";
  for (int64_t i = 0; i < t.dim(); ++i) os << (i ? ", " : "") << t.size(i);
  os << "]";
  return os.str();
}

// Classifier keys and keys of stages beyond `num_stages` (torchvision's layer1..layer4).
bool skippable(const std::string& key, int64_t num_stages) {
  if (key.rfind("fc.", 0) == 0) return true;
  for (int64_t s = num_stages + 1; s <= 4; ++s)
    if (key.rfind("layer" + std::to_string(s) + ".", 0) == 0) return true;
  return false;
}

constexpr const char* kConverter = "scripts/convert_torchvision_weights.py";

}  // namespace

core::nn::NamedTensors read_weights_file(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  BEVKD_CHECK(f.good(), "weights file ", path, ": cannot open it");
  std::vector<char> bytes((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  BEVKD_CHECK(bytes.size() >= 4 && bytes[0] == 'P' && bytes[1] == 'K', "weights file ", path,
              ": not a zip archive (torch.save's format since PyTorch 1.6); write it with ", kConverter);
  c10::IValue root;
  try {
    root = torch::pickle_load(bytes);
  } catch (const std::exception& e) {
    std::string what = e.what();
    what = what.substr(0, what.find('\n'));
    BEVKD_FAIL("weights file ", path, ": LibTorch cannot read it as a dict of tensors (", what,
               "). A file from torch.save(model.state_dict()) holds an OrderedDict, which LibTorch does not read: "
               "convert it with ", kConverter, " first");
  }
  BEVKD_CHECK(root.isGenericDict(), "weights file ", path, ": holds a ", root.tagKind(),
              ", expected a dict of tensors (write it with ", kConverter, ")");
  core::nn::NamedTensors out;
  for (const auto& kv : root.toGenericDict()) {
    BEVKD_CHECK(kv.key().isString(), "weights file ", path, ": a key is a ", kv.key().tagKind(),
                ", expected parameter names (str)");
    const std::string name = kv.key().toStringRef();
    BEVKD_CHECK(kv.value().isTensor(), "weights file ", path, ": entry ", name, " is a ", kv.value().tagKind(),
                ", expected a tensor (is this a training checkpoint? ", kConverter,
                " extracts its state dict)");
    out.emplace_back(name, kv.value().toTensor());
  }
  BEVKD_CHECK(!out.empty(), "weights file ", path, ": the dict is empty");
  return out;
}

InitReport load_torchvision_weights(ResNetImpl& net, const core::nn::NamedTensors& state, const std::string& source) {
  const std::string target = "the image backbone (" + net.describe() + ")";
  std::map<std::string, const torch::Tensor*> by_name;
  InitReport report;
  for (const auto& [name, t] : state) {
    BEVKD_CHECK(by_name.emplace(name, &t).second, source, ": key ", name, " appears twice");
  }
  std::vector<std::pair<std::string, torch::Tensor>> targets;
  for (const auto& p : net.named_parameters(true)) targets.emplace_back(p.key(), p.value());
  for (const auto& b : net.named_buffers(true)) targets.emplace_back(b.key(), b.value());
  std::set<std::string> wanted;
  // Everything is checked before anything is copied.
  for (const auto& [name, t] : targets) {
    wanted.insert(name);
    const auto it = by_name.find(name);
    BEVKD_CHECK(it != by_name.end(), source, ": key ", name, " is missing (", target, " expects shape ",
                shape_str(t), ")");
    const torch::Tensor& v = *it->second;
    BEVKD_CHECK(v.sizes() == t.sizes(), source, ": key ", name, " has shape ", shape_str(v), " in the file, ",
                target, " expects ", shape_str(t));
    BEVKD_CHECK(v.is_floating_point() == t.is_floating_point(), source, ": key ", name, " has dtype ",
                v.scalar_type(), " in the file, ", target, " expects ", t.scalar_type());
  }
  for (const auto& [name, t] : state) {
    if (wanted.count(name) != 0) continue;
    BEVKD_CHECK(skippable(name, net.config().num_stages), source, ": unexpected key ", name, " with shape ",
                shape_str(t), " (", target, " has no such parameter or buffer)");
    report.skipped.push_back(name);
  }
  torch::NoGradGuard no_grad;
  for (auto& [name, t] : targets) {
    t.copy_(by_name.at(name)->to(t.device(), t.scalar_type()));
    ++report.loaded;
  }
  return report;
}

InitReport load_torchvision_weights(ResNetImpl& net, const std::string& path) {
  return load_torchvision_weights(net, read_weights_file(path), "weights file " + path);
}

}  // namespace bevkd::train::student

#include "core/nn/checkpoint.h"

#include <torch/nn/module.h>
#include <torch/optim/optimizer.h>
#include <torch/serialize.h>
#include <xxhash.h>

#include <cstdio>
#include <cstring>
#include <set>
#include <sstream>

#include "base/error.h"
#include "base/fs.h"

namespace bevkd::core::nn {

namespace {

std::string shape_str(const torch::Tensor& t) {
  std::ostringstream os;
  os << t.sizes();
  return os.str();
}

std::string hex(uint64_t h) {
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(h));
  return std::string("xxh64:") + buf;
}

std::string text_hash(const std::string& s) { return hex(XXH64(s.data(), s.size(), 0)); }

// dtype, shape and bytes of a (CPU, contiguous) tensor.
std::string tensor_hash(const torch::Tensor& t) {
  const auto c = t.contiguous();
  XXH64_state_t* st = XXH64_createState();
  XXH64_reset(st, 0);
  const auto dtype = static_cast<int32_t>(c.scalar_type());
  XXH64_update(st, &dtype, sizeof dtype);
  for (int64_t d : c.sizes()) XXH64_update(st, &d, sizeof d);
  if (c.numel() > 0) XXH64_update(st, c.data_ptr(), static_cast<size_t>(c.numel()) * c.element_size());
  const uint64_t h = XXH64_digest(st);
  XXH64_freeState(st);
  return hex(h);
}

}  // namespace

torch::Tensor bytes_tensor(const std::string& s) {
  auto t = torch::empty({static_cast<int64_t>(s.size())}, torch::kUInt8);
  if (!s.empty()) std::memcpy(t.data_ptr<uint8_t>(), s.data(), s.size());
  return t;
}

std::string tensor_bytes(const torch::Tensor& t) {
  const auto c = t.contiguous();
  return std::string(reinterpret_cast<const char*>(c.data_ptr<uint8_t>()), static_cast<size_t>(c.numel()));
}

const NamedTensors& Checkpoint::module(const std::string& name, const std::string& path) const {
  const auto it = modules.find(name);
  BEVKD_CHECK(it != modules.end(), "checkpoint ", path, " (", kind, ") holds no module state '", name, "'");
  return it->second;
}

NamedTensors module_state(const torch::nn::Module& module) {
  NamedTensors out;
  for (const auto& p : module.named_parameters(/*recurse=*/true))
    out.emplace_back(p.key(), p.value().detach().to(torch::kCPU).clone());
  for (const auto& b : module.named_buffers(/*recurse=*/true))
    out.emplace_back(b.key(), b.value().detach().to(torch::kCPU).clone());
  return out;
}

void load_module_state(torch::nn::Module& module, const NamedTensors& state, const std::string& source,
                       const std::string& target_name) {
  std::map<std::string, const torch::Tensor*> by_name;
  for (const auto& [name, t] : state) by_name[name] = &t;
  NamedTensors targets;
  for (const auto& p : module.named_parameters(true)) targets.emplace_back(p.key(), p.value());
  for (const auto& b : module.named_buffers(true)) targets.emplace_back(b.key(), b.value());
  // Check everything first so a mismatch leaves the module untouched.
  for (const auto& [name, t] : targets) {
    const auto it = by_name.find(name);
    BEVKD_CHECK(it != by_name.end(), source, " does not match ", target_name, ": it has no entry for ", name, " (",
                target_name, " expects shape ", shape_str(t), ")");
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

void save_checkpoint(const std::string& path, const Checkpoint& ckpt) {
  using Generic = c10::impl::GenericDict;
  Generic root(c10::StringType::get(), c10::AnyType::get());
  c10::Dict<std::string, std::string> sums;
  root.insert("format", std::string(kCheckpointFormat));
  root.insert("version", kCheckpointVersion);
  root.insert("kind", ckpt.kind);
  root.insert("meta", ckpt.meta_json);
  sums.insert("meta", text_hash(ckpt.meta_json));
  Generic modules(c10::StringType::get(), c10::AnyType::get());
  for (const auto& [mname, state] : ckpt.modules) {
    c10::Dict<std::string, at::Tensor> m;
    for (const auto& [name, t] : state) {
      const auto c = t.detach().to(torch::kCPU).contiguous();
      m.insert(name, c);
      sums.insert("modules/" + mname + "/" + name, tensor_hash(c));
    }
    modules.insert(mname, m);
  }
  root.insert("modules", modules);
  c10::Dict<std::string, at::Tensor> optimizers, blobs;
  for (const auto& [name, bytes] : ckpt.optimizers) {
    optimizers.insert(name, bytes_tensor(bytes));
    sums.insert("optimizers/" + name, text_hash(bytes));
  }
  for (const auto& [name, bytes] : ckpt.blobs) {
    blobs.insert(name, bytes_tensor(bytes));
    sums.insert("blobs/" + name, text_hash(bytes));
  }
  root.insert("optimizers", optimizers);
  root.insert("blobs", blobs);
  root.insert("checksums", sums);
  const std::vector<char> bytes = torch::pickle_save(root);
  write_file_atomic(path, std::string_view(bytes.data(), bytes.size()));
}

Checkpoint read_checkpoint(const std::string& path, const std::string& kind) {
  BEVKD_CHECK(path_exists(path), "checkpoint ", path, " does not exist");
  const std::string raw = read_file(path);
  c10::IValue v;
  try {
    v = torch::pickle_load(std::vector<char>(raw.begin(), raw.end()));
  } catch (const std::exception& e) {
    BEVKD_FAIL("checkpoint ", path, ": not a readable bevkd checkpoint (", raw.size(),
               " bytes, damaged or of another format; torch::pickle_load: ", std::string(e.what()).substr(0, 200), ")");
  }
  BEVKD_CHECK(v.isGenericDict(), "checkpoint ", path, ": expected a dict at the top level, found ", v.tagKind());
  const auto root = v.toGenericDict();
  auto field = [&](const char* key) -> c10::IValue {
    BEVKD_CHECK(root.contains(key), "checkpoint ", path, ": field '", key, "' is missing");
    return root.at(key);
  };
  const auto format = field("format");
  BEVKD_CHECK(format.isString() && format.toStringRef() == kCheckpointFormat, "checkpoint ", path,
              ": field 'format' is ", format.isString() ? "'" + format.toStringRef() + "'" : std::string("not a string"),
              ", expected '", kCheckpointFormat, "'");
  const auto version = field("version");
  BEVKD_CHECK(version.isInt() && version.toInt() == kCheckpointVersion, "checkpoint ", path, ": version ",
              version.isInt() ? std::to_string(version.toInt()) : std::string("?"), ", this bevkd reads version ",
              kCheckpointVersion);
  Checkpoint ck;
  const auto k = field("kind"), meta = field("meta"), sums_v = field("checksums");
  BEVKD_CHECK(k.isString() && meta.isString() && sums_v.isGenericDict(), "checkpoint ", path,
              ": fields 'kind', 'meta' or 'checksums' have the wrong type");
  ck.kind = k.toStringRef();
  BEVKD_CHECK(kind.empty() || ck.kind == kind, "checkpoint ", path, " holds a ", ck.kind, " checkpoint, expected a ",
              kind, " checkpoint");
  ck.meta_json = meta.toStringRef();
  std::map<std::string, std::string> sums;
  for (const auto& e : sums_v.toGenericDict()) {
    BEVKD_CHECK(e.key().isString() && e.value().isString(), "checkpoint ", path, ": field 'checksums' is malformed");
    sums[e.key().toStringRef()] = e.value().toStringRef();
  }
  std::set<std::string> verified;
  auto verify = [&](const std::string& key, const std::string& actual) {
    const auto it = sums.find(key);
    BEVKD_CHECK(it != sums.end(), "checkpoint ", path, ": ", key, " has no checksum (damaged file)");
    BEVKD_CHECK(it->second == actual, "checkpoint ", path, ": ", key, " fails its checksum (stored ", it->second,
                ", computed ", actual, "): the file is damaged");
    verified.insert(key);
  };
  verify("meta", text_hash(ck.meta_json));
  const auto modules = field("modules");
  BEVKD_CHECK(modules.isGenericDict(), "checkpoint ", path, ": field 'modules' is not a dict");
  for (const auto& m : modules.toGenericDict()) {
    BEVKD_CHECK(m.key().isString() && m.value().isGenericDict(), "checkpoint ", path,
                ": field 'modules' must map names to dicts of tensors");
    const std::string mname = m.key().toStringRef();
    NamedTensors& state = ck.modules[mname];
    for (const auto& e : m.value().toGenericDict()) {
      BEVKD_CHECK(e.key().isString() && e.value().isTensor(), "checkpoint ", path, ": modules/", mname,
                  " must map names to tensors");
      const std::string name = e.key().toStringRef();
      verify("modules/" + mname + "/" + name, tensor_hash(e.value().toTensor()));
      state.emplace_back(name, e.value().toTensor());
    }
  }
  auto read_bytes = [&](const char* group, std::map<std::string, std::string>& out) {
    const auto g = field(group);
    BEVKD_CHECK(g.isGenericDict(), "checkpoint ", path, ": field '", group, "' is not a dict");
    for (const auto& e : g.toGenericDict()) {
      BEVKD_CHECK(e.key().isString() && e.value().isTensor() && e.value().toTensor().scalar_type() == torch::kUInt8,
                  "checkpoint ", path, ": field '", group, "' must map names to uint8 tensors");
      std::string bytes = tensor_bytes(e.value().toTensor());
      verify(std::string(group) + "/" + e.key().toStringRef(), text_hash(bytes));
      out[e.key().toStringRef()] = std::move(bytes);
    }
  };
  read_bytes("optimizers", ck.optimizers);
  read_bytes("blobs", ck.blobs);
  for (const auto& [key, sum] : sums)
    BEVKD_CHECK(verified.count(key) != 0, "checkpoint ", path, ": the checksums list ", key,
                ", which the file does not hold (damaged file)");
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

}  // namespace bevkd::core::nn

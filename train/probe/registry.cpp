#include "train/probe/registry.h"

#include <torch/autograd.h>

#include "base/error.h"

namespace bevkd::train::probe {

InputSpec InputSpec::floating(std::string name, std::vector<std::string> shape, std::string doc) {
  InputSpec s;
  s.name = std::move(name);
  s.shape = std::move(shape);
  s.doc = std::move(doc);
  return s;
}

InputSpec InputSpec::int64(std::string name, std::vector<std::string> shape, std::string doc) {
  InputSpec s = floating(std::move(name), std::move(shape), std::move(doc));
  s.dtype = InputDtype::kInt64;
  return s;
}

bool ProbeInputs::has(const std::string& name) const { return batched_.count(name) || per_sample_.count(name); }

const torch::Tensor& ProbeInputs::tensor(const std::string& name) const {
  auto it = batched_.find(name);
  BEVKD_ASSERT(it != batched_.end(), "probe input '", name, "' is not a present batched input");
  return it->second;
}

const std::vector<torch::Tensor>& ProbeInputs::samples(const std::string& name) const {
  auto it = per_sample_.find(name);
  BEVKD_ASSERT(it != per_sample_.end(), "probe input '", name, "' is not a present per-sample input");
  return it->second;
}

int64_t ProbeInputs::size(const std::string& symbol) const {
  auto it = sizes_.find(symbol);
  BEVKD_ASSERT(it != sizes_.end(), "size symbol '", symbol, "' is not bound");
  return it->second;
}

int64_t ProbeInputs::batch() const { return bound(batch_symbol_) ? size(batch_symbol_) : 0; }

torch::Tensor ProbeInputs::grad_of(const torch::Tensor& value, const std::string& name) const {
  const torch::Tensor& x = tensor(name);
  BEVKD_ASSERT(x.requires_grad(), "probe input '", name, "' does not require grad");
  if (!value.requires_grad()) return torch::zeros_like(x);
  auto g = torch::autograd::grad({value}, {x}, /*grad_outputs=*/{}, /*retain_graph=*/true, /*create_graph=*/false,
                                 /*allow_unused=*/true);
  return g[0].defined() ? g[0] : torch::zeros_like(x);
}

std::vector<torch::Tensor> ProbeInputs::grads_of(const torch::Tensor& value, const std::string& name) const {
  const std::vector<torch::Tensor>& xs = samples(name);
  std::vector<torch::Tensor> out;
  if (xs.empty()) return out;
  if (!value.requires_grad()) {
    for (const auto& x : xs) out.push_back(torch::zeros_like(x));
    return out;
  }
  auto g = torch::autograd::grad({value}, xs, {}, true, false, true);
  for (size_t i = 0; i < xs.size(); ++i) out.push_back(g[i].defined() ? g[i] : torch::zeros_like(xs[i]));
  return out;
}

void ProbeOutput::value(const std::string& key, const torch::Tensor& scalar) {
  BEVKD_ASSERT(scalar.numel() == 1, "probe value '", key, "' is not a scalar");
  values.emplace_back(key, scalar.detach().to(torch::kCPU).to(torch::kFloat64).item<double>());
}

void Registry::add(ProbeEntry e) {
  BEVKD_ASSERT(!e.name.empty() && e.run, "probe entry without a name or a run function");
  BEVKD_ASSERT(find(e.name) == nullptr, "two probe entries named '", e.name, "'");
  pending_.erase(e.name);
  entries_.push_back(std::move(e));
}

void Registry::add_pending(std::string name, std::string section) {
  if (find(name) != nullptr) return;
  pending_[std::move(name)] = std::move(section);
}

const ProbeEntry* Registry::find(const std::string& name) const {
  for (const ProbeEntry& e : entries_)
    if (e.name == name) return &e;
  return nullptr;
}

std::vector<std::string> Registry::pending_names() const {
  std::vector<std::string> out;
  for (const auto& [name, section] : pending_) out.push_back(name);
  return out;
}

}  // namespace bevkd::train::probe

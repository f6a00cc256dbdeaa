#include "train/probe/probe.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <set>
#include <sstream>

#include "base/error.h"
#include "base/fs.h"
#include "base/json_writer.h"
#include "train/probe/npy.h"

namespace bevkd::train::probe {

namespace fs = std::filesystem;

namespace {

// "[2,64,100,100]"
std::string dims_text(const std::vector<int64_t>& d) {
  std::string s = "[";
  for (size_t i = 0; i < d.size(); ++i) s += (i ? "," : "") + std::to_string(d[i]);
  return s + "]";
}

bool is_integer_literal(const std::string& s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}
bool is_composite(const std::string& s) { return s.find_first_of("*/") != std::string::npos; }
bool is_per_sample_symbol(const std::string& s) { return s.size() > 2 && s.compare(s.size() - 2, 2, "_b") == 0; }

// Name patterns of generated outputs: `{...}` (as in "match_l{l}_b{b}", "layer{l}") and `*`
// match any run of characters.
bool glob_match(const std::string& pattern_in, const std::string& s) {
  std::string pattern;
  for (size_t k = 0; k < pattern_in.size(); ++k) {
    if (pattern_in[k] == '{') {
      const size_t close = pattern_in.find('}', k);
      if (close != std::string::npos) {
        pattern += '*';
        k = close;
        continue;
      }
    }
    pattern += pattern_in[k];
  }
  size_t p = 0, i = 0, star = std::string::npos, mark = 0;
  while (i < s.size()) {
    if (p < pattern.size() && pattern[p] != '*' && pattern[p] == s[i]) {
      ++p;
      ++i;
    } else if (p < pattern.size() && pattern[p] == '*') {
      star = p++;
      mark = i;
    } else if (star != std::string::npos) {
      p = star + 1;
      i = ++mark;
    } else {
      return false;
    }
  }
  while (p < pattern.size() && pattern[p] == '*') ++p;
  return p == pattern.size();
}

bool is_pattern(const std::string& s) { return s.find_first_of("{*") != std::string::npos; }

struct FoundFile {
  std::string path;
  NpyHeader header;
};

}  // namespace

// Reads and validates a case directory against one entry (see load_case()).
class CaseLoader {
 public:
  CaseLoader(const ProbeEntry& e, std::string dir) : e_(e), dir_(std::move(dir)) {}

  ProbeContext load(bool want_grad) {
    in_.batch_symbol_ = e_.batch_symbol;
    scan();
    check_presence();
    bind_batched();
    bind_per_sample();
    check_composites();
    ProbeContext c;
    c.in = std::move(in_);
    c.want_grad = want_grad;
    read_tensors(c.in, want_grad);
    c.params = Params::read((fs::path(dir_) / "params.json").string(), e_.params);
    if (e_.validate) e_.validate(c.in, c.params);
    return c;
  }

 private:
  const InputSpec* spec(const std::string& name) const {
    for (const InputSpec& s : e_.inputs)
      if (s.name == name) return &s;
    return nullptr;
  }
  std::string inputs_list() const {
    std::string s;
    for (const InputSpec& i : e_.inputs) s += (s.empty() ? "" : ", ") + i.display_name();
    return s;
  }
  std::string sample_name(const InputSpec& s, int64_t b) const { return s.name + "_b" + std::to_string(b); }

  // Every .npy file of the directory is an input of the loss, or one of the probe's outputs.
  void scan() {
    std::error_code ec;
    BEVKD_PROBE_CHECK(fs::is_directory(dir_, ec), "case directory ", dir_, ": not a directory");
    std::vector<std::string> stems;
    for (const auto& de : fs::directory_iterator(dir_, ec)) {
      const std::string name = de.path().filename().string();
      if (name.size() > 4 && name.compare(name.size() - 4, 4, ".npy") == 0)
        stems.push_back(name.substr(0, name.size() - 4));
    }
    BEVKD_PROBE_CHECK(!ec, "case directory ", dir_, ": cannot be listed (", ec.message(), ")");
    std::sort(stems.begin(), stems.end());
    for (const std::string& stem : stems) {
      const std::string path = (fs::path(dir_) / (stem + ".npy")).string();
      const InputSpec* s = spec(stem);
      if (s != nullptr && !s->per_sample) {
        batched_files_[stem] = path;
        continue;
      }
      const size_t at = stem.rfind("_b");
      if (at != std::string::npos && at + 2 < stem.size()) {
        const std::string base = stem.substr(0, at), idx = stem.substr(at + 2);
        const InputSpec* ps = spec(base);
        if (ps != nullptr && ps->per_sample && is_integer_literal(idx) && (idx == "0" || idx[0] != '0') &&
            idx.size() < 10) {
          sample_files_[base][std::stoll(idx)] = path;
          continue;
        }
      }
      if (stem.rfind("grad_", 0) == 0) continue;
      bool own_output = false;
      for (const std::string& d : e_.debug_files) own_output = own_output || glob_match(d, stem);
      if (own_output) continue;
      std::string hint;
      if (s != nullptr && s->per_sample)
        hint = cat("; ", stem, " is per sample: ", stem, "_b0.npy, ", stem, "_b1.npy, ...");
      throw UsageError(cat("input ", stem, ": unknown for loss ", e_.name, " (its inputs: ", inputs_list(), ")", hint));
    }
  }

  bool present(const InputSpec& s) const {
    return s.per_sample ? sample_files_.count(s.name) > 0 : batched_files_.count(s.name) > 0;
  }

  void check_presence() {
    for (const auto& group : e_.one_of) {
      std::vector<const InputSpec*> given;
      std::string names;
      for (const std::string& n : group) {
        const InputSpec* s = spec(n);
        BEVKD_ASSERT(s != nullptr, "one_of names an undeclared input ", n);
        names += (names.empty() ? "" : " or ") + s->display_name();
        if (present(*s)) given.push_back(s);
      }
      BEVKD_PROBE_CHECK(!given.empty(), "input ", spec(group.front())->display_name(), ": missing (loss ", e_.name,
                        " needs ", names, ")");
      BEVKD_PROBE_CHECK(given.size() == 1, "input ", given[1]->display_name(), ": extra (", given[0]->display_name(),
                        " is given; loss ", e_.name, " takes ", names, ", not both)");
    }
    for (const InputSpec& s : e_.inputs) {
      if (!s.required || present(s)) continue;
      if (s.per_sample)
        throw UsageError(cat("input ", sample_name(s, 0), ": missing (expected ", s.name, "_b0.npy ... ", s.name,
                             "_b{B-1}.npy in ", dir_, ")"));
      throw UsageError(cat("input ", s.name, ": missing (expected ", s.name, ".npy in ", dir_, ")"));
    }
  }

  NpyHeader header(const std::string& input, const std::string& path) {
    NpyHeader h;
    try {
      h = read_npy_header(path);
    } catch (const Error& e) {
      throw UsageError(cat("input ", input, ": ", e.what()));
    }
    return h;
  }

  void check_dtype(const InputSpec& s, const std::string& input, const NpyHeader& h) {
    const std::string t = h.descr.size() == 3 && (h.descr[0] == '<' || h.descr[0] == '=' || h.descr[0] == '|')
                              ? h.descr.substr(1)
                              : h.descr;
    if (s.dtype == InputDtype::kFloat) {
      BEVKD_PROBE_CHECK(t == "f4" || t == "f8", "input ", input, ": dtype ", npy_dtype_name(h.descr),
                        ", expected float32 or float64");
      any_f64_ = any_f64_ || t == "f8";
    } else {
      BEVKD_PROBE_CHECK(t == "i8", "input ", input, ": dtype ", npy_dtype_name(h.descr), ", expected int64");
    }
    BEVKD_PROBE_CHECK(!h.fortran_order, "input ", input, ": fortran_order is True; save a C-ordered array ",
                      "(numpy.ascontiguousarray) instead");
  }

  std::string key(const std::string& sym, int64_t sample) const {
    return is_per_sample_symbol(sym) ? sym + "@" + std::to_string(sample) : sym;
  }

  // The value of a symbol expression under the current bindings; -1 if something is unbound.
  int64_t eval(const std::string& expr, int64_t sample) const {
    if (is_integer_literal(expr)) return std::stoll(expr);
    const size_t op = expr.find_first_of("*/");
    if (op == std::string::npos) {
      auto it = in_.sizes_.find(key(expr, sample));
      return it == in_.sizes_.end() ? -1 : it->second;
    }
    const int64_t a = eval(expr.substr(0, op), sample), b = eval(expr.substr(op + 1), sample);
    if (a < 0 || b < 0) return -1;
    if (expr[op] == '*') return a * b;
    return b == 0 || a % b != 0 ? -2 : a / b;  // -2: not a whole size
  }

  [[noreturn]] void shape_error(const InputSpec& s, const std::string& input, const std::vector<int64_t>& shape,
                                int64_t sample) const {
    std::string syms = "[", vals = "[";
    for (size_t i = 0; i < s.shape.size(); ++i) {
      syms += (i ? "," : "") + s.shape[i];
      const int64_t v = eval(s.shape[i], sample);
      vals += (i ? "," : "") + (v >= 0 ? std::to_string(v) : std::string("?"));
    }
    throw UsageError(cat("input ", input, ": shape ", dims_text(shape), ", expected ", syms, "]=", vals, "]"));
  }

  // Binds the plain symbols of one file's shape (composites are checked later).
  void bind(const InputSpec& s, const std::string& input, const std::string& path, int64_t sample) {
    const NpyHeader h = header(input, path);
    check_dtype(s, input, h);
    if (h.shape.size() != s.shape.size()) shape_error(s, input, h.shape, sample);
    for (size_t i = 0; i < s.shape.size(); ++i) {
      const std::string& sym = s.shape[i];
      if (is_composite(sym)) continue;
      if (is_integer_literal(sym)) {
        if (std::stoll(sym) != h.shape[i]) shape_error(s, input, h.shape, sample);
        continue;
      }
      auto [it, inserted] = in_.sizes_.emplace(key(sym, sample), h.shape[i]);
      if (!inserted && it->second != h.shape[i]) shape_error(s, input, h.shape, sample);
    }
    shapes_[input] = h.shape;
  }

  void bind_batched() {
    for (const InputSpec& s : e_.inputs)
      if (!s.per_sample && present(s)) bind(s, s.name, batched_files_.at(s.name), -1);
  }

  void bind_per_sample() {
    for (const InputSpec& s : e_.inputs) {
      if (!s.per_sample || !present(s)) continue;
      const auto& files = sample_files_.at(s.name);
      const std::string& batch = e_.batch_symbol;
      if (!in_.bound(batch)) in_.sizes_[batch] = files.rbegin()->first + 1;
      const int64_t B = in_.size(batch);
      const std::string range =
          cat(batch, " = ", B, ": ", sample_name(s, 0), " ... ", sample_name(s, B - 1), " expected");
      for (const auto& [b, path] : files)
        BEVKD_PROBE_CHECK(b < B, "input ", sample_name(s, b), ": extra (", range, ")");
      for (int64_t b = 0; b < B; ++b)
        BEVKD_PROBE_CHECK(files.count(b), "input ", sample_name(s, b), ": missing (", range, ")");
      for (int64_t b = 0; b < B; ++b) bind(s, sample_name(s, b), files.at(b), b);
    }
  }

  void check_composites() {
    for (const InputSpec& s : e_.inputs) {
      if (!present(s)) continue;
      const int64_t n = s.per_sample ? in_.size(e_.batch_symbol) : 1;
      for (int64_t b = 0; b < n; ++b) {
        const int64_t sample = s.per_sample ? b : -1;
        const std::string input = s.per_sample ? sample_name(s, b) : s.name;
        const std::vector<int64_t>& shape = shapes_.at(input);
        for (size_t i = 0; i < s.shape.size(); ++i) {
          if (!is_composite(s.shape[i])) continue;
          const int64_t v = eval(s.shape[i], sample);
          BEVKD_ASSERT(v != -1, "probe entry ", e_.name, ": shape symbol ", s.shape[i], " of ", s.name,
                       " uses a name no input binds");
          if (v != shape[i]) shape_error(s, input, shape, sample);
        }
      }
    }
  }

  torch::Tensor read(const std::string& input, const std::string& path, const InputSpec& s, bool want_grad) {
    torch::Tensor t;
    try {
      t = read_npy(path);
    } catch (const Error& e) {
      throw UsageError(cat("input ", input, ": ", e.what()));
    }
    if (s.dtype == InputDtype::kFloat) t = t.to(in_dtype_);
    if (want_grad && s.grad) t = t.detach().requires_grad_(true);
    return t;
  }

  void read_tensors(ProbeInputs& in, bool want_grad) {
    in_dtype_ = any_f64_ ? torch::kFloat64 : torch::kFloat32;
    in.dtype_ = in_dtype_;
    for (const InputSpec& s : e_.inputs) {
      if (!present(s)) continue;
      if (!s.per_sample) {
        in.batched_[s.name] = read(s.name, batched_files_.at(s.name), s, want_grad);
        continue;
      }
      std::vector<torch::Tensor> v;
      for (const auto& [b, path] : sample_files_.at(s.name)) v.push_back(read(sample_name(s, b), path, s, want_grad));
      in.per_sample_[s.name] = std::move(v);
    }
  }

  const ProbeEntry& e_;
  std::string dir_;
  std::map<std::string, std::string> batched_files_;
  std::map<std::string, std::map<int64_t, std::string>> sample_files_;
  std::map<std::string, std::vector<int64_t>> shapes_;
  ProbeInputs in_;
  bool any_f64_ = false;
  torch::ScalarType in_dtype_ = torch::kFloat32;
};

ProbeContext load_case(const ProbeEntry& entry, const std::string& case_dir, bool want_grad) {
  return CaseLoader(entry, case_dir).load(want_grad);
}

std::string values_json(const std::string& loss, const ProbeOutput& out) {
  std::string s = "{\"loss\": ";
  append_json_string(s, loss);
  s += ", \"values\": {";
  for (size_t i = 0; i < out.values.size(); ++i) {
    if (i) s += ", ";
    append_json_string(s, out.values[i].first);
    s += ": ";
    const double v = out.values[i].second;
    if (std::isfinite(v)) {
      char buf[40];
      std::snprintf(buf, sizeof buf, "%.17g", v);
      s += buf;
    } else {
      s += "null";
    }
  }
  return s + "}}";
}

namespace {

const char* dtype_word(InputDtype d) { return d == InputDtype::kFloat ? "float" : "int64"; }

std::string symbols_text(const std::vector<std::string>& shape) {
  std::string s = "(";
  for (size_t i = 0; i < shape.size(); ++i) s += (i ? "," : "") + shape[i];
  return s + ")";
}

}  // namespace

std::string list_text(const Registry& registry, const nlohmann::json& trainer_losses) {
  std::ostringstream os;
  for (const ProbeEntry& e : registry.entries()) {
    os << e.name << "  (spec/losses.md " << e.section << ")" << (e.summary.empty() ? "" : "  " + e.summary) << "\n";
    for (size_t i = 0; i < e.inputs.size(); ++i) {
      const InputSpec& s = e.inputs[i];
      os << (i == 0 ? "  in:    " : "         ") << s.display_name() << " " << symbols_text(s.shape) << " "
         << dtype_word(s.dtype) << (s.grad ? " ∂" : "") << (s.required ? "" : ", optional")
         << (s.doc.empty() ? "" : "  " + s.doc) << "\n";
    }
    for (size_t i = 0; i < e.params.size(); ++i) {
      const ParamSpec& p = e.params[i];
      os << (i == 0 ? "  p:     " : "         ") << p.key;
      if (p.ignored)
        os << " (ignored)";
      else if (!p.default_value)
        os << " (required)";
      else if (p.default_value->is_null())
        os << " (default: derived)";
      else
        os << " = " << p.default_value->dump();
      os << (p.doc.empty() ? "" : "  " + p.doc) << "\n";
    }
    std::string v, g, d;
    for (const auto& x : e.values) v += (v.empty() ? "" : ", ") + x;
    for (const auto& x : e.grads) g += (g.empty() ? "" : ", ") + x + ".npy";
    for (const auto& x : e.debug_files) d += (d.empty() ? "" : ", ") + x + ".npy";
    os << "  out:   " << v << "\n";
    if (!g.empty()) os << "  grad:  " << g << "\n";
    if (!d.empty()) os << "  --out: " << d << "\n";
    os << "\n";
  }
  const auto pending = registry.pending_names();
  if (!pending.empty()) {
    os << "not implemented yet (refused):";
    for (const auto& n : pending) os << " " << n << " (" << registry.pending_section(n) << ")";
    os << "\n";
  }
  if (trainer_losses.is_array() && !trainer_losses.empty()) {
    os << "\nbevkd-train's losses (train config \"losses\"; parameters shared with a probe entry take its default):\n";
    for (const auto& t : trainer_losses) {
      std::string probes;
      for (const auto& p : t.at("probe_losses")) probes += (probes.empty() ? "" : ", ") + p.get<std::string>();
      os << "  " << t.at("name").get<std::string>() << "  (checked by: " << probes << ")  params "
         << t.at("params").dump() << "\n";
    }
  }
  return os.str();
}

std::string list_json(const Registry& registry, const nlohmann::json& trainer_losses) {
  using ojson = nlohmann::ordered_json;
  ojson losses = ojson::array();
  for (const ProbeEntry& e : registry.entries()) {
    ojson inputs = ojson::array(), params = ojson::array();
    for (const InputSpec& s : e.inputs)
      inputs.push_back(ojson{{"name", s.name},
                             {"shape", s.shape},
                             {"dtype", dtype_word(s.dtype)},
                             {"per_sample", s.per_sample},
                             {"required", s.required},
                             {"grad", s.grad}});
    for (const ParamSpec& p : e.params) {
      ojson o{{"key", p.key}};
      if (p.default_value) o["default"] = ojson::parse(p.default_value->dump());
      params.push_back(o);
    }
    losses.push_back(ojson{{"name", e.name},
                           {"section", e.section},
                           {"inputs", inputs},
                           {"params", params},
                           {"values", e.values},
                           {"grads", e.grads}});
  }
  ojson out{{"losses", losses}};
  if (!trainer_losses.is_null()) out["trainer_losses"] = ojson::parse(trainer_losses.dump());
  return out.dump();
}

namespace {

// The keys (or files) a run returned against the declared list, where a declared pattern
// ("layer{l}") stands for any number of consecutive matching names; with `subset`, declared
// plain names may be absent (the order still holds).
bool names_match(const std::vector<std::string>& declared, const std::vector<std::string>& got, bool subset) {
  size_t g = 0;
  for (const std::string& d : declared) {
    if (is_pattern(d)) {
      while (g < got.size() && glob_match(d, got[g])) ++g;
    } else if (g < got.size() && got[g] == d) {
      ++g;
    } else if (!subset) {
      return false;
    }
  }
  return g == got.size();
}

void check_output(const ProbeEntry& e, const ProbeContext& c, const ProbeOutput& o) {
  std::vector<std::string> keys, files, debug;
  for (const auto& [k, v] : o.values) keys.push_back(k);
  for (const auto& [f, g] : o.grads) files.push_back(f);
  for (const auto& [f, a] : o.debug) debug.push_back(f);
  BEVKD_ASSERT(names_match(e.values, keys, e.partial_outputs), "probe entry ", e.name,
               " returned other value keys than it declares");
  BEVKD_ASSERT(!c.want_grad || names_match(e.grads, files, e.partial_outputs), "probe entry ", e.name,
               " returned other gradients than it declares");
  for (const std::string& f : debug) {
    bool declared = false;
    for (const std::string& d : e.debug_files) declared = declared || glob_match(d, f);
    BEVKD_ASSERT(declared, "probe entry ", e.name, " wrote an undeclared debug array ", f);
  }
}

int run(const LossProbeOptions& opts, std::ostream& out, std::ostream& err, const Registry& registry) {
  if (opts.list) {
    BEVKD_PROBE_CHECK(opts.loss.empty() && opts.case_dir.empty() && opts.out_dir.empty() && !opts.grad,
                      "--list takes no --loss, --case, --out or --grad");
    out << (opts.json ? list_json(registry, opts.trainer_losses) + "\n" : list_text(registry, opts.trainer_losses));
    return 0;
  }
  BEVKD_PROBE_CHECK(!opts.json, "--json is an option of --list");
  BEVKD_PROBE_CHECK(!opts.loss.empty(), "--loss NAME is required (or --list)");
  BEVKD_PROBE_CHECK(!opts.case_dir.empty(), "--case DIR is required");
  BEVKD_PROBE_CHECK(!opts.grad || !opts.out_dir.empty(),
                    "--grad needs --out DIR (the gradients are written there as grad_*.npy)");
  const ProbeEntry* e = registry.find(opts.loss);
  if (e == nullptr) {
    BEVKD_PROBE_CHECK(!registry.is_pending(opts.loss), "loss ", opts.loss, " (spec/losses.md ",
                      registry.pending_section(opts.loss), ") is not implemented yet");
    std::string known;
    for (const ProbeEntry& x : registry.entries()) known += (known.empty() ? "" : ", ") + x.name;
    throw UsageError(cat("unknown loss '", opts.loss, "' (known: ", known, "; --list shows them)"));
  }

  ProbeContext c = load_case(*e, opts.case_dir, opts.grad);
  c.want_debug = !opts.out_dir.empty();
  const ProbeOutput o = e->run(c);
  err << "loss-probe: " << e->name << " on " << opts.case_dir << " in "
      << (c.in.dtype() == torch::kFloat64 ? "float64" : "float32");
  if (c.in.batch() > 0) err << ", " << e->batch_symbol << " = " << c.in.batch();
  err << "\n";
  check_output(*e, c, o);
  const std::string text = values_json(e->name, o);
  if (!opts.out_dir.empty()) {
    make_dirs(opts.out_dir);
    write_file_atomic((fs::path(opts.out_dir) / "values.json").string(), text + "\n");
    if (opts.grad)
      for (const auto& [file, g] : o.grads)
        write_npy((fs::path(opts.out_dir) / (file + ".npy")).string(), g.detach().to(torch::kFloat64));
    for (const auto& [file, a] : o.debug) write_npy((fs::path(opts.out_dir) / (file + ".npy")).string(), a);
    err << "loss-probe: wrote " << opts.out_dir << "/values.json"
        << (opts.grad && !o.grads.empty() ? cat(" and ", o.grads.size(), " gradient file(s)") : "")
        << (o.debug.empty() ? "" : cat(", ", o.debug.size(), " debug array(s)")) << "\n";
  }
  out << text << "\n";
  return 0;
}

}  // namespace

int run_loss_probe(const LossProbeOptions& opts, std::ostream& out, std::ostream& err, const Registry& registry) {
  try {
    return run(opts, out, err, registry);
  } catch (const UsageError& e) {
    err << "loss-probe: " << e.what() << "\n";
    return 2;
  } catch (const Error& e) {
    err << "loss-probe: " << e.what() << "\n";
    return 1;
  } catch (const std::exception& e) {
    err << "loss-probe: internal error: " << e.what() << "\n";
    return 1;
  }
}

}  // namespace bevkd::train::probe

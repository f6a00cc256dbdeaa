#include "train/trainer/distributed.h"

#include <torch/csrc/distributed/c10d/PrefixStore.hpp>
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>
#if defined(BEVKD_WITH_NCCL)
#include <torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp>
#endif
#include <torch/torch.h>

#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <map>

#include "base/error.h"

namespace bevkd::train::trainer {

namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

milliseconds ms(double s) { return milliseconds(static_cast<int64_t>(s * 1000.0)); }

int parse_int(const char* name, const char* value, int lo) {
  char* end = nullptr;
  errno = 0;
  const long v = std::strtol(value, &end, 10);
  BEVKD_CHECK(end != value && *end == '\0' && errno == 0 && v >= lo && v <= 1 << 30, "bevkd-train: environment "
              "variable ", name, "=\"", value, "\" is not an integer >= ", lo);
  return static_cast<int>(v);
}

std::vector<uint8_t> bytes_of(const std::string& s) { return {s.begin(), s.end()}; }
std::string string_of(const std::vector<uint8_t>& b) { return {b.begin(), b.end()}; }

bool is_loopback(const std::string& addr) {
  return addr == "localhost" || addr.rfind("127.", 0) == 0 || addr == "::1";
}

}  // namespace

std::string DistEnv::describe() const {
  if (!distributed()) return "one process";
  return cat("rank ", rank, " of ", world_size, " (local rank ", local_rank, ", ", source, " variables, master ",
             master_addr, ":", master_port, ")");
}

DistEnv dist_env_from(const std::function<const char*(const char*)>& getenv) {
  auto get = [&](const char* n) -> const char* {
    const char* v = getenv(n);
    return v != nullptr && *v != '\0' ? v : nullptr;
  };
  DistEnv e;
  const char *rank = get("RANK"), *world = get("WORLD_SIZE");
  if (rank != nullptr || world != nullptr) {
    BEVKD_CHECK(rank != nullptr && world != nullptr, "bevkd-train: ", rank != nullptr ? "RANK" : "WORLD_SIZE",
                " is set but ", rank != nullptr ? "WORLD_SIZE" : "RANK", " is not (torchrun-style launch needs both)");
    e.source = "torchrun";
    e.world_size = parse_int("WORLD_SIZE", world, 1);
    e.rank = parse_int("RANK", rank, 0);
    if (const char* l = get("LOCAL_RANK")) e.local_rank = parse_int("LOCAL_RANK", l, 0);
  } else if (const char* ntasks = get("SLURM_NTASKS")) {
    e.source = "slurm";
    e.world_size = parse_int("SLURM_NTASKS", ntasks, 1);
    const char* procid = get("SLURM_PROCID");
    BEVKD_CHECK(procid != nullptr, "bevkd-train: SLURM_NTASKS=", ntasks, " is set but SLURM_PROCID is not");
    e.rank = parse_int("SLURM_PROCID", procid, 0);
    if (const char* l = get("SLURM_LOCALID")) e.local_rank = parse_int("SLURM_LOCALID", l, 0);
  } else {
    return e;
  }
  BEVKD_CHECK(e.rank < e.world_size, "bevkd-train: rank ", e.rank, " (", e.source == "slurm" ? "SLURM_PROCID" : "RANK",
              ") is not below the world size ", e.world_size);
  if (e.world_size == 1) return e;
  const char* addr = get("MASTER_ADDR");
  BEVKD_CHECK(addr != nullptr, "bevkd-train: ", e.world_size, " processes (", e.source, " variables) need MASTER_ADDR, "
              "the address of rank 0's machine (in Slurm: MASTER_ADDR=$(scontrol show hostnames $SLURM_JOB_NODELIST | "
              "head -n1))");
  e.master_addr = addr;
  if (const char* p = get("MASTER_PORT")) e.master_port = parse_int("MASTER_PORT", p, 1);
  BEVKD_CHECK(e.master_port <= 65535, "bevkd-train: MASTER_PORT=", e.master_port, " is not a TCP port");
  return e;
}

DistEnv dist_env() {
  return dist_env_from([](const char* n) { return std::getenv(n); });
}

// ---- Dist ------------------------------------------------------------------------------------

struct Dist::Impl {
  c10::intrusive_ptr<c10d::Store> store;  // the main thread's client (rank 0: the server too), prefixed
  c10::intrusive_ptr<c10d::ProcessGroupGloo> gloo;
#if defined(BEVKD_WITH_NCCL)
  c10::intrusive_ptr<c10d::ProcessGroupNCCL> nccl;
#endif
  torch::Device device{torch::kCPU};   // where the group's tensors live
  std::thread heartbeat;
  std::mutex hb_mutex;
  std::condition_variable hb_cv;
  bool hb_stop = false;

  template <class F>
  auto call(F&& f) {
#if defined(BEVKD_WITH_NCCL)
    if (nccl) return f(*nccl);
#endif
    return f(*gloo);
  }
};

namespace {

// torchrun's agent hosts the store itself when it says so (static rendezvous); the keys of
// each restart of the job live under their own prefix.
bool agent_store() {
  const char* v = std::getenv("TORCHELASTIC_USE_AGENT_STORE");
  return v != nullptr && std::string(v) == "True";
}
std::string store_prefix() {
  const char* v = std::getenv("TORCHELASTIC_RESTART_COUNT");
  return std::string("bevkd/attempt_") + (v != nullptr && *v != '\0' ? v : "0");
}

c10::intrusive_ptr<c10d::Store> store_client(const DistEnv& env, double timeout_s) {
  c10d::TCPStoreOptions o;
  o.port = static_cast<std::uint16_t>(env.master_port);
  o.isServer = false;
  o.waitWorkers = false;
  o.timeout = ms(timeout_s);
  return c10::make_intrusive<c10d::PrefixStore>(store_prefix(), c10::make_intrusive<c10d::TCPStore>(env.master_addr, o));
}

std::string hb_key(int r) { return "bevkd/heartbeat/" + std::to_string(r); }
std::string failed_key(int r) { return "bevkd/failed/" + std::to_string(r); }

// Heartbeat counters of every rank (-1: none yet), read with `s`.
std::vector<int64_t> heartbeats(c10d::Store& s, int world) {
  std::vector<int64_t> c(static_cast<std::size_t>(world), -1);
  for (int r = 0; r < world; ++r)
    if (s.check({hb_key(r)})) c[static_cast<std::size_t>(r)] = std::stoll(string_of(s.get(hb_key(r))));
  return c;
}

}  // namespace

Dist::Dist(const DistEnv& env, const DistOptions& opts, const torch::Device& device)
    : env_(env), opts_(opts), impl_(std::make_unique<Impl>()) {
  BEVKD_CHECK(env.distributed(), "Dist: one process needs no process group");
  BEVKD_CHECK(opts.timeout_s > 0 && opts.heartbeat_s > 0, "bevkd-train: dist_timeout_s must be > 0, found ",
              opts.timeout_s);
  std::string backend = opts.backend;
#if defined(BEVKD_WITH_NCCL)
  if (backend == "auto") backend = device.is_cuda() ? "nccl" : "gloo";
#else
  if (backend == "auto") backend = "gloo";  // CUDA tensors are staged through host memory
#endif
  BEVKD_CHECK(backend == "gloo" || backend == "nccl", "bevkd-train: dist_backend must be auto, gloo or nccl, found \"",
              backend, "\"");
  backend_name_ = backend;
  c10d::TCPStoreOptions so;
  so.port = static_cast<std::uint16_t>(env.master_port);
  so.isServer = env.rank == 0 && !agent_store();
  so.numWorkers = static_cast<std::size_t>(env.world_size);  // every rank checks in; the server waits for all
  so.waitWorkers = true;
  so.timeout = ms(opts.timeout_s);
  try {
    impl_->store = c10::make_intrusive<c10d::PrefixStore>(store_prefix(),
                                                          c10::make_intrusive<c10d::TCPStore>(env.master_addr, so));
  } catch (const std::exception& e) {
    BEVKD_FAIL("bevkd-train (", env.describe(), "): the rendezvous at ", env.master_addr, ":", env.master_port,
               " failed within ", opts.timeout_s, " s (dist_timeout_s): ", e.what(),
               env.rank == 0 ? " (is the port free, and did every rank start?)" : " (is rank 0 running there?)");
  }
  try {
    if (backend == "gloo") {
      auto o = c10d::ProcessGroupGloo::Options::create(ms(opts.timeout_s));
      if (const char* ifname = std::getenv("GLOO_SOCKET_IFNAME"); ifname != nullptr && *ifname != '\0')
        o->devices.push_back(c10d::ProcessGroupGloo::createDeviceForInterface(ifname));
      else if (is_loopback(env.master_addr))
        o->devices.push_back(c10d::ProcessGroupGloo::createDeviceForHostname("127.0.0.1"));
      else
        o->devices.push_back(c10d::ProcessGroupGloo::createDefaultDevice());
      o->threads = 2;
      impl_->gloo = c10::make_intrusive<c10d::ProcessGroupGloo>(impl_->store, env.rank, env.world_size, o);
      impl_->device = torch::Device(torch::kCPU);
    } else {
#if defined(BEVKD_WITH_NCCL)
      BEVKD_CHECK(device.is_cuda(), "bevkd-train: dist_backend nccl needs a CUDA device, found ", device.str());
      auto o = c10d::ProcessGroupNCCL::Options::create();
      o->timeout = ms(opts.timeout_s);
      impl_->nccl = c10::make_intrusive<c10d::ProcessGroupNCCL>(impl_->store, env.rank, env.world_size, o);
      impl_->device = device;
#else
      BEVKD_FAIL("bevkd-train: dist_backend nccl, but this build has no NCCL process group (configure with "
                 "-DBEVKD_WITH_NCCL=ON against a CUDA LibTorch with nccl.h); use gloo");
#endif
    }
  } catch (const bevkd::Error&) {
    throw;
  } catch (const std::exception& e) {
    BEVKD_FAIL("bevkd-train (", env.describe(), "): creating the ", backend, " process group failed: ", e.what());
  }
  // The heartbeat, on its own store connection.
  impl_->heartbeat = std::thread([this] {
    c10::intrusive_ptr<c10d::Store> s;
    try {
      s = store_client(env_, opts_.timeout_s);
    } catch (...) {
      return;
    }
    int64_t beat = 0;
    std::unique_lock<std::mutex> lock(impl_->hb_mutex);
    while (!impl_->hb_stop) {
      try {
        s->set(hb_key(env_.rank), bytes_of(std::to_string(beat++)));
      } catch (...) {
        return;  // the store is gone (rank 0 ended)
      }
      impl_->hb_cv.wait_for(lock, ms(opts_.heartbeat_s), [this] { return impl_->hb_stop; });
    }
  });
}

Dist::~Dist() {
  {
    std::lock_guard<std::mutex> lock(impl_->hb_mutex);
    impl_->hb_stop = true;
  }
  impl_->hb_cv.notify_all();
  if (impl_->heartbeat.joinable()) impl_->heartbeat.join();
}

void Dist::publish_failure(const std::string& message) noexcept {
  try {
    auto s = store_client(env_, 2.0);
    s->set(failed_key(env_.rank), bytes_of(message.substr(0, 2000)));
  } catch (...) {
  }
}

void Dist::fail(const std::string& during, const std::string& cause) {
  std::string who;
  try {
    auto s = store_client(env_, 3.0);
    for (int r = 0; r < env_.world_size; ++r)
      if (r != env_.rank && s->check({failed_key(r)}))
        who += cat(who.empty() ? "" : "; ", "rank ", r, " failed: ", string_of(s->get(failed_key(r))));
    if (who.empty()) {
      const auto a = heartbeats(*s, env_.world_size);
      const double wait_s = std::max(2.5 * opts_.heartbeat_s, 2.5);
      std::this_thread::sleep_for(ms(wait_s));
      for (int r = 0; r < env_.world_size; ++r)
        if (r != env_.rank && s->check({failed_key(r)}))
          who += cat(who.empty() ? "" : "; ", "rank ", r, " failed: ", string_of(s->get(failed_key(r))));
      if (who.empty()) {
        const auto b = heartbeats(*s, env_.world_size);
        for (int r = 0; r < env_.world_size; ++r)
          if (r != env_.rank && b[static_cast<std::size_t>(r)] == a[static_cast<std::size_t>(r)])
            who += cat(who.empty() ? "" : ", ", "rank ", r);
        if (!who.empty())
          who += cat(" stopped (no heartbeat for ", wait_s, " s: killed, crashed or hung)");
      }
    }
  } catch (const std::exception&) {
    if (env_.rank != 0 && !agent_store())
      who = cat("rank 0 stopped (its rendezvous store at ", env_.master_addr, ":", env_.master_port,
                " no longer answers: killed or crashed)");
    else if (agent_store())
      who = cat("torchrun's store at ", env_.master_addr, ":", env_.master_port, " no longer answers (the agent ended)");
  }
  if (who.empty()) who = "no rank could be named (every heartbeat goes on: a rank may be slower than dist_timeout_s)";
  const std::string msg = cat("bevkd-train (rank ", env_.rank, " of ", env_.world_size, "): ", who, "; this rank was in ",
                              during, " (", backend_name_, ": ", cause, "); timeout ", opts_.timeout_s,
                              " s (--dist-timeout). Finished checkpoints are intact: rerun the same command to resume");
  throw Error(msg);
}

namespace {

// Flattens tensors of one dtype into one buffer on `dev`, and back.
struct Flat {
  std::vector<torch::Tensor> parts;
  torch::Tensor buf;
  Flat(const std::vector<torch::Tensor>& ts, const torch::Device& dev) : parts(ts) {
    std::vector<torch::Tensor> v;
    for (const auto& t : ts) v.push_back(t.detach().reshape(-1).to(dev));
    buf = torch::cat(v).contiguous();
  }
  void scatter_back() {
    torch::NoGradGuard g;
    int64_t off = 0;
    for (auto& t : parts) {
      const int64_t n = t.numel();
      t.copy_(buf.narrow(0, off, n).view_as(t));
      off += n;
    }
  }
};

std::map<c10::ScalarType, std::vector<torch::Tensor>> by_dtype(const std::vector<torch::Tensor>& ts) {
  std::map<c10::ScalarType, std::vector<torch::Tensor>> m;
  for (const auto& t : ts)
    if (t.defined() && t.numel() > 0) m[t.scalar_type()].push_back(t);
  return m;
}

}  // namespace

void Dist::broadcast(std::vector<torch::Tensor> tensors, int root, const std::string& what) {
  for (auto& [dt, ts] : by_dtype(tensors)) {
    (void)dt;
    Flat f(ts, impl_->device);
    std::vector<at::Tensor> v{f.buf};
    c10d::BroadcastOptions o;
    o.rootRank = root;
    try {
      impl_->call([&](auto& pg) { return pg.broadcast(v, o); })->wait();
    } catch (const std::exception& e) {
      fail(what, e.what());
    }
    f.scatter_back();
  }
}

void Dist::allreduce_sum(std::vector<torch::Tensor> tensors, const std::string& what) {
  for (auto& [dt, ts] : by_dtype(tensors)) {
    (void)dt;
    Flat f(ts, impl_->device);
    std::vector<at::Tensor> v{f.buf};
    try {
      impl_->call([&](auto& pg) { return pg.allreduce(v, c10d::AllreduceOptions()); })->wait();
    } catch (const std::exception& e) {
      fail(what, e.what());
    }
    f.scatter_back();
  }
}

Dist::Pending Dist::allreduce_sum_async(torch::Tensor t, const std::string& what) {
  const bool staged = t.device() != impl_->device;
  torch::Tensor buf = staged ? t.to(impl_->device) : t;
  std::vector<at::Tensor> v{buf};
  try {
    auto work = impl_->call([&](auto& pg) { return pg.allreduce(v, c10d::AllreduceOptions()); });
    return Pending{[this, work, buf, t, staged, what]() mutable {
      try {
        work->wait();
      } catch (const std::exception& e) {
        fail(what, e.what());
      }
      if (staged) t.copy_(buf);
    }};
  } catch (const bevkd::Error&) {
    throw;
  } catch (const std::exception& e) {
    fail(what, e.what());
  }
}

bool Dist::any(bool flag, const std::string& what) {
  auto t = torch::full({1}, flag ? 1.0 : 0.0, torch::kFloat64);
  allreduce_sum({t}, what);
  return t.item<double>() > 0.5;
}

std::vector<int64_t> Dist::allgather(const std::vector<int64_t>& values, const std::string& what) {
  const auto n = static_cast<int64_t>(values.size());
  auto t = torch::zeros({n * env_.world_size}, torch::kInt64);
  for (int64_t i = 0; i < n; ++i) t[env_.rank * n + i] = values[static_cast<std::size_t>(i)];
  allreduce_sum({t}, what);
  return std::vector<int64_t>(t.data_ptr<int64_t>(), t.data_ptr<int64_t>() + t.numel());
}

void Dist::rank0_done(const std::string& tag) {
  if (env_.rank == 0) impl_->store->set("bevkd/done/" + tag, bytes_of("1"));
}

void Dist::wait_rank0(const std::string& tag) {
  if (env_.rank == 0) return;
  const std::string key = "bevkd/done/" + tag;
  const double stale_s = std::max(5.0, 5 * opts_.heartbeat_s);
  try {
    int64_t last = -2;
    auto last_change = Clock::now();
    for (;;) {
      if (impl_->store->check({key})) return;
      if (impl_->store->check({failed_key(0)}))
        BEVKD_FAIL("bevkd-train (rank ", env_.rank, " of ", env_.world_size, "): rank 0 failed: ",
                   string_of(impl_->store->get(failed_key(0))), "; this rank was waiting for its ", tag);
      const int64_t beat = impl_->store->check({hb_key(0)}) ? std::stoll(string_of(impl_->store->get(hb_key(0)))) : -1;
      if (beat != last) {
        last = beat;
        last_change = Clock::now();
      } else if (std::chrono::duration<double>(Clock::now() - last_change).count() > stale_s) {
        BEVKD_FAIL("bevkd-train (rank ", env_.rank, " of ", env_.world_size, "): rank 0 stopped (no heartbeat for ",
                   stale_s, " s: killed, crashed or hung) while this rank waited for its ", tag);
      }
      std::this_thread::sleep_for(milliseconds(100));
    }
  } catch (const bevkd::Error&) {
    throw;
  } catch (const std::exception& e) {
    fail("waiting for rank 0's " + tag, e.what());
  }
}

void Dist::final_barrier() {
  {
    std::lock_guard<std::mutex> lock(impl_->hb_mutex);
    impl_->hb_stop = true;
  }
  impl_->hb_cv.notify_all();
  if (impl_->heartbeat.joinable()) impl_->heartbeat.join();
  try {
    impl_->store->add("bevkd/final", 1);
    if (env_.rank != 0) return;
    const auto t0 = Clock::now();
    while (impl_->store->add("bevkd/final", 0) < env_.world_size) {
      if (std::chrono::duration<double>(Clock::now() - t0).count() > opts_.timeout_s) return;  // nothing left to lose
      std::this_thread::sleep_for(milliseconds(20));
    }
  } catch (const std::exception&) {
    // The run's results are written; a store gone at the very end loses nothing.
  }
}

// ---- GradReducer -------------------------------------------------------------------------------

struct GradReducer::Impl {
  struct Bucket {
    std::vector<std::size_t> params;
    std::vector<int64_t> offsets;
    int64_t numel = 0;
    torch::Tensor flat;  // numel gradient values, then one "has a gradient" flag per parameter
    std::size_t pending = 0;
    bool launched = false;
    Dist::Pending work;
  };
  Dist& dist;
  std::vector<torch::Tensor> params;
  std::vector<std::size_t> bucket_of, slot_of;
  std::vector<bool> marked;
  std::vector<Bucket> buckets;
  std::vector<unsigned> hooks;
  bool overlap = true, armed = false;
  std::size_t next = 0;
  std::mutex mutex;

  Impl(Dist& d, std::vector<torch::Tensor> ps, double bucket_mb, bool ov) : dist(d), params(std::move(ps)), overlap(ov) {
    const auto cap = static_cast<int64_t>(bucket_mb * 1024 * 1024);
    bucket_of.resize(params.size());
    slot_of.resize(params.size());
    marked.assign(params.size(), false);
    for (std::size_t k = params.size(); k-- > 0;) {  // reverse: the order backward produces gradients in
      const auto& p = params[k];
      const int64_t bytes = p.numel() * static_cast<int64_t>(p.element_size());
      bool fresh = buckets.empty();
      if (!fresh) {
        const auto& b = buckets.back();
        const auto& q = params[b.params.front()];
        fresh = q.scalar_type() != p.scalar_type() || q.device() != p.device() ||
                (b.numel + p.numel()) * static_cast<int64_t>(p.element_size()) > std::max<int64_t>(cap, bytes);
      }
      if (fresh) buckets.emplace_back();
      auto& b = buckets.back();
      bucket_of[k] = buckets.size() - 1;
      slot_of[k] = b.params.size();
      b.params.push_back(k);
      b.offsets.push_back(b.numel);
      b.numel += p.numel();
    }
    for (auto& b : buckets) {
      const auto& q = params[b.params.front()];
      b.flat = torch::zeros({b.numel + static_cast<int64_t>(b.params.size())}, q.options().requires_grad(false));
    }
    for (std::size_t k = 0; k < params.size(); ++k)
      hooks.push_back(params[k].register_hook([this, k](const torch::Tensor& g) { on_grad(k, g); }));
  }

  ~Impl() {
    for (std::size_t k = 0; k < params.size(); ++k) params[k].remove_hook(hooks[k]);
  }

  torch::Tensor slice(Bucket& b, std::size_t slot) {
    return b.flat.narrow(0, b.offsets[slot], params[b.params[slot]].numel());
  }
  torch::Tensor flag(Bucket& b, std::size_t slot) { return b.flat.narrow(0, b.numel + static_cast<int64_t>(slot), 1); }

  void on_grad(std::size_t k, const torch::Tensor& g) {
    std::lock_guard<std::mutex> lock(mutex);
    if (!armed || marked[k]) return;
    torch::NoGradGuard ng;
    auto& b = buckets[bucket_of[k]];
    const auto& prev = params[k].grad();  // the earlier micro-batches' sum (accumulated after this hook)
    slice(b, slot_of[k]).copy_((prev.defined() ? prev + g : g).reshape(-1));
    flag(b, slot_of[k]).fill_(1);
    marked[k] = true;
    if (--b.pending == 0 && overlap) launch_ready();
  }

  void launch(std::size_t i) {
    auto& b = buckets[i];
    b.launched = true;
    b.work = dist.allreduce_sum_async(b.flat, cat("the gradient all-reduce (bucket ", i + 1, " of ", buckets.size(), ")"));
  }
  void launch_ready() {
    while (next < buckets.size() && buckets[next].pending == 0) launch(next++);
  }

  void reset() {
    for (auto& b : buckets) {
      b.pending = b.params.size();
      b.launched = false;
      b.work = {};
    }
    marked.assign(params.size(), false);
    next = 0;
  }
};

GradReducer::GradReducer(Dist& dist, std::vector<torch::Tensor> params, double bucket_mb, bool overlap)
    : impl_(std::make_unique<Impl>(dist, std::move(params), bucket_mb, overlap)) {}
GradReducer::~GradReducer() = default;

std::size_t GradReducer::bucket_count() const { return impl_->buckets.size(); }

void GradReducer::arm(bool on) {
  std::lock_guard<std::mutex> lock(impl_->mutex);
  if (on && !impl_->armed) impl_->reset();
  impl_->armed = on;
}

double GradReducer::finish(double divisor) {
  auto& m = *impl_;
  torch::NoGradGuard ng;
  {
    std::lock_guard<std::mutex> lock(m.mutex);
    if (!m.armed) m.reset();
    m.armed = false;
    // Parameters this backward gave no gradient: their accumulated one, or zeros and "none".
    for (std::size_t k = 0; k < m.params.size(); ++k) {
      if (m.marked[k]) continue;
      auto& b = m.buckets[m.bucket_of[k]];
      const auto& g = m.params[k].grad();
      if (g.defined()) {
        m.slice(b, m.slot_of[k]).copy_(g.reshape(-1));
        m.flag(b, m.slot_of[k]).fill_(1);
      } else {
        m.slice(b, m.slot_of[k]).zero_();
        m.flag(b, m.slot_of[k]).zero_();
      }
      m.marked[k] = true;
      --b.pending;
    }
  }
  const auto t0 = Clock::now();
  m.launch_ready();
  for (auto& b : m.buckets) b.work.wait();
  const double waited = std::chrono::duration<double>(Clock::now() - t0).count();
  for (auto& b : m.buckets) {
    // One host copy of the bucket's flags (not one device sync per parameter).
    const auto flags = b.flat.narrow(0, b.numel, static_cast<int64_t>(b.params.size()))
                           .to(torch::kCPU, torch::kFloat64)
                           .contiguous();
    const double* has = flags.data_ptr<double>();
    for (std::size_t s = 0; s < b.params.size(); ++s) {
      auto& p = m.params[b.params[s]];
      if (has[s] > 0.5) {
        p.mutable_grad() = m.slice(b, s).view_as(p).div(divisor);
      } else {
        p.mutable_grad() = torch::Tensor();
      }
    }
    b.work = {};
  }
  return waited;
}

}  // namespace bevkd::train::trainer

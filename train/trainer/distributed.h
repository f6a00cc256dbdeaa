// Data-parallel bevkd-train over c10d (DESIGN.md "train/": Gloo on CPU, NCCL on GPU).
//
//   const DistEnv env = dist_env();                   // torchrun's or Slurm's variables, else one process
//   Dist dist(env, opts, device);                     // TCPStore rendezvous (rank 0 hosts it), process group
//   dist.broadcast(model->parameters());              // rank 0's start state everywhere
//   GradReducer reducer(dist, params, opts);          // gradient buckets, all-reduced as backward fills them
//   reducer.arm(true); loss.backward();               // (only the last micro-batch's backward is armed)
//   reducer.finish(world * accumulate);               // grad = sum over ranks / divisor, on every rank
//
// Failures never hang: every collective runs under DistOptions::timeout_s; a rank that throws
// publishes its message in the store; each rank beats a heartbeat into the store. When a
// collective fails, the rank looks at the others' heartbeats and messages and throws an error
// naming the dead, hung or failed rank(s). Phases only rank 0 runs (evaluation) are waited out
// with wait_rank0(), which has no time limit while rank 0's heartbeat goes on.
#pragma once

#include <torch/types.h>

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace bevkd::train::trainer {

struct DistEnv {
  int rank = 0;
  int world_size = 1;
  int local_rank = 0;
  std::string master_addr;
  int master_port = 29500;
  std::string source = "single";  // "torchrun" | "slurm" | "single"
  bool distributed() const { return world_size > 1; }
  std::string describe() const;   // "rank 1 of 2 (local rank 1, torchrun variables, master 127.0.0.1:29500)"
};

// torchrun's RANK, WORLD_SIZE, LOCAL_RANK (default 0), MASTER_ADDR, MASTER_PORT (default 29500)
// when RANK or WORLD_SIZE is set; else Slurm's SLURM_PROCID, SLURM_NTASKS, SLURM_LOCALID with
// MASTER_ADDR (required when SLURM_NTASKS > 1) and MASTER_PORT; else one process. A malformed
// or inconsistent value is refused naming the variable and its value.
DistEnv dist_env_from(const std::function<const char*(const char*)>& getenv);
DistEnv dist_env();  // from the process environment

struct DistOptions {
  double timeout_s = 300;        // any collective, and the rendezvous
  std::string backend = "auto";  // auto (nccl on CUDA in a BEVKD_WITH_NCCL build, else gloo) | gloo | nccl
  double bucket_mb = 25;         // gradient bucket size
  bool overlap = true;           // all-reduce buckets while backward still runs
  double heartbeat_s = 1;        // heartbeat period
};

class Dist {
 public:
  // Rendezvous over a TCPStore at master_addr:master_port (rank 0 is its server), then the
  // process group. Throws bevkd::Error naming the address and the timeout when ranks are missing.
  Dist(const DistEnv& env, const DistOptions& opts, const torch::Device& device);
  ~Dist();
  Dist(const Dist&) = delete;
  Dist& operator=(const Dist&) = delete;

  int rank() const { return env_.rank; }
  int world_size() const { return env_.world_size; }
  const DistEnv& env() const { return env_; }
  const std::string& backend() const { return backend_name_; }

  // In place, from `root` (tensors on the group's device).
  void broadcast(std::vector<torch::Tensor> tensors, int root, const std::string& what);
  // In place sum over ranks.
  void allreduce_sum(std::vector<torch::Tensor> tensors, const std::string& what);
  // Starts an in-place sum; wait() it (in the order of the start calls on every rank).
  struct Pending {
    std::function<void()> wait;
  };
  Pending allreduce_sum_async(torch::Tensor t, const std::string& what);
  // True when `flag` is true on any rank.
  bool any(bool flag, const std::string& what);
  // Each rank's values (the same count on every rank), concatenated in rank order.
  std::vector<int64_t> allgather(const std::vector<int64_t>& values, const std::string& what);

  // Rank 0 marks a phase it ran alone as done; the other ranks wait for it without a time limit
  // while rank 0's heartbeat goes on (its evaluation may take longer than any collective timeout).
  void rank0_done(const std::string& tag);
  void wait_rank0(const std::string& tag);
  // Every rank arrives; rank 0 returns last (it hosts the store the others still talk to).
  void final_barrier();

  // This rank failed: its message goes into the store for the others' error messages.
  void publish_failure(const std::string& message) noexcept;
  // The error a failed collective becomes: names the dead, hung or failed rank(s) from the
  // heartbeats and published messages, plus what this rank was doing and the backend's message.
  [[noreturn]] void fail(const std::string& during, const std::string& cause);

  struct Impl;

 private:
  DistEnv env_;
  DistOptions opts_;
  std::string backend_name_;
  std::unique_ptr<Impl> impl_;
};

// Gradient buckets (in reverse parameter order, about bucket_mb each, one dtype and device per
// bucket) all-reduced with Dist: when armed, a parameter's gradient hook copies its gradient
// (accumulated over earlier micro-batches plus this backward's) into its bucket, and a full
// bucket is launched at once if every earlier bucket has been (the launch order is the same on
// every rank). finish() launches what is left (parameters without a gradient contribute zeros
// and a "not used" flag), waits, and sets each parameter's gradient to sum / divisor; a
// parameter no rank produced a gradient for keeps none (AdamW skips it, as in one process).
class GradReducer {
 public:
  GradReducer(Dist& dist, std::vector<torch::Tensor> params, double bucket_mb, bool overlap);
  ~GradReducer();
  GradReducer(const GradReducer&) = delete;
  GradReducer& operator=(const GradReducer&) = delete;

  void arm(bool on);                 // the hooks act during the next backward(s)
  double finish(double divisor);     // seconds spent waiting for the all-reduces
  std::size_t bucket_count() const;

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace bevkd::train::trainer

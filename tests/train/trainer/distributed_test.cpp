// Data-parallel bevkd-train (train/trainer/distributed.h): the rank variables, and real
// two-process runs of the bevkd-train binary over Gloo on loopback (tiny student, the loader's
// fixture shards): two ranks equal one process accumulating the same two micro-batches; a rank
// killed with SIGKILL makes the other stop naming it within the timeout; a stopped and resumed
// two-rank run equals the uninterrupted one; a one-process resume of a two-rank checkpoint
// restarts the epoch and says so.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <torch/torch.h>

#include <chrono>
#include <cstdlib>
#include <fstream>
#include <map>
#include <sstream>

#include "base/config.h"
#include "base/fs.h"
#include "core/nn/checkpoint.h"
#include "core/nn/metrics_log.h"
#include "tests/support/expect_error.h"
#include "tests/support/run.h"
#include "tests/support/temp_dir.h"
#include "tests/train/data/loader_fixture.h"
#include "train/student/student.h"
#include "train/trainer/distributed.h"
#include "train/trainer/trainer.h"

namespace bevkd::train::trainer {
namespace {

using nlohmann::json;
namespace dt = data::testing;

DistEnv env_of(const std::map<std::string, std::string>& vars) {
  return dist_env_from([&](const char* n) -> const char* {
    const auto it = vars.find(n);
    return it == vars.end() ? nullptr : it->second.c_str();
  });
}

TEST(DistEnv, TorchrunSlurmAndOneProcess) {
  const auto one = env_of({});
  EXPECT_FALSE(one.distributed());
  EXPECT_EQ(one.source, "single");

  const auto t = env_of({{"RANK", "3"}, {"WORLD_SIZE", "4"}, {"LOCAL_RANK", "1"}, {"MASTER_ADDR", "node7"},
                         {"MASTER_PORT", "23456"}, {"SLURM_NTASKS", "8"}, {"SLURM_PROCID", "5"}});
  EXPECT_EQ(t.source, "torchrun");  // torchrun's variables win over Slurm's
  EXPECT_EQ(t.rank, 3);
  EXPECT_EQ(t.world_size, 4);
  EXPECT_EQ(t.local_rank, 1);
  EXPECT_EQ(t.master_addr, "node7");
  EXPECT_EQ(t.master_port, 23456);

  const auto s = env_of({{"SLURM_NTASKS", "8"}, {"SLURM_PROCID", "5"}, {"SLURM_LOCALID", "1"}, {"MASTER_ADDR", "n0"}});
  EXPECT_EQ(s.source, "slurm");
  EXPECT_EQ(s.rank, 5);
  EXPECT_EQ(s.world_size, 8);
  EXPECT_EQ(s.local_rank, 1);
  EXPECT_EQ(s.master_port, 29500);  // the default

  const auto single_task = env_of({{"SLURM_NTASKS", "1"}, {"SLURM_PROCID", "0"}});
  EXPECT_FALSE(single_task.distributed());
}

TEST(DistEnv, BadVariablesAreRefusedByName) {
  EXPECT_ERROR_WITH(env_of({{"RANK", "0"}}), "RANK is set but WORLD_SIZE is not");
  EXPECT_ERROR_WITH(env_of({{"RANK", "two"}, {"WORLD_SIZE", "4"}}), "RANK=\"two\"", "not an integer");
  EXPECT_ERROR_WITH(env_of({{"RANK", "4"}, {"WORLD_SIZE", "4"}, {"MASTER_ADDR", "a"}}), "rank 4", "world size 4");
  EXPECT_ERROR_WITH(env_of({{"RANK", "0"}, {"WORLD_SIZE", "2"}}), "need MASTER_ADDR");
  EXPECT_ERROR_WITH(env_of({{"SLURM_NTASKS", "2"}, {"SLURM_PROCID", "1"}}), "need MASTER_ADDR", "scontrol");
  EXPECT_ERROR_WITH(env_of({{"RANK", "0"}, {"WORLD_SIZE", "2"}, {"MASTER_ADDR", "a"}, {"MASTER_PORT", "70000"}}),
                    "MASTER_PORT=70000");
}

// A TCP port nothing listens on now.
int free_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = 0;
  EXPECT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
  socklen_t len = sizeof a;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  ::close(fd);
  return ntohs(a.sin_port);
}

class DistributedRunTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    for (const char* v : {"RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT", "SLURM_NTASKS",
                          "SLURM_PROCID", "SLURM_LOCALID"})
      ::unsetenv(v);  // the in-process reference runs are one process
    dir_ = new bevkd::testing::TempDir();
    dt::LoaderDatasetSpec spec;
    spec.shard_sizes = {4, 4};
    spec.points_per_camera = 12;
    data_ = new dt::LoaderDataset(dt::make_loader_dataset(spec, dir_->path()));
  }
  static void TearDownTestSuite() {
    delete data_;
    delete dir_;
  }

  // The tiny student on the fixture's 16 x 16 grid, batch 2 per rank, EMA, FitNet (a trainable
  // adaptation layer, synchronised too) and MGD (masks keyed by sample); one intra-op thread so
  // every process computes alike.
  static TrainConfig config(const std::string& out) {
    TrainConfig c;
    c.shards = data_->manifest_path;
    c.dataroot = data_->dataroot;
    c.train_split = "train";
    c.student = student::student_preset("tiny");
    c.student.grid = BevGrid::make({-12.8, -12.8, -5.0, 12.8, 12.8, 3.0}, 1.6);
    c.student.decode.post_center_range = {-20, -20, -10, 20, 20, 10};
    c.loader.batch_size = 2;
    c.loader.threads = 1;
    c.loader.seed = 7;
    c.epochs = 2;
    c.schedule.lr = 1e-3;
    c.ema = true;
    c.ema_ramp = 2;
    c.losses = {LossSpec{"fitnet"}, LossSpec{"mgd"}};
    c.out_dir = out;
    c.log_every = 1;
    c.threads = 1;
    c.plots = false;
    c.quiet = true;
    c.dist_timeout_s = 30;
    return c;
  }

  // Writes the config and returns the shell line that runs `ranks` bevkd-train processes over
  // loopback, each logging to <out>.rank<k>.log, printing "exit <code of rank 0> <rank 1> ...".
  static std::string launch(const TrainConfig& c, int ranks, const std::string& extra = "") {
    const std::string cfg = c.out_dir + ".config.json";
    write_file_atomic(cfg, config::to_json(c).dump(2));
    std::ostringstream sh;
    sh << "export MASTER_ADDR=127.0.0.1 MASTER_PORT=" << free_port() << " WORLD_SIZE=" << ranks << "; ";
    for (int k = 0; k < ranks; ++k)
      sh << "RANK=" << k << " LOCAL_RANK=" << k << " '" << bevkd::testing::binary("bevkd-train") << "' train --config '"
         << cfg << "' " << extra << " > '" << c.out_dir << ".rank" << k << ".log' 2>&1 & p" << k << "=$!; ";
    sh << "s=''; for p in";
    for (int k = 0; k < ranks; ++k) sh << " $p" << k;
    sh << "; do wait $p; s=\"$s $?\"; done; echo exit$s";
    return sh.str();
  }

  static std::string read(const std::string& path) {
    std::ifstream f(path);
    std::stringstream ss;
    ss << f.rdbuf();
    return ss.str();
  }

  // Max |a - b| over the model (and EMA) weights of two final checkpoints.
  static double max_weight_diff(const std::string& a, const std::string& b, bool* same_names) {
    const auto ca = core::nn::read_checkpoint(a, "student");
    const auto cb = core::nn::read_checkpoint(b, "student");
    double worst = 0;
    *same_names = true;
    for (const char* m : {"model", "ema"}) {
      const auto& ma = ca.module(m, a);
      const auto& mb = cb.module(m, b);
      if (ma.size() != mb.size()) *same_names = false;
      for (std::size_t i = 0; i < std::min(ma.size(), mb.size()); ++i) {
        if (ma[i].first != mb[i].first || ma[i].second.sizes() != mb[i].second.sizes()) {
          *same_names = false;
          continue;
        }
        if (!ma[i].second.is_floating_point()) continue;
        if (ma[i].first.find("running_") != std::string::npos) continue;  // BatchNorm statistics: see below
        worst = std::max(worst, (ma[i].second.to(torch::kFloat64) - mb[i].second.to(torch::kFloat64))
                                    .abs().max().item<double>());
      }
    }
    return worst;
  }

  static bevkd::testing::TempDir* dir_;
  static dt::LoaderDataset* data_;
};
bevkd::testing::TempDir* DistributedRunTest::dir_ = nullptr;
dt::LoaderDataset* DistributedRunTest::data_ = nullptr;

// Two ranks, each taking half of every global batch (part r of the epoch's order), against one
// process accumulating the same two micro-batches per step (accumulate = 2: micro-batch k from
// part k). Tolerance 1e-6 on the weights, not 0: the two paths sum the micro-batch gradients in
// different places (Gloo's ring all-reduce vs the autograd accumulation), which is the same IEEE
// sum for two addends but need not be for more ranks, other thread counts or other kernels; with
// one intra-op thread the runs here agree bit for bit (the observed difference is printed).
// BatchNorm's running statistics are not compared: ranks average theirs after every step, while
// one process updates them once per micro-batch; in training mode they do not enter the weights.
TEST_F(DistributedRunTest, TwoRanksEqualOneProcessAccumulatingTheSameMicroBatches) {
  torch::set_num_threads(1);
  auto ref = config(dir_->path() + "/accumulate2");
  ref.accumulate = 2;
  std::ostringstream log;
  const auto a = train_student(ref, log);
  ASSERT_TRUE(a.finished);
  EXPECT_EQ(a.total_steps, 4);  // 8 samples in 2 parts of 4, batch 2: 2 steps per epoch x 2 epochs

  auto ddp = config(dir_->path() + "/ranks2");
  ddp.quiet = false;
  ddp.val_split = "train";  // an evaluation mid-run on rank 0 (the other waits for it) and one at the end
  ddp.eval_every = 2;
  const auto r = bevkd::testing::run_command(launch(ddp, 2), true);
  ASSERT_NE(r.output.find("exit 0 0"), std::string::npos)
      << r.output << "\nrank 0:\n" << read(ddp.out_dir + ".rank0.log") << "\nrank 1:\n" << read(ddp.out_dir + ".rank1.log");
  bool same = false;
  const double diff = max_weight_diff(ref.out_dir + "/student.ckpt", ddp.out_dir + "/student.ckpt", &same);
  EXPECT_TRUE(same);
  EXPECT_LE(diff, 1e-6);
  std::printf("[ observed ] max |two ranks - one process accumulating| over the weights: %.3g\n", diff);

  // The logged losses agree too (the mean over ranks vs over micro-batches), and rank 0 alone wrote.
  const auto la = core::nn::MetricsLog::read(ref.out_dir + "/metrics.jsonl");
  const auto lb = core::nn::MetricsLog::read(ddp.out_dir + "/metrics.jsonl");
  std::vector<json> sa, sb;
  for (const auto& x : la)
    if (!x.contains("event")) sa.push_back(x);
  for (const auto& x : lb)
    if (!x.contains("event")) sb.push_back(x);
  ASSERT_EQ(sa.size(), 4u);
  ASSERT_EQ(sb.size(), 4u);
  for (std::size_t i = 0; i < sa.size(); ++i) {
    EXPECT_NEAR(sa[i].at("loss").get<double>(), sb[i].at("loss").get<double>(), 1e-5 * sa[i].at("loss").get<double>());
    EXPECT_EQ(sb[i].at("world_size"), 2);
    EXPECT_TRUE(sb[i].contains("comm_wait"));
  }
  EXPECT_NE(read(ddp.out_dir + ".rank0.log").find("data parallel, rank 0 of 2"), std::string::npos);
  int evals = 0;
  for (const auto& x : lb)
    if (x.value("event", "") == "eval") ++evals;
  EXPECT_EQ(evals, 2);
  EXPECT_EQ(read(ddp.out_dir + ".rank1.log"), "");  // progress, results and files are rank 0's
}

// A rank killed with SIGKILL mid-run: the other exits non-zero within the timeout, naming it
// (rank 1 by its heartbeat; rank 0, which hosts the store, by the store no longer answering).
TEST_F(DistributedRunTest, KilledRankIsNamedByTheSurvivorWithinTheTimeout) {
  for (const int victim : {1, 0}) {
    const int survivor = 1 - victim;
    auto c = config(dir_->path() + "/killed" + std::to_string(victim));
    c.epochs = 200;  // far longer than the test
    c.losses.clear();
    c.dist_timeout_s = 20;
    const std::string cfg = c.out_dir + ".config.json";
    write_file_atomic(cfg, config::to_json(c).dump(2));
    const std::string bin = bevkd::testing::binary("bevkd-train");
    std::ostringstream sh;
    sh << "export MASTER_ADDR=127.0.0.1 MASTER_PORT=" << free_port() << " WORLD_SIZE=2; "
       << "RANK=0 '" << bin << "' train --config '" << cfg << "' > '" << c.out_dir << ".rank0.log' 2>&1 & p0=$!; "
       << "RANK=1 '" << bin << "' train --config '" << cfg << "' > '" << c.out_dir << ".rank1.log' 2>&1 & p1=$!; "
       // wait until a few steps are logged (at most 120 s), then kill the victim
       << "for i in $(seq 1200); do n=$(grep -c '\"step\"' '" << c.out_dir << "/metrics.jsonl' 2>/dev/null || true); "
       << "[ \"${n:-0}\" -ge 3 ] && break; sleep 0.1; done; "
       << "kill -9 $p" << victim << "; t0=$(date +%s.%N); wait $p" << survivor << "; e=$?; t1=$(date +%s.%N); "
       << "echo \"survivor-exit $e seconds $(awk \"BEGIN{print $t1 - $t0}\")\"";
    const auto r = bevkd::testing::run_command(sh.str(), true);
    const std::string log = read(c.out_dir + ".rank" + std::to_string(survivor) + ".log");
    ASSERT_NE(r.output.find("survivor-exit "), std::string::npos) << r.output;
    EXPECT_EQ(r.output.find("survivor-exit 0 "), std::string::npos) << r.output << log;
    const double secs = std::stod(r.output.substr(r.output.find("seconds ") + 8));
    EXPECT_LT(secs, c.dist_timeout_s + 10) << r.output;
    EXPECT_NE(log.find("rank " + std::to_string(victim) + " stopped"), std::string::npos) << log;
    EXPECT_NE(log.find(victim == 1 ? "killed, crashed or hung" : "no longer answers"), std::string::npos) << log;
    const auto at = log.find("bevkd-train (rank ");
    std::printf("[ observed ] rank %d stopped %.2f s after rank %d was killed: %s\n", survivor, secs, victim,
                at == std::string::npos ? log.c_str() : log.substr(at).c_str());
    // The finished checkpoints are intact: the run resumes from them.
    EXPECT_TRUE(path_exists(c.out_dir + "/checkpoint-latest.ckpt"));
    EXPECT_NO_THROW(core::nn::read_checkpoint(c.out_dir + "/checkpoint-latest.ckpt", "student"));
  }
}

// A rank that fails with an error (here: rank 1 alone is given a dataroot that does not exist)
// publishes its message; rank 0 stops naming rank 1 and quoting it.
TEST_F(DistributedRunTest, FailedRankIsNamedWithItsMessage) {
  auto c = config(dir_->path() + "/failed");
  c.losses.clear();
  const std::string cfg = c.out_dir + ".config.json";
  write_file_atomic(cfg, config::to_json(c).dump(2));
  const std::string bin = bevkd::testing::binary("bevkd-train");
  std::ostringstream sh;
  sh << "export MASTER_ADDR=127.0.0.1 MASTER_PORT=" << free_port() << " WORLD_SIZE=2; "
     << "RANK=0 '" << bin << "' train --config '" << cfg << "' > '" << c.out_dir << ".rank0.log' 2>&1 & p0=$!; "
     << "RANK=1 '" << bin << "' train --config '" << cfg << "' --dataroot '" << c.out_dir << "/no-such-root' > '"
     << c.out_dir << ".rank1.log' 2>&1 & p1=$!; wait $p0; e0=$?; wait $p1; echo \"exit $e0 $?\"";
  const auto r = bevkd::testing::run_command(sh.str(), true);
  const std::string log0 = read(c.out_dir + ".rank0.log"), log1 = read(c.out_dir + ".rank1.log");
  EXPECT_EQ(r.output.find("exit 0"), std::string::npos) << r.output << log0 << log1;
  EXPECT_NE(log1.find("no-such-root"), std::string::npos) << log1;
  EXPECT_NE(log0.find("rank 1 failed: "), std::string::npos) << log0;
  EXPECT_NE(log0.find("no-such-root"), std::string::npos) << log0;
  std::printf("[ observed ] %s\n", log0.c_str());
}

// Stopped after 3 of 6 steps (inside epoch 2) and resumed with two ranks again: the same weights
// as the uninterrupted two-rank run, bit for bit. Then a one-process resume of a two-rank
// checkpoint: the epoch in progress restarts with the new split, and the run says so.
TEST_F(DistributedRunTest, StoppedAndResumedTwoRankRunEqualsTheUninterruptedOne) {
  auto full = config(dir_->path() + "/resume_full");
  full.epochs = 3;
  auto r = bevkd::testing::run_command(launch(full, 2), true);
  ASSERT_NE(r.output.find("exit 0 0"), std::string::npos) << r.output << read(full.out_dir + ".rank0.log");

  auto part = config(dir_->path() + "/resume_part");
  part.epochs = 3;
  r = bevkd::testing::run_command(launch(part, 2, "--stop-after 3"), true);
  ASSERT_NE(r.output.find("exit 0 0"), std::string::npos) << r.output << read(part.out_dir + ".rank0.log");
  const auto meta = json::parse(core::nn::read_checkpoint(part.out_dir + "/checkpoint-latest.ckpt", "student").meta_json);
  EXPECT_EQ(meta.at("step"), 3);
  EXPECT_EQ(meta.at("loader_positions").size(), 2u);
  // A copy of the stopped run for the one-process resume below.
  const std::string solo_dir = dir_->path() + "/resume_solo";
  make_dirs(solo_dir);
  copy_file_atomic(part.out_dir + "/checkpoint-latest.ckpt", solo_dir + "/checkpoint-latest.ckpt");
  copy_file_atomic(part.out_dir + "/metrics.jsonl", solo_dir + "/metrics.jsonl");

  part.quiet = false;
  r = bevkd::testing::run_command(launch(part, 2), true);
  ASSERT_NE(r.output.find("exit 0 0"), std::string::npos) << r.output << read(part.out_dir + ".rank0.log");
  EXPECT_NE(read(part.out_dir + ".rank0.log").find("resuming from"), std::string::npos);
  const auto ca = core::nn::read_checkpoint(full.out_dir + "/student.ckpt", "student");
  const auto cb = core::nn::read_checkpoint(part.out_dir + "/student.ckpt", "student");
  for (const char* m : {"model", "ema", "loss.fitnet"}) {
    const auto& ma = ca.module(m, "full");
    const auto& mb = cb.module(m, "resumed");
    ASSERT_EQ(ma.size(), mb.size()) << m;
    for (std::size_t i = 0; i < ma.size(); ++i)
      EXPECT_TRUE(torch::equal(ma[i].second, mb[i].second)) << m << " " << ma[i].first;
  }

  // One process resuming the two-rank checkpoint (step 3 of 2 steps per epoch: epoch 1): one
  // part of 8 samples gives 4 steps per epoch, so epoch 1 restarts at step 4 of 12.
  torch::set_num_threads(1);
  auto solo = config(solo_dir);
  solo.epochs = 3;
  solo.quiet = false;
  std::ostringstream log;
  const auto s = train_student(solo, log);
  EXPECT_TRUE(s.finished) << log.str();
  EXPECT_EQ(s.total_steps, 12);
  EXPECT_NE(log.str().find("written by 2 parts"), std::string::npos) << log.str();
  EXPECT_NE(log.str().find("epoch 1 restarts from its beginning at step 4"), std::string::npos) << log.str();
  bool resharded = false;
  for (const auto& rec : core::nn::MetricsLog::read(solo_dir + "/metrics.jsonl"))
    if (rec.value("event", "") == "resharded") resharded = true;
  EXPECT_TRUE(resharded);
}

}  // namespace
}  // namespace bevkd::train::trainer

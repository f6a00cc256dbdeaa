// bevkd-fuzz-shard: a mutation fuzzer for the shard reader (outside the regular test suite; run
// it with scripts/fuzz_shards.sh).
//
// It writes real shards with storage::ShardWriter (the fixture of the storage tests, one per
// schema version this build can still write: 1.0, 1.1 and the current one) plus any shard given
// with --seed-shard, maps each file's bytes into HDF5 metadata and raw chunk data, and then
// mutates copies of them: bit flips, byte sets, interesting integers, block copies, truncation
// and splices, 1-4 at a time, biased towards the metadata (where a flip reaches HDF5's own
// parsing; raw chunks are covered by zstd frame checksums and the per-sample XXH64). Every
// mutated file is opened by a forked child through the reader the way bevkd-inspect does:
// ShardReader (validation), summary (dataset sizes), verify of every sample, dump of sample 0
// and render of sample 0. The child's fate is classified:
//
//   ok            opened and every sample verified
//   rejected      the reader refused the file with bevkd::Error (the expected outcome)
//   bad-samples   opened; some samples failed verify (errors naming shard and sample)
//   exception     a C++ exception other than bevkd::Error escaped (a bug: messages must name the file)
//   crash         the child died from a signal (SIGSEGV, SIGABRT, ...) — the bug this hunts
//   hang          the child ran past --timeout seconds
//
// Crashes, hangs and exceptions are saved in <work>/crashes with a .txt describing the seed and
// the mutations. An input whose outcome class (kind + the first words of the error message,
// digits removed) was not seen before joins the corpus (<work>/corpus) and is mutated further.
// The run ends after --minutes (or --max-execs) and prints the statistics.
#include <fcntl.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <hdf5.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "base/error.h"
#include "base/fs.h"
#include "storage/inspect.h"
#include "storage/shard_reader.h"
#include "storage/shard_writer.h"
#include "tests/support/shard_fixture.h"

namespace fs = std::filesystem;
using bevkd::cat;

namespace {

struct Options {
  std::string work = "fuzz-work";
  double minutes = 1.0;
  std::int64_t max_execs = 0;
  std::uint64_t seed = 1;
  int jobs = 1;
  double timeout_s = 20.0;
  std::vector<std::string> seed_shards;
  std::string replay;  // run one file and print the outcome
  bool builtin_seeds = true;  // write the fixture shards of every version as seeds
};

enum Outcome { kOk = 0, kRejected = 10, kBadSamples = 11, kException = 20, kBadAlloc = 21 };

// The reader paths every shard consumer uses, in a child process. Returns the exit code.
int probe(const std::string& path, const std::string& msg_path) {
  auto note = [&](const std::string& m) {
    std::ofstream(msg_path, std::ios::trunc) << m;
  };
  try {
    const bevkd::storage::ShardReader r(path);
    (void)bevkd::storage::inspect::summarize_shard(r);
    bool bad = false;
    std::string first;
    for (std::int64_t i = 0; i < r.num_samples(); ++i) {
      const auto p = r.verify_sample(i);
      if (!p.empty() && !bad) first = p.front().message;
      bad = bad || !p.empty();
    }
    if (r.num_samples() > 0) {
      try {
        (void)bevkd::storage::inspect::dump_sample(r, 0, {}, 64);
        bevkd::storage::inspect::RenderOptions ro;
        ro.cell_px = 2;
        (void)bevkd::storage::inspect::render_sample(r, 0, ro);
      } catch (const bevkd::Error& e) {
        if (!bad) first = e.what();
        bad = true;
      }
    }
    note(first);
    return bad ? kBadSamples : kOk;
  } catch (const bevkd::Error& e) {
    note(e.what());
    return kRejected;
  } catch (const std::bad_alloc& e) {
    note(cat("std::bad_alloc: ", e.what()));
    return kBadAlloc;
  } catch (const std::exception& e) {
    note(cat("std::exception: ", e.what()));
    return kException;
  }
}

struct Range {
  std::uint64_t begin = 0, end = 0;
};

// Byte ranges of raw dataset storage (chunks, contiguous data); the rest of the file is metadata.
std::vector<Range> raw_ranges(const std::string& path) {
  std::vector<Range> out;
  H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr);
  const hid_t f = H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT);
  if (f < 0) return out;
  std::vector<std::string> names;
  H5Ovisit2(
      f, H5_INDEX_NAME, H5_ITER_NATIVE,
      [](hid_t, const char* name, const H5O_info_t* info, void* data) -> herr_t {
        if (info->type == H5O_TYPE_DATASET) static_cast<std::vector<std::string>*>(data)->push_back(name);
        return 0;
      },
      &names, H5O_INFO_BASIC);
  for (const auto& n : names) {
    const hid_t d = H5Dopen2(f, n.c_str(), H5P_DEFAULT);
    if (d < 0) continue;
    const hid_t dcpl = H5Dget_create_plist(d);
    if (H5Pget_layout(dcpl) == H5D_CHUNKED) {
      const hid_t space = H5Dget_space(d);
      hsize_t nchunks = 0;
      H5Dget_num_chunks(d, space, &nchunks);
      for (hsize_t k = 0; k < nchunks; ++k) {
        hsize_t off[32];
        unsigned mask = 0;
        haddr_t addr = 0;
        hsize_t size = 0;
        if (H5Dget_chunk_info(d, space, k, off, &mask, &addr, &size) >= 0 && size > 0)
          out.push_back({addr, addr + size});
      }
      H5Sclose(space);
    } else {
      const haddr_t addr = H5Dget_offset(d);
      const hsize_t size = H5Dget_storage_size(d);
      if (addr != HADDR_UNDEF && size > 0) out.push_back({addr, addr + size});
    }
    H5Pclose(dcpl);
    H5Dclose(d);
  }
  H5Fclose(f);
  std::sort(out.begin(), out.end(), [](const Range& a, const Range& b) { return a.begin < b.begin; });
  return out;
}

struct Seed {
  std::string name;
  std::string bytes;
  std::vector<std::uint64_t> meta_offsets;  // every metadata byte offset (files are small)
};

std::string read_all(const std::string& path) { return bevkd::read_file(path); }

Seed make_seed(const std::string& name, const std::string& path) {
  Seed s;
  s.name = name;
  s.bytes = read_all(path);
  const std::vector<Range> raw = raw_ranges(path);
  std::vector<char> is_raw(s.bytes.size(), 0);
  for (const Range& r : raw)
    for (std::uint64_t k = r.begin; k < std::min<std::uint64_t>(r.end, s.bytes.size()); ++k) is_raw[k] = 1;
  for (std::uint64_t k = 0; k < s.bytes.size(); ++k)
    if (!is_raw[k]) s.meta_offsets.push_back(k);
  return s;
}

// Writes the fixture shards (in a child process, so that this process never starts TBB threads
// before it forks).
void write_seed_shards(const std::string& dir) {
  const pid_t pid = fork();
  if (pid == 0) {
    try {
      using namespace bevkd::storage;
      WriterOptions o;
      o.created_utc = "2024-01-01T00:00:00Z";
      for (const auto& v : bevkd::storage::writable_schema_versions()) {
        WriterOptions ov = o;
        ov.schema_version = v;
        const testing::FixtureSpec sv = testing::small_spec(v);  // 1.0: with the fd3d group
        ShardWriter w(cat(dir, "/seed-v", v.str(), ".h5"), testing::make_meta(sv), ov);
        for (std::int64_t i = 0; i < 4; ++i) w.append(testing::make_sample(sv, i));
        w.close();
      }
      std::_Exit(0);
    } catch (const std::exception& e) {
      std::fprintf(stderr, "fuzz: cannot write the seed shards: %s\n", e.what());
      std::_Exit(1);
    }
  }
  int status = 0;
  waitpid(pid, &status, 0);
  BEVKD_CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0, "fuzz: writing the seed shards failed");
}

struct Mutator {
  std::mt19937_64 rng;
  explicit Mutator(std::uint64_t seed) : rng(seed) {}
  std::uint64_t below(std::uint64_t n) { return n == 0 ? 0 : rng() % n; }
  bool chance(double p) { return std::uniform_real_distribution<double>(0, 1)(rng) < p; }

  // Applies 1-4 mutations to `b` (a copy of seed `s`); returns their description.
  std::string mutate(std::string& b, const Seed& s, const std::vector<Seed>& all) {
    std::ostringstream desc;
    const int n = 1 + static_cast<int>(below(4));
    for (int k = 0; k < n && !b.empty(); ++k) {
      const bool meta = !s.meta_offsets.empty() && chance(0.85);
      auto pick = [&]() -> std::uint64_t {
        const std::uint64_t o = meta ? s.meta_offsets[below(s.meta_offsets.size())] : below(b.size());
        return std::min<std::uint64_t>(o, b.size() - 1);
      };
      const std::uint64_t op = below(100);
      if (op < 35) {
        const std::uint64_t o = pick();
        const int bit = static_cast<int>(below(8));
        b[o] = static_cast<char>(b[o] ^ (1 << bit));
        desc << "flip-bit@" << o << ":" << bit << " ";
      } else if (op < 55) {
        const std::uint64_t o = pick();
        const unsigned char v = static_cast<unsigned char>(chance(0.3) ? 0 : chance(0.3) ? 0xFF : below(256));
        b[o] = static_cast<char>(v);
        desc << "set@" << o << "=" << unsigned(v) << " ";
      } else if (op < 70) {
        // An interesting little-endian integer of 1, 2, 4 or 8 bytes.
        static const std::int64_t kValues[] = {0,      1,          -1,         2,          0x7F,     0x80,
                                               0xFF,   0x100,      0x7FFF,     0xFFFF,     0x10000,  0x7FFFFFFF,
                                               -0x80000000LL, 0xFFFFFFFFLL, 0x100000000LL, 0x7FFFFFFFFFFFFFFFLL};
        const int width = 1 << below(4);
        std::int64_t v = kValues[below(sizeof kValues / sizeof kValues[0])];
        if (chance(0.3)) v += static_cast<std::int64_t>(below(64)) - 32;
        const std::uint64_t o = pick();
        for (int i = 0; i < width && o + i < b.size(); ++i) b[o + i] = static_cast<char>((v >> (8 * i)) & 0xFF);
        desc << "int" << 8 * width << "@" << o << "=" << v << " ";
      } else if (op < 80) {
        const std::uint64_t o = pick();
        const std::uint64_t len = 1 + below(16);
        for (std::uint64_t i = 0; i < len && o + i < b.size(); ++i) b[o + i] = static_cast<char>(b[o + i] ^ 0xFF);
        desc << "invert@" << o << "+" << len << " ";
      } else if (op < 88) {
        const std::uint64_t from = below(b.size()), to = pick(), len = 1 + below(64);
        for (std::uint64_t i = 0; i < len && from + i < b.size() && to + i < b.size(); ++i) b[to + i] = b[from + i];
        desc << "copy@" << from << "->" << to << "+" << len << " ";
      } else if (op < 94) {
        const std::uint64_t cut = chance(0.5) ? pick() : below(b.size());
        b.resize(std::max<std::uint64_t>(cut, 1));
        desc << "truncate@" << cut << " ";
      } else {
        const Seed& other = all[below(all.size())];
        const std::uint64_t o = pick(), len = 1 + below(256);
        for (std::uint64_t i = 0; i < len && o + i < b.size() && o + i < other.bytes.size(); ++i)
          b[o + i] = other.bytes[o + i];
        desc << "splice(" << other.name << ")@" << o << "+" << len << " ";
      }
    }
    return desc.str();
  }
};

// "rejected:shard : HDF5 cannot open the file (H5Fopen: unable to open file; ..." with the
// path and digits removed: an outcome class for the corpus.
std::string outcome_class(const std::string& kind, std::string msg, const std::string& path) {
  for (std::size_t p; (p = msg.find(path)) != std::string::npos;) msg.erase(p, path.size());
  std::string out;
  for (char c : msg)
    if (!(c >= '0' && c <= '9')) out += c;
  if (out.size() > 90) out.resize(90);
  return kind + ":" + out;
}

struct Stats {
  std::int64_t execs = 0;
  std::map<std::string, std::int64_t> kinds;
};

const char* kind_name(int status) {
  if (WIFSIGNALED(status)) return WTERMSIG(status) == SIGKILL ? "hang" : "crash";
  switch (WEXITSTATUS(status)) {
    case kOk: return "ok";
    case kRejected: return "rejected";
    case kBadSamples: return "bad-samples";
    case kBadAlloc: return "exception";
    default: return "exception";
  }
}

// Runs `probe` on `path` in a child; returns the wait status (SIGKILL after the timeout).
int run_child(const std::string& path, const std::string& msg_path, double timeout_s) {
  const pid_t pid = fork();
  if (pid == 0) {
    setpgid(0, 0);  // its own process group: a timeout kills everything it started
    const int devnull = open("/dev/null", O_WRONLY);
    if (devnull >= 0) {
      dup2(devnull, 1);
      dup2(devnull, 2);
    }
    // A cap on memory: a corrupt size must fail an allocation, not take the machine down.
    rlimit lim{};
    lim.rlim_cur = lim.rlim_max = 4ull << 30;
    setrlimit(RLIMIT_AS, &lim);
    std::_Exit(probe(path, msg_path));
  }
  const auto t0 = std::chrono::steady_clock::now();
  int status = 0;
  while (true) {
    const pid_t r = waitpid(pid, &status, WNOHANG);
    if (r == pid) return status;
    if (std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() > timeout_s) {
      kill(-pid, SIGKILL);
      kill(pid, SIGKILL);
      waitpid(pid, &status, 0);
      return status;
    }
    usleep(200);
  }
}

int run_fuzz(const Options& o) {
  fs::create_directories(o.work + "/seeds");
  fs::create_directories(o.work + "/corpus");
  fs::create_directories(o.work + "/crashes");
  std::vector<std::string> seed_files;
  if (o.builtin_seeds) {
    write_seed_shards(o.work + "/seeds");
    for (const auto& e : fs::directory_iterator(o.work + "/seeds"))
      if (e.path().extension() == ".h5") seed_files.push_back(e.path().string());
  }
  for (const auto& s : o.seed_shards) seed_files.push_back(s);
  std::sort(seed_files.begin(), seed_files.end());
  std::vector<Seed> seeds;
  for (const auto& p : seed_files) {
    seeds.push_back(make_seed(fs::path(p).filename().string(), p));
    std::cout << "seed " << p << ": " << seeds.back().bytes.size() << " bytes, " << seeds.back().meta_offsets.size()
              << " of them metadata\n";
  }
  // The corpus grows from the seeds: inputs with a new outcome class are mutated further.
  std::vector<Seed> corpus = seeds;

  const auto t0 = std::chrono::steady_clock::now();
  const double limit_s = o.minutes * 60.0;
  Stats st;
  std::set<std::string> classes;
  std::int64_t crashes = 0, hangs = 0, exceptions = 0, next_report = 10;
  std::vector<pid_t> workers;
  // Jobs: each worker process runs its own loop; results are reported through files. For
  // simplicity and determinism the parallel mode splits the time, not the corpus: each job
  // is an independent fuzzer with its own seed and corpus, and the parent sums the reports.
  if (o.jobs > 1) {
    for (int j = 0; j < o.jobs; ++j) {
      const pid_t pid = fork();
      if (pid == 0) {
        Options sub = o;
        sub.jobs = 1;
        sub.seed = o.seed * 1000 + static_cast<std::uint64_t>(j);
        sub.work = cat(o.work, "/job-", j);
        sub.seed_shards = seed_files;
        sub.builtin_seeds = false;  // the parent's seeds, passed as seed shards
        std::_Exit(run_fuzz(sub));
      }
      workers.push_back(pid);
    }
    int rc = 0;
    for (pid_t p : workers) {
      int status = 0;
      waitpid(p, &status, 0);
      if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) rc = 1;
    }
    return rc;
  }

  Mutator mut(o.seed);
  const std::string input = o.work + "/input.h5";
  const std::string msg_path = o.work + "/message.txt";
  std::ofstream log(o.work + "/fuzz.log", std::ios::app);
  while (true) {
    const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (elapsed > limit_s || (o.max_execs > 0 && st.execs >= o.max_execs)) break;
    const Seed& base = corpus[mut.below(corpus.size())];
    std::string bytes = base.bytes;
    const std::string desc = mut.mutate(bytes, base, seeds);
    {
      std::ofstream f(input, std::ios::binary | std::ios::trunc);
      f.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    }
    std::remove(msg_path.c_str());
    const int status = run_child(input, msg_path, o.timeout_s);
    ++st.execs;
    const std::string kind = kind_name(status);
    ++st.kinds[kind];
    std::string msg;
    if (fs::exists(msg_path)) msg = read_all(msg_path);
    if (kind == "crash" || kind == "hang" || kind == "exception") {
      const std::string name = cat(o.work, "/crashes/", kind, "-", st.execs);
      fs::copy_file(input, name + ".h5", fs::copy_options::overwrite_existing);
      std::ofstream(name + ".txt") << "seed " << base.name << "\nmutations " << desc << "\nstatus "
                                   << (WIFSIGNALED(status) ? cat("signal ", WTERMSIG(status)) : cat("exit ", WEXITSTATUS(status)))
                                   << "\nmessage " << msg << "\n";
      (kind == "crash" ? crashes : kind == "hang" ? hangs : exceptions)++;
      log << kind << " #" << st.execs << " " << base.name << " " << desc << "\n";
    }
    const std::string cls = outcome_class(kind, msg, input);
    if (classes.insert(cls).second) {
      Seed s;
      s.name = cat("corpus-", corpus.size());
      s.bytes = bytes;
      s.meta_offsets = base.meta_offsets;
      s.meta_offsets.erase(std::remove_if(s.meta_offsets.begin(), s.meta_offsets.end(),
                                          [&](std::uint64_t k) { return k >= bytes.size(); }),
                           s.meta_offsets.end());
      if (!s.meta_offsets.empty()) corpus.push_back(std::move(s));
      std::ofstream(cat(o.work, "/corpus/", corpus.size(), ".txt")) << cls << "\n" << desc << "\n";
    }
    if (elapsed >= static_cast<double>(next_report)) {
      next_report += 30;
      std::cout << cat("fuzz[", o.seed, "] ", static_cast<int>(elapsed), " s: ", st.execs, " execs (",
                       static_cast<int>(st.execs / std::max(elapsed, 1e-9)), "/s), corpus ", corpus.size(),
                       ", outcome classes ", classes.size(), ", crashes ", crashes, ", hangs ", hangs,
                       ", exceptions ", exceptions, "\n")
                << std::flush;
    }
  }
  const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::ostringstream summary;
  summary << "fuzz[" << o.seed << "] done: " << st.execs << " executions in " << static_cast<int>(elapsed) << " s ("
          << static_cast<int>(st.execs / std::max(elapsed, 1e-9)) << "/s); corpus " << corpus.size() << " inputs ("
          << seeds.size() << " seeds + " << corpus.size() - seeds.size() << " with new outcome classes); outcomes:";
  for (const auto& [k, v] : st.kinds) summary << " " << k << " " << v;
  summary << "; crashes " << crashes << ", hangs " << hangs << ", exceptions " << exceptions << "\n";
  std::cout << summary.str() << std::flush;
  std::ofstream(o.work + "/summary.txt") << summary.str();
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto next = [&]() -> std::string {
      if (i + 1 >= argc) {
        std::cerr << "bevkd-fuzz-shard: " << a << " needs a value\n";
        std::exit(1);
      }
      return argv[++i];
    };
    if (a == "--work") o.work = next();
    else if (a == "--minutes") o.minutes = std::stod(next());
    else if (a == "--max-execs") o.max_execs = std::stoll(next());
    else if (a == "--seed") o.seed = std::stoull(next());
    else if (a == "--jobs") o.jobs = std::stoi(next());
    else if (a == "--timeout") o.timeout_s = std::stod(next());
    else if (a == "--seed-shard") o.seed_shards.push_back(next());
    else if (a == "--replay") o.replay = next();
    else {
      std::cerr << "usage: bevkd-fuzz-shard [--work DIR] [--minutes M] [--max-execs N] [--seed S] [--jobs J]\n"
                   "                        [--timeout S] [--seed-shard FILE]... [--replay FILE]\n";
      return a == "--help" || a == "-h" ? 0 : 1;
    }
  }
  if (!o.replay.empty()) {
    const std::string msg = o.replay + ".message";
    const int status = run_child(o.replay, msg, o.timeout_s);
    std::cout << o.replay << ": " << kind_name(status) << " ("
              << (WIFSIGNALED(status) ? cat("signal ", WTERMSIG(status)) : cat("exit ", WEXITSTATUS(status))) << ")\n";
    if (fs::exists(msg)) std::cout << read_all(msg) << "\n";
    return WIFSIGNALED(status) ? 1 : 0;
  }
  try {
    return run_fuzz(o);
  } catch (const std::exception& e) {
    std::cerr << "bevkd-fuzz-shard: " << e.what() << "\n";
    return 1;
  }
}

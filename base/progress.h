// A progress line for long work: "precompute train  1234/34149  3.6%  12.4 samples/s  ETA 0:44:12".
//
// On a terminal the line is redrawn in place (carriage return) at most every
// `min_interval_s`; in a log (stderr not a tty) a full line is printed at most every
// `log_interval_s`, so CI logs stay short. Thread-safe: any thread may call advance().
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <iosfwd>
#include <mutex>
#include <string>

namespace bevkd {

struct ProgressOptions {
  std::string unit = "it";        // printed as "<rate> <unit>/s"
  double min_interval_s = 0.25;   // redraw period on a terminal
  double log_interval_s = 10.0;   // period of full lines when not on a terminal
  bool enabled = true;            // false: print nothing (e.g. --quiet)
};

class Progress {
 public:
  // total <= 0 means unknown (no percentage and no ETA).
  Progress(std::string label, std::int64_t total, ProgressOptions opts = {});
  Progress(std::string label, std::int64_t total, std::ostream& os, ProgressOptions opts = {});
  ~Progress();
  Progress(const Progress&) = delete;
  Progress& operator=(const Progress&) = delete;

  // Counts `n` more items done; prints if the print interval has passed.
  void advance(std::int64_t n = 1);
  // Prints the final line (with the average rate and elapsed time) once.
  void finish();

  std::int64_t done() const { return done_.load(); }
  double elapsed_s() const;
  // Formats the current line (without \r or newline); public for tests.
  std::string line() const;

  // "1:02:03" / "2:03" for a duration in seconds.
  static std::string format_duration(double seconds);

 private:
  void print(bool final_line);

  std::string label_;
  std::int64_t total_;
  ProgressOptions opts_;
  std::ostream* os_;
  bool tty_;
  std::atomic<std::int64_t> done_{0};
  std::chrono::steady_clock::time_point start_;
  std::chrono::steady_clock::time_point last_print_;
  std::mutex mu_;
  bool finished_ = false;
};

}  // namespace bevkd

#include "base/progress.h"

#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <iomanip>
#include <iostream>
#include <sstream>

namespace bevkd {

Progress::Progress(std::string label, std::int64_t total, ProgressOptions opts)
    : Progress(std::move(label), total, std::cerr, std::move(opts)) {}

Progress::Progress(std::string label, std::int64_t total, std::ostream& os, ProgressOptions opts)
    : label_(std::move(label)),
      total_(total),
      opts_(std::move(opts)),
      os_(&os),
      tty_(&os == &std::cerr && ::isatty(STDERR_FILENO) == 1),
      start_(std::chrono::steady_clock::now()),
      last_print_(start_) {}

Progress::~Progress() {
  // A Progress destroyed by an exception must not print a misleading "done" line, but a
  // terminal line left half-drawn needs its newline.
  std::lock_guard<std::mutex> lock(mu_);
  if (!finished_ && tty_ && opts_.enabled && done_.load() > 0) *os_ << std::endl;
}

double Progress::elapsed_s() const {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
}

std::string Progress::format_duration(double seconds) {
  if (!std::isfinite(seconds) || seconds < 0) return "?";
  auto s = static_cast<long long>(std::llround(seconds));
  long long h = s / 3600, m = (s / 60) % 60, sec = s % 60;
  char buf[64];
  if (h > 0) {
    std::snprintf(buf, sizeof buf, "%lld:%02lld:%02lld", h, m, sec);
  } else {
    std::snprintf(buf, sizeof buf, "%lld:%02lld", m, sec);
  }
  return buf;
}

std::string Progress::line() const {
  const std::int64_t done = done_.load();
  const double t = elapsed_s();
  const double rate = t > 0 ? static_cast<double>(done) / t : 0.0;
  std::ostringstream os;
  os << label_ << "  " << done;
  if (total_ > 0) {
    os << "/" << total_ << "  " << std::fixed << std::setprecision(1)
       << 100.0 * static_cast<double>(done) / static_cast<double>(total_) << "%";
  }
  os << "  " << std::fixed << std::setprecision(rate < 10 ? 2 : 1) << rate << " " << opts_.unit
     << "/s";
  if (total_ > 0) {
    if (done >= total_) {
      os << "  elapsed " << format_duration(t);
    } else {
      const double eta = rate > 0 ? static_cast<double>(total_ - done) / rate : NAN;
      os << "  ETA " << format_duration(eta);
    }
  } else {
    os << "  elapsed " << format_duration(t);
  }
  return os.str();
}

void Progress::print(bool final_line) {
  if (!opts_.enabled) return;
  if (tty_) {
    *os_ << "\r" << line() << "\033[K";
    if (final_line) *os_ << "\n";
    os_->flush();
  } else {
    *os_ << line() << "\n";
    os_->flush();
  }
}

void Progress::advance(std::int64_t n) {
  done_.fetch_add(n);
  const auto now = std::chrono::steady_clock::now();
  const double interval = tty_ ? opts_.min_interval_s : opts_.log_interval_s;
  std::unique_lock<std::mutex> lock(mu_, std::try_to_lock);
  if (!lock.owns_lock() || finished_) return;
  if (std::chrono::duration<double>(now - last_print_).count() < interval) return;
  last_print_ = now;
  print(false);
}

void Progress::finish() {
  std::lock_guard<std::mutex> lock(mu_);
  if (finished_) return;
  finished_ = true;
  print(true);
}

}  // namespace bevkd

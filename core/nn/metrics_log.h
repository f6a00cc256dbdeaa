// The metrics log of a training run: one JSON object per line (JSON lines), appended and flushed
// record by record, so a killed run leaves every finished record readable (a torn last line is
// dropped when the log is reopened). A resumed run cuts the log back to the checkpoint's step
// first, so that the records after it are written once, by the resumed run.
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <fstream>
#include <string>
#include <vector>

namespace bevkd::core::nn {

class MetricsLog {
 public:
  // Opens `path` (its directory must exist). keep_up_to_step >= 0 keeps the records whose "step"
  // is <= it (records without a step are kept) and drops the rest; -1 starts an empty log.
  MetricsLog(std::string path, int64_t keep_up_to_step);
  // Appends one record (an object) as one line and flushes it.
  void append(const nlohmann::json& record);
  const std::string& path() const { return path_; }

  // Every well-formed record of a log (a torn or broken line is skipped).
  static std::vector<nlohmann::json> read(const std::string& path);

 private:
  std::string path_;
  std::ofstream out_;
};

}  // namespace bevkd::core::nn

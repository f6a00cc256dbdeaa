#include "core/nn/metrics_log.h"

#include <sstream>

#include "base/error.h"
#include "base/fs.h"

namespace bevkd::core::nn {

std::vector<nlohmann::json> MetricsLog::read(const std::string& path) {
  std::vector<nlohmann::json> out;
  if (!path_exists(path)) return out;
  std::istringstream in(read_file(path));
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty()) continue;
    try {
      auto j = nlohmann::json::parse(line);
      if (j.is_object()) out.push_back(std::move(j));
    } catch (const nlohmann::json::exception&) {
      // a torn last line from a killed run
    }
  }
  return out;
}

MetricsLog::MetricsLog(std::string path, int64_t keep_up_to_step) : path_(std::move(path)) {
  std::string kept;
  if (keep_up_to_step >= 0)
    for (const auto& j : read(path_)) {
      if (j.contains("step") && j.at("step").is_number() && j.at("step").get<int64_t>() > keep_up_to_step) continue;
      kept += j.dump() + "\n";
    }
  write_file_atomic(path_, kept);
  out_.open(path_, std::ios::app);
  BEVKD_CHECK(out_.good(), "metrics log ", path_, ": cannot open it for appending");
}

void MetricsLog::append(const nlohmann::json& record) {
  out_ << record.dump() << "\n";
  out_.flush();
  BEVKD_CHECK(out_.good(), "metrics log ", path_, ": write failed");
}

}  // namespace bevkd::core::nn

#include "core/eval/results_io.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <functional>
#include <thread>
#include <unordered_set>

#include "base/error.h"
#include "base/fs.h"
#include "base/progress.h"
#include "base/json_writer.h"
#include "core/eval/simdjson_util.h"
#include "core/nuscenes_vocab.h"

namespace bevkd::core::eval {

namespace jd = json_detail;
namespace od = simdjson::ondemand;

namespace {

// ---- the document skeleton ------------------------------------------------------------------
//
// The file is scanned (strings and brackets only) to find "meta", "results" and, inside
// "results", each sample's token and the text of its box list. The box lists are then parsed
// and validated by simdjson in batches on several threads, each list as its own small
// document: memory stays near one batch plus the boxes (not 3x the file, as a whole-document
// parse needs), and the work spreads over the cores. Structural errors of the two outer
// objects are reported here with a byte offset; everything inside a box list by simdjson with
// its JSON path.

// The first of '"', '[', ']', '{', '}' in [p, end), or end.
inline const char* next_special(const char* p, const char* end) {
#if defined(__SSE2__)
  const __m128i q = _mm_set1_epi8('"'), lb = _mm_set1_epi8('['), rb = _mm_set1_epi8(']'), lc = _mm_set1_epi8('{'),
                rc = _mm_set1_epi8('}');
  while (end - p >= 16) {
    const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
    const __m128i hit = _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(v, q), _mm_cmpeq_epi8(v, lb)),
                                     _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(v, rb), _mm_cmpeq_epi8(v, lc)),
                                                  _mm_cmpeq_epi8(v, rc)));
    const int mask = _mm_movemask_epi8(hit);
    if (mask != 0) return p + __builtin_ctz(static_cast<unsigned>(mask));
    p += 16;
  }
#endif
  for (; p < end; ++p)
    if (*p == '"' || *p == '[' || *p == ']' || *p == '{' || *p == '}') return p;
  return end;
}

// The first '"' or backslash in [p, end), or end.
inline const char* next_quote_or_backslash(const char* p, const char* end) {
#if defined(__SSE2__)
  const __m128i q = _mm_set1_epi8('"'), bs = _mm_set1_epi8('\\');
  while (end - p >= 16) {
    const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
    const int mask = _mm_movemask_epi8(_mm_or_si128(_mm_cmpeq_epi8(v, q), _mm_cmpeq_epi8(v, bs)));
    if (mask != 0) return p + __builtin_ctz(static_cast<unsigned>(mask));
    p += 16;
  }
#endif
  for (; p < end; ++p)
    if (*p == '"' || *p == '\\') return p;
  return end;
}

class Scanner {
 public:
  Scanner(std::string_view text, const std::string& source) : s_(text), source_(source) {}

  std::size_t pos() const { return pos_; }
  void ws() {
    while (pos_ < s_.size() && (s_[pos_] == ' ' || s_[pos_] == '\n' || s_[pos_] == '\r' || s_[pos_] == '\t')) ++pos_;
  }
  bool at(char c) {
    ws();
    return pos_ < s_.size() && s_[pos_] == c;
  }
  void expect(char c, const char* what) {
    ws();
    if (pos_ >= s_.size()) fail("expected ", what, ", found the end of the file");
    if (s_[pos_] != c) fail("expected ", what, ", found '", s_[pos_], "'");
    ++pos_;
  }
  bool at_end() {
    ws();
    return pos_ >= s_.size();
  }

  // A string token (at '"'); escapes are decoded by simdjson when present.
  std::string string_token(const char* what) {
    ws();
    if (pos_ >= s_.size() || s_[pos_] != '"') fail("expected ", what, " (a string)", found());
    const std::size_t begin = pos_;
    bool escaped = false;
    for (++pos_; pos_ < s_.size(); ++pos_) {
      const char c = s_[pos_];
      if (c == '\\') {
        escaped = true;
        ++pos_;
      } else if (c == '"') {
        break;
      }
    }
    if (pos_ >= s_.size()) fail_at(begin, "unterminated string");
    ++pos_;
    const std::string_view raw = s_.substr(begin, pos_ - begin);
    if (!escaped) return std::string(raw.substr(1, raw.size() - 2));
    simdjson::padded_string padded(raw);
    simdjson::ondemand::parser parser;
    simdjson::ondemand::document doc;
    std::string_view out;
    if (parser.iterate(padded).get(doc) != simdjson::SUCCESS || doc.get_string().get(out) != simdjson::SUCCESS)
      fail_at(begin, "invalid string ", raw.substr(0, 40));
    return std::string(out);
  }

  // The text of one JSON value; containers are matched bracket by bracket (strings skipped),
  // their content is validated by whoever parses the text.
  std::string_view value_text(const char* what) {
    ws();
    if (pos_ >= s_.size()) fail("expected ", what, ", found the end of the file");
    const std::size_t begin = pos_;
    const char c0 = s_[pos_];
    if (c0 == '"') {
      string_token(what);
    } else if (c0 == '[' || c0 == '{') {
      // Only quotes and brackets matter (backslashes only inside strings): skip everything
      // else 16 bytes at a time.
      const char* p = s_.data() + pos_;
      const char* const end = s_.data() + s_.size();
      int depth = 0;
      for (; p < end; ++p) {
        p = next_special(p, end);
        if (p >= end) break;
        const char c = *p;
        if (c == '"') {
          for (p = next_quote_or_backslash(p + 1, end); p < end && *p == '\\'; p = next_quote_or_backslash(p + 2, end)) {
          }
          if (p >= end) break;
        } else if (c == '[' || c == '{') {
          ++depth;
        } else if (--depth == 0) {
          break;
        }
      }
      pos_ = static_cast<std::size_t>(p - s_.data());
      if (pos_ >= s_.size()) fail_at(begin, what, " is not closed before the end of the file");
      ++pos_;
    } else {
      while (pos_ < s_.size() && s_[pos_] != ',' && s_[pos_] != '}' && s_[pos_] != ']' && s_[pos_] != ' ' &&
             s_[pos_] != '\n' && s_[pos_] != '\r' && s_[pos_] != '\t')
        ++pos_;
    }
    return s_.substr(begin, pos_ - begin);
  }

  template <typename... Args>
  [[noreturn]] void fail(Args&&... what) const {
    fail_at(pos_, std::forward<Args>(what)...);
  }
  template <typename... Args>
  [[noreturn]] void fail_at(std::size_t at, Args&&... what) const {
    BEVKD_FAIL(source_, ": byte ", at, ": ", std::forward<Args>(what)...);
  }

 private:
  std::string found() const {
    if (pos_ >= s_.size()) return ", found the end of the file";
    return cat(", found '", s_[pos_], "'");
  }
  std::string_view s_;
  const std::string& source_;
  std::size_t pos_ = 0;
};

// Parses one JSON document held in `text` (copied into a padded buffer).
class ChunkParser {
 public:
  simdjson::ondemand::value parse(std::string_view text, const std::string& source, const jd::Path& path) {
    buf_.resize(text.size() + simdjson::SIMDJSON_PADDING);
    std::memcpy(buf_.data(), text.data(), text.size());
    jd::check(parser_.iterate(simdjson::padded_string_view(buf_.data(), text.size(), buf_.size())).get(doc_), source,
              path, "a JSON value");
    simdjson::ondemand::value v;
    jd::check(doc_.get_value().get(v), source, path, "a JSON value");
    return v;
  }

 private:
  std::vector<char> buf_;
  simdjson::ondemand::parser parser_;
  simdjson::ondemand::document doc_;
};

ResultsMeta parse_meta(std::string_view text, const std::string& source) {
  static constexpr std::array<std::string_view, 5> kFlags = {"use_camera", "use_lidar", "use_radar", "use_map",
                                                             "use_external"};
  ChunkParser cp;
  const jd::Path root = jd::Path::root();
  const jd::Path meta_path = root.key("meta");
  od::value v = cp.parse(text, source, meta_path);
  ResultsMeta meta;
  bool* slots[5] = {&meta.use_camera, &meta.use_lidar, &meta.use_radar, &meta.use_map, &meta.use_external};
  std::array<bool, 5> seen{};
  auto obj = jd::get_object(v, source, meta_path);
  for (auto field : obj) {
    std::string_view key;
    jd::check(field.unescaped_key().get(key), source, meta_path, "an object key");
    for (std::size_t i = 0; i < kFlags.size(); ++i) {
      if (key != kFlags[i]) continue;
      const jd::Path path = meta_path.key(key);
      od::value fv;
      jd::check(field.value().get(fv), source, path, "a boolean");
      bool flag = false;
      const auto e = fv.get_bool().get(flag);
      if (e == simdjson::INCORRECT_TYPE) jd::fail_at(source, path, "expected true or false, found ", jd::type_name(fv));
      jd::check(e, source, path, "a boolean");
      *slots[i] = flag;
      seen[i] = true;
    }
  }
  for (std::size_t i = 0; i < kFlags.size(); ++i)
    if (!seen[i])
      jd::fail_at(source, meta_path, "missing \"", kFlags[i],
                  "\" (meta needs use_camera, use_lidar, use_radar, use_map and use_external)");
  return meta;
}

EvalBox parse_box(od::value v, const std::string& source, const std::string& token, const jd::Path& path) {
  auto obj = jd::get_object(v, source, path);
  EvalBox b;
  enum Field { kToken, kTrans, kSize, kRot, kVel, kName, kAttr, kNumRequired };
  bool have[kNumRequired] = {};
  for (auto field : obj) {
    std::string_view key;
    jd::check(field.unescaped_key().get(key), source, path, "an object key");
    const jd::Path fp = path.key(key);
    od::value fv;
    jd::check(field.value().get(fv), source, fp, "a value");
    if (key == "translation") {
      jd::get_numbers(fv, b.translation.data(), 3, source, fp);
      have[kTrans] = true;
    } else if (key == "size") {
      jd::get_numbers(fv, b.size.data(), 3, source, fp);
      have[kSize] = true;
    } else if (key == "rotation") {
      jd::get_numbers(fv, b.rotation.data(), 4, source, fp);
      have[kRot] = true;
    } else if (key == "velocity") {
      // null reads as NaN too (what a JSON writer without NaN literals produces).
      od::array a = jd::get_array(fv, source, fp);
      std::size_t k = 0;
      for (auto el : a) {
        od::value ev;
        jd::check(el.get(ev), source, fp, "an array element");
        if (k < 2) b.velocity[k] = ev.is_null() ? std::nan("") : jd::get_number(ev, source, fp.index(k));
        ++k;
      }
      if (k != 2) jd::fail_at(source, fp, "expected 2 numbers [vx, vy], found ", k);
      have[kVel] = true;
    } else if (key == "detection_name") {
      const std::string_view name = jd::get_string_view(fv, source, fp);
      b.label = class_index(name);
      if (b.label < 0)
        jd::fail_at(source, fp, "unknown class \"", name,
                    "\" (expected one of car, truck, bus, trailer, construction_vehicle, pedestrian, motorcycle, bicycle, "
                    "traffic_cone, barrier)");
      have[kName] = true;
    } else if (key == "attribute_name") {
      const std::string_view name = jd::get_string_view(fv, source, fp);
      b.attribute = attribute_index(name);
      if (b.attribute < 0 && !name.empty())
        jd::fail_at(source, fp, "unknown attribute \"", name,
                    "\" (expected \"\" or one of the 8 nuScenes attributes, e.g. vehicle.moving, cycle.with_rider, "
                    "pedestrian.standing)");
      have[kAttr] = true;
    } else if (key == "detection_score") {
      b.score = jd::get_number(fv, source, fp);
    } else if (key == "sample_token") {
      const std::string_view t = jd::get_string_view(fv, source, fp);
      if (t != token) jd::fail_at(source, fp, "is \"", t, "\" but the box is listed under sample \"", token, "\"");
      have[kToken] = true;
    } else if (key == "num_pts") {
      const double n = jd::get_number(fv, source, fp);
      if (!(n == std::floor(n) && n >= -1 && n <= 2e9)) jd::fail_at(source, fp, "expected an integer >= -1, found ", n);
      b.num_pts = static_cast<int>(n);
    }
    // Other keys (ego_translation, tracking fields...) are ignored, as by the devkit.
  }
  static constexpr const char* kRequired[kNumRequired] = {"sample_token", "translation", "size", "rotation",
                                                          "velocity", "detection_name", "attribute_name"};
  for (int f = 0; f < kNumRequired; ++f)
    if (!have[f]) jd::fail_at(source, path, "missing \"", kRequired[f], "\"");
  const std::string problem = box_problem(b);
  if (!problem.empty()) BEVKD_FAIL(source, ": ", path.str(), problem);
  return b;
}

// One sample's box list as found by the scanner.
struct SampleText {
  std::string token;
  std::string_view boxes;  // the JSON text of the list
};

std::vector<EvalBox> parse_sample(ChunkParser& cp, const SampleText& st, const std::string& source,
                                  int max_boxes_per_sample) {
  const std::string label = cat("results[\"", st.token, "\"]");
  const jd::Path where = jd::Path::raw(label);
  od::value v = cp.parse(st.boxes, source, where);
  auto arr = jd::get_array(v, source, where);
  std::vector<EvalBox> boxes;
  boxes.reserve(std::min<std::size_t>(static_cast<std::size_t>(max_boxes_per_sample), st.boxes.size() / 256 + 1));
  for (auto el : arr) {
    od::value bv;
    jd::check(el.get(bv), source, where, "a box");
    if (boxes.size() >= static_cast<std::size_t>(max_boxes_per_sample))
      jd::fail_at(source, where, "more than ", max_boxes_per_sample,
                  " boxes (max_boxes_per_sample); keep the highest-scoring ones");
    boxes.push_back(parse_box(bv, source, st.token, where.index(boxes.size())));
  }
  return boxes;
}

// Parses a batch of samples on up to `threads` threads; rethrows the error of the first failing
// sample (in file order), so messages do not depend on scheduling.
void parse_batch(const std::vector<SampleText>& batch, std::vector<std::vector<EvalBox>>& out, const std::string& source,
                 int max_boxes_per_sample, int threads) {
  out.assign(batch.size(), {});
  std::vector<std::exception_ptr> errors(batch.size());
  std::atomic<std::size_t> next{0};
  auto worker = [&] {
    ChunkParser cp;
    for (std::size_t i = next++; i < batch.size(); i = next++) {
      try {
        out[i] = parse_sample(cp, batch[i], source, max_boxes_per_sample);
      } catch (...) {
        errors[i] = std::current_exception();
      }
    }
  };
  const int n = std::max(1, std::min<int>(threads, static_cast<int>(batch.size())));
  std::vector<std::thread> pool;
  for (int t = 1; t < n; ++t) pool.emplace_back(worker);
  worker();
  for (auto& t : pool) t.join();
  for (const auto& e : errors)
    if (e) std::rethrow_exception(e);
}

// Reads a whole results document. `release(end)` is called after the bytes before `end` are no
// longer needed (the memory-mapped reader drops those pages).
Results parse_document(std::string_view text, const std::string& source, const ResultsReadOptions& options,
                       const std::function<void(std::size_t)>& release) {
  const int max_boxes_per_sample = options.max_boxes_per_sample;
  const int threads = options.threads > 0 ? options.threads : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  constexpr double kMiB = 1024.0 * 1024.0;
  ProgressOptions popts;
  popts.unit = "MiB";
  popts.enabled = options.show_progress;
  Progress progress("read " + source, static_cast<std::int64_t>(std::ceil(static_cast<double>(text.size()) / kMiB)), popts);
  std::int64_t reported_mib = 0;
  Scanner sc(text, source);
  Results out;
  bool have_meta = false, have_results = false;
  sc.expect('{', "'{' (a results file is a JSON object)");
  if (!sc.at('}')) {
    for (;;) {
      const std::size_t key_pos = sc.pos();
      const std::string key = sc.string_token("a key of the top-level object");
      sc.expect(':', "':' after a key");
      if (key == "meta") {
        if (have_meta) sc.fail_at(key_pos, "\"meta\" appears twice");
        out.meta = parse_meta(sc.value_text("the meta object"), source);
        have_meta = true;
      } else if (key == "results") {
        if (have_results) sc.fail_at(key_pos, "\"results\" appears twice");
        have_results = true;
        sc.expect('{', "'{' (\"results\" maps sample tokens to lists of boxes)");
        std::vector<SampleText> batch;
        std::vector<std::vector<EvalBox>> parsed;
        std::size_t batch_bytes = 0;
        auto flush = [&] {
          parse_batch(batch, parsed, source, max_boxes_per_sample, threads);
          for (std::size_t i = 0; i < batch.size(); ++i) out.boxes.add_sample(std::move(batch[i].token), std::move(parsed[i]));
          batch.clear();
          batch_bytes = 0;
          release(sc.pos());
          const auto mib = static_cast<std::int64_t>(static_cast<double>(sc.pos()) / kMiB);
          progress.advance(mib - reported_mib);
          reported_mib = mib;
        };
        std::unordered_set<std::string> seen;
        if (!sc.at('}')) {
          for (;;) {
            const std::size_t tok_pos = sc.pos();
            std::string token = sc.string_token("a sample token");
            if (!seen.insert(token).second)
              BEVKD_FAIL(source, ": results[\"", token, "\"]: sample token appears twice (again at byte ", tok_pos, ")");
            sc.expect(':', "':' after a sample token");
            const std::string_view boxes = sc.value_text("a list of boxes");
            batch_bytes += boxes.size();
            batch.push_back({std::move(token), boxes});
            if (batch_bytes >= options.batch_bytes) flush();
            if (sc.at(',')) {
              sc.expect(',', "','");
              continue;
            }
            sc.expect('}', "',' or '}' after a sample of \"results\"");
            break;
          }
        } else {
          sc.expect('}', "'}'");
        }
        flush();
      } else {
        sc.value_text("a value");  // other top-level keys are ignored, as by the devkit
      }
      if (sc.at(',')) {
        sc.expect(',', "','");
        continue;
      }
      sc.expect('}', "',' or '}' after a member of the top-level object");
      break;
    }
  } else {
    sc.expect('}', "'}'");
  }
  if (!sc.at_end()) sc.fail("unexpected text after the top-level object");
  progress.advance(std::max<std::int64_t>(0, static_cast<std::int64_t>(std::ceil(static_cast<double>(text.size()) / kMiB)) - reported_mib));
  progress.finish();
  const jd::Path top = jd::Path::root();
  if (!have_meta) jd::fail_at(source, top, "missing \"meta\" (the devkit requires {\"meta\": {...}, \"results\": {...}})");
  if (!have_results)
    jd::fail_at(source, top, "missing \"results\" (the devkit requires {\"meta\": {...}, \"results\": {...}})");
  return out;
}

// A read-only memory map of a whole file.
class MappedFile {
 public:
  explicit MappedFile(const std::string& path) {
    fd_ = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    BEVKD_CHECK(fd_ >= 0, "results file ", path, " cannot be opened: ", std::strerror(errno));
    struct stat st {};
    if (::fstat(fd_, &st) != 0 || !S_ISREG(st.st_mode)) {
      ::close(fd_);
      BEVKD_FAIL("results file ", path, " is not a regular file");
    }
    size_ = static_cast<std::size_t>(st.st_size);
    if (size_ == 0) {
      ::close(fd_);
      BEVKD_FAIL("results file ", path, " is empty");
    }
    void* p = ::mmap(nullptr, size_, PROT_READ, MAP_PRIVATE, fd_, 0);
    if (p == MAP_FAILED) {
      ::close(fd_);
      BEVKD_FAIL("results file ", path, " cannot be mapped: ", std::strerror(errno));
    }
    data_ = static_cast<const char*>(p);
    ::madvise(p, size_, MADV_SEQUENTIAL);
  }
  ~MappedFile() {
    ::munmap(const_cast<char*>(data_), size_);
    ::close(fd_);
  }
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;

  std::string_view text() const { return {data_, size_}; }
  // Drops the pages before byte `end` from memory (they are re-read from the file if touched).
  void release(std::size_t end) {
    const auto page = static_cast<std::size_t>(::sysconf(_SC_PAGESIZE));
    const std::size_t upto = end / page * page;
    if (upto > released_) ::madvise(const_cast<char*>(data_) + released_, upto - released_, MADV_DONTNEED);
    released_ = std::max(released_, upto);
  }

 private:
  int fd_ = -1;
  const char* data_ = nullptr;
  std::size_t size_ = 0;
  std::size_t released_ = 0;
};

}  // namespace

Results parse_results(std::string_view json_text, const std::string& source, const ResultsReadOptions& options) {
  return parse_document(json_text, source, options, [](std::size_t) {});
}

Results load_results(const std::string& path, const ResultsReadOptions& options) {
  BEVKD_CHECK(path_exists(path), "results file ", path, " does not exist");
  MappedFile file(path);
  return parse_document(file.text(), path, options, [&](std::size_t end) { file.release(end); });
}

EvalBoxes to_eval_boxes(const std::vector<SampleDetections>& samples) {
  EvalBoxes out;
  for (const SampleDetections& s : samples) {
    std::vector<EvalBox> boxes;
    boxes.reserve(s.detections.size());
    for (std::size_t i = 0; i < s.detections.size(); ++i) {
      const EgoDetection& d = s.detections[i];
      BEVKD_CHECK(d.label >= 0 && d.label < kNumClasses, "sample ", s.sample_token, " detection ", i, ": label ", d.label,
                  " is not a detection class id (0..", kNumClasses - 1, ")");
      const core::NuscBox nb = core::to_nusc_box(d.box, s.ego2global);
      EvalBox b;
      b.translation = nb.translation;
      b.size = nb.size;
      b.rotation = {nb.rotation.w, nb.rotation.x, nb.rotation.y, nb.rotation.z};
      b.velocity = nb.velocity;
      b.label = d.label;
      b.score = d.score;
      b.attribute = d.attribute;
      const std::string problem = box_problem(b);
      BEVKD_CHECK(problem.empty(), "sample ", s.sample_token, " detection ", i, problem);
      boxes.push_back(b);
    }
    out.add_sample(s.sample_token, std::move(boxes));
  }
  return out;
}

std::string results_json(const EvalBoxes& boxes, const ResultsMeta& meta, int max_boxes_per_sample) {
  JsonWriter w;
  w.begin_object();
  w.key("meta").begin_object();
  w.key("use_camera").value(meta.use_camera);
  w.key("use_lidar").value(meta.use_lidar);
  w.key("use_radar").value(meta.use_radar);
  w.key("use_map").value(meta.use_map);
  w.key("use_external").value(meta.use_external);
  w.end_object();
  w.key("results").begin_object();
  for (std::size_t s = 0; s < boxes.num_samples(); ++s) {
    const std::string& token = boxes.token(s);
    const auto& list = boxes.boxes(s);
    BEVKD_CHECK(list.size() <= static_cast<std::size_t>(max_boxes_per_sample), "results for sample ", token, ": ",
                list.size(), " boxes, at most ", max_boxes_per_sample, " are allowed per sample");
    w.key(token).begin_array();
    for (std::size_t i = 0; i < list.size(); ++i) {
      const EvalBox& b = list[i];
      const std::string problem = box_problem(b);
      BEVKD_CHECK(problem.empty(), "results[\"", token, "\"][", i, "]", problem);
      w.begin_object();
      w.key("sample_token").value(token);
      w.key("translation").begin_array().value(b.translation[0]).value(b.translation[1]).value(b.translation[2]).end_array();
      w.key("size").begin_array().value(b.size[0]).value(b.size[1]).value(b.size[2]).end_array();
      w.key("rotation").begin_array().value(b.rotation[0]).value(b.rotation[1]).value(b.rotation[2]).value(b.rotation[3]).end_array();
      w.key("velocity").begin_array().value(b.velocity[0]).value(b.velocity[1]).end_array();
      w.key("detection_name").value(kClassNames[static_cast<std::size_t>(b.label)]);
      w.key("detection_score").value(b.score);
      w.key("attribute_name").value(b.attribute < 0 ? std::string_view() : kAttributeNames[static_cast<std::size_t>(b.attribute)]);
      if (b.num_pts != -1) w.key("num_pts").value(b.num_pts);
      w.end_object();
    }
    w.end_array();
  }
  w.end_object();
  w.end_object();
  return w.take();
}

void write_results_json(const std::string& path, const EvalBoxes& boxes, const ResultsMeta& meta, int max_boxes_per_sample) {
  write_file_atomic(path, results_json(boxes, meta, max_boxes_per_sample));
}

}  // namespace bevkd::core::eval

// Two tiers of checks (after faiss' FaissAssert.h):
//
//  * BEVKD_CHECK(cond, parts...) — user and data errors: a missing file, a corrupt shard, a
//    wrong shape. Throws bevkd::Error whose message is the concatenation of `parts`; the
//    message must name the file, the field, what was expected and what was found, e.g.
//      BEVKD_CHECK(c == 256, "shard ", path, ": dataset teacher/features/neck has ", c,
//                  " channels, the manifest says 256");
//  * BEVKD_ASSERT(cond) — internal invariants (a bug in bevkd, not in the input). Throws
//    bevkd::InternalError naming the source file, line and condition.
//
// Libraries never call exit() or abort(); mains catch bevkd::Error / std::exception, print the
// message and return a non-zero exit code (see run_main()).
#pragma once

#include <functional>
#include <sstream>
#include <stdexcept>
#include <string>
#include <utility>

namespace bevkd {

// A user or data error. what() is the complete, human-readable message.
class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& msg) : std::runtime_error(msg) {}
};

// A broken internal invariant (a bevkd bug).
class InternalError : public std::logic_error {
 public:
  explicit InternalError(const std::string& msg) : std::logic_error(msg) {}
};

// Concatenates any streamable values into one string: cat("shard ", i, ": ", msg).
template <typename... Args>
std::string cat(Args&&... args) {
  std::ostringstream os;
  (os << ... << std::forward<Args>(args));
  return os.str();
}

namespace detail {
[[noreturn]] void throw_internal(const char* file, int line, const char* cond, const std::string& msg);
}  // namespace detail

// Runs `body` as a program's main: exceptions become a message on stderr and exit code 1
// (bevkd::Error: "error: <message>"; anything else: "internal error: <message>").
int run_main(const char* program, const std::function<int()>& body);

}  // namespace bevkd

#define BEVKD_CHECK(cond, ...)                      \
  do {                                              \
    if (!(cond)) {                                  \
      throw ::bevkd::Error(::bevkd::cat(__VA_ARGS__)); \
    }                                               \
  } while (0)

#define BEVKD_FAIL(...) throw ::bevkd::Error(::bevkd::cat(__VA_ARGS__))

#define BEVKD_ASSERT(cond, ...)                                                          \
  do {                                                                                   \
    if (!(cond)) {                                                                       \
      ::bevkd::detail::throw_internal(__FILE__, __LINE__, #cond, ::bevkd::cat("", ##__VA_ARGS__)); \
    }                                                                                    \
  } while (0)

#include "base/error.h"

#include <exception>
#include <iostream>

namespace bevkd {
namespace detail {

void throw_internal(const char* file, int line, const char* cond, const std::string& msg) {
  std::string what = cat(file, ":", line, ": internal invariant `", cond, "` failed");
  if (!msg.empty()) what += cat(": ", msg);
  throw InternalError(what);
}

}  // namespace detail

int run_main(const char* program, const std::function<int()>& body) {
  try {
    return body();
  } catch (const Error& e) {
    std::cerr << program << ": error: " << e.what() << std::endl;
  } catch (const InternalError& e) {
    std::cerr << program << ": internal error (please report): " << e.what() << std::endl;
  } catch (const std::exception& e) {
    std::cerr << program << ": error: " << e.what() << std::endl;
  }
  return 1;
}

}  // namespace bevkd

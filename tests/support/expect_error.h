// The one error-message matcher of the test suite: a test of an error path asserts the message
// (STYLE.md habit 9), never just that something was thrown.
#pragma once

#include <gtest/gtest.h>

#include <string>
#include <utility>
#include <vector>

#include "base/error.h"

namespace bevkd::testing {

// Runs `fn`, expects a bevkd::Error and returns its message (a test failure if none is thrown).
template <typename Fn>
std::string error_of(Fn&& fn) {
  try {
    std::forward<Fn>(fn)();
  } catch (const Error& e) {
    return e.what();
  }
  ADD_FAILURE() << "expected a bevkd::Error, none was thrown";
  return "";
}

}  // namespace bevkd::testing

// Expects `stmt` to throw bevkd::Error whose message contains every one of the given strings.
#define EXPECT_ERROR_WITH(stmt, ...)                                                      \
  do {                                                                                    \
    try {                                                                                 \
      stmt;                                                                               \
      ADD_FAILURE() << "expected bevkd::Error from: " #stmt;                              \
    } catch (const ::bevkd::Error& e) {                                                   \
      for (const std::string& part : std::vector<std::string>{__VA_ARGS__})               \
        EXPECT_NE(std::string(e.what()).find(part), std::string::npos)                    \
            << "message lacks \"" << part << "\": " << e.what();                          \
    }                                                                                     \
  } while (0)

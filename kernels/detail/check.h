// Argument checks shared by the ops (internal to kernels/). A failed check throws
// bevkd::Error naming the op, the argument, what was expected and what was found:
//   "bev_iou: boxes_a must be [N, 7] or [N, 9] float32/float64, found [5, 8] float32 on cpu"
#pragma once

#include <torch/types.h>

#include <string>

#include "base/error.h"

namespace bevkd::kernels::detail {

// "[5, 8] float32 on cpu", or "an undefined tensor".
std::string describe(const torch::Tensor& t);

// Throws unless `ok`: "<op>: <name> must be <expected>, found <describe(t)>".
void check_arg(bool ok, const char* op, const char* name, const char* expected, const torch::Tensor& t);

bool is_float(const torch::Tensor& t);    // float32 or float64
bool is_integer(const torch::Tensor& t);  // int8/16/32/64 or uint8

// Throws unless both are on the same device.
void check_same_device(const char* op, const char* name_a, const torch::Tensor& a, const char* name_b,
                       const torch::Tensor& b);

// For a CUDA tensor in a build without BEVKD_WITH_CUDA.
[[noreturn]] void fail_no_cuda(const char* op, const torch::Tensor& t);

}  // namespace bevkd::kernels::detail

// Shard arrays (storage/array.h) as LibTorch tensors.
#pragma once

#include <torch/types.h>

#include <cstdint>
#include <vector>

#include "storage/array.h"

namespace bevkd::train::data {

// The tensor dtype of a storage dtype (float16 -> kHalf: the same IEEE binary16 bits); throws
// bevkd::Error for strings and uint64.
torch::ScalarType torch_type(storage::DType t);

// A CPU tensor copy of `a`, same shape and dtype (a ragged field: [rows, ...row shape]).
torch::Tensor tensor_of(const storage::Array& a);

// An uninitialised CPU tensor whose memory comes from storage::Array's pool of large buffers
// (>= 1 MiB) and goes back to it when the tensor's storage dies: a stream of same-sized image
// batches then reuses memory instead of page-faulting fresh pages for every sample.
torch::Tensor pooled_empty(const std::vector<std::int64_t>& shape, storage::DType dtype);

}  // namespace bevkd::train::data

// Process-wide settings that make LibTorch training on a CPU faster, applied once at the start
// of main() by the commands that train (bevkd-train, bevkd-precompute, the training benchmarks):
// glibc malloc serves every allocation from the heap (no mmap per large tensor) and keeps freed
// heap instead of trimming it, so a training step reuses the memory of the last one instead of
// page-faulting its activations in again (a step's tensors of tens of MiB are over glibc's mmap
// threshold). MALLOC_MMAP_MAX_, MALLOC_MMAP_THRESHOLD_ or MALLOC_TRIM_THRESHOLD_ in the environment
// take precedence. Measured on the 2-core machine: FD3D's head alone 2.2 -> 8.5 samples/s, the
// tiny student ~6.0 -> ~11.0 samples/s. The price: the process keeps its peak heap. A no-op
// without glibc.
#pragma once

namespace bevkd {

void tune_cpu_runtime();

}  // namespace bevkd

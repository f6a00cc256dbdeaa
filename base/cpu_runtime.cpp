#include "base/cpu_runtime.h"

#include <climits>
#include <cstdlib>

#if defined(__GLIBC__)
#include <malloc.h>
#endif

namespace bevkd {

void tune_cpu_runtime() {
#if defined(__GLIBC__)
  const bool user_set = std::getenv("MALLOC_MMAP_MAX_") || std::getenv("MALLOC_MMAP_THRESHOLD_") ||
                        std::getenv("MALLOC_TRIM_THRESHOLD_");
  if (!user_set) {
    mallopt(M_MMAP_MAX, 0);
    mallopt(M_TRIM_THRESHOLD, INT_MAX);
  }
#endif
}

}  // namespace bevkd
